import { sleep, StoppedError } from '../../core/service/index.js';

/** A token bucket: `perMinute` requests a minute on average, bursts of `burst`. */
export class TokenBucket {
  private tokens: number;
  private last = performance.now();

  constructor(
    private readonly perMinute: number,
    private readonly burst = Math.max(1, Math.floor(perMinute / 10)),
  ) {
    this.tokens = this.burst;
  }

  /** Waits for a token; `onWait` runs between waits (heartbeats). Throws StoppedError when `signal` aborts. */
  async take(signal: AbortSignal, onWait: () => Promise<void> = async () => undefined): Promise<void> {
    for (;;) {
      const now = performance.now();
      this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) * this.perMinute) / 60_000);
      this.last = now;
      if (this.tokens >= 1) {
        this.tokens -= 1;
        return;
      }
      const waitMs = Math.ceil(((1 - this.tokens) * 60_000) / this.perMinute);
      if (!(await sleep(Math.min(waitMs, 1_000), signal))) throw new StoppedError();
      await onWait();
    }
  }
}
