import type { Admin, Kafka } from 'kafkajs';
import { AuditlineError, errorMessage, isAuditlineError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { ConsumerMetrics } from './consumer-metrics.js';
import { retryRetriable } from './retry.js';
import type { ServiceRuntimeSettings } from './settings.js';
import type { ReadinessReport } from './types.js';

/**
 * The start-up wait of a service: runs a check (a dependency answering,
 * its tables, topics or schema subject present) until it passes, with the service's
 * backoff, while its error is retriable (the dependency is down), logging
 * each wait; a non-retriable error (a missing table or topic: run `auditline
 * setup`) fails the start at once. Stops with `signal` (Ctrl-C while waiting).
 */
export function startupWait(runtime: Pick<ServiceRuntimeSettings, 'retry'>, signal: AbortSignal, logger: Logger) {
  return <T>(what: string, check: () => Promise<T>): Promise<T> =>
    retryRetriable(check, {
      backoff: runtime.retry,
      signal,
      isRetriable: (err) => isAuditlineError(err) && err.retriable,
      onRetry: (err, attempt, delayMs) => logger.warn({ attempt, delayMs, code: isAuditlineError(err) ? err.code : undefined, err: errorMessage(err) }, `${what} not ready yet; retrying`),
    });
}

/**
 * Fails start when a topic the service needs is missing (auto-creation is
 * off). Listing topics failing is retriable (Kafka unreachable); a missing
 * topic is not. Connects `admin` if needed and leaves it connected.
 */
export async function requireTopics(admin: Admin, topics: string[]): Promise<void> {
  let existing: string[];
  try {
    await admin.connect();
    existing = await admin.listTopics();
  } catch (err) {
    throw new AuditlineError('KAFKA_UNAVAILABLE', `cannot list Kafka topics: ${errorMessage(err)}`, { retriable: true, cause: err });
  }
  const missing = topics.filter((t) => !existing.includes(t));
  if (missing.length > 0) {
    throw new AuditlineError('SERVICE_START_FAILED', `Kafka topic ${missing.join(', ')} does not exist (auto-creation is off); run \`npx auditline setup\``, {
      details: { topics: missing.join(',') },
    });
  }
}

/** requireTopics with a short-lived admin client of `kafka`, disconnected afterwards. */
export async function requireTopicsOnce(kafka: Kafka, topics: string[]): Promise<void> {
  const admin = kafka.admin();
  try {
    await requireTopics(admin, topics);
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

/**
 * The /readyz report of a consumer service writing to ClickHouse; also sets the ready gauge. `more` adds the checks
 * of the service's other dependencies (the archiver's S3), each of which must pass too.
 */
export function consumerReadiness(
  state: { joined: boolean; groupId: string; clickhouse: boolean },
  metrics: ConsumerMetrics,
  more: Record<string, { ok: boolean; detail?: string }> = {},
): ReadinessReport {
  const ready = state.joined && state.clickhouse && Object.values(more).every((c) => c.ok);
  metrics.setReady(ready);
  return {
    ready,
    checks: {
      kafka: state.joined ? { ok: true } : { ok: false, detail: `not a member of consumer group ${state.groupId}` },
      clickhouse: state.clickhouse ? { ok: true } : { ok: false, detail: 'ClickHouse does not answer a ping' },
      ...more,
    },
  };
}
