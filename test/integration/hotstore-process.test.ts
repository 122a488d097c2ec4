import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { buildExecution } from '../helpers/hotstore-fixtures.js';
import { httpGet, sample, startHotstoreChild, type HotstoreChild } from '../helpers/hotstore-child.js';
import { clickhouse, committedToEnd, createHotstoreDatabase, createHotstoreTopics, dropHotstoreTopics, hotstoreEnv, publish, storedEvents, waitFor } from '../helpers/hotstore-stack.js';

const client = clickhouse();
let database: string;
let names: { topic: string; dlq: string; group: string };
const children: HotstoreChild[] = [];
const PROCESSED = 'auditline_hotstore_records_total{outcome="processed"}';

before(async () => {
  database = await createHotstoreDatabase(client);
  names = await createHotstoreTopics('hs-process');
});

after(async () => {
  for (const c of children) if (c.process.exitCode === null) c.process.kill('SIGKILL');
  await dropHotstoreTopics(names, [names.group]);
  await client.command({ query: `DROP DATABASE IF EXISTS ${database}` });
  await client.close();
});

function start(extra: Record<string, string> = {}): HotstoreChild {
  const child = startHotstoreChild(hotstoreEnv(names, database, { AUDITLINE_HOTSTORE_FLUSH_MS: '100', ...extra }));
  children.push(child);
  return child;
}

async function ready(child: HotstoreChild): Promise<number> {
  const port = await child.port;
  await waitFor('/readyz 200', async () => (await httpGet(port, '/readyz')).status === 200);
  return port;
}

const messages = (child: HotstoreChild) => child.logs.map((l) => l.msg);

test('`auditline run hotstore` consumes, serves its endpoints, stops on SIGTERM with committed offsets, and a restart consumes nothing twice', { timeout: 45_000 }, async () => {
  const batch1 = [...buildExecution({ workflowId: 'WF-003', status: 'failed', startedAgoMs: 5_000, steps: [{ name: 'a', status: 'failed' }] }), ...buildExecution({ workflowId: 'WF-007', status: 'success', startedAgoMs: 5_000 })];
  await publish(names.topic, batch1);

  const first = start();
  const port = await ready(first);
  assert.deepEqual(JSON.parse((await httpGet(port, '/readyz')).body), { ready: true, checks: { kafka: { ok: true }, clickhouse: { ok: true } } });
  assert.equal((await httpGet(port, '/healthz')).status, 200);
  await waitFor('first batch stored', async () => (await storedEvents(client, database)) === batch1.length);
  const metrics = await waitFor('metrics counted', async () => {
    const text = (await httpGet(port, '/metrics')).body;
    return sample(text, PROCESSED) === batch1.length && text;
  });
  assert.equal(sample(metrics, 'auditline_hotstore_rows_written_total{table="events"}'), batch1.length);
  assert.equal(sample(metrics, 'auditline_hotstore_ready'), 1);
  assert.match(metrics, /^auditline_hotstore_process_cpu_seconds_total /m, 'default process metrics, prefixed');

  first.process.kill('SIGTERM');
  assert.equal(await first.exited, 0, first.stderr());
  assert.ok(messages(first).includes('shutdown requested: finishing the batch in flight'));
  assert.ok(messages(first).includes('service stopped'));
  assert.ok(await committedToEnd(names.group, names.topic), 'offsets committed up to the end');

  const second = start();
  const port2 = await ready(second);
  const batch2 = buildExecution({ workflowId: 'WF-003', status: 'success', startedAgoMs: 1_000, steps: [{ name: 'b', status: 'success' }] });
  await publish(names.topic, batch2);
  await waitFor('second batch stored', async () => (await storedEvents(client, database)) === batch1.length + batch2.length);
  await waitFor('second batch counted', async () => sample((await httpGet(port2, '/metrics')).body, PROCESSED) === batch2.length);
  // The restarted member consumed only the new records: the first batch's offsets were committed. Once it has
  // committed the topic to its end, every record it was going to handle has been handled and counted.
  await waitFor('the restarted member committed the topic to its end', () => committedToEnd(names.group, names.topic));
  assert.equal(sample((await httpGet(port2, '/metrics')).body, PROCESSED), batch2.length);

  second.process.kill('SIGTERM');
  assert.equal(await second.exited, 0, second.stderr());
  assert.ok(await committedToEnd(names.group, names.topic));
});

test('`auditline run hotstore` fails fast: an invalid setting names the variable (exit 2), a missing topic says to run setup (exit 1)', { timeout: 20_000 }, async () => {
  const badSetting = start({ AUDITLINE_HOTSTORE_BATCH_SIZE: 'lots' });
  assert.equal(await badSetting.exited, 2);
  assert.match(badSetting.stderr(), /CONFIG_INVALID: invalid setting AUDITLINE_HOTSTORE_BATCH_SIZE: /);

  const missingTopic = start({ AUDITLINE_HOTSTORE_TOPIC: `${names.topic}-missing` });
  assert.equal(await missingTopic.exited, 1);
  const failure = missingTopic.logs.find((l) => l.msg === 'service start failed');
  assert.equal(failure?.code, 'SERVICE_START_FAILED');
  assert.match(String(failure?.err), /does not exist .*run `npx auditline setup`/);
});
