import { type Consumer, type EachBatchPayload, type Producer } from 'kafkajs';
import type { createKafka } from '../../core/clients/kafka.js';
import { errorMessage, isAuditlineError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import { backoffDelay, sleep, StoppedError, type DlqPublisher, type SourceRecord } from '../../core/service/index.js';
import type { Alert } from './alert.js';
import type { Channel } from './channels.js';
import type { AlertsMetrics } from './metrics.js';
import { TokenBucket } from './rate-limit.js';
import type { TargetPolicy } from './ssrf.js';
import type { AlertStore, DeliveryAttempt } from './store.js';
import { postAlert, type PostResult } from './webhook.js';
import { Murmur2Partitioner } from '../../core/clients/partitioner.js';
import { RetryHolds } from './retry-holds.js';

/** The head of a channel's queue is not due for `waitMs` yet. */
class NotDueYet extends Error {
  constructor(readonly waitMs: number) {
    super(`not due for ${waitMs} ms`);
  }
}

/** One pending delivery of an alert to one channel: a record of the outbox topic (key = channel). */
export interface OutboxEntry {
  alert: Alert;
  channel: string;
  /** 1 for the first try. */
  attempt: number;
  /** Epoch ms of the first try: the retry horizon counts from here. */
  first_at: number;
  /** Not before this epoch ms. */
  due_at: number;
  last_error?: string;
}

/**
 * An outbox record's entry, or undefined when it is not one: JSON with an
 * alert id, a channel, a whole attempt number of at least 1 and finite epoch
 * times. A record without them (written by something else) would make the
 * backoff NaN and be retried at once, for good; it is dead-lettered instead.
 */
export function parseOutboxEntry(value: Buffer | null): OutboxEntry | undefined {
  let entry: Partial<OutboxEntry>;
  try {
    entry = JSON.parse(value?.toString('utf8') ?? '') as Partial<OutboxEntry>;
  } catch {
    return undefined;
  }
  if (typeof entry !== 'object' || entry === null) return undefined;
  if (typeof entry.alert?.alert_id !== 'string' || typeof entry.channel !== 'string') return undefined;
  if (!Number.isSafeInteger(entry.attempt) || entry.attempt! < 1) return undefined;
  if (!Number.isFinite(entry.first_at) || !Number.isFinite(entry.due_at)) return undefined;
  return entry as OutboxEntry;
}

/** The outbox records of a fired alert, one per channel. */
export function outboxMessages(alert: Alert, now: number): { key: string; value: string }[] {
  return alert.channels.map((channel) => ({ key: channel, value: JSON.stringify({ alert, channel, attempt: 1, first_at: now, due_at: now } satisfies OutboxEntry) }));
}

export interface DeliveryOptions {
  kafka: ReturnType<typeof createKafka>;
  groupId: string;
  outboxTopic: string;
  fromBeginning: boolean;
  channels: ReadonlyMap<string, Channel>;
  policy: TargetPolicy;
  store: Pick<AlertStore, 'recordAttempts'>;
  dlq: Pick<DlqPublisher, 'publish'>;
  metrics: AlertsMetrics;
  logger: Logger;
  horizonMs: number;
  backoff: { initialMs: number; maxMs: number };
  timeoutMs: number;
  sessionTimeoutMs: number;
}

/**
 * Delivers the outbox (docs/alerts.md, "Delivery"): each record is tried
 * when due, within the channel's rate limit; a failure is written back to
 * the outbox as the next attempt (exponential backoff with jitter) before
 * the record's offset is committed, so pending deliveries survive restarts.
 * Past the horizon, or on a permanent refusal, the delivery goes to the
 * dead-letter topic with its last error. A channel's queue keeps its order
 * across a failure: the channel's records queued behind the failed one are
 * appended again behind its retry (RetryHolds), the other channels' records
 * go on. At least once: a crash between the POST and the commit repeats the
 * POST with the same idempotency id.
 */
export class DeliveryWorker {
  private readonly consumer: Consumer;
  private readonly producer: Producer;
  private readonly stopping = new AbortController();
  private readonly buckets = new Map<string, TokenBucket>();
  /** Timers that resume a partition paused until its head record is due. */
  private readonly resumeTimers = new Set<NodeJS.Timeout>();
  /** Channels with a retry pending, per partition: their later records go behind it. */
  private readonly holds = new RetryHolds();
  private joined = false;
  private fail: (err: Error) => void = () => undefined;
  /** Settles when the delivery consumer crashed and kafkajs gave up restarting it (the service then exits, like its other stages). */
  readonly failed: Promise<Error> = new Promise((resolve) => (this.fail = resolve));

  constructor(private readonly o: DeliveryOptions) {
    this.consumer = o.kafka.consumer({ groupId: o.groupId, sessionTimeout: o.sessionTimeoutMs, heartbeatInterval: 1_000, maxWaitTimeInMs: 20, allowAutoTopicCreation: false });
    this.producer = o.kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false, createPartitioner: Murmur2Partitioner });
    const { GROUP_JOIN, DISCONNECT, STOP, CRASH } = this.consumer.events;
    this.consumer.on(GROUP_JOIN, () => (this.joined = true));
    this.consumer.on(DISCONNECT, () => (this.joined = false));
    this.consumer.on(STOP, () => (this.joined = false));
    this.consumer.on(CRASH, ({ payload }) => {
      this.joined = false;
      o.logger.error({ err: errorMessage(payload.error), restart: payload.restart }, 'delivery consumer crashed');
      if (!payload.restart) this.fail(payload.error);
    });
    for (const c of o.channels.values()) this.buckets.set(c.name, new TokenBucket(c.ratePerMinute));
  }

  get isJoined(): boolean {
    return this.joined;
  }

  async start(): Promise<void> {
    await this.producer.connect();
    await this.consumer.connect();
    await this.consumer.subscribe({ topics: [this.o.outboxTopic], fromBeginning: this.o.fromBeginning });
    await this.consumer.run({ autoCommit: false, eachBatchAutoResolve: false, partitionsConsumedConcurrently: 4, eachBatch: (p) => this.eachBatch(p) });
  }

  async stop(): Promise<void> {
    this.stopping.abort();
    for (const t of this.resumeTimers) clearTimeout(t);
    this.resumeTimers.clear();
    await this.consumer.disconnect().catch(() => undefined);
    await this.producer.disconnect().catch(() => undefined);
  }

  private async eachBatch({ batch, resolveOffset, heartbeat, isRunning, isStale, commitOffsetsIfNecessary, pause }: EachBatchPayload): Promise<void> {
    const { topic, partition } = batch;
    const signal = this.stopping.signal;
    const alive = () => !signal.aborted && isRunning() && !isStale();
    for (const m of batch.messages) {
      if (!alive()) return;
      const record: SourceRecord = { topic, partition, offset: m.offset, key: m.key ?? null, value: m.value ?? null, headers: m.headers ?? {}, timestamp: m.timestamp };
      this.holds.see(partition, m.offset);
      try {
        await this.handle(record, heartbeat, alive);
      } catch (err) {
        if (err instanceof StoppedError) return;
        if (err instanceof NotDueYet) {
          // The channel's queue (this partition) waits for its head, unresolved: it is fetched again once resumed.
          // Paused rather than slept on, so the fetch goes on for the other partitions: one channel in backoff
          // does not hold back the alerts of the others.
          this.resumeLater(pause(), err.waitMs);
          return;
        }
        // Kafka or the DLQ unavailable: leave the record uncommitted; it is handled again after the retry.
        this.o.logger.warn({ partition, offset: m.offset, err: errorMessage(err) }, 'delivery bookkeeping failed; retrying the record');
        // Returning without resolving the offset makes kafkajs fetch the record again.
        await sleep(this.o.backoff.initialMs, signal);
        return;
      }
      resolveOffset(m.offset);
      // Not past a failed record while records of its channel are still being moved behind its retry (RetryHolds).
      const offset = this.holds.commitOffset(partition, (BigInt(m.offset) + 1n).toString());
      await commitOffsetsIfNecessary({ topics: [{ topic, partitions: [{ partition, offset }] }] });
      try {
        await heartbeat();
      } catch (err) {
        // The group is rebalancing, or dropped this member: the rest of the batch is left, uncommitted, to the
        // partition's owner (this member again if it keeps it). Going on would POST records another member may
        // deliver too, and hold up the rebalance of the whole group meanwhile.
        this.o.logger.warn({ partition, offset, err: errorMessage(err) }, 'heartbeat refused (rebalance?); the rest of the batch is left to the partition\'s owner');
        return;
      }
    }
  }

  private async handle(record: SourceRecord, heartbeat: () => Promise<void>, alive: () => boolean): Promise<void> {
    const { logger, metrics } = this.o;
    const entry = parseOutboxEntry(record.value);
    if (!entry) {
      await this.o.dlq.publish([{ record, code: 'ALERT_DELIVERY_FAILED', reason: 'outbox record is not a delivery (JSON with alert id, channel, attempt >= 1, first_at and due_at)' }]);
      return;
    }
    const channel = this.o.channels.get(entry.channel);
    if (!channel) {
      await this.deadLetter(record, entry, `channel ${entry.channel} is no longer configured`, 0, 0);
      return;
    }
    if (this.holds.held(record.partition, channel.name, record.offset)) {
      // Queued behind a delivery of its channel that failed: it goes behind that delivery's retry, as it is.
      await this.append(record.partition, channel.name, record.value!.toString('utf8'));
      logger.debug({ channel: channel.name, alertId: entry.alert.alert_id, offset: record.offset }, 'delivery moved behind the pending retry of its channel');
      return;
    }
    // Not due yet: the partition (one channel's queue, in order) waits for it, paused (eachBatch). No record this
    // service writes is due later than one backoff ceiling after it was written: a later due time (a record from
    // elsewhere, or a clock jump) is capped there, so it cannot hold the channel's queue for good.
    const dueAt = Math.min(entry.due_at, Number(record.timestamp) + this.o.backoff.maxMs);
    if (Date.now() < dueAt) throw new NotDueYet(dueAt - Date.now());
    // A heartbeat refused while waiting for the rate limit: the partition may be another member's by now; not POSTed.
    await this.buckets.get(channel.name)!.take(this.stopping.signal, () =>
      heartbeat().catch((err: unknown) => {
        logger.warn({ partition: record.partition, offset: record.offset, err: errorMessage(err) }, 'heartbeat refused (rebalance?) while waiting for the rate limit; the record is left to the partition\'s owner');
        throw new StoppedError();
      }),
    );
    if (!alive()) throw new StoppedError();
    const began = performance.now();
    let result: PostResult;
    // The request may take up to the delivery timeout, longer than the session timeout allows: the member
    // heartbeats meanwhile, or the group would take the partition away and deliver the record again.
    const beating = setInterval(() => void heartbeat().catch(() => undefined), 1_000);
    try {
      result = await postAlert(channel, entry.alert, this.o.policy, this.o.timeoutMs);
    } catch (err) {
      if (isAuditlineError(err, 'SSRF_REFUSED')) {
        metrics.ssrfRefused(channel.name);
        logger.error({ channel: channel.name, alertId: entry.alert.alert_id, code: err.code }, err.message);
        await this.deadLetter(record, entry, err.message, 0, performance.now() - began);
        return;
      }
      result = { status: 0, ok: false, permanent: false, error: isAuditlineError(err) ? err.message : `error ${errorMessage(err)}` };
    } finally {
      clearInterval(beating);
    }
    const latencyMs = performance.now() - began;
    const now = Date.now();
    if (result.ok) {
      metrics.delivered(channel.name, (now - entry.alert.fired_at) / 1000);
      await this.record({ attemptedAt: now, alertId: entry.alert.alert_id, channel: channel.name, attempt: entry.attempt, outcome: 'delivered', httpStatus: result.status, error: '', latencyMs });
      return;
    }
    const delay = backoffDelay(entry.attempt, this.o.backoff);
    if (result.permanent || now + delay > entry.first_at + this.o.horizonMs) {
      await this.deadLetter(record, entry, result.permanent ? `refused with ${result.error}` : `retry horizon passed; last error: ${result.error}`, result.status, latencyMs);
      return;
    }
    const next: OutboxEntry = { ...entry, attempt: entry.attempt + 1, due_at: now + delay, last_error: result.error };
    const retryOffset = await this.append(record.partition, channel.name, JSON.stringify(next));
    this.holds.hold(record.partition, channel.name, record.offset, retryOffset);
    metrics.deliveryFailed(channel.name);
    logger.warn({ channel: channel.name, alertId: entry.alert.alert_id, attempt: entry.attempt, status: result.status, error: result.error, retryInMs: delay }, 'webhook delivery failed; retry scheduled');
    await this.record({ attemptedAt: now, alertId: entry.alert.alert_id, channel: channel.name, attempt: entry.attempt, outcome: 'failed', httpStatus: result.status, error: result.error, latencyMs });
  }

  /** Appends an outbox record to the partition the channel's queue is read from; returns its offset. */
  private async append(partition: number, channel: string, value: string): Promise<string> {
    const [meta] = await this.producer.send({ topic: this.o.outboxTopic, acks: -1, messages: [{ partition, key: channel, value }] });
    if (meta?.baseOffset === undefined) throw new Error(`no offset for the outbox record appended to partition ${partition}`);
    return meta.baseOffset;
  }

  private resumeLater(resume: () => void, waitMs: number): void {
    const timer = setTimeout(() => {
      this.resumeTimers.delete(timer);
      if (!this.stopping.signal.aborted) resume();
    }, waitMs);
    this.resumeTimers.add(timer);
  }

  private async deadLetter(record: SourceRecord, entry: OutboxEntry, reason: string, status: number, latencyMs: number): Promise<void> {
    await this.o.dlq.publish([{ record, code: 'ALERT_DELIVERY_FAILED', reason: `alert ${entry.alert.alert_id} to channel ${entry.channel} after ${entry.attempt} attempt(s): ${reason}` }]);
    this.o.metrics.deadLettered(entry.channel);
    this.o.logger.error({ channel: entry.channel, alertId: entry.alert.alert_id, attempt: entry.attempt }, `alert delivery dead-lettered: ${reason}`);
    await this.record({ attemptedAt: Date.now(), alertId: entry.alert.alert_id, channel: entry.channel, attempt: entry.attempt, outcome: 'dead_lettered', httpStatus: status, error: reason.slice(0, 500), latencyMs });
  }

  /** Attempt records are bookkeeping: a ClickHouse outage is logged, it does not hold deliveries back. */
  private async record(attempt: DeliveryAttempt): Promise<void> {
    await this.o.store.recordAttempts([attempt]).catch((err: unknown) => this.o.logger.warn({ alertId: attempt.alertId, err: errorMessage(err) }, 'cannot record the delivery attempt'));
  }
}
