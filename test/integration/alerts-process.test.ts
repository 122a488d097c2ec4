import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { httpGet, sample, startServiceChild, type HotstoreChild } from '../helpers/hotstore-child.js';
import { clickhouse, createTokenizerDatabase, publish } from '../helpers/tokenizer-stack.js';
import { tempDir } from '../helpers/temp-dir.js';
import { alertsEnv, alertsSettled, createAlertsTopics, dropAlertsTopics, execution, finished, Receiver, started, validSignature, writeAlertFiles, type AlertsNames } from '../helpers/alerts-fixtures.js';

const client = clickhouse();
const receiver = new Receiver();
const SECRET = 'process-secret-0123456789abcdef';
const children: HotstoreChild[] = [];
let database: string;
let names: AlertsNames;
let env: Record<string, string>;
let dir: string;

const RULES = `
rules:
  - name: wf-failures
    kind: threshold
    severity: high
    channels: [compliance]
    where: { event: ExecutionFinished, status: failed }
    key: workflow_id
    count: 4
    window: 10m
`;

before(async () => {
  await receiver.up();
  database = await createTokenizerDatabase(client);
  names = await createAlertsTopics('alerts-proc');
  dir = tempDir('alerts-proc');
  const files = writeAlertFiles(dir, RULES, { compliance: { url: receiver.url('/compliance'), secretEnv: 'IT_ALERTS_SECRET' } });
  env = { IT_ALERTS_SECRET: SECRET, ...alertsEnv(names, database, files) };
});

after(async () => {
  for (const c of children) if (c.process.exitCode === null) c.process.kill('SIGKILL');
  await receiver.down();
  await dropAlertsTopics(names);
  await client.command({ query: `DROP DATABASE IF EXISTS ${database}` });
  await client.close();
});

function start(extra: Record<string, string> = {}): HotstoreChild {
  // The child logs its /metrics port at level info.
  const child = startServiceChild('alerts', { ...env, AUDITLINE_ALERTS_LOG_LEVEL: 'info', ...extra });
  children.push(child);
  return child;
}

const failures = (n: number) => Array.from({ length: n }, () => execution([(o) => started({}, { ...o, workflowId: 'WF-KILL' }), (o) => finished('failed', { ...o, workflowId: 'WF-KILL' })])).flat();

async function windowHits(): Promise<number> {
  const rows = await (
    await client.query({
      query: `SELECT argMax(value, version) AS v, argMax(deleted, version) AS d FROM ${database}.alerts_state WHERE entry = 'w|wf-failures|WF-KILL' GROUP BY entry`,
      format: 'JSONEachRow',
    })
  ).json<{ v: string; d: number }>();
  return rows[0] && Number(rows[0].d) === 0 ? (JSON.parse(rows[0].v) as { hits: unknown[] }).hits.length : 0;
}

test('killed and restarted inside a threshold window: the alert still fires once', async () => {
  const first = start();
  const port = await first.port;
  const until = Date.now() + 30_000;
  while ((await httpGet(port, '/readyz').catch(() => ({ status: 0 }))).status !== 200) {
    if (Date.now() > until) throw new Error(`not ready: ${first.stderr()}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  await publish(names.events, failures(2));
  const stored = Date.now() + 20_000;
  while ((await windowHits()) < 2) {
    if (Date.now() > stored) throw new Error('the window state was not stored');
    await new Promise((r) => setTimeout(r, 100));
  }
  first.process.kill('SIGKILL');
  await first.exited;

  await publish(names.events, failures(2));
  const second = start();
  await receiver.waitFor('/compliance', 1, 40_000);
  // Anything repeated after the restart would have been delivered once every stage caught up.
  await alertsSettled(names);
  const got = receiver.on('/compliance');
  assert.equal(got.length, 1, 'one alert, neither lost nor repeated across the restart');
  const alert = JSON.parse(got[0]!.body) as { key: string; event_count: number; execution_ids: string[] };
  assert.equal(alert.key, 'WF-KILL');
  assert.equal(alert.event_count, 4, 'two events from before the kill, two after');
  assert.ok(validSignature(got[0]!, SECRET));
  const metrics = await httpGet(await second.port, '/metrics');
  assert.equal(sample(metrics.body, 'auditline_alerts_fired_total{kind="threshold",severity="high"}'), 1);

  second.process.kill('SIGTERM');
  assert.equal(await second.exited, 0, 'graceful shutdown');
});

test('a rule file with an error is refused at start, naming the rule and the field', async () => {
  const bad = path.join(dir, 'bad-rules.yaml');
  writeFileSync(bad, 'rules:\n  - name: ok-rule\n    kind: match\n    severity: high\n    channels: [compliance]\n    where: { status: failed }\n  - name: broken-window\n    kind: threshold\n    severity: high\n    channels: [compliance]\n    where: { status: failed }\n    key: workflow_id\n    count: 5\n    window: ten minutes\n');
  const child = start({ AUDITLINE_ALERTS_RULES_FILE: bad });
  assert.equal(await child.exited, 2, 'invalid configuration: exit code 2');
  assert.match(child.stderr(), /rule "broken-window" \(rules\[1\]\): field window: must be a duration/);
});
