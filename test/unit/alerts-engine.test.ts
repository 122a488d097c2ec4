import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse } from 'yaml';
import { FINISHED_GAP_TTL_MS, LATE_HITS_MS, PartitionEngine } from '../../consumers/alerts/engine.js';
import { PiiDetector } from '../../consumers/alerts/pii.js';
import { eventSignals, type Signal } from '../../consumers/alerts/signals.js';
import { parseRules, type Rule } from '../../consumers/alerts/index.js';
import { execution, finished, PII_VALUE, started, step } from '../helpers/alerts-fixtures.js';
import type { AuditEvent } from '../../schemas/index.js';
import { webhookBody } from '../../consumers/alerts/webhook.js';

const RULES = parseRules(
  parse(`
rules:
  - { name: pii, kind: match, severity: critical, channels: [s], where: { event: ExecutionFinished, status: failed }, touched_pii: true }
  - { name: thr, kind: threshold, severity: high, channels: [c], where: { event: ExecutionFinished, status: failed }, key: workflow_id, count: 3, window: 10m, throttle: 1h }
  - { name: open, kind: absence, severity: high, channels: [c], start: { event: ExecutionStarted }, end: { event: ExecutionFinished }, within: 1m }
  - { name: quiet, kind: absence, severity: high, channels: [c], key: producer.service, within: 5m }
  - { name: gap, kind: gap, severity: high, channels: [c], grace: 30s }
`),
  'test',
);
const detector = new PiiDetector();

/** Runs events through stage 1 and a fresh (or given) stage-2 engine at wall time `now`; returns alerts by rule. */
function run(events: AuditEvent[], now: number, engine = new PartitionEngine(new Map(RULES.map((r) => [r.name, r])), { idleTtlMs: 3_600_000 })) {
  const signals: Signal[] = events.flatMap((e) => eventSignals(e, RULES, detector, now));
  const alerts = signals.flatMap((s) => engine.apply(s, now));
  return { engine, alerts, signals };
}

test('PII is known from tokens in pii-tagged fields only', () => {
  assert.equal(detector.touchesPii(started({ customer_email: PII_VALUE })), true);
  assert.equal(detector.touchesPii(started({ note: 'see [[pii:j***|eyJ2IjoxfQAAAAAA]]' })), true);
  assert.equal(detector.touchesPii(started({ customer_email: { $pii: 'producer-hash' } })), true);
  assert.equal(detector.touchesPii(started({ amount: 3 })), false);
  assert.equal(detector.touchesPii(started({ note: `call [pii:hmac-sha256:${'ab'.repeat(32)}] back` })), true, "the producer's hash mode in free text");
  // workflow_id is not a pii field: a marker-looking id is not evidence of PII.
  assert.equal(detector.touchesPii(started({}, { workflowId: '"$pii"' })), false);
});

test('match with touched_pii: fires for a failed execution that carried PII earlier, not for the others', () => {
  const now = Date.now();
  const withPii = execution([(o) => started({ customer_email: PII_VALUE }, o), (o) => step('success', o), (o) => finished('failed', o)]);
  const noPii = execution([(o) => started({}, o), (o) => finished('failed', o)]);
  const succeeded = execution([(o) => started({ customer_email: PII_VALUE }, o), (o) => finished('success', o)]);
  const { alerts, engine } = run([...withPii, ...noPii, ...succeeded], now);
  const pii = alerts.filter((a) => a.rule === 'pii');
  assert.deepEqual(pii.map((a) => a.key), [withPii[0]!.execution_id]);
  assert.equal(pii[0]!.evidence.touched_pii, true);
  // The per-execution PII flags are dropped when executions finish.
  assert.ok(!engine.takeChanges().some(([k, v]) => k.startsWith('p|') && v !== null));
});

test('threshold: fires at the count within the window, once, then starts over; a redelivered event is not counted twice', () => {
  const now = Date.now();
  const fail = (wf: string, t: number) => execution([(o) => finished('failed', { ...o, workflowId: wf, time: t })]);
  const engine = run([], now).engine;
  const a = fail('WF-1', now - 50_000);
  assert.equal(run([...a, ...a], now, engine).alerts.length, 0, 'the same event twice counts once');
  assert.equal(run(fail('WF-1', now - 40_000), now, engine).alerts.length, 0);
  assert.equal(run(fail('WF-2', now - 30_000), now, engine).alerts.length, 0, 'another key has its own window');
  const fired = run(fail('WF-1', now - 20_000), now, engine).alerts.filter((x) => x.rule === 'thr');
  assert.equal(fired.length, 1);
  assert.equal(fired[0]!.event_count, 3);
  assert.equal(run(fail('WF-1', now - 10_000), now, engine).alerts.filter((x) => x.rule === 'thr').length, 0, 'the window starts over');
  // Events further apart than the window never reach the count.
  const sparse = run([], now).engine;
  for (const t of [0, 11, 22, 33].map((m) => now - 60 * 60_000 + m * 60_000)) assert.equal(run(fail('WF-3', t), now, sparse).alerts.filter((x) => x.rule === 'thr').length, 0);
});

test('threshold: events arriving after a newer one still count with the events around them; later than LATE_HITS_MS they do not', () => {
  const now = Date.now();
  const fail = (wf: string, t: number) => execution([(o) => finished('failed', { ...o, workflowId: wf, time: t })]);
  const engine = run(fail('WF-L', now), now).engine;
  assert.equal(run(fail('WF-L', now - 30 * 60_000), now, engine).alerts.length, 0);
  assert.equal(run(fail('WF-L', now - 28 * 60_000), now, engine).alerts.length, 0);
  const fired = run(fail('WF-L', now - 21 * 60_000), now, engine).alerts.filter((x) => x.rule === 'thr');
  assert.deepEqual(fired.map((a) => [a.event_count, a.evidence.first_event_time, a.evidence.last_event_time]), [[3, now - 30 * 60_000, now - 21 * 60_000]]);
  const tooLate = run(fail('WF-M', now), now).engine;
  for (const m of [2, 1, 0.5]) assert.equal(run(fail('WF-M', now - LATE_HITS_MS - 10 * 60_000 - m * 60_000), now, tooLate).alerts.length, 0, 'beyond the horizon: not kept');
});

test('throttling suppresses repeats for the same rule and key, not for other keys', () => {
  const now = Date.now();
  const suppressed: string[] = [];
  const engine = new PartitionEngine(new Map(RULES.map((r) => [r.name, r])), { idleTtlMs: 3_600_000, onSuppressed: (r) => suppressed.push(r) });
  const fail = (wf: string) => execution([(o) => finished('failed', { ...o, workflowId: wf })]);
  const fire = (wf: string) => run([...fail(wf), ...fail(wf), ...fail(wf)], now, engine).alerts.filter((a) => a.rule === 'thr').length;
  assert.equal(fire('WF-9'), 1);
  assert.equal(fire('WF-9'), 0, 'within the 1 h throttle');
  assert.deepEqual(suppressed, ['thr']);
  assert.equal(fire('WF-8'), 1, 'another key');
  engine.tick(now + 3_600_001);
  assert.equal(run([...fail('WF-9'), ...fail('WF-9'), ...fail('WF-9')], now + 3_600_002, engine).alerts.filter((a) => a.rule === 'thr').length, 1, 'after the throttle period');
});

test('absence per execution: fires on the clock after the deadline unless the execution finished', () => {
  const now = Date.now();
  const open = execution([(o) => started({}, { ...o, time: now })]);
  const closed = execution([(o) => started({}, { ...o, time: now }), (o) => finished('success', o)]);
  const { engine } = run([...open, ...closed], now);
  assert.equal(engine.tick(now + 59_000).filter((a) => a.rule === 'open').length, 0, 'before the deadline');
  const fired = engine.tick(now + 60_000).filter((a) => a.rule === 'open');
  assert.deepEqual(fired.map((a) => a.key), [open[0]!.execution_id]);
  assert.equal(engine.tick(now + 120_000).filter((a) => a.rule === 'open').length, 0, 'once');
});

test('timers compare event times with the clock they are given, not the wall time (a backlog is being read)', () => {
  const now = Date.now();
  const open = execution([(o) => started({}, { ...o, time: now })]);
  const { engine } = run(open, now);
  const late = now + 10 * 60_000;
  assert.equal(engine.tick(late, now + 59_000).filter((a) => a.rule === 'open').length, 0, 'event time before the deadline, however late the wall clock');
  assert.equal(engine.tick(late, now + 59_000).filter((a) => a.rule === 'quiet').length, 0, 'no silence either');
  const fired = engine.tick(late, now + 60_000);
  assert.deepEqual(fired.filter((a) => a.rule === 'open').map((a) => a.key), [open[0]!.execution_id], 'fires once event time passes the deadline');
  assert.equal(fired[0]!.fired_at, late, 'stamped with the wall time it fired at');
});

test('after a downtime longer than the idle TTL, a silence still waiting for the backlog is not swept before it can fire', () => {
  const now = Date.now();
  const engine = new PartitionEngine(new Map(RULES.map((r) => [r.name, r])), { idleTtlMs: 3_600_000 });
  run([started({}, { service: 'gone', time: now })], now, engine);
  const back = now + 80 * 3_600_000;
  assert.equal(engine.tick(back, Number.NEGATIVE_INFINITY).length, 0, 'backlog not read yet: nothing fires');
  assert.ok(engine.size > 0, 'and nothing is swept');
  assert.deepEqual(engine.tick(back, now + 5 * 60_000).filter((a) => a.rule === 'quiet').map((a) => a.key), ['gone'], 'fires once the backlog\'s event time passes the limit');
});

test('after a downtime longer than the idle TTL, an unfinished execution\'s gap tracker is kept until the backlog is read: its next event is no gap', () => {
  const now = Date.now();
  const engine = new PartitionEngine(new Map(RULES.map((r) => [r.name, r])), { idleTtlMs: 3_600_000 });
  const g = execution([(o) => started({}, o), (o) => step('success', o), (o) => step('success', o), (o) => step('success', o)]).map((e) => ({ ...e, event_time: now }));
  run(g.slice(0, 3), now, engine);
  const back = now + 80 * 3_600_000;
  assert.equal(engine.tick(back, Number.NEGATIVE_INFINITY).length, 0);
  run(g.slice(3), back, engine);
  assert.equal(engine.tick(back, back).filter((a) => a.rule === 'gap').length, 0, 'sequence 4 follows 1-3: nothing is missing');
});

test('silence: a key that stops sending fires once after the limit, and again only after it came back', () => {
  const now = Date.now();
  const ev = (svc: string, t: number) => [started({}, { service: svc, time: t })];
  const { engine } = run([...ev('a', now), ...ev('b', now)], now);
  run(ev('b', now + 4 * 60_000), now + 4 * 60_000, engine);
  const t1 = engine.tick(now + 5 * 60_000).filter((a) => a.rule === 'quiet');
  assert.deepEqual(t1.map((a) => a.key), ['a']);
  assert.equal(engine.tick(now + 6 * 60_000).filter((a) => a.rule === 'quiet' && a.key === 'a').length, 0, 'fired once');
  run(ev('a', now + 7 * 60_000), now + 7 * 60_000, engine);
  assert.deepEqual(engine.tick(now + 12 * 60_000).filter((a) => a.rule === 'quiet').map((a) => a.key).sort(), ['a', 'b']);
});

test('silence inside the throttle of an earlier one is alerted when the throttle ends, once', () => {
  const rules = parseRules(parse('rules:\n  - { name: quiet, kind: absence, severity: high, channels: [c], key: producer.service, within: 5m, throttle: 1h }'), 'test');
  const engine = new PartitionEngine(new Map(rules.map((r) => [r.name, r])), { idleTtlMs: 24 * 3_600_000 });
  const at = (t: number) => eventSignals(started({}, { service: 'a', time: t }), rules, detector, t).forEach((sig) => engine.apply(sig, t));
  const now = Date.now();
  const quiet = (t: number) => engine.tick(t).filter((a) => a.rule === 'quiet').length;
  at(now);
  assert.equal(quiet(now + 5 * 60_000), 1, 'the first silence');
  at(now + 6 * 60_000); // back for one event, then silent for good
  assert.equal(quiet(now + 11 * 60_000), 0, 'the second silence is inside the 1 h throttle');
  assert.equal(quiet(now + 40 * 60_000), 0);
  assert.equal(quiet(now + 65 * 60_000), 1, 'alerted once the throttle ended');
  assert.equal(quiet(now + 70 * 60_000), 0, 'and only once');
});

test('gap: a missing sequence number fires after the grace period unless it arrives', () => {
  const now = Date.now();
  const g = execution([(o) => started({}, o), (o) => step('success', o), (o) => step('success', { ...o, sequence: 4 }), (o) => finished('success', { ...o, sequence: 5 })]);
  const late = execution([(o) => started({}, o), (o) => step('success', { ...o, sequence: 3 }), (o) => step('success', { ...o, sequence: 2 }), (o) => finished('success', { ...o, sequence: 4 })]);
  const { engine } = run([...g.map((e) => ({ ...e, event_time: now })), ...late.map((e) => ({ ...e, event_time: now }))], now);
  assert.equal(engine.tick(now + 29_000).filter((a) => a.rule === 'gap').length, 0, 'within grace');
  const fired = engine.tick(now + 30_000).filter((a) => a.rule === 'gap');
  assert.deepEqual(fired.map((a) => [a.key, a.evidence.missing_sequences]), [[g[0]!.execution_id, [3]]]);
});

test('gap: an event of a complete execution delivered again (a retried batch) reports nothing missing; the tracker goes after FINISHED_GAP_TTL_MS', () => {
  const now = Date.now();
  const g = execution([(o) => started({}, o), (o) => step('success', o), (o) => step('success', o), (o) => finished('success', o)]).map((e) => ({ ...e, event_time: now }));
  const { engine } = run(g, now);
  assert.equal(engine.tick(now + 31_000).filter((a) => a.rule === 'gap').length, 0, 'complete');
  run(g.slice(2), now + 40_000, engine); // the last two again
  assert.equal(engine.tick(now + 80_000).filter((a) => a.rule === 'gap').length, 0, 'a redelivery is no gap');
  assert.ok(engine.size > 0, 'the tracker is kept for a while');
  engine.tick(now + 40_000 + FINISHED_GAP_TTL_MS + 1);
  assert.equal([...engine.takeChanges()].filter(([k, v]) => k.startsWith('g|') && v !== null).length, 0, 'and then dropped');
});

test('threshold: the events of a fired window delivered again are not counted again', () => {
  const now = Date.now();
  const fails = Array.from({ length: 5 }, () => execution([(o) => started({}, { ...o, workflowId: 'WF-DUP' }), (o) => finished('failed', o)]).map((e) => ({ ...e, event_time: now })));
  const rules = new Map<string, Rule>(RULES.filter((r) => r.name === 'thr').map((r) => [r.name, { ...r, throttleMs: 0 }]));
  const engine = new PartitionEngine(rules, { idleTtlMs: 3_600_000 });
  const apply = (events: AuditEvent[]) => events.flatMap((e) => eventSignals(e, RULES, detector, now)).flatMap((sig) => engine.apply(sig, now)).filter((a) => a.rule === 'thr');
  assert.equal(apply(fails.slice(0, 3).flat()).length, 1, 'count 3 reached');
  assert.equal(apply([...fails[2]!, ...fails[3]!, ...fails[4]!]).length, 0, 'the third again and two new ones are not three new ones');
  assert.equal(apply(execution([(o) => started({}, { ...o, workflowId: 'WF-DUP' }), (o) => finished('failed', o)]).map((e) => ({ ...e, event_time: now }))).length, 1, 'a third new one is');
});

test('state survives a restore: entries written by one engine rebuild the next', () => {
  const now = Date.now();
  const rules = new Map<string, Rule>(RULES.map((r) => [r.name, r]));
  const first = new PartitionEngine(rules, { idleTtlMs: 3_600_000 });
  const fail = () => execution([(o) => finished('failed', { ...o, workflowId: 'WF-R' })]);
  for (const e of [...fail(), ...fail()]) for (const s of eventSignals(e, RULES, detector, now)) first.apply(s, now);
  const stored = first.takeChanges().filter((c): c is [string, string] => c[1] !== null);
  const second = new PartitionEngine(rules, { idleTtlMs: 3_600_000 }, stored);
  const alerts = fail().flatMap((e) => eventSignals(e, RULES, detector, now)).flatMap((s) => second.apply(s, now));
  assert.equal(alerts.filter((a) => a.rule === 'thr').length, 1);
});

test('alerts carry ids and counts, never payload values', () => {
  const now = Date.now();
  const evs = execution([(o) => started({ customer_email: PII_VALUE, customer_name: 'Jane Roe' }, o), (o) => finished('failed', o)]);
  const { alerts } = run(evs, now);
  const text = JSON.stringify(alerts);
  assert.ok(alerts.length > 0);
  assert.ok(!text.includes('Jane') && !text.includes('$pii') && !text.includes('customer_email'));
});

test('a hostile workflow id reaches a Slack alert inert: no ping, no disguised link, no code span it can close', () => {
  const hostile = 'WF` <!channel> <https://evil.example/login|Re-authenticate your SSO now> & `';
  const now = Date.now();
  const events = [1, 2, 3].flatMap(() => execution([(o) => finished('failed', o)], { workflowId: hostile, time: now }));
  const [alert] = run(events, now).alerts.filter((a) => a.rule === 'thr');
  assert.ok(alert && alert.key === hostile && alert.summary.includes(hostile), 'the threshold keyed by workflow_id fired with the hostile id in key and summary');
  const body = JSON.parse(webhookBody(alert, 'slack')) as { text: string; blocks: { text?: { text: string }; elements?: { text: string }[] }[] };
  const texts = [body.text, ...body.blocks.flatMap((b) => [b.text?.text ?? '', ...(b.elements ?? []).map((e) => e.text)])];
  for (const t of texts) {
    assert.doesNotMatch(t, /[<>]/, `no Slack control sequence (<!channel>, <url|label>) in ${t}`);
    assert.doesNotMatch(t, /&(?!amp;|lt;|gt;)/, `every & escaped in ${t}`);
  }
  assert.ok(body.text.includes('&lt;!channel&gt; &lt;https://evil.example/login|Re-authenticate your SSO now&gt; &amp;'), 'shown as text');
  const context = body.blocks[1]!.elements![0]!.text;
  assert.equal(context.split('`').length, 5, `two code spans (rule, key) and no backtick of the id: ${context}`);
  assert.ok(context.includes("key `WF' &lt;!channel&gt;"), context);
  const links = body.blocks[2]!.text!.text.split('\n');
  for (const l of links) assert.match(l, /^`[^`]*`$/, `each link one code span: ${l}`);
});

test('a silence is alerted once: an older event of the key delivered again after the throttle does not re-arm it, a newer one does', () => {
  const rules = parseRules(parse('rules:\n  - { name: svc-silent, kind: absence, severity: high, channels: [c], key: producer.service, within: 15m, throttle: 1h }\n'), 'test');
  const engine = new PartitionEngine(new Map(rules.map((r) => [r.name, r])), { idleTtlMs: 72 * 3_600_000 });
  const M = 60_000;
  const H = 3_600_000;
  const T0 = 1_700_000_000_000;
  const seen = (time: number, id: string): Signal => ({ rule: 'svc-silent', key: 'billing', role: 'seen', event_id: id, execution_id: 'x1', workflow_id: 'WF-1', event_time: time, sequence: 1, pii: false, final: false, published_ms: time });
  engine.apply(seen(T0, 'last'), T0);
  assert.equal(engine.tick(T0 + 16 * M, T0 + 16 * M).length, 1, 'the silence is alerted');
  assert.equal(engine.tick(T0 + 2 * H, T0 + 2 * H).length, 0, 'throttle over, still the same silence');
  engine.apply(seen(T0 - 5 * M, 'older'), T0 + 2 * H + 1_000);
  engine.apply(seen(T0, 'last'), T0 + 2 * H + 1_000);
  assert.equal(engine.tick(T0 + 2 * H + 2_000, T0 + 2 * H + 2_000).length, 0, 'an older event, or the last one again, is no sign of life');
  engine.apply(seen(T0 + 2 * H + 3_000, 'back'), T0 + 2 * H + 3_000);
  assert.equal(engine.tick(T0 + 2 * H + 4_000, T0 + 2 * H + 4_000).length, 0, 'the key came back');
  const again = engine.tick(T0 + 2 * H + 3_000 + 16 * M, T0 + 2 * H + 3_000 + 16 * M);
  assert.equal(again.length, 1, 'silent again: a new silence, alerted');
  assert.ok(again[0]!.summary.includes(`since ${new Date(T0 + 2 * H + 3_000).toISOString()}`), again[0]!.summary);
});
