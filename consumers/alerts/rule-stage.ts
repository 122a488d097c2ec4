import type { Producer } from 'kafkajs';
import { AuditlineError, errorMessage } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import { SerialByKey, type BatchHandler, type DeadLetter, type DlqPublisher } from '../../core/service/index.js';
import type { Alert } from './alert.js';
import { outboxMessages } from './delivery.js';
import { PartitionEngine } from './engine.js';
import type { AlertsMetrics } from './metrics.js';
import type { Rule } from './rules.js';
import type { Signal } from './signals.js';
import type { AlertStore, Checkpoint } from './store.js';
import { thinned, type StageProgress } from './progress.js';
import { chunkBySize } from '../../core/clients/record-size.js';

/** A partition whose timers lag the wall clock by more than this is logged once (and again once back under a third). */
const LAG_LOG_MS = 30_000;

export interface RuleStageOptions {
  rules: readonly Rule[];
  store: Pick<AlertStore, 'loadState' | 'saveState' | 'recordFired'>;
  producer: Pick<Producer, 'send'>;
  /** Dead letters (malformed signals) are published here before the checkpoint that passes them is persisted. */
  dlq: Pick<DlqPublisher, 'publish'>;
  outboxTopic: string;
  idleTtlMs: number;
  linkBase?: string;
  metrics?: AlertsMetrics;
  logger: Logger;
  now?: () => number;
  /**
   * Where the stages stand (StageProgressReader): the timers' clock (see
   * tick). Without it, the timers run on the wall clock.
   */
  progress?: () => Promise<StageProgress>;
  /**
   * Timers fire this long after their deadline by that clock (default 0).
   * The end offsets a reading compares are the last stable offsets: records
   * behind an open transaction of a tokenizer instance that died are not in
   * them until the transaction is aborted (its timeout), so the clock can
   * pass their publish time before they are read.
   */
  graceMs?: number;
}

interface Loaded {
  engine: PartitionEngine;
  checkpoint: Checkpoint;
  /** The timers' clock: every signal of an event published before this wall time has been applied (-Infinity: not known yet). */
  clock: number;
}

/**
 * Stage 2 (signals topic): the rule state of each owned partition, restored
 * from ClickHouse on first use after an assignment, advanced by signals
 * (handler) and by the clock (tick). Every change is persisted as: outbox
 * records (the alerts to deliver), alerts_fired rows, then the changed state
 * entries together with the partition's next offset in one insert. A
 * failure drops the partition's in-memory state; the retry restores it.
 * Per partition, handler and tick run one at a time.
 */
export class RuleStage {
  private readonly rules: ReadonlyMap<string, Rule>;
  private readonly states = new Map<number, Promise<Loaded>>();
  /** Per partition, handler batches and ticks one at a time. */
  private readonly locks = new SerialByKey<number>();
  private owned = new Set<number>();
  private ticking = false;
  /** Progress readings: the source read up to `asOf`, with the signals end offsets that cover it. Oldest first. */
  private readings: { asOf: number; signalsEnd: ReadonlyMap<number, bigint>; signalsLow: ReadonlyMap<number, bigint> }[] = [];
  private progressFailing = false;
  /** Partitions whose timers lag the wall clock by more than LAG_LOG_MS (logged once each way). */
  private readonly behind = new Set<number>();

  constructor(private readonly o: RuleStageOptions) {
    this.rules = new Map(o.rules.map((r) => [r.name, r]));
  }

  private get now(): number {
    return (this.o.now ?? Date.now)();
  }

  /**
   * After a rebalance: forget every partition's state and restore the
   * assigned ones from the store in the background. Also those this member
   * kept: it may have lost them meanwhile (evicted after a missed session
   * timeout, then rejoined) while another member moved their state and
   * checkpoint on; its memory of them would be stale.
   */
  assign(partitions: readonly number[]): void {
    this.owned = new Set(partitions);
    this.states.clear();
    for (const p of [...this.behind]) if (!this.owned.has(p)) this.behind.delete(p);
    for (const p of partitions) void this.locks.run(p, () => this.state(p)).catch((err: unknown) => this.o.logger.warn({ partition: p, err: errorMessage(err) }, 'rule state not restored yet; retried on use'));
  }

  handler(): BatchHandler {
    return async (records) => {
      const partition = records[0]!.partition;
      return this.locks.run(partition, async () => {
        const st = await this.state(partition);
        const pending = records.filter((r) => BigInt(r.offset) >= BigInt(st.checkpoint.nextOffset));
        if (pending.length === 0) return { deadLetters: [] };
        const deadLetters: DeadLetter[] = [];
        const signals: Signal[] = [];
        for (const record of pending) {
          try {
            const signal = JSON.parse(record.value?.toString('utf8') ?? '') as Signal;
            if (typeof signal.rule !== 'string' || typeof signal.key !== 'string') throw new Error('shape');
            signals.push(signal);
          } catch {
            deadLetters.push({ record, code: 'DECODE_FAILED', reason: 'signal record is not JSON with rule and key' });
          }
        }
        // The checkpoint passes the dead-lettered records: once it is stored, a redelivered batch skips them, so
        // they must be in the DLQ first (a crash in between only publishes them twice). And before the signals
        // change the state: a failed publish retries the batch against the state as it was.
        await this.o.dlq.publish(deadLetters);
        const now = this.now;
        const alerts = signals.flatMap((signal) => st.engine.apply(signal, now));
        const next = (BigInt(records[records.length - 1]!.offset) + 1n).toString();
        await this.persist(partition, st, alerts, next);
        return { deadLetters, published: true };
      });
    };
  }

  /**
   * Evaluates the timers of every owned partition; a failing partition is
   * logged and retried on the next tick. Timers compare event times (a
   * deadline is start + within) with the partition's clock: the latest wall
   * time T such that every event in audit.events at T has been turned into
   * signals (the signal stage's committed offsets passed the end offsets
   * seen at T) and every one of those signals has been applied here (this
   * partition's checkpoint passed the signals end offsets read with it).
   * Caught up, it trails the wall clock by about a tick; while a backlog is
   * read (after downtime, however short) it stays where the backlog began,
   * so a finish still unread is not alerted as missing, and silences fire
   * once the backlog is read. Without readings it does not move.
   */
  async tick(): Promise<void> {
    if (this.ticking) return;
    this.ticking = true;
    try {
      await this.readProgress();
      for (const p of this.owned) {
        await this.locks.run(p, async () => {
          // Given away by a rebalance since the tick began: its new owner evaluates it.
          if (!this.owned.has(p)) return;
          const st = await this.state(p);
          const wall = this.now;
          const clock = this.o.progress ? this.advanceClock(p, st) : wall;
          this.noteLag(p, wall - clock);
          const alerts = st.engine.tick(wall, Math.min(wall, clock) - (this.o.graceMs ?? 0));
          await this.persist(p, st, alerts, st.checkpoint.nextOffset);
        }).catch((err: unknown) => this.o.logger.warn({ partition: p, err: errorMessage(err) }, 'timer evaluation failed; retried on the next tick'));
      }
      let entries = 0;
      for (const s of this.states.values()) entries += await s.then((l) => l.engine.size).catch(() => 0);
      this.o.metrics?.stateSize(entries);
    } finally {
      this.ticking = false;
    }
  }

  /** Adds a progress reading; a failed read is logged and adds none (the clocks then stand still). */
  private async readProgress(): Promise<void> {
    if (!this.o.progress) return;
    try {
      const { sourceAsOf, signalsEnd, signalsLow } = await this.o.progress();
      if (this.progressFailing) this.o.logger.info("the stages' offsets can be read again");
      this.progressFailing = false;
      if (sourceAsOf === undefined) return;
      const last = this.readings[this.readings.length - 1];
      if (last && last.asOf >= sourceAsOf) {
        // No newer time read: the reading stands (its end offsets already cover the signals), retention may have moved on.
        last.signalsLow = signalsLow;
        return;
      }
      this.readings.push({ asOf: sourceAsOf, signalsEnd, signalsLow });
      this.readings = thinned(this.readings, (r) => r.asOf);
    } catch (err) {
      // Once per outage, not once per tick.
      if (!this.progressFailing) this.o.logger.warn({ err: errorMessage(err) }, "cannot read the stages' offsets; the rule timers wait until they can be read");
      this.progressFailing = true;
    }
  }

  /** Moves the partition's clock to the newest reading whose signals its checkpoint has passed. */
  private advanceClock(partition: number, st: Loaded): number {
    const stored = BigInt(st.checkpoint.nextOffset);
    for (let i = this.readings.length - 1; i >= 0; i--) {
      const r = this.readings[i]!;
      // Signals deleted by retention before they were applied are gone: there is nothing to wait for below the first offset.
      const low = r.signalsLow.get(partition) ?? 0n;
      const checkpoint = stored > low ? stored : low;
      if (checkpoint < (r.signalsEnd.get(partition) ?? 0n)) continue;
      if (r.asOf > st.clock) st.clock = r.asOf;
      break;
    }
    return st.clock;
  }

  /** Logs when a partition's timers fall behind the wall clock by more than LAG_LOG_MS, and when they are back. */
  private noteLag(partition: number, lagMs: number): void {
    if (lagMs > LAG_LOG_MS && !this.behind.has(partition)) {
      this.behind.add(partition);
      this.o.logger.info({ partition, lagMs: Number.isFinite(lagMs) ? Math.round(lagMs) : null }, 'rule timers wait for a backlog of events or signals to be read');
    } else if (lagMs <= LAG_LOG_MS / 3 && this.behind.delete(partition)) {
      this.o.logger.info({ partition }, 'backlog read: rule timers are on time again');
    }
  }

  private async persist(partition: number, st: Loaded, alerts: Alert[], nextOffset: string): Promise<void> {
    const changes = st.engine.takeChanges();
    if (alerts.length === 0 && changes.length === 0 && nextOffset === st.checkpoint.nextOffset) return;
    try {
      const now = this.now;
      // The outbox first: delivery may start while the records and the state are written (both before the commit).
      // In runs the broker accepts: a tick after an outage can fire thousands of alerts at once, and one produce
      // request above the record limit was refused on every retry, so the partition's alerts were never written.
      for (const messages of chunkBySize(alerts.flatMap((a) => outboxMessages(a, now)))) await this.o.producer.send({ topic: this.o.outboxTopic, acks: -1, messages });
      const checkpoint = { nextOffset, version: st.checkpoint.version + 1 };
      await Promise.all([this.o.store.recordFired(alerts), this.o.store.saveState(partition, changes, checkpoint)]);
      st.checkpoint = checkpoint;
    } catch (err) {
      // The in-memory state is ahead of what is stored: restore it before the retry.
      this.states.delete(partition);
      if (err instanceof AuditlineError) throw err;
      throw new AuditlineError('KAFKA_UNAVAILABLE', `cannot write ${alerts.length} alerts to ${this.o.outboxTopic}: ${errorMessage(err)}`, { retriable: true, cause: err });
    }
    for (const a of alerts) {
      this.o.metrics?.fired(a.kind, a.severity);
      this.o.logger.info({ alertId: a.alert_id, rule: a.rule, kind: a.kind, severity: a.severity, channels: a.channels, partition }, 'alert fired');
    }
  }

  private state(partition: number): Promise<Loaded> {
    let s = this.states.get(partition);
    if (!s) {
      s = this.o.store.loadState(partition).then(({ checkpoint, entries }) => ({
        checkpoint,
        clock: Number.NEGATIVE_INFINITY,
        engine: new PartitionEngine(this.rules, { idleTtlMs: this.o.idleTtlMs, ...(this.o.linkBase ? { linkBase: this.o.linkBase } : {}), onSuppressed: () => this.o.metrics?.suppressed() }, entries),
      }));
      this.states.set(partition, s);
      s.catch(() => {
        if (this.states.get(partition) === s) this.states.delete(partition);
      });
    }
    return s;
  }
}
