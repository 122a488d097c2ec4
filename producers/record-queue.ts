import type { Deferred } from './signal.js';
import type { SpoolRecord } from './spool-format.js';

/** Where an event ended up when its acknowledgement settled. */
export type Settlement = 'delivered' | 'spooled';

/** One encoded event waiting for delivery. */
export interface QueuedRecord {
  record: SpoolRecord;
  /** Its size as the send limits count it (recordBytes: value, key, headers). */
  bytes: number;
  /** Monotonic milliseconds, for the linger timer. */
  enqueuedAt: number;
  ack: Deferred<Settlement>;
  eventId: string;
  executionId: string;
}

/**
 * FIFO of encoded events with a memory bound. Events beyond maxEvents /
 * maxBytes wait in line, unbatched, until earlier ones were delivered; their
 * callers' promises stay pending meanwhile, which is the backpressure. The
 * line itself is bounded too (maxWaiting): calls that are not awaited, or
 * very many concurrent executions, cannot grow memory without limit.
 * Order is never changed: waiting events are admitted first-in first-out.
 */
export class RecordQueue {
  private admitted: QueuedRecord[] = [];
  private admittedBytes = 0;
  private waiting: QueuedRecord[] = [];
  private pushedCount = 0;

  constructor(
    private readonly maxEvents: number,
    private readonly maxBytes: number,
    /** Events that may wait in line beyond the admitted ones; more are refused (push returns false). */
    private readonly maxWaiting: number = Number.POSITIVE_INFINITY,
  ) {}

  /** Queues the record; false (nothing queued) when the waiting line already holds maxWaiting events. */
  push(record: QueuedRecord): boolean {
    if (this.waiting.length >= this.maxWaiting) return false;
    this.waiting.push(record);
    this.pushedCount += 1;
    this.admit();
    return true;
  }

  /** Removes the oldest admitted events, at most maxEvents and maxBytes (always at least one). */
  take(maxEvents: number, maxBytes: number): QueuedRecord[] {
    let count = 0;
    let bytes = 0;
    while (count < this.admitted.length && count < maxEvents) {
      const next = this.admitted[count]!;
      if (count > 0 && bytes + next.bytes > maxBytes) break;
      bytes += next.bytes;
      count += 1;
    }
    const batch = this.admitted.splice(0, count);
    this.admittedBytes -= bytes;
    this.admit();
    return batch;
  }

  /** Events ever queued (refused pushes not counted): take() hands them out in this order. */
  get pushed(): number {
    return this.pushedCount;
  }

  /** Admitted events (those a batch may take). */
  get size(): number {
    return this.admitted.length;
  }

  get bytes(): number {
    return this.admittedBytes;
  }

  /** Events held in memory, admitted or waiting. */
  get total(): number {
    return this.admitted.length + this.waiting.length;
  }

  get oldest(): QueuedRecord | undefined {
    return this.admitted[0];
  }

  private admit(): void {
    while (this.waiting.length > 0) {
      const next = this.waiting[0]!;
      const fits = this.admitted.length < this.maxEvents && this.admittedBytes + next.bytes <= this.maxBytes;
      if (!fits && this.admitted.length > 0) return;
      this.waiting.shift();
      this.admitted.push(next);
      this.admittedBytes += next.bytes;
    }
  }
}
