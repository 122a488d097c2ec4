import kafkajs, { type LogEntry, type Producer } from 'kafkajs';
import { createKafka, kafkaErrorType } from '../core/clients/kafka.js';
import { AuditlineError, errorMessage } from '../core/errors.js';
import type { ProducerLogger } from './logger.js';
import type { ResolvedProducerOptions } from './options.js';
import { Murmur2Partitioner } from '../core/clients/partitioner.js';
import { auditRejected } from './producer-errors.js';
import type { SpoolRecord } from './spool-format.js';

// kafkajs is CommonJS: its runtime values come through the default export under ESM.
const { CompressionTypes, logLevel } = kafkajs;

/** Kafka error types a resend can never fix: the records themselves are refused. */
const REFUSED_RECORD_TYPES = new Set(['MESSAGE_TOO_LARGE', 'RECORD_LIST_TOO_LARGE', 'INVALID_RECORD', 'CORRUPT_MESSAGE', 'INVALID_TIMESTAMP']);
/** kafkajs warns about bounded retries of an idempotent producer; bounding them is deliberate here (see send()). */
const EXPECTED_WARNINGS = [/Limiting retries for the idempotent producer/];

/**
 * The one kafkajs producer of an audit producer: idempotent, acks=all,
 * GZIP, one request in flight, keyed by execution id (default murmur2
 * partitioner, so an execution stays on one partition and in order).
 *
 * A send either resolves (every record acknowledged by all in-sync
 * replicas), or throws KAFKA_UNAVAILABLE (retriable: spool and retry) or
 * AUDIT_REJECTED (Kafka refused the records themselves). kafkajs' own
 * retries are bounded and the whole send is capped by sendTimeoutMs, so a
 * dead broker is noticed in bounded time. After any failure the kafkajs
 * producer is dropped and the next send starts a fresh one (new producer
 * id), so a send abandoned by the timeout cannot interleave with the resend.
 */
export class KafkaSender {
  private readonly kafka: ReturnType<typeof createKafka>;
  private producer: Producer | undefined;
  private connecting: Promise<Producer> | undefined;

  constructor(
    private readonly options: Pick<ResolvedProducerOptions, 'brokers' | 'clientId' | 'ssl' | 'sasl' | 'topic' | 'sendTimeoutMs'>,
    private readonly logger: ProducerLogger,
  ) {
    const timeout = options.sendTimeoutMs;
    this.kafka = createKafka(
      { brokers: [...options.brokers], clientId: options.clientId, ssl: options.ssl, ...(options.sasl ? { sasl: options.sasl } : {}) },
      undefined,
      {
        connectionTimeout: Math.min(3_000, Math.max(100, Math.floor(timeout / 3))),
        requestTimeout: timeout,
        retry: { retries: 2, initialRetryTime: 100, maxRetryTime: Math.max(200, Math.floor(timeout / 4)) },
        logLevel: logLevel.WARN,
        logCreator: () => (entry: LogEntry) => this.log(entry),
      },
    );
  }

  /** Sends records in order as one batch. */
  async send(records: readonly SpoolRecord[]): Promise<void> {
    const deadline = this.options.sendTimeoutMs;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new AuditlineError('KAFKA_UNAVAILABLE', `Kafka did not acknowledge within sendTimeoutMs ${deadline}`, { retriable: true })),
        deadline,
      );
    });
    try {
      await Promise.race([this.sendNow(records), timedOut]);
    } catch (err) {
      this.reset();
      throw this.classify(err);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Disconnects; later sends reconnect. */
  async close(): Promise<void> {
    const producer = this.producer;
    this.producer = undefined;
    this.connecting = undefined;
    await producer?.disconnect().catch(() => undefined);
  }

  private async sendNow(records: readonly SpoolRecord[]): Promise<void> {
    const producer = await this.connected();
    await producer.send({
      topic: this.options.topic,
      acks: -1,
      timeout: this.options.sendTimeoutMs,
      compression: CompressionTypes.GZIP,
      messages: records.map((r) => ({ key: r.key, value: r.value, headers: r.headers })),
    });
  }

  private connected(): Promise<Producer> {
    if (this.producer) return Promise.resolve(this.producer);
    if (!this.connecting) {
      const producer = this.kafka.producer({
        idempotent: true,
        // Idempotence keeps per-partition order across retries only with one request in flight.
        maxInFlightRequests: 1,
        allowAutoTopicCreation: false,
        // The default partitioner's partitions, computed without 64-bit Long objects (see partitioner.ts).
        createPartitioner: Murmur2Partitioner,
        retry: { retries: 2, initialRetryTime: 100, maxRetryTime: Math.max(200, Math.floor(this.options.sendTimeoutMs / 4)) },
      });
      const connecting = producer.connect().then(
        () => {
          if (this.connecting !== connecting) {
            // Abandoned by a timeout in the meantime: do not leak a connected producer.
            void producer.disconnect().catch(() => undefined);
            throw new AuditlineError('KAFKA_UNAVAILABLE', 'connection abandoned after sendTimeoutMs', { retriable: true });
          }
          this.producer = producer;
          return producer;
        },
        (err: unknown) => {
          void producer.disconnect().catch(() => undefined);
          throw err;
        },
      );
      connecting.catch(() => undefined);
      this.connecting = connecting;
    }
    return this.connecting;
  }

  private reset(): void {
    const producer = this.producer;
    this.producer = undefined;
    this.connecting = undefined;
    void producer?.disconnect().catch(() => undefined);
  }

  private classify(err: unknown): AuditlineError {
    if (err instanceof AuditlineError) return err;
    const type = kafkaErrorType(err);
    if (type && REFUSED_RECORD_TYPES.has(type)) return auditRejected(`${type} on topic ${this.options.topic}`, err, { kafkaError: type });
    // Retriable (the events wait in the spool until it is fixed), but nothing an outage explains: said at error level.
    const setup = type ? SETUP_ERRORS[type] : undefined;
    if (setup) this.logger.error({ topic: this.options.topic, kafkaError: type }, `Kafka refuses the audit producer: ${setup}; events are spooled (or fail without a spool) until this is fixed`);
    const kind = type ? ` (${type}${setup ? `: ${setup}` : ''})` : '';
    return new AuditlineError('KAFKA_UNAVAILABLE', `sending to topic ${this.options.topic} failed${kind}: ${errorMessage(err)}`, {
      retriable: true,
      cause: err,
      details: type ? { kafkaError: type } : {},
    });
  }

  private log(entry: LogEntry): void {
    const { message, ...rest } = entry.log;
    if (EXPECTED_WARNINGS.some((re) => re.test(message ?? ''))) return;
    const fields = { kafkajs: entry.namespace, broker: rest.broker, retryCount: rest.retryCount, error: rest.error };
    // kafkajs reports every failed connection attempt; the producer logs the outcome (spooled, lost) itself.
    this.logger.warn(fields, message ?? 'kafkajs');
  }
}

/** Kafka errors that mean a setup mistake rather than an outage: what is wrong, in words. */
const SETUP_ERRORS: Readonly<Record<string, string>> = {
  UNKNOWN_TOPIC_OR_PARTITION: 'the topic does not exist (the producer never creates topics: run auditline setup or create it)',
  TOPIC_AUTHORIZATION_FAILED: 'not authorized to write the topic (ACL)',
  CLUSTER_AUTHORIZATION_FAILED: 'not authorized on the cluster (ACL; the idempotent producer needs IdempotentWrite)',
  SASL_AUTHENTICATION_FAILED: 'authentication failed (SASL credentials)',
};

