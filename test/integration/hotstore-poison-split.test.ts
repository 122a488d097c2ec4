import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { createLogger } from '../../core/logger.js';
import { loadHotstoreConfig } from '../../consumers/hotstore/config.js';
import { HotstoreService } from '../../consumers/hotstore/service.js';
import { payloadOf, unwrapPayload, type AuditEvent, type ExecutionStarted } from '../../schemas/index.js';
import { buildExecution } from '../helpers/hotstore-fixtures.js';
import { ClickHouseProxy } from '../helpers/hotstore-proxy.js';
import { clickhouse, committedToEnd, createHotstoreDatabase, createHotstoreTopics, dropHotstoreTopics, endpoints, groupOffsets, hotstoreEnv, publish, readDlq, storedEvents, waitFor } from '../helpers/hotstore-stack.js';

const client = clickhouse();
let database: string;
let names: { topic: string; dlq: string; group: string };
let proxy: ClickHouseProxy;
const services: HotstoreService[] = [];

before(async () => {
  database = await createHotstoreDatabase(client);
  names = await createHotstoreTopics('hs-split', 1);
  const target = new URL(endpoints.clickhouse.url);
  // Each chunk sent to ClickHouse waits 150 ms: an insert takes a few hundred ms, as on a loaded server.
  proxy = new ClickHouseProxy({ host: target.hostname, port: Number(target.port || 8123) }, 150);
});

after(async () => {
  for (const s of services) await s.stop().catch(() => undefined);
  await proxy.close();
  await dropHotstoreTopics(names, [names.group]);
  await client.command({ query: `DROP DATABASE IF EXISTS ${database}` });
  await client.close();
});

async function counter(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const metric = await registry.getSingleMetric(name)?.get();
  return (metric?.values ?? []).filter((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l)).reduce((sum, v) => sum + v.value, 0);
}

/** An ExecutionStarted a producer can write (Avro long) that ClickHouse refuses: a negative size in a UInt64 column (CANNOT_PARSE_NUMBER). */
function poison(): AuditEvent {
  const [started] = buildExecution({ workflowId: 'WF-SPLIT', status: 'running', startedAgoMs: 1_000 });
  const value = unwrapPayload(started!.payload).value as ExecutionStarted;
  return { ...started!, payload: payloadOf('ExecutionStarted', { ...value, input_truncation: { original_size_bytes: -1, sha256: '0'.repeat(64) } }) };
}

test('isolating many refused rows takes longer than the session timeout: the member stays in its group, every poison record is dead-lettered once and the batch is committed', { timeout: 120_000 }, async () => {
  const url = await proxy.start();
  const good = buildExecution({ workflowId: 'WF-SPLIT', status: 'success', startedAgoMs: 2_000, steps: [{ name: 'a', status: 'success' }] });
  const poisons = Array.from({ length: 32 }, poison);
  // One batch: the good events around the poison ones.
  await publish(names.topic, [...good.slice(0, 2), ...poisons, ...good.slice(2)]);

  const config = loadHotstoreConfig({
    ...process.env,
    AUDITLINE_CLICKHOUSE_URL: url,
    ...hotstoreEnv(names, database, {
      AUDITLINE_HOTSTORE_FLUSH_MS: '100',
      AUDITLINE_HOTSTORE_SESSION_TIMEOUT_MS: '6000',
      AUDITLINE_HOTSTORE_INSERT_TIMEOUT_MS: '5000',
      AUDITLINE_HOTSTORE_RETRY_INITIAL_MS: '100',
      AUDITLINE_HOTSTORE_RETRY_MAX_MS: '1000',
    }),
  });
  const registry = new Registry();
  const service = new HotstoreService(config, { logger: createLogger('hotstore-test', process.env.HS_DEBUG ? 'debug' : 'silent'), registry });
  services.push(service);
  await service.start(new AbortController().signal);
  proxy.set('slow');

  const began = Date.now();
  await waitFor('the batch committed', () => committedToEnd(names.group, names.topic), 75_000).catch(async (err: unknown) => {
    const { committed } = await groupOffsets(names.group, names.topic);
    const letters = await counter(registry, 'auditline_hotstore_dead_letters_total');
    throw new Error(`${String(err)}; committed ${JSON.stringify(committed)}, ${letters} dead letters published for ${poisons.length} poison records`);
  });
  assert.ok(Date.now() - began > 6_000, `the isolation took longer than the session timeout (${Date.now() - began} ms)`);
  assert.equal(await storedEvents(client, database), good.length, 'the good events are stored');
  assert.equal(await counter(registry, 'auditline_hotstore_dead_letters_total'), poisons.length, 'each poison record dead-lettered once (no batch handled twice)');
  const letters = await readDlq(names.dlq, poisons.length);
  assert.deepEqual(new Set(letters.map((l) => l.headers['auditline-dlq-error-code'])), new Set(['ROW_REJECTED']));
  for (const l of letters) assert.match(l.headers['auditline-dlq-reason']!, /CANNOT_PARSE_NUMBER/);
  await service.stop();
});
