import { AuditlineError, errorMessage } from '../../core/errors.js';

/** HTTP status of an AWS SDK error, if it got an answer. */
export function s3Status(err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
}

/** S3 error name (`NoSuchKey`, `InvalidObjectState`, ...). */
export function s3ErrorName(err: unknown): string {
  return (err as { name?: string }).name ?? '';
}

/** True for "this key (or version) does not exist". */
export function isNotFound(err: unknown): boolean {
  const name = s3ErrorName(err);
  return s3Status(err) === 404 || name === 'NotFound' || name === 'NoSuchKey' || name === 'NoSuchVersion';
}

/**
 * Always S3_UNAVAILABLE. Retriable for outages and throttling: no HTTP answer, a network error, 5xx, 429, SlowDown,
 * an error named as a timeout (also S3's 400 RequestTimeout). Not retriable for any other HTTP status (403 denied,
 * 400, 409, ...): the same request would get it again. The message names the operation and key, never content.
 */
export function s3Error(what: string, err: unknown): AuditlineError {
  const status = s3Status(err);
  const name = s3ErrorName(err);
  const retriable = status === undefined || status >= 500 || status === 429 || /ECONNREFUSED|ECONNRESET|EPIPE|Timeout|SlowDown/.test(`${name} ${errorMessage(err)}`);
  return new AuditlineError('S3_UNAVAILABLE', `${what} failed: ${name ? `${name}: ` : ''}${errorMessage(err)}`, { retriable, cause: err, details: { status } });
}
