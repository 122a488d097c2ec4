import { errorMessage, isAuditlineError } from '../core/errors.js';
import type { KafkaSender } from './kafka-sender.js';
import type { ProducerLogger } from './logger.js';
import type { ProducerMetrics } from './metrics.js';
import { Signal } from './signal.js';
import type { Spool, SpoolBatch } from './spool.js';

export interface ReplayerOptions {
  maxBatchEvents: number;
  maxBatchBytes: number;
  backoffMs: number;
  backoffMaxMs: number;
}

/**
 * Background loop that sends the spool to Kafka in the order it was
 * written, one batch at a time, and commits each batch once Kafka
 * acknowledged it. A failed send waits (backoff doubling up to a maximum)
 * and retries the same batch: nothing is skipped. A record Kafka refuses
 * for good is isolated and moved to a rejected-*.spool file, logged and
 * counted, so it cannot block the records behind it.
 */
export class SpoolReplayer {
  private readonly data = new Signal();
  private readonly kick = new Signal();
  private readonly progress = new Signal();
  private backoff: number;
  private failures = 0;
  private single = false;
  private stopped = false;
  private loop: Promise<void> | undefined;

  constructor(
    private readonly spool: Spool,
    private readonly sender: KafkaSender,
    private readonly options: ReplayerOptions,
    private readonly metrics: ProducerMetrics,
    private readonly logger: ProducerLogger,
  ) {
    this.backoff = options.backoffMs;
  }

  start(): void {
    this.loop ??= this.run();
  }

  /** New records were appended. */
  wake(): void {
    this.data.notify();
  }

  /**
   * Tries now (skipping any backoff) and resolves when the events spooled
   * before this call were acknowledged (events spooled later are not
   * waited for: under steady traffic the spool may never run empty), when
   * an attempt made after this call failed, or after `timeoutMs`.
   */
  async drain(timeoutMs: number): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    const failuresBefore = this.failures;
    const target = this.spool.acknowledgedEvents + this.spool.pendingEvents;
    this.kick.notify();
    this.data.notify();
    while (this.spool.acknowledgedEvents < target && this.failures === failuresBefore && !this.stopped) {
      const left = deadline - performance.now();
      if (left <= 0) return;
      await this.progress.wait(left);
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.data.notify();
    this.kick.notify();
    await this.loop;
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      if (this.spool.pendingEvents === 0) {
        this.progress.notify();
        await this.data.wait();
        continue;
      }
      let batch: SpoolBatch | null = null;
      try {
        batch = await this.spool.read(this.single ? 1 : this.options.maxBatchEvents, this.options.maxBatchBytes);
        if (!batch) {
          await this.data.wait(100);
          continue;
        }
        await this.sender.send(batch.records);
        await this.spool.commit(batch);
        this.metrics.delivered(batch.records.length, 'replay');
        this.metrics.spooled(-batch.records.length);
        this.single = false;
        this.backoff = this.options.backoffMs;
        this.progress.notify();
      } catch (err) {
        if (batch && isAuditlineError(err, 'AUDIT_REJECTED')) {
          await this.isolate(batch, err);
          continue;
        }
        this.failures += 1;
        this.metrics.sendFailed(!isAuditlineError(err) || err.retriable);
        this.progress.notify();
        this.logger.warn({ spooledEvents: this.spool.pendingEvents, retryInMs: this.backoff, error: errorMessage(err) }, 'replay of spooled audit events failed; will retry');
        if (this.stopped) break;
        await this.kick.wait(this.backoff, { unref: true });
        this.backoff = Math.min(this.backoff * 2, this.options.backoffMaxMs);
      }
    }
  }

  private async isolate(batch: SpoolBatch, err: unknown): Promise<void> {
    if (batch.records.length > 1) {
      // Retry record by record until the refused one is found.
      this.single = true;
      return;
    }
    try {
      const file = await this.spool.quarantine(batch);
      this.metrics.lost(1, 'rejected');
      this.metrics.spooled(-1);
      this.logger.error({ file, error: errorMessage(err) }, 'Kafka refused a spooled audit event; moved it to a rejected file');
      this.progress.notify();
    } catch (moveErr) {
      this.logger.error({ error: errorMessage(moveErr) }, 'cannot move a refused audit event out of the spool');
      await this.kick.wait(this.backoff, { unref: true });
    }
    this.single = false;
  }
}
