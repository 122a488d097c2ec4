import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createKafka } from '../../core/clients/kafka.js';
import { loadEndpoints } from '../../core/endpoints.js';
import { StageProgressReader } from '../../consumers/alerts/progress.js';
import { Registry } from 'prom-client';
import { createLogger } from '../../core/logger.js';
import { BatchConsumer, ConsumerMetrics, DlqPublisher, loadServiceRuntimeSettings } from '../../core/service/index.js';
import { ALERTS_DEFAULTS } from '../../consumers/alerts/index.js';
import { createTestTopics } from '../helpers/kafka.js';
import { waitFor } from '../helpers/hotstore-stack.js';
import { uniqueName } from '../helpers/names.js';

const kafka = createKafka(loadEndpoints().kafka);
const admin = kafka.admin();
const source = uniqueName('it-progress-events');
const signals = uniqueName('it-progress-signals');
const group = uniqueName('it-progress-group');
const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });

before(async () => {
  await admin.connect();
  await createTestTopics(kafka, [
    { name: source, partitions: 2 },
    { name: signals, partitions: 2 },
  ]);
  await producer.connect();
  await producer.send({ topic: source, acks: -1, messages: [0, 1, 2].map((i) => ({ partition: 0, value: `e-${i}` })) });
  await producer.send({ topic: source, acks: -1, messages: [{ partition: 1, value: 'e-3' }] });
  await producer.send({ topic: signals, acks: -1, messages: [{ partition: 0, value: 's0' }, { partition: 0, value: 's1' }] });
});
after(async () => {
  await producer.disconnect();
  await admin.deleteTopics({ topics: [source, signals] }).catch(() => undefined);
  await admin.deleteGroups([group]).catch(() => undefined);
  await admin.disconnect();
});

const reader = (fromBeginning: boolean) => new StageProgressReader(admin, { sourceTopic: source, signalGroup: group, fromBeginning, signalsTopic: signals });
const commit = (p0: string, p1: string) => admin.setOffsets({ groupId: group, topic: source, partitions: [{ partition: 0, offset: p0 }, { partition: 1, offset: p1 }] });

test('stage progress from the broker: the source is read as of the latest moment whose end offsets the signal stage has committed; signals end offsets by partition', async () => {
  const t0 = Date.now();
  const r = reader(true);
  const first = await r.read(t0);
  assert.equal(first.sourceAsOf, undefined, 'a group without offsets that starts at the first record has the whole topic to read');
  assert.deepEqual([...first.signalsEnd].sort(), [[0, 2n], [1, 0n]]);
  assert.equal((await reader(false).read(t0)).sourceAsOf, t0, 'a group without offsets that starts at the end has nothing old to read');

  await commit('2', '1');
  assert.equal((await r.read(t0 + 1)).sourceAsOf, undefined, 'one event of partition 0 is still unread');
  await commit('3', '1');
  assert.equal((await r.read(t0 + 2)).sourceAsOf, t0 + 2, 'everything read');

  // A new event: until it is read, the source counts as read only up to the moment before it arrived.
  await producer.send({ topic: source, acks: -1, messages: [{ partition: 1, value: 'e-4' }] });
  assert.equal((await r.read(t0 + 3)).sourceAsOf, t0 + 2);
  assert.equal((await r.read(t0 + 4)).sourceAsOf, t0 + 2);
  await commit('3', '2');
  assert.equal((await r.read(t0 + 5)).sourceAsOf, t0 + 5, 'read');
});

test('a group without offsets that starts at the end: read as of its start, not beyond, until it commits what came after', async () => {
  const fresh = uniqueName('it-progress-fresh');
  try {
    const r = new StageProgressReader(admin, { sourceTopic: source, signalGroup: fresh, fromBeginning: false, signalsTopic: signals });
    const t0 = Date.now();
    assert.equal((await r.read(t0)).sourceAsOf, t0, 'nothing after where it starts');
    const [before] = (await admin.fetchTopicOffsets(source)).filter((p) => p.partition === 0);
    await producer.send({ topic: source, acks: -1, messages: [{ partition: 0, value: 'e-late' }] });
    assert.equal((await r.read(t0 + 1)).sourceAsOf, t0, 'an event after its start, not committed yet');
    await admin.setOffsets({ groupId: fresh, topic: source, partitions: [{ partition: 0, offset: String(BigInt(before!.high) + 1n) }] });
    assert.equal((await r.read(t0 + 2)).sourceAsOf, t0 + 2, 'committed: read to the end (partition 1, still without offsets, got nothing new)');
  } finally {
    await admin.deleteGroups([fresh]).catch(() => undefined);
  }
});

test('a transactional source topic: the batch consumer commits past commit and abort markers, so a stage that read everything is read to the end', async () => {
  const topic = uniqueName('it-progress-txn');
  const txGroup = uniqueName('it-progress-txn-group');
  await createTestTopics(kafka, [{ name: topic, partitions: 1 }]);
  const txProducer = kafka.producer({ transactionalId: uniqueName('it-progress-txn-id'), idempotent: true, maxInFlightRequests: 1 });
  await txProducer.connect();
  const committed = await txProducer.transaction();
  await committed.send({ topic, acks: -1, messages: [0, 1, 2].map((i) => ({ value: `c-${i}` })) });
  await committed.commit();
  const aborted = await txProducer.transaction();
  await aborted.send({ topic, acks: -1, messages: [3, 4].map((i) => ({ value: `a-${i}` })) });
  await aborted.abort();
  await txProducer.disconnect();
  // Three records, a commit marker, two aborted records, an abort marker (the coordinator writes the markers after
  // the commit and abort calls return, and the end offset read here stops at an open transaction).
  await waitFor('the abort marker is written', async () => (await admin.fetchTopicOffsets(topic))[0]!.high === '7');

  const seen: string[] = [];
  const settings = { ...loadServiceRuntimeSettings('alerts', ALERTS_DEFAULTS, {}), groupId: txGroup, sourceTopic: topic, dlqTopic: topic, flushMs: 50, fromBeginning: true };
  const consumer = new BatchConsumer({
    kafka,
    settings,
    handler: async (records) => {
      seen.push(...records.map((r) => r.value!.toString()));
      return { deadLetters: [] };
    },
    dlq: new DlqPublisher(kafka, { topic, service: 'progress-test' }),
    metrics: new ConsumerMetrics(new Registry(), 'progress_test'),
    logger: createLogger('progress-test', 'silent'),
  });
  await consumer.start();
  try {
    await waitFor('the group commits the end of the partition', async () => {
      const [offsets] = await admin.fetchOffsets({ groupId: txGroup, topics: [topic] });
      return offsets?.partitions[0]?.offset === '7';
    });
    assert.deepEqual(seen, ['c-0', 'c-1', 'c-2'], 'only the committed records');
    const r = new StageProgressReader(admin, { sourceTopic: topic, signalGroup: txGroup, fromBeginning: true, signalsTopic: signals });
    const t0 = Date.now();
    assert.equal((await r.read(t0)).sourceAsOf, t0, 'read to the end');
  } finally {
    await consumer.stop();
    await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
    await admin.deleteGroups([txGroup]).catch(() => undefined);
  }
});
