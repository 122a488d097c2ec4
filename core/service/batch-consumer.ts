import type { Consumer, EachBatchPayload, KafkaMessage } from 'kafkajs';
import type { createKafka } from '../clients/kafka.js';
import { AuditlineError, errorMessage, isAuditlineError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { ConsumerMetrics, RetryStage } from './consumer-metrics.js';
import type { DlqPublisher } from './dlq.js';
import { retryRetriable, StoppedError } from './retry.js';
import { SerialByKey } from './serial.js';
import type { ServiceRuntimeSettings } from './settings.js';
import type { DeadLetter, SourceRecord } from './types.js';

/**
 * Handles one batch of records. It must be idempotent (a batch can be handed
 * over again after a crash or a retry) and must settle every record: either
 * done, or returned as a dead letter. Throwing means "nothing of this batch
 * is settled": the batch is retried with backoff and its offsets are not
 * committed.
 */
export type BatchHandler = (records: readonly SourceRecord[], context: BatchContext) => Promise<BatchResult>;

/** What a handler gets with a batch. */
export interface BatchContext {
  /** Aborted when the consumer stops. */
  signal: AbortSignal;
  /**
   * Keeps this member in its group while the handler waits (a handler that
   * retries a dependency itself must call it between attempts, or the group
   * evicts the member after the session timeout and gives the partition to
   * another while this one still works on it). Throws when the member is no
   * longer in the group (rebalance): the handler should then give the batch up.
   */
  heartbeat?: () => Promise<void>;
}

/**
 * What a handler settled. `published`: the handler already wrote its dead
 * letters to the DLQ itself, before it recorded the batch as done in its own
 * state (a handler whose state says "done up to offset N" must not leave the
 * dead letters below N to a later step a crash could skip); the consumer
 * then only counts and logs them.
 */
export interface BatchResult {
  deadLetters: DeadLetter[];
  published?: boolean;
}

/**
 * Who commits a batch's offsets and publishes its dead letters:
 * - `consumer` (default): the batch consumer, after the handler settled the
 *   batch (dead letters to the DLQ first, then the offset commit);
 * - `handler`: the handler itself, e.g. in a Kafka transaction together with
 *   its output (exactly-once). The dead letters it returns were already
 *   published; the consumer only counts and logs them, and commits nothing.
 */
export type CommitMode = 'consumer' | 'handler';

export interface BatchConsumerOptions {
  kafka: ReturnType<typeof createKafka>;
  settings: ServiceRuntimeSettings;
  handler: BatchHandler;
  dlq: DlqPublisher;
  metrics: ConsumerMetrics;
  logger: Logger;
  /** @default 'consumer' */
  commitMode?: CommitMode;
  /** Consumer group session timeout: how long a dead member keeps its partitions. @default 60000 */
  sessionTimeoutMs?: number;
  /**
   * Most bytes one fetch takes from a partition. kafkajs' default (1 MiB) caps a batch at a few thousand
   * records of a backlog, whatever `batchSize` says; a sink with a high cost per write (ClickHouse parts)
   * raises it so that catching up writes full batches. @default 1048576
   */
  maxBytesPerPartition?: number;
  /**
   * Partitions whose batches are handled at the same time (kafkajs partitionsConsumedConcurrently): while one
   * batch waits for its sink, the next partition's batch is fetched and decoded. Each partition still commits
   * in order, so the handler must only be safe to run for different partitions at once. @default 1
   */
  partitionsConcurrently?: number;
  /**
   * Who observes freshness (publish -> stored, `ConsumerMetrics.recordsStored`):
   * `consumer` (default) when a batch is committed; `handler` when the handler
   * stores records later than the batch that brought them (e.g. a file
   * spanning batches) and observes them itself once they are stored.
   * @default 'consumer'
   */
  freshness?: 'consumer' | 'handler';
  /** Told the partitions of each topic assigned to this member after every rebalance (kafkajs GROUP_JOIN). */
  onAssignment?: (assignment: Record<string, number[]>) => void;
}

/**
 * Thrown by a handler (or used internally) to leave a batch uncommitted
 * without retrying it: the partition moved to another member, or this
 * member was fenced. The batch is delivered again to the partition's owner.
 */
export class BatchAbandonedError extends Error {
  constructor(message = 'batch abandoned; it will be delivered again') {
    super(message);
    this.name = 'BatchAbandonedError';
  }
}

/**
 * A heartbeat between retries: keeps the member in its group while a batch
 * waits for a dependency. When the group refuses it (a rebalance), the batch
 * is given up, logged with `fields`: BatchAbandonedError, nothing of it is
 * committed and its partition's owner handles it again.
 */
export async function heartbeatOrAbandon(heartbeat: () => Promise<void>, logger: Logger, fields: Record<string, unknown>, abandoned?: string): Promise<void> {
  try {
    await heartbeat();
  } catch (err) {
    logger.warn({ ...fields, err: errorMessage(err) }, 'heartbeat failed while retrying (rebalance?); leaving the batch uncommitted');
    throw new BatchAbandonedError(abandoned);
  }
}

/** How often a commit that failed is tried again (consumer commit mode). */
const OWED_RETRY_MS = 5_000;

/**
 * A Kafka consumer group member that hands records to a {@link BatchHandler}
 * in batches of at most `batchSize` and commits a batch's offsets only after
 * the handler settled it and its dead letters reached the DLQ. Retriable
 * failures are retried with backoff in place (the partition waits, its lag
 * grows, nothing is skipped). `stop()` stops fetching, lets the batch in
 * flight finish and commit, and leaves the group; a batch still waiting for
 * a retry is abandoned uncommitted and redelivered later.
 */
export class BatchConsumer {
  private readonly consumer: Consumer;
  private readonly stopping = new AbortController();
  private joined = false;
  /** Consumer commit mode: offsets (next to read) whose commit failed, by partition, retried every OWED_RETRY_MS. */
  private readonly owed = new Map<number, string>();
  /** Consumer commit mode: the highest offset committed per partition in this generation (no older one is sent after it). */
  private readonly committedUpTo = new Map<number, bigint>();
  private owedTimer: NodeJS.Timeout | undefined;
  private paying = false;
  /** Group generations seen (GROUP_JOIN): a commit begun in an earlier one does not count, nor is it owed, in this one. */
  private generation = 0;
  /** Per partition, the commits in flight, one after the other (kafkajs retries a commit inside the call: two in flight could land out of order). */
  private readonly commits = new SerialByKey<number>();
  private fail: (err: Error) => void = () => undefined;
  /** Settles when the consumer crashed and kafkajs gave up restarting it. */
  readonly failed: Promise<Error>;

  constructor(private readonly options: BatchConsumerOptions) {
    const { settings } = options;
    this.consumer = options.kafka.consumer({
      groupId: settings.groupId,
      // Handler retries heartbeat between waits; a single insert may still take its full request timeout.
      sessionTimeout: options.sessionTimeoutMs ?? 60_000,
      heartbeatInterval: 3_000,
      // The broker holds a fetch until 1 MiB is there or flushMs passed: batches grow under load, latency stays bounded.
      minBytes: 1 << 20,
      maxWaitTimeInMs: settings.flushMs,
      maxBytesPerPartition: options.maxBytesPerPartition ?? 1 << 20,
      maxBytes: Math.max(10 << 20, (options.maxBytesPerPartition ?? 0) * 4),
      allowAutoTopicCreation: false,
    });
    this.failed = new Promise((resolve) => (this.fail = resolve));
    const { GROUP_JOIN, CRASH, DISCONNECT, STOP, END_BATCH_PROCESS } = this.consumer.events;
    // A fetch of only control records (a transaction's commit or abort marker) or aborted records never reaches
    // eachBatch, and kafkajs commits it only with autoCommit: commit past it here, or the group's offset would
    // stay below the partition's end for good (a transactional topic ends with a marker) and read as a backlog.
    this.consumer.on(END_BATCH_PROCESS, ({ payload }) => {
      if (this.commitMode !== 'consumer' || payload.batchSize > 0 || this.stopping.signal.aborted) return;
      void this.commitOwed(payload.partition, (BigInt(payload.lastOffset) + 1n).toString());
    });
    this.consumer.on(GROUP_JOIN, ({ payload }) => {
      // A new generation: commits owed for the partitions of the last one are not sent (a partition kept is read
      // again from its committed offset, and its batch handled again, idempotently).
      this.generation += 1;
      this.owed.clear();
      this.committedUpTo.clear();
      this.joined = true;
      options.onAssignment?.(payload.memberAssignment);
    });
    this.consumer.on(DISCONNECT, () => (this.joined = false));
    this.consumer.on(STOP, () => (this.joined = false));
    this.consumer.on(CRASH, ({ payload }) => {
      this.joined = false;
      options.logger.error({ err: errorMessage(payload.error), restart: payload.restart }, 'kafka consumer crashed');
      if (!payload.restart) this.fail(payload.error);
    });
  }

  private get commitMode(): CommitMode {
    return this.options.commitMode ?? 'consumer';
  }

  /** True while the consumer is a member of its group. */
  get isJoined(): boolean {
    return this.joined;
  }

  /** Connects, subscribes and starts consuming; resolves once the group was joined. */
  async start(): Promise<void> {
    const { settings } = this.options;
    await this.reportExpired();
    await this.consumer.connect();
    await this.consumer.subscribe({ topics: [settings.sourceTopic], fromBeginning: settings.fromBeginning });
    this.owedTimer = setInterval(() => void this.payOwed(), OWED_RETRY_MS);
    this.owedTimer.unref();
    await this.consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: this.options.partitionsConcurrently ?? 1,
      eachBatch: (payload) => this.eachBatch(payload),
    });
  }

  /**
   * Commits `offset` (the next one to read) of one partition, for a handler
   * in `handler` commit mode that settles records later than the batch that
   * brought them (e.g. a file spanning batches, committed after its upload).
   * Only while the consumer runs: kafkajs 2.2.4 ignores commits once stop()
   * began, so such a handler flushes before calling stop().
   */
  async commitOffset(topic: string, partition: number, offset: string): Promise<void> {
    await this.consumer.commitOffsets([{ topic, partition, offset }]);
  }

  /**
   * The group's committed offset (the next to read) of a partition of the
   * source topic, as the group coordinator has it; undefined when none was
   * committed. Throws KAFKA_UNAVAILABLE (retriable) when it cannot be read.
   */
  async committedOffset(partition: number): Promise<bigint | undefined> {
    const { settings } = this.options;
    try {
      return await this.withAdmin(async (admin) => (await this.groupCommitted(admin)).get(partition));
    } catch (err) {
      throw new AuditlineError('KAFKA_UNAVAILABLE', `cannot read the committed offsets of group ${settings.groupId}: ${errorMessage(err)}`, { retriable: true, cause: err });
    }
  }

  /** Runs `fn` with a connected admin client of its own (few retries: the callers report or retry themselves). */
  private async withAdmin<T>(fn: (admin: ReturnType<BatchConsumerOptions['kafka']['admin']>) => Promise<T>): Promise<T> {
    const admin = this.options.kafka.admin({ retry: { retries: 2 } });
    try {
      await admin.connect();
      return await fn(admin);
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  }

  /** The group's committed offset of each partition of the source topic that has one (-1, nothing committed, left out). */
  private async groupCommitted(admin: ReturnType<BatchConsumerOptions['kafka']['admin']>): Promise<Map<number, bigint>> {
    const { settings } = this.options;
    const [fetched] = await admin.fetchOffsets({ groupId: settings.groupId, topics: [settings.sourceTopic] });
    return new Map((fetched?.partitions ?? []).filter((p) => BigInt(p.offset) >= 0n).map((p) => [p.partition, BigInt(p.offset)]));
  }

  /**
   * Before the group is joined: compares the group's committed offsets with
   * the earliest offsets of the source topic. Where retention deleted records
   * the group had not read yet (the service was down, or behind, for longer
   * than the topic keeps records), kafkajs would silently resume at the
   * earliest record: say so (error log, `records_expired_unread_total`).
   * Best effort: a failed check is logged and consuming starts anyway.
   */
  private async reportExpired(): Promise<void> {
    const { settings, logger, metrics } = this.options;
    try {
      await this.withAdmin(async (admin) => {
        // A partition with nothing committed yet is left out: a new group starts where fromBeginning says; nothing of it was read before.
        const committed = await this.groupCommitted(admin);
        const earliest = new Map((await admin.fetchTopicOffsets(settings.sourceTopic)).map((o) => [o.partition, BigInt(o.low)]));
        for (const [partition, offset] of committed) {
          const low = earliest.get(partition);
          if (low === undefined || offset >= low) continue;
          const records = Number(low - offset);
          metrics.expiredUnread(records);
          logger.error(
            { topic: settings.sourceTopic, partition, committedOffset: String(offset), earliestOffset: String(low), records, group: settings.groupId },
            'records were deleted by the topic retention before this group read them; they are lost to this service (docs/topics.md, "Retention bounds the longest outage of a reader")',
          );
        }
      });
    } catch (err) {
      logger.warn({ err: errorMessage(err), topic: settings.sourceTopic }, 'could not compare the committed offsets with the earliest offsets; consuming anyway');
    }
  }

  /** Stops fetching, finishes and commits the batch in flight, leaves the group. */
  async stop(): Promise<void> {
    this.stopping.abort();
    clearInterval(this.owedTimer);
    await this.consumer.disconnect();
  }

  /**
   * Commits `offset` of a partition unless a later one was committed; a
   * failure leaves it owed, retried every OWED_RETRY_MS. kafkajs has already
   * moved its fetch position past the records it covers, so a commit given
   * up would leave the group's offset behind until the partition's next
   * batch: a quiet partition would read as a backlog for good.
   */
  private commitOwed(partition: number, offset: string): Promise<void> {
    const generation = this.generation;
    return this.commits.run(partition, async () => {
      // Checked right before sending. kafkajs retries a failed commit inside the call, and a retry after a rebalance
      // goes out under the new generation: a small window in which an older offset can still land (see docs/alerts.md).
      if (generation !== this.generation || BigInt(offset) <= (this.committedUpTo.get(partition) ?? -1n)) return;
      try {
        await this.consumer.commitOffsets([{ topic: this.options.settings.sourceTopic, partition, offset }]);
        if (generation === this.generation) this.committed(partition, offset);
      } catch (err) {
        if (generation !== this.generation) return;
        this.owe(partition, offset);
        this.options.logger.warn({ partition, offset, err: errorMessage(err) }, `offset commit failed; retried every ${OWED_RETRY_MS / 1000} s until it succeeds`);
      }
    });
  }

  private committed(partition: number, offset: string, position = false): void {
    const at = BigInt(offset);
    if (position || at > (this.committedUpTo.get(partition) ?? -1n)) this.committedUpTo.set(partition, at);
    const owed = this.owed.get(partition);
    // A position commit settles any owed one: lower ones it covers, a higher one is stale (the position moved back).
    if (owed !== undefined && (position || BigInt(owed) <= at)) this.owed.delete(partition);
  }

  private owe(partition: number, offset: string): void {
    const owed = this.owed.get(partition);
    if (owed === undefined || BigInt(offset) > BigInt(owed)) this.owed.set(partition, offset);
  }

  private async payOwed(): Promise<void> {
    if (this.paying || !this.joined || this.stopping.signal.aborted) return;
    this.paying = true;
    try {
      for (const [partition, offset] of [...this.owed]) await this.commitOwed(partition, offset);
    } finally {
      this.paying = false;
    }
  }

  private async eachBatch({ batch, resolveOffset, heartbeat, isRunning, isStale, commitOffsetsIfNecessary }: EachBatchPayload): Promise<void> {
    const { topic, partition } = batch;
    const records = batch.messages.map((m) => toSourceRecord(topic, partition, m));
    this.options.logger.debug({ partition, records: records.length, firstOffset: batch.firstOffset(), highWatermark: batch.highWatermark }, 'batch fetched');
    const size = this.options.settings.batchSize;
    for (let start = 0; start < records.length; start += size) {
      if (this.stopping.signal.aborted || !isRunning() || isStale()) return;
      const chunk = records.slice(start, start + size);
      const began = performance.now();
      const deadLettered = await this.settle(chunk, heartbeat);
      if (deadLettered === undefined) return;
      const last = chunk[chunk.length - 1]!.offset;
      resolveOffset(last);
      // The last chunk commits past the control records that end the fetch (a transaction's marker), if any.
      const fetchEnd = BigInt(batch.lastOffset());
      const upTo = start + size >= records.length && fetchEnd > BigInt(last) ? fetchEnd : BigInt(last);
      const next = (upTo + 1n).toString();
      if (this.commitMode === 'consumer') {
        // The batch's own commit function: consumer.commitOffsets() is a silent no-op once stop() began (kafkajs 2.2.4),
        // which would lose the commit of exactly the batch a graceful shutdown finishes.
        const commit = () => commitOffsetsIfNecessary({ topics: [{ topic, partitions: [{ partition, offset: next }] }] });
        const generation = this.generation;
        if (!(await this.commits.run(partition, () => this.commit(commit, partition, next, heartbeat)))) {
          if (generation === this.generation) this.owe(partition, next);
          return;
        }
        // The batch's own commit is where the partition stands (also below an earlier mark, after a seek or reset).
        if (generation === this.generation) this.committed(partition, next, true);
      }
      this.options.metrics.batchCommitted(chunk.length, deadLettered, (performance.now() - began) / 1000);
      if ((this.options.freshness ?? 'consumer') === 'consumer') this.options.metrics.recordsStored(chunk);
      this.options.logger.debug({ partition, firstOffset: chunk[0]!.offset, lastOffset: last, records: chunk.length, deadLettered }, 'batch committed');
      this.options.metrics.lagAfterCommit(partition, Number(BigInt(batch.highWatermark) - BigInt(next)));
      if (start + size < records.length) {
        // A large fetch is several chunks: stay in the group between them (kafkajs sends at most one per heartbeatInterval).
        try {
          await heartbeat();
        } catch (err) {
          this.options.logger.warn({ err: errorMessage(err), partition, nextOffset: next }, 'heartbeat failed between chunks (rebalance?); the rest of the fetch is left to the partition\'s owner');
          return;
        }
      }
    }
  }

  /** Handles a batch and dead-letters what it refused; the number of dead letters, or undefined when abandoned. */
  private async settle(chunk: SourceRecord[], heartbeat: () => Promise<void>): Promise<number | undefined> {
    const { handler, dlq, metrics, logger, settings } = this.options;
    const signal = this.stopping.signal;
    const where = { partition: chunk[0]!.partition, firstOffset: chunk[0]!.offset, lastOffset: chunk[chunk.length - 1]!.offset };
    const retrying = (stage: RetryStage) => async (err: unknown, attempt: number, delayMs: number) => {
      metrics.retried(stage);
      logger.warn({ stage, attempt, delayMs, code: isAuditlineError(err) ? err.code : undefined, err: errorMessage(err), ...where }, 'retriable failure; retrying the batch without committing');
      await heartbeatOrAbandon(heartbeat, logger, where);
    };
    try {
      const { deadLetters, published } = await retryRetriable(() => handler(chunk, { signal, heartbeat }), {
        backoff: settings.retry,
        signal,
        isRetriable: (err) => !(err instanceof BatchAbandonedError),
        onRetry: retrying('handle'),
      });
      if (deadLetters.length > 0) {
        if (this.commitMode === 'consumer' && !published) {
          // A settled batch on a graceful shutdown: its dead letters are still tried once, so the batch can be committed.
          await retryRetriable(() => dlq.publish(deadLetters), { backoff: settings.retry, signal, firstAttemptWhenStopped: true, onRetry: retrying('dead_letter') });
        }
        for (const letter of deadLetters) {
          metrics.deadLettered(letter.code);
          logger.warn({ partition: letter.record.partition, offset: letter.record.offset, code: letter.code, reason: letter.reason, dlq: dlq.topic }, 'record dead-lettered');
        }
      }
      return deadLetters.length;
    } catch (err) {
      if (err instanceof StoppedError || err instanceof BatchAbandonedError) {
        logger.info({ ...where }, 'batch left uncommitted; it will be delivered again');
        return undefined;
      }
      throw err;
    }
  }

  /** Commits `offset` (the next one to read); false when the commit failed for good (the records are then redelivered). */
  private async commit(commit: () => Promise<void>, partition: number, offset: string, heartbeat: () => Promise<void>): Promise<boolean> {
    const { metrics, logger, settings } = this.options;
    try {
      await retryRetriable(commit, {
        backoff: { initialMs: settings.retry.initialMs, maxMs: settings.retry.initialMs * 4 },
        isRetriable: () => true,
        onRetry: async (err, attempt) => {
          metrics.retried('commit');
          logger.warn({ partition, offset, attempt, err: errorMessage(err) }, 'offset commit failed; retrying');
          if (attempt >= 3) throw err;
          await heartbeat();
        },
      });
      return true;
    } catch (err) {
      logger.error({ partition, offset, err: errorMessage(err) }, `offset commit failed; retried every ${OWED_RETRY_MS / 1000} s until it succeeds (a restart before that handles the batch again, idempotently)`);
      return false;
    }
  }
}

function toSourceRecord(topic: string, partition: number, m: KafkaMessage): SourceRecord {
  return { topic, partition, offset: m.offset, key: m.key ?? null, value: m.value ?? null, headers: m.headers ?? {}, timestamp: m.timestamp };
}
