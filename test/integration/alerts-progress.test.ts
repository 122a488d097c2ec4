import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createKafka } from '../../core/clients/kafka.js';
import { loadEndpoints } from '../../core/endpoints.js';
import { stageProgress } from '../../consumers/alerts/progress.js';
import { createTestTopics } from '../helpers/kafka.js';
import { uniqueName } from '../helpers/names.js';

const kafka = createKafka(loadEndpoints().kafka);
const admin = kafka.admin();
const source = uniqueName('it-progress-events');
const signals = uniqueName('it-progress-signals');
const group = uniqueName('it-progress-group');

before(async () => {
  await admin.connect();
  await createTestTopics(kafka, [
    { name: source, partitions: 2 },
    { name: signals, partitions: 2 },
  ]);
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const now = Date.now();
  // Partition 0: three events published five minutes ago; partition 1: one published just now (inside the slack).
  await producer.send({ topic: source, acks: -1, messages: [0, 1, 2].map((i) => ({ partition: 0, value: `old-${i}`, timestamp: String(now - 300_000) })) });
  await producer.send({ topic: source, acks: -1, messages: [{ partition: 1, value: 'new', timestamp: String(now) }] });
  await producer.send({ topic: signals, acks: -1, messages: [{ partition: 0, value: 's0' }, { partition: 0, value: 's1' }] });
  await producer.disconnect();
});
after(async () => {
  await admin.deleteTopics({ topics: [source, signals] }).catch(() => undefined);
  await admin.deleteGroups([group]).catch(() => undefined);
  await admin.disconnect();
});

const progress = (fromBeginning: boolean) => stageProgress(admin, { sourceTopic: source, signalGroup: group, fromBeginning, signalsTopic: signals, slackMs: 60_000 });

test('stage progress from the broker: the signal stage is caught up once it read every event older than the slack; signals end offsets by partition', async () => {
  const fresh = await progress(true);
  assert.equal(fresh.sourceCaughtUp, false, 'a group without offsets that starts at the first record has the whole topic to read');
  assert.deepEqual([...fresh.signalsEnd].sort(), [[0, 2n], [1, 0n]]);
  assert.equal((await progress(false)).sourceCaughtUp, true, 'a group without offsets that starts at the end has nothing old to read');

  await admin.setOffsets({ groupId: group, topic: source, partitions: [{ partition: 0, offset: '2' }, { partition: 1, offset: '0' }] });
  assert.equal((await progress(true)).sourceCaughtUp, false, 'one event of five minutes ago is still unread');

  await admin.setOffsets({ groupId: group, topic: source, partitions: [{ partition: 0, offset: '3' }, { partition: 1, offset: '0' }] });
  assert.equal((await progress(true)).sourceCaughtUp, true, 'only an event inside the slack is unread');
  assert.equal((await stageProgress(admin, { sourceTopic: source, signalGroup: group, fromBeginning: true, signalsTopic: signals, slackMs: 0 }, Date.now() + 1_000)).sourceCaughtUp, false, 'without slack, the recent event counts');
});
