import kafkajs, { type Admin, type Message, type Producer } from 'kafkajs';
import { isFencedError, type createKafka } from '../../core/clients/kafka.js';
import { AuditlineError, errorMessage } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import type { TokenizerMetrics } from './metrics.js';
import { Murmur2Partitioner } from '../../core/clients/partitioner.js';
import { chunkBySize } from '../../core/clients/record-size.js';
import type { OutputCompression } from './config.js';

// kafkajs is CommonJS: its runtime values come through the default export under ESM.
const { CompressionTypes } = kafkajs;
const CODECS = { none: CompressionTypes.None, gzip: CompressionTypes.GZIP } as const;

/** The transactional producers' retry schedule: 20 ms, doubling, nine retries (~10 s in all, as kafkajs' default 300 ms × five). */
export const TRANSACTION_RETRY = { initialRetryTime: 20, retries: 9 } as const;

/** Records for one topic, written inside a transaction. */
export interface TransactionalOutput {
  topic: string;
  messages: Message[];
}

export interface PartitionTransactionsOptions {
  kafka: ReturnType<typeof createKafka>;
  /** Connected admin client (committed offsets). */
  admin: Admin;
  sourceTopic: string;
  groupId: string;
  transactionalIdPrefix: string;
  transactionTimeoutMs: number;
  /** Codec of the output batches (TokenizerConfig.compression). */
  compression: OutputCompression;
  logger: Logger;
  metrics: TokenizerMetrics;
  /** Called with the transaction open, its records and offsets sent, right before the commit (the crash test's hook). */
  beforeCommit?: () => void;
}


/** A partition's producer, its start-up (fencing, then the committed offset), and the first offset not yet committed as this instance knows it. */
interface PartitionProducer {
  producer: Producer;
  ready: Promise<bigint>;
  floor?: bigint;
}

/**
 * One transactional producer per source partition, with the transactional
 * id `<prefix>-<source topic>-<partition>`. Whoever owns a partition uses
 * the same id, so a new owner's InitProducerId bumps the epoch: the previous
 * owner (a zombie after a pause, or a killed process) is fenced and its
 * open transaction aborted. After that, the partition's committed offset is
 * read again: records below it were committed by a predecessor (or by this
 * instance in a commit whose answer was lost) and are skipped.
 *
 * Output records, dead letters and the source offsets are committed in one
 * transaction (`sendOffsets`): consumers reading with isolation level
 * read_committed (kafkajs' default) see every source record's output
 * exactly once.
 */
export class PartitionTransactions {
  private readonly producers = new Map<number, PartitionProducer>();

  constructor(private readonly options: PartitionTransactionsOptions) {}

  transactionalId(partition: number): string {
    return `${this.options.transactionalIdPrefix}-${this.options.sourceTopic}-${partition}`;
  }

  /** After a rebalance: fences the predecessors of the assigned partitions at once (their open transactions would hold back read_committed consumers) and closes the others. */
  assign(partitions: readonly number[]): void {
    for (const p of [...this.producers.keys()]) if (!partitions.includes(p)) void this.drop(p);
    for (const p of partitions) {
      this.ready(p).catch((err: unknown) => this.options.logger.warn({ partition: p, err: errorMessage(err) }, 'transactional producer not ready yet; the next batch retries'));
    }
  }

  /**
   * Resolves, once this instance holds the partition's transactional id
   * (predecessors fenced), with the first offset not yet committed: the
   * group's committed offset read at start-up, then the offset each commit
   * of this instance moved it to. (The consumer may hand out records again
   * that the last commit covered, e.g. when a rebalance keeps the partition
   * and its offset is fetched before that commit's markers are written;
   * they are below this floor and skipped.)
   */
  async ready(partition: number): Promise<bigint> {
    const entry = this.producers.get(partition) ?? this.start(partition);
    const started = await entry.ready;
    return entry.floor ?? started;
  }

  private start(partition: number): PartitionProducer {
    const { kafka, transactionTimeoutMs } = this.options;
    const producer = kafka.producer({
      transactionalId: this.transactionalId(partition),
      idempotent: true,
      maxInFlightRequests: 1,
      transactionTimeout: transactionTimeoutMs,
      // A transaction begun right after the previous commit of the same id meets CONCURRENT_TRANSACTIONS while the
      // broker still writes the markers, for a few ms. kafkajs' default first backoff (300 ms) stalled the partition
      // that long; the Java client retries that case after 20 ms. Nine retries keep kafkajs' total patience (~10 s).
      retry: TRANSACTION_RETRY,
      allowAutoTopicCreation: false,
      // Java-compatible murmur2 on the key (the execution id), as the producer client partitions.
      createPartitioner: Murmur2Partitioner,
    });
    const entry = {
      producer,
      ready: (async () => {
        try {
          await producer.connect();
          // producer.transaction() sends InitProducerId for the transactional id: this is the fencing step.
          await (await producer.transaction()).abort();
          return await this.committedOffset(partition);
        } catch (err) {
          throw new AuditlineError('KAFKA_UNAVAILABLE', `cannot initialise the transactional producer of partition ${partition}: ${errorMessage(err)}`, {
            retriable: true,
            cause: err,
            details: { partition },
          });
        }
      })(),
    };
    this.producers.set(partition, entry);
    entry.ready.catch(() => {
      if (this.producers.get(partition) === entry) void this.drop(partition);
    });
    return entry;
  }

  /**
   * Writes `outputs` and commits `nextOffset` for the partition in one
   * transaction. On any failure the transaction is aborted and the producer
   * dropped (its state is unknown); the next attempt starts a new one, which
   * first re-reads the committed offset. Throws PRODUCER_FENCED when another
   * instance took the partition, KAFKA_UNAVAILABLE (retriable) otherwise.
   *
   * `floor`: the committed offset the caller filtered its records against
   * (from `ready`). When the partition's producer was replaced since (a
   * rebalance dropped it, and this call starts a new one, which fences the
   * partition's current owner and reads the offset again), the offset may
   * have moved: records between the two were committed by someone else, so
   * nothing is sent and the caller handles the batch again (retriable).
   */
  async commit(partition: number, outputs: readonly TransactionalOutput[], nextOffset: string, floor?: bigint): Promise<void> {
    const now = await this.ready(partition);
    if (floor !== undefined && now !== floor) {
      throw new AuditlineError('KAFKA_UNAVAILABLE', `the transactional producer of partition ${partition} was started again and its committed offset moved from ${floor} to ${now}; the batch is handled again from there`, {
        retriable: true,
        details: { partition },
      });
    }
    const entry = this.producers.get(partition);
    if (!entry) throw new AuditlineError('KAFKA_UNAVAILABLE', `transactional producer of partition ${partition} was closed`, { retriable: true });
    const { metrics, groupId, sourceTopic } = this.options;
    const compression = CODECS[this.options.compression];
    let txn: Awaited<ReturnType<Producer['transaction']>> | undefined;
    try {
      txn = await entry.producer.transaction();
      for (const out of outputs) {
        for (const messages of chunkBySize(out.messages)) await txn.send({ topic: out.topic, messages, acks: -1, compression });
      }
      await txn.sendOffsets({ consumerGroupId: groupId, topics: [{ topic: sourceTopic, partitions: [{ partition, offset: nextOffset }] }] });
      this.options.beforeCommit?.();
      await txn.commit();
      entry.floor = BigInt(nextOffset);
      metrics.transaction('committed');
    } catch (err) {
      const fenced = isFencedError(err);
      if (!fenced && txn?.isActive()) await txn.abort().catch(() => undefined);
      await this.drop(partition);
      metrics.transaction(fenced ? 'fenced' : 'aborted');
      if (fenced) {
        throw new AuditlineError('PRODUCER_FENCED', `another tokenizer instance took over ${this.transactionalId(partition)}; the batch is left to it`, {
          cause: err,
          details: { partition },
        });
      }
      throw new AuditlineError('KAFKA_UNAVAILABLE', `transaction of partition ${partition} failed and was aborted: ${errorMessage(err)}`, {
        retriable: true,
        cause: err,
        details: { partition },
      });
    }
  }

  /** Disconnects every producer. */
  async close(): Promise<void> {
    await Promise.all([...this.producers.keys()].map((p) => this.drop(p)));
  }

  private async drop(partition: number): Promise<void> {
    const entry = this.producers.get(partition);
    if (!entry) return;
    this.producers.delete(partition);
    await entry.producer.disconnect().catch(() => undefined);
  }

  private async committedOffset(partition: number): Promise<bigint> {
    const { admin, groupId, sourceTopic } = this.options;
    const [topic] = await admin.fetchOffsets({ groupId, topics: [sourceTopic] });
    const offset = topic?.partitions.find((p) => p.partition === partition)?.offset ?? '-1';
    const n = BigInt(offset);
    return n < 0n ? 0n : n;
  }
}
