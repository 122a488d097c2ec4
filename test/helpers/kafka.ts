import type { Consumer, Kafka, KafkaMessage } from 'kafkajs';
import { uniqueName } from './names.js';

/**
 * Runs `consumer` until `count` messages arrived or `timeoutMs` passed;
 * resolves with the messages in arrival order (rejects on timeout).
 */
export async function consumeCount(consumer: Consumer, count: number, timeoutMs = 20_000): Promise<{ partition: number; message: KafkaMessage }[]> {
  const got: { partition: number; message: KafkaMessage }[] = [];
  let timer: NodeJS.Timeout | undefined;
  await new Promise<void>((resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`received ${got.length} of ${count} messages within ${timeoutMs} ms`)), timeoutMs);
    consumer
      .run({
        eachMessage: async ({ partition, message }) => {
          got.push({ partition, message });
          if (got.length >= count) resolve();
        },
      })
      .catch(reject);
  }).finally(() => clearTimeout(timer));
  return got;
}

/** Reads the first `count` messages of `topic` with a consumer of a fresh group, from the beginning. */
export async function consumeFromStart(kafka: Kafka, topic: string, count: number): Promise<{ partition: number; message: KafkaMessage }[]> {
  const consumer = kafka.consumer({ groupId: uniqueName('it-group') });
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    return await consumeCount(consumer, count);
  } finally {
    await consumer.disconnect();
  }
}

/** Creates test topics (auto-creation is off on the local broker) and waits for their leaders. */
export async function createTestTopics(kafka: Kafka, topics: { name: string; partitions: number }[]): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    await admin.createTopics({
      waitForLeaders: true,
      topics: topics.map((t) => ({ topic: t.name, numPartitions: t.partitions, replicationFactor: 1 })),
    });
  } finally {
    await admin.disconnect();
  }
}
