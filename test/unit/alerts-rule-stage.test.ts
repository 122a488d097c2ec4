import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RuleStage } from '../../consumers/alerts/rule-stage.js';
import { MAX_KEPT, thinned, type StageProgress } from '../../consumers/alerts/progress.js';
import { createLogger } from '../../core/logger.js';
import type { DeadLetter, SourceRecord } from '../../core/service/index.js';
import { parse } from 'yaml';
import { parseRules, type Rule } from '../../consumers/alerts/index.js';
import { PiiDetector } from '../../consumers/alerts/pii.js';
import { eventSignals } from '../../consumers/alerts/signals.js';
import { execution, finished, started } from '../helpers/alerts-fixtures.js';

const record = (offset: number, value: string): SourceRecord => ({ topic: 'signals', partition: 0, offset: String(offset), key: null, value: Buffer.from(value), headers: {}, timestamp: '0' });

/** A rule stage over recording stand-ins of its store, outbox producer and DLQ (by default no rule fires: the order of writes is under test). */
function stage(dlqFails: boolean | (() => boolean), rules: Rule[] = []) {
  const calls: string[] = [];
  const published: DeadLetter[] = [];
  const saved: string[] = [];
  const outbox: string[] = [];
  const fails = typeof dlqFails === 'function' ? dlqFails : () => dlqFails;
  const s = new RuleStage({
    rules,
    store: {
      loadState: async () => ({ checkpoint: { nextOffset: '0', version: 0 }, entries: [] }),
      saveState: async (_p, _changes, checkpoint) => {
        calls.push('checkpoint');
        saved.push(checkpoint.nextOffset);
      },
      recordFired: async () => undefined,
    },
    producer: {
      send: async ({ messages }) => {
        outbox.push(...messages.map((m) => String(m.key)));
        return [];
      },
    },
    dlq: {
      publish: async (letters) => {
        calls.push('dlq');
        if (fails()) throw new Error('DLQ down');
        published.push(...letters);
      },
    },
    outboxTopic: 'outbox',
    idleTtlMs: 60_000,
    logger: createLogger('rule-stage-test', 'silent'),
  });
  return { s, calls, published, saved, outbox };
}

test('rule stage: malformed signals are in the DLQ before the checkpoint that passes them is stored, and reported as published', async () => {
  const { s, calls, published, saved } = stage(false);
  const batch = [record(0, 'not json'), record(1, JSON.stringify({ rule: 'r', key: 'k' })), record(2, '{"rule":1}')];
  const result = await s.handler()(batch, { signal: new AbortController().signal });
  assert.deepEqual(calls, ['dlq', 'checkpoint']);
  assert.deepEqual(published.map((d) => d.record.offset), ['0', '2']);
  assert.deepEqual(saved, ['3']);
  assert.equal(result.published, true, 'the batch consumer must not publish them a second time');
  assert.deepEqual(result.deadLetters.map((d) => [d.record.offset, d.code]), [['0', 'DECODE_FAILED'], ['2', 'DECODE_FAILED']]);
});

test('rule stage: when the DLQ cannot be written, the checkpoint does not move past the malformed signals (the batch is retried)', async () => {
  const { s, calls, saved } = stage(true);
  await assert.rejects(s.handler()([record(5, 'garbage')], { signal: new AbortController().signal }), /DLQ down/);
  assert.deepEqual(calls, ['dlq']);
  assert.deepEqual(saved, [], 'no checkpoint stored: a redelivered batch dead-letters the record again');
});

test('rule stage: a batch retried after the DLQ failed fires the alert its signals make (they had not changed the state yet)', async () => {
  const rules = parseRules(parse('rules:\n  - { name: thr, kind: threshold, severity: high, channels: [c], where: { event: ExecutionFinished, status: failed }, key: workflow_id, count: 2, window: 10m, throttle: 1h }'), 'test');
  const now = Date.now();
  const signals = [execution([(o) => started({}, o), (o) => finished('failed', o)]), execution([(o) => started({}, o), (o) => finished('failed', o)])]
    .flat()
    .flatMap((e) => eventSignals(e, rules, new PiiDetector(), now));
  let failures = 1;
  const { s, outbox } = stage(() => failures-- > 0, rules);
  const batch = [...signals.map((sig, i) => record(i, JSON.stringify(sig))), record(signals.length, 'garbage')];
  await assert.rejects(s.handler()(batch, { signal: new AbortController().signal }), /DLQ down/);
  await s.handler()(batch, { signal: new AbortController().signal });
  assert.equal(new Set(outbox).size, 1, `one alert, fired on the retry: ${outbox.join(', ')}`);
});

const ABSENCE = 'rules:\n  - { name: open, kind: absence, severity: high, channels: [c], start: { event: ExecutionStarted }, end: { event: ExecutionFinished }, within: 1m }';

/** A rule stage on the progress clock over an empty store; `outbox` collects the keys of the alerts it fires. */
function clockStage(rules: Rule[], progress: () => Promise<StageProgress>, graceMs?: number) {
  const outbox: string[] = [];
  const s = new RuleStage({
    rules,
    store: { loadState: async () => ({ checkpoint: { nextOffset: '0', version: 0 }, entries: [] }), saveState: async () => undefined, recordFired: async () => undefined },
    producer: { send: async ({ messages }) => (outbox.push(...messages.map((m) => (JSON.parse(String(m.value)) as { alert: { key: string } }).alert.key)), []) },
    dlq: { publish: async () => undefined },
    outboxTopic: 'outbox',
    idleTtlMs: 24 * 3_600_000,
    logger: createLogger('rule-stage-test', 'silent'),
    progress,
    ...(graceMs === undefined ? {} : { graceMs }),
  });
  s.assign([0]);
  return { s, outbox };
}

test('rule stage: the timers\' clock passes a time only once every event published before it is applied: a finish still in the backlog is not alerted as missing', async () => {
  const rules = parseRules(parse(ABSENCE), 'test');
  const t0 = Date.now() - 3_600_000; // an hour of downtime ago
  const a = execution([(o) => started({}, { ...o, time: t0 }), (o) => finished('success', { ...o, time: t0 + 30_000 })]);
  const b = execution([(o) => started({}, { ...o, time: t0 })]);
  const signals = (events: typeof a) => events.flatMap((e) => eventSignals(e, rules, new PiiDetector(), e.event_time));
  let progress: () => Promise<StageProgress> = async () => ({ sourceAsOf: undefined, signalsEnd: new Map([[0, 2n]]), signalsLow: new Map() });
  const { s, outbox } = clockStage(rules, () => progress());
  const ctx = { signal: new AbortController().signal };
  // Both executions started; a's finish (published at t0 + 30 s) is still unread.
  await s.handler()([...signals([a[0]!]), ...signals(b)].map((sig, i) => record(i, JSON.stringify(sig))), ctx);
  await s.tick();
  assert.deepEqual(outbox, [], 'no time read yet (right after a restart): the clock does not move');
  progress = async () => ({ sourceAsOf: t0 + 20_000, signalsEnd: new Map([[0, 2n]]), signalsLow: new Map() });
  await s.tick();
  assert.deepEqual(outbox, [], 'events read up to t0 + 20 s: both deadlines (t0 + 60 s) are ahead');
  progress = async () => ({ sourceAsOf: Date.now(), signalsEnd: new Map([[0, 3n]]), signalsLow: new Map() });
  await s.tick();
  assert.deepEqual(outbox, [], 'every event read, but its signal not applied yet: the clock stays at the last reading this partition passed');
  progress = async () => Promise.reject(new Error('broker down'));
  await s.tick();
  assert.deepEqual(outbox, [], 'progress unknown: the clock stands still');
  await s.handler()(signals([a[1]!]).map((sig) => record(2, JSON.stringify(sig))), ctx);
  progress = async () => ({ sourceAsOf: Date.now(), signalsEnd: new Map([[0, 3n]]), signalsLow: new Map() });
  await s.tick();
  assert.deepEqual(outbox, [b[0]!.execution_id], 'read and applied: only the execution that never finished is alerted');
});

test('rule stage: signals deleted by retention before they were applied hold no clock back', async () => {
  const rules = parseRules(parse(ABSENCE), 'test');
  const t0 = Date.now() - 3_600_000;
  const open = eventSignals(started({}, { time: t0 }), rules, new PiiDetector(), t0);
  let low = 0n;
  const { s, outbox } = clockStage(rules, async () => ({ sourceAsOf: Date.now(), signalsEnd: new Map([[0, 50n]]), signalsLow: new Map([[0, low]]) }));
  await s.handler()(open.map((sig, i) => record(i, JSON.stringify(sig))), { signal: new AbortController().signal });
  await s.tick();
  assert.deepEqual(outbox, [], 'signals 1-49 unread: the clock waits');
  low = 50n;
  await s.tick();
  assert.equal(outbox.length, 1, 'they were deleted unread: nothing left to wait for, the deadline fires');
});

test('rule stage: after a rebalance a kept partition is restored from the store, not from memory (another member may have moved it on meanwhile)', async () => {
  let stored = { checkpoint: { nextOffset: '0', version: 0 }, entries: [] as [string, string][] };
  const handled: string[] = [];
  const s = new RuleStage({
    rules: [],
    store: {
      loadState: async () => structuredClone(stored),
      saveState: async (_p, _changes, checkpoint) => void (stored = { ...stored, checkpoint }),
      recordFired: async () => undefined,
    },
    producer: { send: async () => [] },
    dlq: { publish: async (letters) => void handled.push(...letters.map((l) => l.record.offset)) },
    outboxTopic: 'outbox',
    idleTtlMs: 60_000,
    logger: createLogger('rule-stage-test', 'silent'),
  });
  const ctx = { signal: new AbortController().signal };
  s.assign([0]);
  await s.handler()([0, 1, 2].map((o) => record(o, 'garbage')), ctx);
  assert.deepEqual(handled, ['0', '1', '2']);
  // Evicted, then back: meanwhile another member handled up to offset 9 and stored its checkpoint.
  stored = { checkpoint: { nextOffset: '10', version: 7 }, entries: [] };
  s.assign([0]);
  await s.handler()([3, 4, 9, 10, 11].map((o) => record(o, 'garbage')), ctx);
  assert.deepEqual(handled.slice(3), ['10', '11'], 'records the other member handled are skipped, not handled twice');
  assert.equal(stored.checkpoint.version, 8, 'the checkpoint goes on from the stored version');
});

test('progress history thinned past its limit stays evenly spread over its whole span (a long backlog keeps a time near every age)', () => {
  let list: { at: number }[] = [];
  for (let at = 0; at < 100_000; at++) list = thinned([...list, { at }], (e) => e.at);
  assert.ok(list.length <= MAX_KEPT, `${list.length} kept`);
  assert.equal(list[0]!.at, 0, 'the oldest kept');
  assert.equal(list[list.length - 1]!.at, 99_999, 'the newest kept');
  const gaps = list.slice(1).map((e, i) => e.at - list[i]!.at);
  // Evenly: no gap beyond a few times span / MAX_KEPT (thinning by position left one gap of over 80 000).
  assert.ok(Math.max(...gaps) <= 8 * (100_000 / MAX_KEPT), `largest gap ${Math.max(...gaps)}`);
});

test('rule stage: timers fire the grace period after their deadline by the clock (events held back by an open transaction are read first)', async () => {
  const rules = parseRules(parse(ABSENCE), 'test');
  const t0 = Date.now() - 3_600_000;
  let asOf = t0 + 90_000;
  const { s, outbox } = clockStage(rules, async () => ({ sourceAsOf: asOf, signalsEnd: new Map([[0, 1n]]), signalsLow: new Map() }), 60_000);
  await s.handler()(eventSignals(started({}, { time: t0 }), rules, new PiiDetector(), t0).map((sig, i) => record(i, JSON.stringify(sig))), { signal: new AbortController().signal });
  await s.tick();
  assert.deepEqual(outbox, [], 'clock 30 s past the deadline, inside the 60 s grace');
  asOf = t0 + 121_000;
  await s.tick();
  assert.equal(outbox.length, 1, 'past deadline + grace: fired');
});
