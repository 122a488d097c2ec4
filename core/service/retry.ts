/**
 * Exponential backoff with jitter for retriable failures. A consumer that
 * retries never skips: it keeps the failed work and tries again until the
 * dependency answers or the service is asked to stop.
 */
export interface BackoffOptions {
  /** Delay before the first retry, in ms. */
  initialMs: number;
  /** Ceiling of the exponential delay, in ms. */
  maxMs: number;
  /** Growth per attempt. @default 2 */
  factor?: number;
}

/** Thrown by {@link retryRetriable} and {@link sleep} callers when the stop signal fired: the work was abandoned, not done. */
export class StoppedError extends Error {
  constructor(message = 'stopped while retrying') {
    super(message);
    this.name = 'StoppedError';
  }
}

/**
 * Delay before retry number `attempt` (1-based): "equal jitter", half of the
 * exponential delay fixed and half random, so that many instances retrying
 * after the same outage do not hit the dependency in lockstep while the
 * delay still grows.
 */
export function backoffDelay(attempt: number, options: BackoffOptions, random: () => number = Math.random): number {
  const exponential = Math.min(options.maxMs, options.initialMs * (options.factor ?? 2) ** Math.max(0, attempt - 1));
  return Math.round(exponential / 2 + (random() * exponential) / 2);
}

/** Waits `ms`; resolves false at once when `signal` aborts (true when the full delay passed). */
export function sleep(ms: number, signal?: AbortSignal): Promise<boolean> {
  if (signal?.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const done = (completed: boolean): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      resolve(completed);
    };
    const onAbort = (): void => done(false);
    const timer = setTimeout(() => done(true), ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export interface RetryOptions {
  backoff: BackoffOptions;
  /** Aborting it ends the retries with a StoppedError. */
  signal?: AbortSignal;
  /**
   * Make the first attempt even when the signal is already aborted (the
   * last step of work that is otherwise done, such as a settled batch's
   * dead letters during a graceful shutdown); only the retries stop.
   */
  firstAttemptWhenStopped?: boolean;
  /** Which errors are worth another try. @default every error */
  isRetriable?: (err: unknown) => boolean;
  /** Called before each wait, e.g. to log, count, or send a consumer heartbeat. Its error ends the retries. */
  onRetry?: (err: unknown, attempt: number, delayMs: number) => void | Promise<void>;
  /** Injected for tests. */
  random?: () => number;
}

/**
 * Runs `fn` until it succeeds. A retriable failure waits (backoff + jitter)
 * and tries again without limit; a non-retriable one is thrown at once.
 * When the signal aborts, no further attempt starts: StoppedError.
 */
export async function retryRetriable<T>(fn: (attempt: number) => Promise<T>, options: RetryOptions): Promise<T> {
  const isRetriable = options.isRetriable ?? (() => true);
  for (let attempt = 1; ; attempt++) {
    if (options.signal?.aborted && !(attempt === 1 && options.firstAttemptWhenStopped)) throw new StoppedError();
    try {
      return await fn(attempt);
    } catch (err) {
      if (!isRetriable(err)) throw err;
      if (options.signal?.aborted) throw new StoppedError();
      const delay = backoffDelay(attempt, options.backoff, options.random);
      await options.onRetry?.(err, attempt, delay);
      if (!(await sleep(delay, options.signal))) throw new StoppedError();
    }
  }
}
