import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { createLogger } from '../../core/logger.js';
import { AlertsService, loadAlertsConfig, type Alert } from '../../consumers/alerts/index.js';
import { clickhouse, createTokenizerDatabase, publish } from '../helpers/tokenizer-stack.js';
import { tempDir } from '../helpers/temp-dir.js';
import { alertsEnv, alertsSettled, createAlertsTopics, dropAlertsTopics, execution, finished, Receiver, started, writeAlertFiles, type AlertsNames } from '../helpers/alerts-fixtures.js';

const client = clickhouse();
const receiver = new Receiver();
const RULES = `
rules:
  - name: not-finished
    kind: absence
    severity: high
    channels: [compliance]
    start: { event: ExecutionStarted, workflow_id: WF-BACKLOG }
    end: { event: ExecutionFinished }
    within: 3s
`;
let database: string;
let names: AlertsNames;
let config: ReturnType<typeof loadAlertsConfig>;
const running: AlertsService[] = [];

before(async () => {
  await receiver.up();
  database = await createTokenizerDatabase(client);
  names = await createAlertsTopics('alerts-backlog');
  const files = writeAlertFiles(tempDir('alerts-backlog'), RULES, { compliance: { url: receiver.url('/compliance'), secretEnv: 'IT_ALERTS_SECRET' } });
  // Ticks every 50 ms: right after the restart, timers are evaluated long before the backlog is read.
  config = loadAlertsConfig({ ...process.env, IT_ALERTS_SECRET: 'backlog-secret-0123456789abcdef', ...alertsEnv(names, database, files, { AUDITLINE_ALERTS_TICK_MS: '50' }) });
});

after(async () => {
  for (const s of running) await s.stop().catch(() => undefined);
  await receiver.down();
  await dropAlertsTopics(names);
  await client.command({ query: `DROP DATABASE IF EXISTS ${database}` });
  await client.close();
});

async function start(): Promise<AlertsService> {
  const service = new AlertsService(config, { logger: createLogger('alerts-backlog-it', 'warn'), registry: new Registry() });
  running.push(service);
  await service.start(new AbortController().signal);
  return service;
}

/** Open executions of the absence rule in the stored rule state. */
async function openExecutions(): Promise<string[]> {
  const rows = await (
    await client.query({
      query: `SELECT entry FROM ${database}.alerts_state WHERE entry LIKE 'a|not-finished|%' GROUP BY entry HAVING argMax(deleted, version) = 0`,
      format: 'JSONEachRow',
    })
  ).json<{ entry: string }>();
  return rows.map((r) => r.entry.split('|')[2]!).sort();
}

test('restart after a short downtime: a finish that waited in the backlog is not alerted as missing; an execution that never finished is', async () => {
  const t0 = Date.now();
  const done = execution([(o) => started({}, { ...o, workflowId: 'WF-BACKLOG', time: t0 }), (o) => finished('success', { ...o, workflowId: 'WF-BACKLOG', time: t0 + 1_000 })]);
  const stuck = execution([(o) => started({}, { ...o, workflowId: 'WF-BACKLOG', time: t0 })]);
  const first = await start();
  await publish(names.events, [done[0]!, stuck[0]!]);
  const until = Date.now() + 30_000;
  while ((await openExecutions()).length < 2) {
    if (Date.now() > until) throw new Error('the two started executions were not stored as open');
    await new Promise((r) => setTimeout(r, 100));
  }
  await first.stop();
  // Down: other workflows' events pile up, then the finish arrives (in time by its event time), and both deadlines
  // pass on the wall clock. The backlog before the finish takes the restarted signal stage a while to read.
  const others = Array.from({ length: 5_000 }, () => execution([(o) => started({}, { ...o, workflowId: 'WF-OTHER' }), (o) => finished('success', { ...o, workflowId: 'WF-OTHER' })])).flat();
  await publish(names.events, [...others, done[1]!]);
  await new Promise((r) => setTimeout(r, Math.max(0, t0 + 5_000 - Date.now())));

  await start();
  const [alert] = await receiver.waitFor('/compliance', 1, 40_000);
  await alertsSettled(names);
  const got = receiver.on('/compliance').map((r) => JSON.parse(r.body) as Alert);
  assert.deepEqual(
    got.map((a) => a.key),
    [stuck[0]!.execution_id],
    `only the execution that never finished (${done[0]!.execution_id} finished in time, its finish waited in the backlog)`,
  );
  assert.ok(alert!.at - t0 >= 3_000);
  assert.deepEqual(await openExecutions(), [], 'both settled: one finished, one alerted');
});
