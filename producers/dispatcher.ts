import type { QueuedRecord, RecordQueue } from './record-queue.js';
import { Signal } from './signal.js';

export interface DispatcherOptions {
  lingerMs: number;
  maxBatchEvents: number;
  maxBatchBytes: number;
}

/**
 * The batching loop: takes events from the queue in order and hands one
 * batch at a time to `deliver`, which settles every event's
 * acknowledgement. A batch leaves when it is full, when its oldest event
 * waited lingerMs, or at once during flush. One batch in flight at a time
 * keeps the order of events (and so of each execution) intact.
 */
export class Dispatcher {
  private readonly wakeup = new Signal();
  /** Notified whenever a batch was settled. */
  private readonly progress = new Signal();
  /** Events whose batch was handed over and settled, counted in queue order (RecordQueue.pushed). */
  private settled = 0;
  private flushing = 0;
  /** What the loop is waiting for, so that a push wakes it only when that push ends the wait. */
  private waitingFor: 'events' | 'linger' | undefined;
  private stopped = false;
  private loop: Promise<void> | undefined;

  constructor(
    private readonly queue: RecordQueue,
    private readonly options: DispatcherOptions,
    private readonly deliver: (batch: QueuedRecord[]) => Promise<void>,
    private readonly monotonic: () => number,
  ) {}

  start(): void {
    this.loop ??= this.run();
  }

  /**
   * Called after each push. Only the first event into an empty queue and
   * the one that fills a batch end a wait; waking the loop on every other
   * push would cost a timer and a promise per event.
   */
  wake(): void {
    if (this.waitingFor === 'events' || (this.waitingFor === 'linger' && this.full())) this.wakeup.notify();
  }

  /**
   * Resolves once every event queued so far was handed over and settled,
   * skipping the linger wait. Events queued after this call are not waited
   * for: under steady traffic from other workflows the queue may never run
   * empty, and a flush must still end.
   */
  async drain(): Promise<void> {
    const target = this.queue.pushed;
    this.flushing += 1;
    this.wakeup.notify();
    try {
      while (this.settled < target) await this.progress.wait();
    } finally {
      this.flushing -= 1;
    }
  }

  /** Delivers what is queued, then ends the loop. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.wakeup.notify();
    await this.loop;
  }

  private async run(): Promise<void> {
    for (;;) {
      if (this.queue.size === 0) {
        if (this.stopped) return;
        await this.waitFor('events');
        continue;
      }
      const waited = this.monotonic() - this.queue.oldest!.enqueuedAt;
      const lingerLeft = this.full() || this.flushing > 0 || this.stopped ? 0 : this.options.lingerMs - waited;
      if (lingerLeft > 0) {
        await this.waitFor('linger', lingerLeft);
        continue;
      }
      const batch = this.queue.take(this.options.maxBatchEvents, this.options.maxBatchBytes);
      try {
        await this.deliver(batch);
      } catch (err) {
        // deliver settles every acknowledgement itself; this only guards against a bug leaving callers hanging.
        for (const r of batch) r.ack.reject(err);
      } finally {
        this.settled += batch.length;
        this.progress.notify();
      }
    }
  }

  private full(): boolean {
    return this.queue.size >= this.options.maxBatchEvents || this.queue.bytes >= this.options.maxBatchBytes;
  }

  private async waitFor(what: 'events' | 'linger', ms?: number): Promise<void> {
    this.waitingFor = what;
    try {
      await this.wakeup.wait(ms);
    } finally {
      this.waitingFor = undefined;
    }
  }
}
