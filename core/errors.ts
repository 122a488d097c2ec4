/**
 * Typed errors shared by every Auditline module.
 *
 * Every error carries a stable `code` (documented in docs/errors.md), a
 * `retriable` flag and an optional `cause`. Retriability decides what a
 * consumer does with a record: retry with backoff (true) or dead-letter it
 * (false). Messages name ids, settings and offsets, never payload values.
 */
export type ErrorCode =
  | 'CONFIG_INVALID'
  | 'SCHEMA_INVALID'
  | 'SCHEMA_INCOMPATIBLE'
  | 'SCHEMA_NOT_FOUND'
  | 'REGISTRY_UNAVAILABLE'
  | 'ENCODE_FAILED'
  | 'DECODE_FAILED'
  | 'WIRE_FORMAT_INVALID'
  | 'KAFKA_UNAVAILABLE'
  | 'CLICKHOUSE_UNAVAILABLE'
  | 'MIGRATION_FAILED'
  | 'S3_UNAVAILABLE'
  | 'S3_BOOTSTRAP_FAILED'
  | 'RETENTION_INVALID'
  | 'STACK_PROVISION_FAILED'
  | 'STACK_START_FAILED'
  | 'STACK_PORT_IN_USE'
  | 'STACK_PID_FILE_INVALID'
  | 'PRODUCER_INVALID_OPTIONS'
  | 'PRODUCER_INVALID_INPUT'
  | 'PRODUCER_CLOSED'
  | 'EXECUTION_FINISHED'
  | 'AUDIT_UNAVAILABLE'
  | 'AUDIT_REJECTED'
  | 'SPOOL_FAILED'
  | 'ROW_REJECTED'
  | 'NOT_TOKENIZED'
  | 'DLQ_UNAVAILABLE'
  | 'SERVICE_START_FAILED'
  | 'STORE_NOT_INITIALIZED'
  | 'QUERY_FAILED'
  | 'TOKENIZE_FAILED'
  | 'PRODUCER_FENCED'
  | 'PII_DECRYPT_FAILED'
  | 'SUBJECT_ON_LEGAL_HOLD'
  // alerts service (docs/alerts.md)
  | 'ALERT_DELIVERY_FAILED'
  | 'ALERT_SIGNAL_TOO_LARGE'
  | 'SSRF_REFUSED'
  // archiver (docs/archiver.md)
  | 'ARCHIVE_RECORD_REFUSED'
  | 'ARCHIVE_KEY_CONFLICT'
  | 'ARCHIVE_RESTORE_PENDING'
  | 'EXECUTION_NOT_FOUND';

export interface AuditlineErrorOptions {
  retriable?: boolean;
  cause?: unknown;
  /** Non-sensitive context (ids, offsets, setting names) for logs. */
  details?: Record<string, string | number | boolean | undefined>;
}

export class AuditlineError extends Error {
  readonly code: ErrorCode;
  readonly retriable: boolean;
  readonly details: Record<string, string | number | boolean | undefined>;

  constructor(code: ErrorCode, message: string, options: AuditlineErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AuditlineError';
    this.code = code;
    this.retriable = options.retriable ?? false;
    this.details = options.details ?? {};
  }
}

/** True when `err` is an AuditlineError with the given code. */
export function isAuditlineError(err: unknown, code?: ErrorCode): err is AuditlineError {
  return err instanceof AuditlineError && (code === undefined || err.code === code);
}

/** Message of any thrown value, for error text that must not carry payloads. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
