import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { parse } from 'yaml';
import { parseRules } from '../../consumers/alerts/index.js';
import { RuleStage } from '../../consumers/alerts/rule-stage.js';
import type { Signal } from '../../consumers/alerts/signals.js';
import { createKafka } from '../../core/clients/kafka.js';
import { loadEndpoints } from '../../core/endpoints.js';
import { createLogger } from '../../core/logger.js';
import type { SourceRecord } from '../../core/service/index.js';
import { createSignalStageHandler } from '../../consumers/alerts/signal-stage.js';
import { PiiDetector } from '../../consumers/alerts/pii.js';
import type { AuditEvent } from '../../schemas/index.js';
import { finished } from '../helpers/alerts-fixtures.js';
import { createTestTopics } from '../helpers/kafka.js';
import { uniqueName } from '../helpers/names.js';

const kafka = createKafka(loadEndpoints().kafka);
const outboxTopic = uniqueName('it-alerts-outbox-size');
const signalsTopic = `${outboxTopic}.signals`;
const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });

before(async () => {
  // One partition with the broker's default record limit (1 MiB), as `setup` creates audit.alerts.outbox.
  await createTestTopics(kafka, [{ name: outboxTopic, partitions: 1 }, { name: signalsTopic, partitions: 1 }]);
  await producer.connect();
});

after(async () => {
  await producer.disconnect();
  const admin = kafka.admin();
  await admin.connect();
  await admin.deleteTopics({ topics: [outboxTopic, signalsTopic] }).catch(() => undefined);
  await admin.disconnect();
});

async function outboxCount(topic = outboxTopic): Promise<number> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    return (await admin.fetchTopicOffsets(topic)).reduce((n, p) => n + Number(p.high) - Number(p.low), 0);
  } finally {
    await admin.disconnect();
  }
}

test('a tick that fires more alerts than one produce request holds (thousands of executions past their deadline after an outage) writes them all to the outbox', { timeout: 60_000 }, async () => {
  const rules = parseRules(parse('rules:\n  - { name: execution-not-finished, kind: absence, severity: high, channels: [compliance], start: { event: ExecutionStarted }, end: { event: ExecutionFinished }, within: 1h }'), 'test');
  let now = Date.now();
  const saved: string[] = [];
  const failures: string[] = [];
  const logger = createLogger('alerts-outbox-size-test', 'silent');
  const stage = new RuleStage({
    rules,
    store: {
      loadState: async () => ({ checkpoint: { nextOffset: '0', version: 0 }, entries: [] }),
      saveState: async (_p, _changes, checkpoint) => void saved.push(checkpoint.nextOffset),
      recordFired: async () => undefined,
    },
    producer,
    dlq: { publish: async () => undefined },
    outboxTopic,
    idleTtlMs: 72 * 3_600_000,
    logger: Object.assign(Object.create(logger) as typeof logger, { warn: (o: { err?: string }) => void failures.push(String(o.err)) }),
    now: () => now,
  });
  stage.assign([0]);
  // 2 000 executions started (one signal partition) and none finished: the workflow engine went down with them.
  const started = now - 2 * 3_600_000;
  const count = 2_000;
  const records: SourceRecord[] = Array.from({ length: count }, (_, i) => {
    const execution = randomUUID();
    const signal: Signal = { rule: 'execution-not-finished', key: execution, role: 'start', event_id: randomUUID(), execution_id: execution, workflow_id: 'WF-003', event_time: started, sequence: 1, pii: false, final: false, published_ms: started };
    return { topic: 'signals', partition: 0, offset: String(i), key: Buffer.from(execution), value: Buffer.from(JSON.stringify(signal)), headers: {}, timestamp: String(started) };
  });
  for (let i = 0; i < records.length; i += 1_000) await stage.handler()(records.slice(i, i + 1_000), { signal: new AbortController().signal });
  assert.deepEqual(saved, ['1000', '2000']);

  // The timers' clock passes every deadline at once: each tick retries the partition's alerts until they are written.
  for (let tick = 0; tick < 3 && (await outboxCount()) < count; tick++) {
    now += 1_000;
    await stage.tick();
  }
  assert.equal(await outboxCount(), count, `every alert in the outbox (tick failures: ${[...new Set(failures)].join('; ')})`);
  assert.equal(saved.length, 3, 'the state that fired them stored once');
});

test('stage 1: a batch whose signals of one key pass the broker\'s request limit (long keys: a 400-character workflow id) is written, not refused on every retry', { timeout: 60_000 }, async () => {
  const rules = parseRules(parse('rules:\n  - { name: wf-silent, kind: absence, severity: warning, channels: [c], key: workflow_id, within: 6h }\n  - { name: wf-failures, kind: threshold, severity: high, channels: [c], where: { event: ExecutionFinished, status: failed }, key: workflow_id, count: 5, window: 10m }'), 'test');
  const workflowId = `WF-${'x'.repeat(400)}`;
  const events = Array.from({ length: 1_000 }, () => finished('failed', { workflowId }));
  const byValue = new Map<string, AuditEvent>();
  const records: SourceRecord[] = events.map((e, i) => {
    byValue.set(e.event_id, e);
    return { topic: 'audit.events', partition: 0, offset: String(i), key: Buffer.from(e.execution_id), value: Buffer.from(e.event_id), headers: {}, timestamp: String(Date.now()) };
  });
  const handler = createSignalStageHandler({ codec: { decode: async (b) => byValue.get(b.toString())! }, rules, detector: new PiiDetector(), producer, signalsTopic });
  let error: unknown;
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await handler(records, { signal: new AbortController().signal });
      error = undefined;
      break;
    } catch (err) {
      error = err;
    }
  }
  assert.equal(error, undefined, `the batch is written (last error: ${String((error as Error | undefined)?.message)})`);
  assert.equal(await outboxCount(signalsTopic), 2_000, 'two signals per event, one per rule');
});

test('stage 1: an event whose signal or alert would pass the record limit (a 400 KB or 300 KB workflow id) is dead-lettered with its reason; the rest of the batch is signalled', { timeout: 60_000 }, async () => {
  const topic = uniqueName('it-alerts-signal-huge');
  await createTestTopics(kafka, [{ name: topic, partitions: 1 }]);
  try {
    const rules = parseRules(parse('rules:\n  - { name: wf-failures, kind: threshold, severity: high, channels: [c], where: { event: ExecutionFinished, status: failed }, key: workflow_id, count: 5, window: 10m }\n  - { name: failed, kind: match, severity: high, channels: [c], where: { event: ExecutionFinished, status: failed } }'), 'test');
    // Also a 300 KB one: a signal keyed by execution carries the workflow id once (fits a record), but the alert made
    // of it carries it about three times (above the broker's 1 MiB, refused on every tick of stage 2).
    const events = [finished('failed', { workflowId: 'WF-1' }), finished('failed', { workflowId: `WF-${'x'.repeat(400_000)}` }), finished('failed', { workflowId: 'WF-2' }), finished('failed', { workflowId: `WF-${'y'.repeat(300_000)}` })];
    const byValue = new Map(events.map((e) => [e.event_id, e]));
    const records: SourceRecord[] = events.map((e, i) => ({ topic: 'audit.events', partition: 0, offset: String(i), key: Buffer.from(e.execution_id), value: Buffer.from(e.event_id), headers: {}, timestamp: String(Date.now()) }));
    const handler = createSignalStageHandler({ codec: { decode: async (b) => byValue.get(b.toString())! }, rules, detector: new PiiDetector(), producer, signalsTopic: topic });
    const { deadLetters } = await handler(records, { signal: new AbortController().signal });
    assert.deepEqual(deadLetters.map((l) => [l.record.offset, l.code]), [['1', 'ALERT_SIGNAL_TOO_LARGE'], ['3', 'ALERT_SIGNAL_TOO_LARGE']], 'the events with the huge workflow ids, and only they, are dead-lettered');
    assert.match(deadLetters[0]!.reason, new RegExp(`event ${events[1]!.event_id} .* bytes, above the \\d+`));
    assert.equal(await outboxCount(topic), 4, 'the two other events are signalled, once per rule');
  } finally {
    const admin = kafka.admin();
    await admin.connect();
    await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
    await admin.disconnect();
  }
});
