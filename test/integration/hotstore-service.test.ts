import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { createLogger } from '../../core/logger.js';
import { loadHotstoreConfig } from '../../consumers/hotstore/config.js';
import { decisionPath, executionInputs, failedExecutions } from '../../consumers/hotstore/queries.js';
import { HotstoreService } from '../../consumers/hotstore/service.js';
import { AuditEventCodec, RegistryClient, frame } from '../../schemas/index.js';
import { buildExecution, idOf } from '../helpers/hotstore-fixtures.js';
import { readHistogram } from '../helpers/metrics.js';
import { clickhouse, committedToEnd, createHotstoreDatabase, createHotstoreTopics, dropHotstoreTopics, endpoints, hotstoreEnv, kafka, publish, readDlq, storedEvents, waitFor } from '../helpers/hotstore-stack.js';

const client = clickhouse();
let database: string;
let names: { topic: string; dlq: string; group: string };
const running: HotstoreService[] = [];
/** How long an unknown schema id is retried before its record is dead-lettered (60 s by default). */
const UNKNOWN_SCHEMA_RETRY_MS = 1_500;

before(async () => {
  database = await createHotstoreDatabase(client);
  names = await createHotstoreTopics('hs-service');
});

after(async () => {
  for (const s of running) await s.stop().catch(() => undefined);
  await dropHotstoreTopics(names, [names.group]);
  await client.command({ query: `DROP DATABASE IF EXISTS ${database}` });
  await client.close();
});

async function startService(): Promise<{ service: HotstoreService; registry: Registry }> {
  const config = loadHotstoreConfig({ ...process.env, ...hotstoreEnv(names, database, { AUDITLINE_HOTSTORE_FLUSH_MS: '100', AUDITLINE_HOTSTORE_RETRY_INITIAL_MS: '100', AUDITLINE_HOTSTORE_RETRY_MAX_MS: '500', AUDITLINE_HOTSTORE_UNKNOWN_SCHEMA_RETRY_MS: String(UNKNOWN_SCHEMA_RETRY_MS) }) });
  const registry = new Registry();
  const service = new HotstoreService(config, { logger: createLogger('hotstore-test', 'silent'), registry });
  running.push(service);
  await service.start(new AbortController().signal);
  return { service, registry };
}

async function recordsTotal(registry: Registry, outcome: 'processed' | 'dead_lettered'): Promise<number> {
  const metric = await registry.getSingleMetric('auditline_hotstore_records_total')!.get();
  return metric.values.find((v) => v.labels.outcome === outcome)?.value ?? 0;
}

const X1 = buildExecution({
  workflowId: 'WF-003',
  status: 'failed',
  startedAgoMs: 60_000,
  steps: [{ name: 'validate', status: 'success' }, { name: 'charge', status: 'failed' }],
  decisions: [{ step: 1, condition: 'amount > 10000', taken: 'manual-approval', reason: 'large amount' }],
});
const X2 = buildExecution({ workflowId: 'WF-003', status: 'success', startedAgoMs: 30_000, steps: [{ name: 'validate', status: 'success' }] });
const GOOD = X1.length + X2.length;
const garbage = Buffer.from('not avro at all');
// Same key as X1: on X1's partition, in the same fetched batch as its good records.
const outOfRange = { ...X2[0]!, event_id: '11111111-1111-4111-8111-111111111111', execution_id: idOf(X1), event_time: Date.UTC(2400, 0, 1) };
const unknownSchema = frame(987_654_321, Buffer.from([2, 4, 6]));
const untokenized = { ...X2[0]!, event_id: '22222222-2222-4222-8222-222222222222', execution_id: idOf(X1) };
const storedEventIds = async () => (await (await client.query({ query: `SELECT event_id FROM ${database}.events`, format: 'JSONEachRow' })).json<{ event_id: string }>()).map((r) => r.event_id);

async function snapshot() {
  return {
    failed: (await failedExecutions(client, database, { workflowId: 'WF-003', sinceSeconds: 3600, limit: 100 })).map((r) => r.execution_id),
    inputs: (await executionInputs(client, database, idOf(X1))).map((r) => [r.source, r.step_id, r.attempt, r.input]),
    decisions: (await decisionPath(client, database, idOf(X1))).map((r) => [r.step_id, r.branch_taken]),
    stored: await storedEvents(client, database),
  };
}

test('the service stores a batch, dead-letters its poison records with reasons, and redelivery or an offset reset duplicates nothing', { timeout: 45_000 }, async () => {
  const first = await startService();
  const publishedAt = Date.now();
  await publish(names.topic, [...X1.slice(0, 2), { key: idOf(X1), raw: garbage }, outOfRange, ...X1.slice(2), { key: idOf(X1), raw: unknownSchema }]);
  // A good event without the tokenizer's header (a producer pointed at the events topic): refused, never stored.
  await publish(names.topic, [untokenized], { origin: 'test' });
  await publish(names.topic, X2);

  await waitFor('good events stored', async () => (await storedEvents(client, database)) === GOOD);
  const letters = await readDlq(names.dlq, 4);
  await waitFor('metrics', async () => (await recordsTotal(first.registry, 'processed')) === GOOD && (await recordsTotal(first.registry, 'dead_lettered')) === 4);
  // Freshness (publish -> stored): one observation per settled record, each at most the time since the publish began.
  const freshness = await readHistogram(first.registry, 'auditline_hotstore_freshness_seconds');
  assert.equal(freshness.count, GOOD + 4);
  assert.ok(freshness.sum > 0 && freshness.sum <= (freshness.count * (Date.now() - publishedAt)) / 1000, `freshness sum ${freshness.sum} s`);

  const partition = (await (await client.query({ query: `SELECT DISTINCT source_partition AS p FROM ${database}.events WHERE execution_id = {id:String}`, query_params: { id: idOf(X1) }, format: 'JSONEachRow' })).json<{ p: number }>())[0]!.p;
  const byCode = Object.fromEntries(letters.map((l) => [l.headers['auditline-dlq-error-code'], l]));
  assert.deepEqual(Object.keys(byCode).sort(), ['NOT_TOKENIZED', 'ROW_REJECTED', 'SCHEMA_NOT_FOUND', 'WIRE_FORMAT_INVALID']);
  assert.match(byCode.NOT_TOKENIZED!.headers['auditline-dlq-reason']!, /no auditline-tokenized header/);
  assert.equal((await storedEventIds()).includes(untokenized.event_id), false, 'the untokenized event is not in the store');
  for (const letter of letters) {
    assert.equal(letter.key, idOf(X1), 'original key');
    assert.equal(letter.headers['auditline-dlq-source-topic'], names.topic);
    assert.equal(letter.headers['auditline-dlq-source-partition'], String(partition));
    assert.match(letter.headers['auditline-dlq-source-offset']!, /^\d+$/);
    assert.equal(letter.headers['auditline-dlq-service'], 'hotstore');
    assert.equal(letter.headers.origin, 'test', 'original headers kept');
  }
  assert.deepEqual(byCode.WIRE_FORMAT_INVALID!.value, garbage, 'original value byte for byte');
  assert.match(byCode.WIRE_FORMAT_INVALID!.headers['auditline-dlq-reason']!, /not in the Confluent wire format/);
  assert.deepEqual(byCode.SCHEMA_NOT_FOUND!.value, unknownSchema);
  // Retried for the unknown-schema window first (the registry may not know it yet), then dead-lettered with its reason.
  assert.match(byCode.SCHEMA_NOT_FOUND!.headers['auditline-dlq-reason']!, /schema id 987654321 in the record header is not registered in the schema registry \(still unknown \d+ ms after its first lookup\)/);
  assert.ok(Date.parse(byCode.SCHEMA_NOT_FOUND!.headers['auditline-dlq-time']!) - publishedAt >= UNKNOWN_SCHEMA_RETRY_MS, 'dead-lettered only after the window');
  assert.match(byCode.ROW_REJECTED!.headers['auditline-dlq-reason']!, /event 11111111-1111-4111-8111-111111111111: event_time is outside the storable time range/);
  const codec = new AuditEventCodec(new RegistryClient(endpoints.registry), names.topic);
  assert.equal((await codec.decode(byCode.ROW_REJECTED!.value)).event_id, outOfRange.event_id);
  for (const l of letters) assert.doesNotMatch(l.headers['auditline-dlq-reason']!, /tok_|12000|not avro at all/, 'reasons carry no payload values');

  const expected = await snapshot();
  assert.deepEqual(expected.failed, [idOf(X1)]);
  assert.equal(expected.inputs.length, 3);
  assert.deepEqual(expected.decisions, [[1, 'manual-approval']]);
  assert.equal(expected.stored, GOOD);

  // Redelivery: the producer sends the same events again (same event ids, new offsets).
  await publish(names.topic, [...X1, ...X2]);
  await waitFor('redelivered events consumed', async () => (await recordsTotal(first.registry, 'processed')) === 2 * GOOD);
  assert.deepEqual(await snapshot(), expected);

  // Offset reset: everything is read and written again.
  await first.service.stop();
  const admin = kafka.admin();
  await admin.connect();
  await admin.resetOffsets({ groupId: names.group, topic: names.topic, earliest: true });
  await admin.disconnect();
  const second = await startService();
  await waitFor('topic consumed again', async () => (await recordsTotal(second.registry, 'processed')) === 2 * GOOD && (await recordsTotal(second.registry, 'dead_lettered')) === 4);
  assert.deepEqual(await snapshot(), expected);
  await waitFor('offsets committed to the end', () => committedToEnd(names.group, names.topic));
  await second.service.stop();
});
