import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { createLogger } from '../../core/logger.js';
import { loadHotstoreConfig } from '../../consumers/hotstore/config.js';
import { HotstoreService } from '../../consumers/hotstore/service.js';
import { buildExecution } from '../helpers/hotstore-fixtures.js';
import { ClickHouseProxy } from '../helpers/hotstore-proxy.js';
import { clickhouse, committedToEnd, createHotstoreDatabase, createHotstoreTopics, dropHotstoreTopics, endpoints, groupOffsets, hotstoreEnv, publish, storedEvents, waitFor } from '../helpers/hotstore-stack.js';

const client = clickhouse();
let database: string;
const topics: { topic: string; dlq: string; group: string }[] = [];
const services: HotstoreService[] = [];
const proxies: ClickHouseProxy[] = [];

before(async () => {
  database = await createHotstoreDatabase(client);
});

after(async () => {
  for (const s of services) await s.stop().catch(() => undefined);
  for (const p of proxies) await p.close();
  for (const t of topics) await dropHotstoreTopics(t, [t.group]);
  await client.command({ query: `DROP DATABASE IF EXISTS ${database}` });
  await client.close();
});

async function setup(prefix: string): Promise<{ names: { topic: string; dlq: string; group: string }; proxy: ClickHouseProxy; url: string }> {
  const names = await createHotstoreTopics(prefix, 1);
  topics.push(names);
  const target = new URL(endpoints.clickhouse.url);
  const proxy = new ClickHouseProxy({ host: target.hostname, port: Number(target.port || 8123) });
  proxies.push(proxy);
  return { names, proxy, url: await proxy.start() };
}

async function startService(names: { topic: string; dlq: string; group: string }, clickhouseUrl: string, extra: Record<string, string> = {}) {
  const config = loadHotstoreConfig({
    ...process.env,
    AUDITLINE_CLICKHOUSE_URL: clickhouseUrl,
    ...hotstoreEnv(names, database, { AUDITLINE_HOTSTORE_FLUSH_MS: '100', AUDITLINE_HOTSTORE_RETRY_INITIAL_MS: '100', AUDITLINE_HOTSTORE_RETRY_MAX_MS: '400', ...extra }),
  });
  const registry = new Registry();
  const service = new HotstoreService(config, { logger: createLogger('hotstore-test', process.env.HS_DEBUG ? 'debug' : 'silent'), registry });
  services.push(service);
  await service.start(new AbortController().signal);
  return { service, registry };
}

async function counter(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const metric = await registry.getSingleMetric(name)?.get();
  return (metric?.values ?? []).filter((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l)).reduce((sum, v) => sum + v.value, 0);
}

test('ClickHouse down: the batch is retried with backoff, nothing is committed or dead-lettered, and everything lands once it is back', { timeout: 30_000 }, async () => {
  const { names, proxy, url } = await setup('hs-down');
  const { service, registry } = await startService(names, url);
  proxy.set('down');
  const events = buildExecution({ workflowId: 'WF-DOWN', status: 'failed', startedAgoMs: 1_000, steps: [{ name: 'a', status: 'failed' }] });
  const before = await storedEvents(client, database);
  await publish(names.topic, events);

  await waitFor('several retries', async () => (await counter(registry, 'auditline_hotstore_retries_total', { stage: 'handle' })) >= 3);
  assert.equal(await counter(registry, 'auditline_hotstore_records_total'), 0, 'nothing settled');
  assert.equal(await counter(registry, 'auditline_hotstore_dead_letters_total'), 0, 'an outage never dead-letters');
  const { committed } = await groupOffsets(names.group, names.topic);
  assert.ok((committed[0] ?? -1) < 0, `no offset committed while ClickHouse is down (${committed[0]})`);
  assert.equal((await service.readiness()).checks.clickhouse?.ok, false, '/readyz reports ClickHouse');

  proxy.set('up');
  await waitFor('stored after recovery', async () => (await storedEvents(client, database)) === before + events.length);
  await waitFor('committed after recovery', () => committedToEnd(names.group, names.topic));
  assert.equal(await counter(registry, 'auditline_hotstore_records_total', { outcome: 'processed' }), events.length);
  assert.equal(await counter(registry, 'auditline_hotstore_insert_errors_total', { kind: 'retriable' }) >= 3, true);
  await service.stop();
});

test('stop during an insert: the batch in flight is finished and committed, the rest stays for the next member', { timeout: 30_000 }, async () => {
  const { names, proxy, url } = await setup('hs-inflight');
  // Three executions of 4 events on one partition (the topic has one), handled 4 records at a time.
  const events = [1, 2, 3].flatMap(() =>
    buildExecution({
      workflowId: 'WF-STOP',
      status: 'success',
      startedAgoMs: 1_000,
      steps: [{ name: 'a', status: 'success' }],
      decisions: [{ step: 1, condition: 'x', taken: 'y', reason: 'z' }],
    }),
  );
  assert.equal(events.length, 12);
  await publish(names.topic, events);
  const before = await storedEvents(client, database);
  const { service, registry } = await startService(names, url, { AUDITLINE_HOTSTORE_BATCH_SIZE: '4' });
  proxy.set('slow');
  await waitFor('first insert of the first batch acknowledged', async () => (await counter(registry, 'auditline_hotstore_rows_written_total')) > 0);
  await service.stop();
  // The batch was mid-insert when stop() was called: finished and committed by the time stop() returns means stop waited for it.
  assert.equal(await counter(registry, 'auditline_hotstore_records_total', { outcome: 'processed' }), 4, 'exactly the batch in flight was finished');
  const { committed } = await groupOffsets(names.group, names.topic);
  assert.equal(committed[0], 4, 'committed up to the end of the finished batch, not beyond');
  assert.equal(await storedEvents(client, database), before + 4);

  proxy.set('up');
  const next = await startService(names, url, { AUDITLINE_HOTSTORE_BATCH_SIZE: '4' });
  await waitFor('the rest consumed by the next member', async () => (await storedEvents(client, database)) === before + events.length);
  await waitFor('committed to the end', () => committedToEnd(names.group, names.topic));
  assert.equal(await counter(next.registry, 'auditline_hotstore_records_total', { outcome: 'processed' }), events.length - 4, 'only what was not committed');
  await next.service.stop();
});
