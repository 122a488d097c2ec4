import { AuditlineError } from '../core/errors.js';

/**
 * Constructors of the producer's typed errors. Messages name the argument
 * or option path and the rule it broke, never the value that broke it.
 */

/** Bad argument to a recording call (PRODUCER_INVALID_INPUT): nothing was recorded. */
export function invalidInput(where: string, reason: string, details: Record<string, string | number | undefined> = {}): AuditlineError {
  return new AuditlineError('PRODUCER_INVALID_INPUT', `invalid ${where}: ${reason}`, { details: { argument: where, ...details } });
}

/** A recording call on an execution that already finished (EXECUTION_FINISHED). */
export function executionFinished(executionId: string, call: string): AuditlineError {
  return new AuditlineError('EXECUTION_FINISHED', `execution ${executionId} already finished; ${call}() cannot record after finish()`, {
    details: { executionId, call },
  });
}

/** Any call after close() (PRODUCER_CLOSED). */
export function producerClosed(call: string): AuditlineError {
  return new AuditlineError('PRODUCER_CLOSED', `the audit producer is closed; ${call}() is not possible`, { details: { call } });
}

/**
 * An event could be neither acknowledged by Kafka nor written to the spool
 * (AUDIT_UNAVAILABLE, retriable): with onAuditFailure 'throw' the workflow
 * call fails with it.
 */
export function auditUnavailable(reason: string, cause: unknown, details: Record<string, string | number | undefined> = {}): AuditlineError {
  return new AuditlineError('AUDIT_UNAVAILABLE', `audit event not recorded: ${reason}`, { retriable: true, cause, details });
}

/**
 * finish() of an execution that lost events (AUDIT_UNAVAILABLE, not
 * retriable): the execution counts as finished whatever happened, so a
 * second finish() could only throw EXECUTION_FINISHED.
 */
export function finishIncomplete(executionId: string, reason: string, cause: unknown, details: Record<string, string | number | undefined> = {}): AuditlineError {
  return new AuditlineError('AUDIT_UNAVAILABLE', `audit of execution ${executionId} incomplete: ${reason}; the execution is finished, do not call finish() again`, {
    cause,
    details: { executionId, ...details },
  });
}

/** Kafka refused an event for good (AUDIT_REJECTED, not retriable), e.g. larger than the broker accepts. */
export function auditRejected(reason: string, cause: unknown, details: Record<string, string | number | undefined> = {}): AuditlineError {
  return new AuditlineError('AUDIT_REJECTED', `audit event rejected by Kafka: ${reason}`, { cause, details });
}

/** Spool I/O failure (SPOOL_FAILED); the path names the spool, never a payload. */
export function spoolFailed(reason: string, cause?: unknown, details: Record<string, string | number | undefined> = {}): AuditlineError {
  return new AuditlineError('SPOOL_FAILED', `spool ${reason}`, { cause, details });
}
