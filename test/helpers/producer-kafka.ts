import type { IHeaders } from 'kafkajs';
import { createKafka } from '../../core/clients/kafka.js';
import { loadEndpoints } from '../../core/endpoints.js';
import { AuditEventCodec, RegistryClient, type AuditEvent } from '../../schemas/index.js';
import { consumeCount } from './kafka.js';
import { uniqueName } from './names.js';

/** Endpoints of the running services, in the producer's option names. */
export const endpoints = loadEndpoints();
export const connection = { brokers: endpoints.kafka.brokers, schemaRegistryUrl: endpoints.registry.url };

export interface ReadRecord {
  partition: number;
  offset: number;
  key: string;
  headers: Record<string, string>;
  /** The record value exactly as it came off the wire (after Kafka decompression). */
  raw: Buffer;
  event: AuditEvent;
}

/** Topic helpers bound to one cluster. */
export interface TopicTools {
  /** Creates a fresh topic (auto-creation is off on the local brokers). */
  createTopic(topic: string, partitions?: number): Promise<void>;
  /** Deletes test topics, ignoring failures. */
  deleteTopic(topic: string): Promise<void>;
  /** How many records the topic holds in all (sum of the partitions' end offsets): exact, unlike a consumer that stops at N. */
  recordCount(topic: string): Promise<number>;
  /**
   * Reads `count` records from the start of a topic with a plain kafkajs
   * consumer and decodes each with AuditEventCodec. Records come back in
   * partition order (arrival order per partition).
   */
  readEvents(topic: string, count: number, timeoutMs?: number): Promise<ReadRecord[]>;
}

/** Topic helpers for the brokers given (a private test broker), or for the shared local Kafka. */
export function topicTools(brokers: string[] = endpoints.kafka.brokers): TopicTools {
  const kafka = createKafka({ ...endpoints.kafka, brokers });
  const withAdmin = async <T>(fn: (admin: ReturnType<typeof kafka.admin>) => Promise<T>): Promise<T> => {
    const admin = kafka.admin();
    await admin.connect();
    try {
      return await fn(admin);
    } finally {
      await admin.disconnect();
    }
  };
  return {
    async createTopic(topic, partitions = 3) {
      await withAdmin((admin) => admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: partitions, replicationFactor: 1 }] }));
    },
    async deleteTopic(topic) {
      await withAdmin((admin) => admin.deleteTopics({ topics: [topic] })).catch(() => undefined);
    },
    async recordCount(topic) {
      const offsets = await withAdmin((admin) => admin.fetchTopicOffsets(topic));
      return offsets.reduce((sum, p) => sum + Number(p.high) - Number(p.low), 0);
    },
    async readEvents(topic, count, timeoutMs = 15_000) {
      // A short long-poll: the records are already there, an empty first fetch must not cost the default 5 s.
      const consumer = kafka.consumer({ groupId: uniqueName('it-producer-reader'), maxWaitTimeInMs: 100 });
      await consumer.connect();
      try {
        await consumer.subscribe({ topics: [topic], fromBeginning: true });
        const got = await consumeCount(consumer, count, timeoutMs);
        const codec = new AuditEventCodec(new RegistryClient(endpoints.registry), topic);
        const out: ReadRecord[] = [];
        for (const { partition, message } of got) {
          const raw = message.value!;
          out.push({ partition, offset: Number(message.offset), key: message.key?.toString() ?? '', headers: headerText(message.headers), raw, event: await codec.decode(raw) });
        }
        return out;
      } finally {
        await consumer.disconnect();
      }
    },
  };
}

export const { createTopic, deleteTopic, recordCount, readEvents } = topicTools();

function headerText(headers: IHeaders | undefined): Record<string, string> {
  return Object.fromEntries(Object.entries(headers ?? {}).map(([k, v]) => [k, Buffer.isBuffer(v) ? v.toString() : String(v)]));
}
