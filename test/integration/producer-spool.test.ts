import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { isAuditlineError } from '../../core/errors.js';
import { createAuditProducer, type AuditReceipt } from '../../producers/index.js';
import { Registry } from 'prom-client';
import { parseRecords } from '../../producers/spool-format.js';
import { AuditEventCodec, RegistryClient } from '../../schemas/index.js';
import { connection, createTopic, deleteTopic, endpoints, readEvents, recordCount } from '../helpers/producer-kafka.js';
import { uniqueName } from '../helpers/names.js';
import { tempDir } from '../helpers/temp-dir.js';

const DEAD_BROKER = '127.0.0.1:1';
const segments = (dir: string): string[] => readdirSync(dir).filter((f) => /^\d+-.*\.spool$/.test(f));

test('Kafka unreachable: events are spooled durably; a new producer on the spool replays them in order, exactly once', { timeout: 20_000 }, async () => {
  const topic = uniqueName('it-producer-spool');
  await createTopic(topic);
  const spoolDir = tempDir('auditline-it-spool');
  const offline = createAuditProducer({ ...connection, brokers: [DEAD_BROKER], service: 'billing-worker', topic, spoolDir, sendTimeoutMs: 1_000, replayBackoffMs: 60_000, replayBackoffMaxMs: 60_000 });

  const receipts: AuditReceipt[] = [];
  const runs = await Promise.all([1, 2].map((n) => offline.startExecution({ workflowId: 'WF-003', trigger: 'api', triggeredBy: { kind: 'service', id: 'gateway' }, input: { n } })));
  receipts.push(...runs.map((r) => r.started));
  for (const run of runs) {
    await run.step('fetch', async () => ({ ok: true }));
    receipts.push(await run.recordStep({ name: 'charge', status: 'success', startTime: Date.now() - 5, endTime: Date.now() }));
    receipts.push(await run.decision({ condition: 'ok', taken: 'yes' }));
    receipts.push(await run.finish('success'));
  }
  assert.deepEqual([...new Set(receipts.map((r) => r.outcome))], ['spooled'], "ack 'broker' falls back to the spool when Kafka is down");

  // Every acknowledged event is already in the file, whole and checksummed, when its call resolved.
  const files = segments(spoolDir);
  assert.equal(files.length, 1);
  const onDisk = parseRecords(readFileSync(path.join(spoolDir, files[0]!)));
  assert.equal(onDisk.stop, undefined, 'no torn record');
  assert.equal(onDisk.records.length, 10);
  const codec = new AuditEventCodec(new RegistryClient(endpoints.registry), topic);
  const spooled = await Promise.all(onDisk.records.map((r) => codec.decode(r.record.value)));
  assert.deepEqual(onDisk.records.map((r) => r.record.key.toString()), spooled.map((e) => e.execution_id), 'key = execution id');
  for (const r of receipts) assert.ok(spooled.some((e) => e.event_id === r.eventId), `receipt ${r.eventId} is in the spool`);

  assert.deepEqual(await offline.close(), { spooledEvents: 10 }, 'close reports what is left');
  assert.deepEqual(segments(spoolDir), files, 'the spool outlives the producer');
  assert.equal(await recordCount(topic), 0);

  const online = createAuditProducer({ ...connection, service: 'billing-worker', topic, spoolDir });
  await online.ready();
  assert.deepEqual(await online.flush(), { spooledEvents: 0 });
  const later = await online.startExecution({ workflowId: 'WF-003', trigger: 'api', triggeredBy: { kind: 'service', id: 'gateway' } });
  assert.equal(later.started.outcome, 'delivered', 'direct again once the spool is empty');
  await online.close();
  assert.deepEqual(segments(spoolDir), [], 'spool removed after replay');

  const records = await readEvents(topic, 11);
  assert.equal(await recordCount(topic), 11, 'each spooled event exactly once, plus the new one');
  for (const run of runs) {
    const own = records.filter((r) => r.key === run.executionId).map((r) => r.event);
    assert.deepEqual(own.map((e) => e.sequence), [1, 2, 3, 4, 5], 'in order, no gaps');
    assert.deepEqual(own.map((e) => e.event_id), spooled.filter((e) => e.execution_id === run.executionId).map((e) => e.event_id), 'the very events that were spooled');
  }
  await deleteTopic(topic);
});

test("spooling disabled and fail closed: an event Kafka cannot take fails the workflow call with AUDIT_UNAVAILABLE", { timeout: 20_000 }, async () => {
  const topic = uniqueName('it-producer-closed');
  const strict = createAuditProducer({ ...connection, brokers: [DEAD_BROKER], service: 'billing-worker', topic, spoolDir: false, sendTimeoutMs: 500 });
  await assert.rejects(
    strict.startExecution({ workflowId: 'WF-003', trigger: 'api', triggeredBy: { kind: 'service', id: 'gateway' } }),
    (e) => (e as { code?: string; retriable?: boolean }).code === 'AUDIT_UNAVAILABLE' && (e as { retriable: boolean }).retriable === true,
  );
  await strict.close();

  const lenient = createAuditProducer({ ...connection, brokers: [DEAD_BROKER], service: 'billing-worker', topic, spoolDir: false, sendTimeoutMs: 500, onAuditFailure: 'continue' });
  const run = await lenient.startExecution({ workflowId: 'WF-003', trigger: 'api', triggeredBy: { kind: 'service', id: 'gateway' } });
  assert.equal(run.started.outcome, 'dropped');
  assert.equal(await run.step('work', () => 42), 42, 'the workflow goes on');
  assert.equal((await run.finish('success')).outcome, 'dropped');
  await lenient.close();
});

test('a producer that replays part of the spool and closes leaves only the rest: the next one sends no acknowledged event again', { timeout: 60_000 }, async () => {
  const topic = uniqueName('it-producer-spool-pos');
  await createTopic(topic);
  const spoolDir = tempDir('auditline-it-spool-pos');
  const offline = createAuditProducer({ ...connection, brokers: [DEAD_BROKER], service: 'billing-worker', topic, spoolDir, sendTimeoutMs: 500, replayBackoffMs: 60_000, replayBackoffMaxMs: 60_000, flushTimeoutMs: 0 });
  const run = await offline.startExecution({ workflowId: 'WF-003', trigger: 'api', triggeredBy: { kind: 'service', id: 'gateway' } });
  for (let i = 0; i < 199; i++) await run.recordStep({ name: `s${i}`, status: 'success', startTime: 1, endTime: 2 });
  assert.deepEqual(await offline.close(), { spooledEvents: 200 });

  // Replays in batches of 10 and closes part-way.
  const metrics = new Registry();
  const partial = createAuditProducer({ ...connection, service: 'billing-worker', topic, spoolDir, maxBatchEvents: 10, flushTimeoutMs: 0, metrics });
  await partial.ready();
  const replayed = async (): Promise<number> => Number((await metrics.getSingleMetricAsString('auditline_producer_delivered_events_total')).match(/path="replay"} (\d+)/)?.[1] ?? 0);
  while ((await replayed()) < 50) await new Promise((r) => setTimeout(r, 1));
  const left = (await partial.close()).spooledEvents;
  assert.ok(left > 0 && left < 200, `closed part-way (${left} left)`);
  assert.equal(await recordCount(topic), 200 - left, 'close() reports what is left once the replay stopped');

  const next = createAuditProducer({ ...connection, service: 'billing-worker', topic, spoolDir });
  await next.ready();
  assert.deepEqual(await next.flush(), { spooledEvents: 0 });
  await next.close();
  assert.equal(await recordCount(topic), 200, 'each event once: the acknowledged part was not replayed again');
  const events = (await readEvents(topic, 200)).map((r) => r.event.sequence);
  assert.deepEqual(events, Array.from({ length: 200 }, (_, i) => i + 1), 'in order');
  assert.deepEqual(readdirSync(spoolDir), [], 'no segment or position file left');
  await deleteTopic(topic);
});

test('auditline_producer_spooled_events on a shared registry: a closed producer takes its spooled events out, the one that claims them counts them', { timeout: 30_000 }, async () => {
  const topic = uniqueName('it-producer-spool-gauge');
  await createTopic(topic);
  const spoolDir = tempDir('auditline-it-spool-gauge');
  const metrics = new Registry();
  const gauge = async (): Promise<number | undefined> => (await metrics.getSingleMetric('auditline_producer_spooled_events')!.get()).values[0]?.value;
  const offline = createAuditProducer({ ...connection, brokers: [DEAD_BROKER], service: 'billing-worker', topic, spoolDir, metrics, sendTimeoutMs: 500, flushTimeoutMs: 0 });
  const run = await offline.startExecution({ workflowId: 'WF-003', trigger: 'api', triggeredBy: { kind: 'service', id: 'gateway' } });
  await run.finish('success');
  assert.equal(await gauge(), 2);
  assert.deepEqual(await offline.close(), { spooledEvents: 2 });
  assert.equal(await gauge(), 0, 'no longer this producer\'s: the spool files stay for the next one');

  const online = createAuditProducer({ ...connection, service: 'billing-worker', topic, spoolDir, metrics });
  await online.ready();
  assert.deepEqual(await online.flush(), { spooledEvents: 0 });
  assert.deepEqual(await online.close(), { spooledEvents: 0 });
  assert.equal(await gauge(), 0);
  assert.equal(await recordCount(topic), 2);
  await deleteTopic(topic);
});

test('a topic that does not exist: events are still spooled (nothing lost), but the cause is logged at error level and named in AUDIT_UNAVAILABLE', { timeout: 30_000 }, async () => {
  const topic = uniqueName('it-producer-no-topic'); // never created
  const errors: { o: Record<string, unknown>; msg: string }[] = [];
  const logger = { debug() {}, info() {}, warn() {}, error: (o: Record<string, unknown>, msg: string) => void errors.push({ o, msg }) };
  const strict = createAuditProducer({ ...connection, service: 'billing-worker', topic, spoolDir: false, sendTimeoutMs: 3_000, logger });
  await assert.rejects(strict.startExecution({ workflowId: 'WF-003', trigger: 'api', triggeredBy: { kind: 'service', id: 'gateway' } }), (e) => {
    assert.ok(isAuditlineError(e, 'AUDIT_UNAVAILABLE'));
    assert.match(e.message, /Kafka is unavailable \(UNKNOWN_TOPIC_OR_PARTITION\)/);
    return true;
  });
  await strict.close();
  assert.ok(errors.some((e) => e.o.kafkaError === 'UNKNOWN_TOPIC_OR_PARTITION' && e.o.topic === topic && /topic does not exist/.test(e.msg)), JSON.stringify(errors));

  errors.length = 0;
  const spooling = createAuditProducer({ ...connection, service: 'billing-worker', topic, spoolDir: tempDir('auditline-it-no-topic'), sendTimeoutMs: 3_000, flushTimeoutMs: 0, logger });
  const run = await spooling.startExecution({ workflowId: 'WF-003', trigger: 'api', triggeredBy: { kind: 'service', id: 'gateway' } });
  assert.equal(run.started.outcome, 'spooled', 'kept for when the topic exists');
  assert.deepEqual(await spooling.close(), { spooledEvents: 1 });
  assert.ok(errors.some((e) => e.o.kafkaError === 'UNKNOWN_TOPIC_OR_PARTITION'), JSON.stringify(errors));
});
