import { type IHeaders, type KafkaMessage, type Message, type Producer } from 'kafkajs';
import { headerText, type createKafka } from '../clients/kafka.js';
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
 * Headers a redriven record carries on its source topic (`auditline dlq
 * redrive`, docs/topics.md): the dead letter it was re-sent from
 * (`<dlq topic>:<partition>:<offset>`) and the id of the redrive. A
 * redriven record that fails again is dead-lettered with them among its
 * original headers, so its history shows in `dlq show`.
 */
export const REDRIVE_HEADERS = {
  of: 'auditline-redrive-of',
  id: 'auditline-redrive-id',
} as const;

/** A dead letter as read back from the DLQ topic: its position, its DLQ headers, and its source record. */
export interface StoredDeadLetter {
  partition: number;
  offset: string;
  /** The DLQ record's timestamp, epoch ms. */
  timestamp: number;
  service: string;
  code: string;
  /** When it was dead-lettered (header, ISO 8601), or the record timestamp when the header is missing. */
  time: string;
  reason: string;
  sourceTopic: string;
  sourcePartition: number | undefined;
  sourceOffset: string;
  key: Buffer | null;
  value: Buffer | null;
  /** The source record's own headers: every header but the DLQ ones, byte for byte. */
  originalHeaders: IHeaders;
}

const DLQ_HEADER_NAMES: ReadonlySet<string> = new Set(Object.values(DLQ_HEADERS));

/** Reads the DLQ headers of a consumed dead letter (deadLetterMessage's inverse); missing headers read as ''. */
export function readDeadLetter(partition: number, message: KafkaMessage): StoredDeadLetter {
  const headers = message.headers ?? {};
  const text = (name: string) => headerText(headers[name]) ?? '';
  const sourcePartition = Number.parseInt(text(DLQ_HEADERS.sourcePartition), 10);
  const timestamp = Number(message.timestamp);
  return {
    partition,
    offset: message.offset,
    timestamp,
    service: text(DLQ_HEADERS.service),
    code: text(DLQ_HEADERS.errorCode),
    time: text(DLQ_HEADERS.time) || (Number.isFinite(timestamp) ? new Date(timestamp).toISOString() : ''),
    reason: text(DLQ_HEADERS.reason),
    sourceTopic: text(DLQ_HEADERS.sourceTopic),
    sourcePartition: Number.isInteger(sourcePartition) && sourcePartition >= 0 ? sourcePartition : undefined,
    sourceOffset: text(DLQ_HEADERS.sourceOffset),
    key: message.key ?? null,
    value: message.value ?? null,
    originalHeaders: Object.fromEntries(Object.entries(headers).filter(([name]) => !DLQ_HEADER_NAMES.has(name))),
  };
}

/**
 * The source record of a dead letter as a redrive publishes it again: key
 * and value byte for byte, the original headers (the DLQ headers removed),
 * and the redrive markers (REDRIVE_HEADERS), which replace earlier ones.
 */
export function redriveMessage(letter: Pick<StoredDeadLetter, 'key' | 'value' | 'originalHeaders'>, marker: { of: string; id: string }): Message {
  return { key: letter.key, value: letter.value, headers: { ...letter.originalHeaders, [REDRIVE_HEADERS.of]: marker.of, [REDRIVE_HEADERS.id]: marker.id } };
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
