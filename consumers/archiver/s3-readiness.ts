import { errorMessage } from '../../core/errors.js';
import type { ObjectStore } from './object-store.js';

/** Longest wait for the bucket's HEAD in a readiness probe: a probe must answer in time, whatever S3 does. */
export const S3_PROBE_TIMEOUT_MS = 3_000;
/** How long one probe's outcome answers /readyz: probes from several checkers within it cost S3 one request. */
export const S3_PROBE_TTL_MS = 5_000;

/**
 * The S3 check of the archiver's /readyz: a HEAD of the archive bucket, bounded by S3_PROBE_TIMEOUT_MS and reused
 * for S3_PROBE_TTL_MS (a probe still running is shared). It fails while the endpoint does not answer, the
 * credentials are refused or expired, or the bucket is missing; uploads retry forever in all of these cases, so
 * without it the archiver reported ready while archiving nothing. A HEAD rather than the last upload's outcome:
 * an idle archiver uploads nothing, and would report the outcome of an upload minutes old.
 */
export class S3Readiness {
  private last: { at: number; outcome: Promise<{ ok: boolean; detail?: string }> } | undefined;

  constructor(
    private readonly store: Pick<ObjectStore, 'probe'>,
    private readonly options: { timeoutMs: number; ttlMs: number; now: () => number } = { timeoutMs: S3_PROBE_TIMEOUT_MS, ttlMs: S3_PROBE_TTL_MS, now: Date.now },
  ) {}

  check(): Promise<{ ok: boolean; detail?: string }> {
    const now = this.options.now();
    if (this.last && now - this.last.at < this.options.ttlMs) return this.last.outcome;
    const outcome = this.store.probe(AbortSignal.timeout(this.options.timeoutMs)).then(
      () => ({ ok: true }),
      (err: unknown) => ({ ok: false, detail: errorMessage(err) }),
    );
    this.last = { at: now, outcome };
    return outcome;
  }
}
