import { type IHeaders, type Message, type Producer } from 'kafkajs';
import type { createKafka } from '../clients/kafka.js';
import { AuditlineError, errorMessage } from '../errors.js';
import type { DeadLetter } from './types.js';
import { Murmur2Partitioner } from '../clients/partitioner.js';
import { chunkBySize } from '../clients/record-size.js';

/** Headers every dead letter carries (docs/topics.md, docs/hotstore.md). */
export const DLQ_HEADERS = {
  reason: 'auditline-dlq-reason',
  sourceTopic: 'auditline-dlq-source-topic',
  sourcePartition: 'auditline-dlq-source-partition',
  sourceOffset: 'auditline-dlq-source-offset',
  service: 'auditline-dlq-service',
  errorCode: 'auditline-dlq-error-code',
  time: 'auditline-dlq-time',
} as const;

/** Reasons are short by design; a long one is cut so a header can never grow without bound. */
export const MAX_REASON_LENGTH = 500;

/**
 * The dead-letter record of a source record: the original key and value
 * byte for byte, the original headers, and the DLQ headers (which win over
 * original headers of the same name).
 */
export function deadLetterMessage(letter: DeadLetter, service: string, now: Date = new Date()): Message {
  const { record } = letter;
  const reason = letter.reason.length > MAX_REASON_LENGTH ? `${letter.reason.slice(0, MAX_REASON_LENGTH - 1)}…` : letter.reason;
  const headers: IHeaders = {
    ...record.headers,
    [DLQ_HEADERS.reason]: reason,
    [DLQ_HEADERS.sourceTopic]: record.topic,
    [DLQ_HEADERS.sourcePartition]: String(record.partition),
    [DLQ_HEADERS.sourceOffset]: record.offset,
    [DLQ_HEADERS.service]: service,
    [DLQ_HEADERS.errorCode]: letter.code,
    [DLQ_HEADERS.time]: now.toISOString(),
  };
  // Same key as the source: dead letters of one execution stay in order on one DLQ partition.
  return { key: record.key, value: record.value, headers };
}

/**
 * Publishes dead letters to the DLQ topic with an idempotent, acks=all
 * producer. A failed publish throws DLQ_UNAVAILABLE (retriable): the caller
 * retries and does not commit the source offsets until it succeeded, so a
 * record is never dropped silently.
 */
export class DlqPublisher {
  private readonly producer: Producer;
  private connected = false;

  constructor(
    kafka: ReturnType<typeof createKafka>,
    private readonly options: { topic: string; service: string },
  ) {
    // The Java-compatible murmur2 partitioner, as the producer client uses: dead letters of one key share a partition.
    this.producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false, createPartitioner: Murmur2Partitioner });
  }

  get topic(): string {
    return this.options.topic;
  }

  /**
   * The DLQ records of `letters` without publishing them, for a caller that
   * sends them itself, e.g. inside a Kafka transaction with its output.
   */
  messages(letters: readonly DeadLetter[]): Message[] {
    const now = new Date();
    return letters.map((l) => deadLetterMessage(l, this.options.service, now));
  }

  async connect(): Promise<void> {
    if (this.connected) return;
    await this.producer.connect();
    this.connected = true;
  }

  async publish(letters: readonly DeadLetter[]): Promise<void> {
    if (letters.length === 0) return;
    try {
      await this.connect();
      // In runs the broker accepts: one refused record batch would be retried forever (a retry may repeat the runs already sent).
      for (const messages of chunkBySize(letters.map((l) => deadLetterMessage(l, this.options.service)))) await this.producer.send({ topic: this.options.topic, acks: -1, messages });
    } catch (err) {
      throw new AuditlineError('DLQ_UNAVAILABLE', `cannot publish ${letters.length} dead letters to ${this.options.topic}: ${errorMessage(err)}`, {
        retriable: true,
        cause: err,
        details: { topic: this.options.topic, count: letters.length },
      });
    }
  }

  async disconnect(): Promise<void> {
    this.connected = false;
    await this.producer.disconnect().catch(() => undefined);
  }
}
