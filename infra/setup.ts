import { createClickHouse } from '../core/clients/clickhouse.js';
import { createKafka } from '../core/clients/kafka.js';
import { createS3 } from '../core/clients/s3.js';
import type { Endpoints } from '../core/endpoints.js';
import { auditEventSchema, valueSubject } from '../schemas/catalog.js';
import { RegistryClient } from '../schemas/registry.js';
import { DEFAULT_MIGRATIONS_DIR, migrate } from './clickhouse/migrate.js';
import { syncTtls } from './clickhouse/ttl.js';
import { applyTopics, auditTopics, clusterLayout, TOPICS, type TopicLayout } from './kafka/topics.js';
import { retentionDaysFor, type RetentionSettings } from './retention.js';
import { bootstrapBucket } from './s3/bootstrap.js';

export type SetupProgress = (message: string) => void;

/** Variables every ClickHouse migration may use, derived from the retention settings. */
export function migrationVariables(retention: RetentionSettings): Record<string, number> {
  return {
    ttl_days_pii: retentionDaysFor(retention, 'pii'),
    ttl_days_sox: retentionDaysFor(retention, 'sox'),
    ttl_days_internal: retentionDaysFor(retention, 'internal'),
  };
}

/**
 * Registers the event schema (BACKWARD) under each topic's value subject,
 * idempotently. The consumer services wait at start until the subject they
 * read exists.
 */
export async function registerEventSubjects(registry: RegistryClient, topics: readonly string[], progress: SetupProgress = () => undefined): Promise<void> {
  for (const topic of topics) {
    const id = await registry.register(valueSubject(topic), auditEventSchema().text);
    progress(`schema registry: ${valueSubject(topic)} -> schema id ${id} (BACKWARD)`);
  }
}

/**
 * Brings every store to the state the code expects, idempotently: Kafka
 * topics, schema subjects with their compatibility, ClickHouse migrations,
 * and the archive bucket. Safe to run at every start.
 */
export async function setupAll(
  endpoints: Endpoints,
  retention: RetentionSettings,
  progress: SetupProgress,
  options: { replicationFactor?: number | undefined; layout?: TopicLayout } = {},
): Promise<void> {
  const admin = createKafka(endpoints.kafka).admin();
  await admin.connect();
  try {
    const layout = await clusterLayout(admin, options.replicationFactor, options.layout);
    const specs = auditTopics(retention, layout);
    progress(`kafka topics: replication factor ${layout.replicationFactor} (${layout.brokers} broker(s)), min.insync.replicas ${specs[0]!.config['min.insync.replicas']}`);
    const topics = await applyTopics(admin, specs);
    progress(`kafka topics: created [${topics.created.join(', ')}] updated [${topics.updated.join(', ')}] unchanged [${topics.unchanged.join(', ')}]`);
    topics.warnings.forEach((w) => progress(`kafka topics: warning: ${w}`));
  } finally {
    await admin.disconnect();
  }

  await registerEventSubjects(new RegistryClient(endpoints.registry), [TOPICS.raw, TOPICS.events], progress);

  const clickhouse = createClickHouse(endpoints.clickhouse);
  try {
    const variables = migrationVariables(retention);
    const result = await migrate(clickhouse, { database: endpoints.clickhouse.database, variables });
    progress(`clickhouse migrations: ${result.applied.length} applied, ${result.skipped.length} already applied (database ${endpoints.clickhouse.database})`);
    const changed = await syncTtls(clickhouse, { database: endpoints.clickhouse.database, dir: DEFAULT_MIGRATIONS_DIR, variables });
    if (changed.length > 0) progress(`clickhouse TTLs changed to the retention settings: ${changed.join(', ')}`);
  } finally {
    await clickhouse.close();
  }

  const s3 = createS3(endpoints.s3);
  try {
    const state = await bootstrapBucket(s3, { bucket: endpoints.s3.bucket, retention });
    progress(
      `s3 bucket ${state.bucket}: versioning ${state.versioning}, object lock ${state.objectLock.enabled ? `${state.objectLock.mode} ${state.objectLock.days} days` : 'off'}, ${state.lifecycleRules.length} lifecycle rules`,
    );
  } finally {
    s3.destroy();
  }
}
