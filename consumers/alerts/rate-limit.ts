import { sleep, StoppedError } from '../../core/service/index.js';

/** What the bucket measures and waits with: a monotonic clock in ms and an abortable sleep (resolves false when aborted). */
export interface BucketClock {
  now(): number;
  sleep(ms: number, signal: AbortSignal): Promise<boolean>;
}

const systemClock: BucketClock = { now: () => performance.now(), sleep };

/** A token bucket: `perMinute` requests a minute on average, bursts of `burst`. */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private readonly perMinute: number,
    private readonly burst = Math.max(1, Math.floor(perMinute / 10)),
    private readonly clock: BucketClock = systemClock,
  ) {
    this.tokens = this.burst;
    this.last = clock.now();
  }

  /** Waits for a token; `onWait` runs between waits (heartbeats). Throws StoppedError when `signal` aborts. */
  async take(signal: AbortSignal, onWait: () => Promise<void> = async () => undefined): Promise<void> {
    for (;;) {
      const now = this.clock.now();
      this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) * this.perMinute) / 60_000);
      this.last = now;
      if (this.tokens >= 1) {
        this.tokens -= 1;
        return;
      }
      const waitMs = Math.ceil(((1 - this.tokens) * 60_000) / this.perMinute);
      if (!(await this.clock.sleep(Math.min(waitMs, 1_000), signal))) throw new StoppedError();
      await onWait();
    }
  }
}
