import { randomUUID } from 'node:crypto';
import { createKafka } from '../core/clients/kafka.js';
import type { Endpoints } from '../core/endpoints.js';
import { AuditlineError } from '../core/errors.js';
import { TOPICS } from '../infra/kafka/topics.js';
import { AuditEventCodec } from '../schemas/codec.js';
import { RegistryClient } from '../schemas/registry.js';
import { sampleExecution } from '../schemas/samples.js';
import { unwrapPayload } from '../schemas/types.js';

export interface SmokeResult {
  executionId: string;
  events: number;
  schemaId: number;
  roundTripMs: number;
}

/**
 * Publishes one sample execution to audit.raw through the registry and
 * reads it back with a fresh consumer, checking every event decodes to what
 * was sent and arrives in sequence order. Proves the stack end to end.
 */
export async function smokeRun(endpoints: Endpoints, timeoutMs = 30_000): Promise<SmokeResult> {
  const codec = new AuditEventCodec(new RegistryClient(endpoints.registry), TOPICS.raw);
  const schemaId = await codec.init();
  const events = sampleExecution();
  const executionId = events[0]!.execution_id;
  const kafka = createKafka(endpoints.kafka);
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  const consumer = kafka.consumer({ groupId: `auditline-smoke-${randomUUID()}` });
  const started = Date.now();
  await producer.connect();
  try {
    const sent = await producer.send({
      topic: TOPICS.raw,
      acks: -1,
      messages: events.map((e) => ({ key: e.execution_id, value: codec.encode(e) })),
    });
    const { partition, baseOffset } = sent[0]!;
    const received: string[] = [];
    await consumer.connect();
    await consumer.subscribe({ topics: [TOPICS.raw] });
    const done = new Promise<void>((resolve, reject) => {
      consumer
        .run({
          eachMessage: async ({ message, partition: p }) => {
            if (p !== partition || message.key?.toString() !== executionId || !message.value) return;
            const event = await codec.decode(message.value);
            const expected = events[received.length];
            if (event.event_id !== expected?.event_id || event.sequence !== expected.sequence) {
              reject(new AuditlineError('DECODE_FAILED', `smoke: event ${received.length + 1} of ${executionId} arrived out of order`));
              return;
            }
            received.push(unwrapPayload(event.payload).kind);
            if (received.length === events.length) resolve();
          },
        })
        .catch(reject);
    });
    consumer.seek({ topic: TOPICS.raw, partition, offset: baseOffset! });
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new AuditlineError('KAFKA_UNAVAILABLE', `smoke: read back only ${received.length} of ${events.length} events within ${timeoutMs} ms`, { retriable: true })),
        timeoutMs,
      );
    });
    await Promise.race([done, timeout]).finally(() => clearTimeout(timer));
    return { executionId, events: received.length, schemaId, roundTripMs: Date.now() - started };
  } finally {
    await consumer.disconnect().catch(() => undefined);
    await producer.disconnect().catch(() => undefined);
  }
}
