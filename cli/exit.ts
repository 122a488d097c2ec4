import { AuditlineError } from '../core/errors.js';

/** Exit codes of the `auditline` command (docs/cli.md). */
export const EXIT = { ok: 0, failure: 1, usage: 2, unhealthy: 3 } as const;

/** Wrong arguments: printed without a stack trace, exit code 2. */
export class UsageError extends Error {}

/** Prints an error for a person and returns the exit code. */
export function reportError(err: unknown): number {
  if (err instanceof UsageError) {
    process.stderr.write(`auditline: ${err.message}\n`);
    return EXIT.usage;
  }
  if (err instanceof AuditlineError) {
    process.stderr.write(`auditline: ${err.code}: ${err.message}\n`);
    // A retention settings file that cannot be read or is invalid (AUDITLINE_RETENTION_FILE, --retention) is an
    // invalid setting too: `run <service>` exits 2 for it, so that `pipeline` does not restart the service in a loop.
    return err.code === 'CONFIG_INVALID' || err.code === 'RETENTION_INVALID' ? EXIT.usage : EXIT.failure;
  }
  // kafkajs' own errors (a broker unreachable, a connection lost) escape the commands that talk to Kafka directly:
  // named as the service that failed, without a stack trace.
  if (err instanceof Error && err.name.startsWith('KafkaJS')) {
    const cause = (err as { cause?: unknown }).cause;
    const detail = cause instanceof Error && cause.message !== err.message ? `: ${cause.message}` : '';
    process.stderr.write(`auditline: KAFKA_UNAVAILABLE: ${err.message}${detail} (AUDITLINE_KAFKA_BROKERS)\n`);
    return EXIT.failure;
  }
  process.stderr.write(`auditline: unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  return EXIT.failure;
}
