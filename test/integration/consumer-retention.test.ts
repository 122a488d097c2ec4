import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { createKafka } from '../../core/clients/kafka.js';
import { loadEndpoints } from '../../core/endpoints.js';
import { BatchConsumer, ConsumerMetrics, DlqPublisher, loadServiceRuntimeSettings } from '../../core/service/index.js';
import { HOTSTORE_DEFAULTS } from '../../consumers/hotstore/config.js';
import { createTestTopics } from '../helpers/kafka.js';
import { uniqueName } from '../helpers/names.js';
import { waitFor } from '../helpers/hotstore-stack.js';
import { metricTotal } from '../../bench/stats.js';

const kafka = createKafka(loadEndpoints().kafka);
const topic = uniqueName('it-retention');
const dlq = `${topic}.dlq`;
const group = `${topic}-group`;
const admin = kafka.admin();

after(async () => {
  await admin.deleteTopics({ topics: [topic, dlq] }).catch(() => undefined);
  await admin.deleteGroups([group]).catch(() => undefined);
  await admin.disconnect();
});

test('a consumer that starts behind the earliest offset (retention deleted what it had not read) reports how many records it lost, then reads what is left', { timeout: 60_000 }, async () => {
  await createTestTopics(kafka, [{ name: topic, partitions: 1 }, { name: dlq, partitions: 1 }]);
  await admin.connect();
  const producer = kafka.producer();
  await producer.connect();
  await producer.send({ topic, acks: -1, messages: Array.from({ length: 10 }, (_, i) => ({ key: 'k', value: `record-${i}` })) });
  await producer.disconnect();
  // The group read offsets 0-1 before it went down; then retention deleted offsets 0-6 (deleteTopicRecords moves the log start as retention does).
  await admin.setOffsets({ groupId: group, topic, partitions: [{ partition: 0, offset: '2' }] });
  await admin.deleteTopicRecords({ topic, partitions: [{ partition: 0, offset: '7' }] });

  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level: 'warn' }, new Writable({ write: (chunk: Buffer, _enc, done) => done(void lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>)) }));
  const registry = new Registry();
  const seen: string[] = [];
  const settings = { ...loadServiceRuntimeSettings('hotstore', HOTSTORE_DEFAULTS, {}), groupId: group, sourceTopic: topic, dlqTopic: dlq, flushMs: 50 };
  const consumer = new BatchConsumer({
    kafka,
    settings,
    handler: async (records) => {
      seen.push(...records.map((r) => r.offset));
      return { deadLetters: [] };
    },
    dlq: new DlqPublisher(kafka, { topic: dlq, service: 'retention-test' }),
    metrics: new ConsumerMetrics(registry, 'retention_test'),
    logger,
  });
  await consumer.start();
  try {
    await waitFor('the records left are read', async () => seen.length >= 3);
    assert.deepEqual(seen, ['7', '8', '9'], 'kafkajs resumes at the earliest record still there');
    assert.equal(await metricTotal(registry, 'auditline_retention_test_records_expired_unread_total'), 5, 'offsets 2-6 were never read');
    const error = lines.find((l) => /deleted by the topic retention/.test(String(l.msg)));
    assert.ok(error, `an error names the loss: ${JSON.stringify(lines)}`);
    assert.deepEqual([error.level, error.partition, error.committedOffset, error.earliestOffset, error.records], [50, 0, '2', '7', 5]);
  } finally {
    await consumer.stop();
  }
});
