import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { createLogger } from '../../core/logger.js';
import { AlertsService, loadAlertsConfig, type Alert } from '../../consumers/alerts/index.js';
import { sample } from '../helpers/hotstore-child.js';
import { clickhouse, createTokenizerDatabase, publish, readTopic } from '../helpers/tokenizer-stack.js';
import { tempDir } from '../helpers/temp-dir.js';
import {
  alertsEnv,
  alertsSettled,
  createAlertsTopics,
  dropAlertsTopics,
  execution,
  finished,
  PII_VALUE,
  Receiver,
  started,
  step,
  validSignature,
  writeAlertFiles,
  type AlertsNames,
} from '../helpers/alerts-fixtures.js';

const client = clickhouse();
const receiver = new Receiver();
const SECRET = 'test-secret-0123456789abcdef';
let database: string;
let names: AlertsNames;
let service: AlertsService;
let registry: Registry;
const stop = new AbortController();

const RULES = `
rules:
  - name: pii-failed
    kind: match
    severity: critical
    channels: [security]
    where: { event: ExecutionFinished, status: failed }
    touched_pii: true
  - name: wf-failures
    kind: threshold
    severity: high
    channels: [compliance]
    where: { event: ExecutionFinished, status: failed, workflow_id: [WF-T, WF-T2] }
    key: workflow_id
    count: 3
    window: 10m
  - name: not-finished
    kind: absence
    severity: high
    channels: [compliance]
    start: { event: ExecutionStarted, workflow_id: WF-ABS }
    end: { event: ExecutionFinished }
    within: 3s
  - name: producer-silent
    kind: absence
    severity: high
    channels: [compliance]
    key: producer.service
    where: { producer.service: [silent-svc, steady-svc] }
    within: 4s
    throttle: 1h
  - name: seq-gap
    kind: gap
    severity: high
    channels: [compliance]
    where: { workflow_id: WF-GAP }
    grace: 1s
  - name: step-failed
    kind: match
    severity: warning
    channels: [compliance]
    where: { event: StepFinished, status: failed, workflow_id: WF-THR }
    throttle: 1h
  - name: to-metadata
    kind: match
    severity: info
    channels: [metadata]
    where: { workflow_id: WF-SSRF, event: ExecutionStarted }
`;

before(async () => {
  await receiver.up();
  database = await createTokenizerDatabase(client);
  names = await createAlertsTopics('alerts');
  const dir = tempDir('alerts-it');
  const files = writeAlertFiles(dir, RULES, {
    security: { url: receiver.url('/security'), format: 'slack', secretEnv: 'IT_ALERTS_SECRET' },
    compliance: { url: receiver.url('/compliance'), secretEnv: 'IT_ALERTS_SECRET' },
    // Link-local cloud metadata address: must be refused even though 127.0.0.1 is allowed.
    metadata: { url: 'http://169.254.169.254/latest/meta-data', secretEnv: 'IT_ALERTS_SECRET' },
  });
  const config = loadAlertsConfig({ ...process.env, IT_ALERTS_SECRET: SECRET, ...alertsEnv(names, database, files) });
  registry = new Registry();
  service = new AlertsService(config, { logger: createLogger('alerts-it', 'warn'), registry });
  await service.start(stop.signal);
});

after(async () => {
  stop.abort();
  await service?.stop();
  await receiver.down();
  await dropAlertsTopics(names);
  await client.command({ query: `DROP DATABASE IF EXISTS ${database}` });
  await client.close();
});

const alertsOf = (path: string): (Alert & { _id: string })[] =>
  receiver.on(path).map((r) => {
    const body = JSON.parse(r.body) as Alert;
    return { ...body, _id: String(r.headers['x-auditline-alert-id']) };
  });

test('each rule kind fires exactly when it should, signed, with evidence and no PII; throttling and SSRF hold', async (t) => {
  const pii = { customer_email: PII_VALUE, amount: 10 };
  const A = execution([(o) => started(pii, { ...o, workflowId: 'WF-P' }), (o) => finished('failed', { ...o, workflowId: 'WF-P' })]);
  const B = execution([(o) => started({ amount: 1 }, { ...o, workflowId: 'WF-P' }), (o) => finished('failed', { ...o, workflowId: 'WF-P' })]);
  const C = execution([(o) => started(pii, { ...o, workflowId: 'WF-P' }), (o) => finished('success', { ...o, workflowId: 'WF-P' })]);
  const T = [1, 2, 3].flatMap(() => execution([(o) => started({}, { ...o, workflowId: 'WF-T' }), (o) => finished('failed', { ...o, workflowId: 'WF-T' })]));
  const T2 = [1, 2].flatMap(() => execution([(o) => started({}, { ...o, workflowId: 'WF-T2' }), (o) => finished('failed', { ...o, workflowId: 'WF-T2' })]));
  const D = execution([(o) => started({}, { ...o, workflowId: 'WF-ABS' })]);
  const E = execution([(o) => started({}, { ...o, workflowId: 'WF-ABS' }), (o) => finished('success', { ...o, workflowId: 'WF-ABS' })]);
  const G = execution([(o) => started({}, o), (o) => step('success', o), (o) => step('success', { ...o, sequence: 4 }), (o) => finished('success', { ...o, sequence: 5 })], { workflowId: 'WF-GAP' });
  const H = execution([(o) => started({}, o), (o) => step('success', o), (o) => finished('success', o)], { workflowId: 'WF-GAP' });
  const K = execution([(o) => started({}, o), (o) => step('failed', o), (o) => step('failed', o), (o) => step('failed', o)], { workflowId: 'WF-THR' });
  const S = execution([(o) => started({}, { ...o, workflowId: 'WF-SSRF' })]);
  const silent = execution([(o) => started({}, { ...o, service: 'silent-svc' })]);
  // The first publish registers the schema; concurrent first registrations race in the registry.
  await publish(names.events, [...A, ...B, ...C, ...T, ...T2, ...D, ...E, ...G, ...H, ...K, ...S, ...silent]);
  // steady-svc keeps sending every second for the whole test (far longer than the 4 s silence limit): it must not fire.
  let steady = true;
  const steadyLoop = (async () => {
    while (steady) {
      await publish(names.events, [started({}, { service: 'steady-svc' })]);
      await new Promise((r) => setTimeout(r, 1_000));
    }
  })();
  t.after(async () => {
    steady = false;
    await steadyLoop;
  });
  await new Promise((r) => setTimeout(r, 6_000));

  await receiver.waitFor('/security', 1);
  await receiver.waitFor('/compliance', 5, 30_000);
  await alertsSettled(names); // anything extra would have been delivered by now

  const security = alertsOf('/security');
  assert.equal(security.length, 1, 'only the failed execution that touched PII alerts security');
  const slack = JSON.parse(receiver.on('/security')[0]!.body) as { text: string; blocks: unknown[] };
  assert.match(slack.text, /CRITICAL.*pii-failed/);
  assert.ok(slack.text.includes(A[0]!.execution_id));

  const compliance = alertsOf('/compliance');
  const byRule = (rule: string) => compliance.filter((a) => a.rule === rule);
  assert.deepEqual(byRule('wf-failures').map((a) => a.key), ['WF-T'], 'WF-T reached 3 failures, WF-T2 did not');
  const th = byRule('wf-failures')[0]!;
  assert.equal(th.event_count, 3);
  assert.deepEqual([...th.execution_ids].sort(), [...new Set(T.map((e) => e.execution_id))].sort());
  assert.ok(th.evidence.links.some((l) => l.includes('query failed --workflow WF-T')));
  assert.deepEqual(byRule('not-finished').map((a) => a.key), [D[0]!.execution_id], 'only the execution without a finish');
  assert.deepEqual(byRule('producer-silent').map((a) => a.key), ['silent-svc'], 'the silent producer, not the steady one');
  assert.deepEqual(byRule('seq-gap').map((a) => [a.key, a.evidence.missing_sequences]), [[G[0]!.execution_id, [3]]]);
  assert.equal(byRule('step-failed').length, 1, 'three failed steps of one execution: throttled to one alert');
  assert.equal(compliance.length, 5);

  for (const r of receiver.requests) {
    assert.ok(validSignature(r, SECRET), 'every request carries a valid HMAC signature');
    assert.equal(r.headers['idempotency-key'], r.headers['x-auditline-alert-id']);
    assert.ok(!r.body.includes('j***@') && !r.body.includes('dGVzdC10b2tlbg'), 'no PII (not even tokens) in alerts');
  }
  for (const a of compliance) assert.equal(a._id, a.alert_id);

  const metrics = await registry.metrics();
  assert.ok(sample(metrics, 'auditline_alerts_suppressed_total') >= 2, 'repeats were suppressed');
  assert.equal(sample(metrics, 'auditline_alerts_deliveries_total{channel="metadata",outcome="ssrf_refused"}'), 1, 'the link-local target was refused');
  const dlq = await readTopic(names.dlq, 1, { timeoutMs: 10_000 });
  assert.equal(dlq[0]!.headers['auditline-dlq-error-code'], 'ALERT_DELIVERY_FAILED');
  assert.match(dlq[0]!.headers['auditline-dlq-reason']!, /metadata.*link-local/);

  const fired = await (
    await client.query({ query: `SELECT rule, count() AS n FROM ${database}.alerts_fired FINAL GROUP BY rule ORDER BY rule`, format: 'JSONEachRow' })
  ).json<{ rule: string; n: string }>();
  assert.deepEqual(
    fired.map((f) => [f.rule, Number(f.n)]),
    [['not-finished', 1], ['pii-failed', 1], ['producer-silent', 1], ['seq-gap', 1], ['step-failed', 1], ['to-metadata', 1], ['wf-failures', 1]],
  );
  const delivered = await (
    await client.query({ query: `SELECT count() AS n FROM ${database}.alert_deliveries WHERE outcome = 'delivered'`, format: 'JSONEachRow' })
  ).json<{ n: string }>();
  assert.equal(Number(delivered[0]!.n), 6);
});

test('receiver down for a while, then up: every alert delivered exactly once by idempotency id, signed', async () => {
  await receiver.down();
  const before = receiver.on('/security').length;
  const pii = { customer_email: PII_VALUE };
  const runs = [1, 2, 3].map(() => execution([(o) => started(pii, { ...o, workflowId: 'WF-DOWN' }), (o) => finished('failed', { ...o, workflowId: 'WF-DOWN' })]));
  await publish(names.events, runs.flat());
  // Wait until deliveries have failed at least once (recorded as attempts), then bring the receiver back.
  const until = Date.now() + 20_000;
  for (;;) {
    const m = await registry.metrics();
    if (sample(m, 'auditline_alerts_deliveries_total{channel="security",outcome="failed"}') >= 3) break;
    if (Date.now() > until) throw new Error('deliveries did not fail while the receiver was down');
    await new Promise((r) => setTimeout(r, 200));
  }
  await new Promise((r) => setTimeout(r, 1_500));
  await receiver.up();
  await receiver.waitFor('/security', before + 3, 30_000);
  // Every retry settled: a repeated delivery would have reached the receiver by now.
  await alertsSettled(names);
  const got = receiver.on('/security').slice(before);
  const ids = got.map((r) => String(r.headers['idempotency-key']));
  assert.equal(new Set(ids).size, 3, 'three distinct alerts');
  assert.equal(ids.length, 3, 'each delivered exactly once');
  for (const r of got) assert.ok(validSignature(r, SECRET));
  const keys = got.map((r) => (JSON.parse(r.body) as { text: string }).text);
  for (const run of runs) assert.ok(keys.some((t) => t.includes(run[0]!.execution_id)));
  const attempts = await (
    await client.query({
      query: `SELECT outcome, count() AS n FROM ${database}.alert_deliveries WHERE alert_id IN ({ids:Array(String)}) GROUP BY outcome ORDER BY outcome`,
      query_params: { ids },
      format: 'JSONEachRow',
    })
  ).json<{ outcome: string; n: string }>();
  const byOutcome = Object.fromEntries(attempts.map((a) => [a.outcome, Number(a.n)]));
  assert.equal(byOutcome.delivered, 3);
  assert.ok((byOutcome.failed ?? 0) >= 3, 'the failed attempts are recorded too');
});

