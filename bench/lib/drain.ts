import type { ConsumerConfig, Kafka, KafkaMessage } from 'kafkajs';
import { steadyState } from '../stats.js';

/** Consumer settings of a drain unless the caller gives its own: large fetches, short waits. */
const DRAIN_CONSUMER: Omit<ConsumerConfig, 'groupId'> = { maxBytes: 16 * 1024 * 1024, maxWaitTimeInMs: 100 };

/**
 * A same-run baseline: a kafkajs consumer of a fresh group reads the whole
 * of `topic` from the beginning, calling `each` on every record (nothing,
 * or decoding it), timed from its group join to the last record
 * (steadyState). Returns that window: records, seconds, this process's CPU
 * and the machine's. The group is left for the caller to delete.
 */
export async function drainRun(
  kafka: Kafka,
  topic: string,
  groupId: string,
  each: (message: KafkaMessage) => unknown = () => undefined,
  options: { deadlineMs?: number | undefined; consumer?: Omit<ConsumerConfig, 'groupId'> } = {},
): ReturnType<typeof steadyState> {
  const admin = kafka.admin();
  await admin.connect();
  const ends = await admin.fetchTopicOffsets(topic).finally(() => admin.disconnect());
  const total = ends.reduce((n, p) => n + Number(p.high) - Number(p.low), 0);
  const consumer = kafka.consumer({ ...(options.consumer ?? DRAIN_CONSUMER), groupId });
  let seen = 0;
  let joined = false;
  consumer.on(consumer.events.GROUP_JOIN, () => (joined = true));
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({
      eachBatch: async ({ batch }) => {
        for (const m of batch.messages) await each(m);
        seen += batch.messages.length;
      },
    });
    return await steadyState(async () => seen, total, () => joined, options.deadlineMs);
  } finally {
    await consumer.disconnect();
  }
}

/** {@link drainRun} as records per second. */
export async function drainRate(kafka: Kafka, topic: string, groupId: string, each: (message: KafkaMessage) => unknown = () => undefined, deadlineMs?: number): Promise<number> {
  const run = await drainRun(kafka, topic, groupId, each, { deadlineMs });
  return run.items / run.seconds;
}
