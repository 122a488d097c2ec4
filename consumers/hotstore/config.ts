import { z } from 'zod';
import { loadEndpoints, type Endpoints } from '../../core/endpoints.js';
import { parseEnv } from '../../core/env.js';
import { loadServiceRuntimeSettings, type ServiceDefaults, type ServiceRuntimeSettings } from '../../core/service/index.js';
import { TOPICS } from '../../infra/kafka/topics.js';

/** Defaults of the shared service settings for the hot store (docs/hotstore.md, "Settings"). */
export const HOTSTORE_DEFAULTS: ServiceDefaults = {
  groupId: 'auditline-hotstore',
  sourceTopic: TOPICS.events,
  dlqTopic: TOPICS.dlq,
  // A new hot store (or a rebuild under a new group id) loads everything audit.events still holds.
  fromBeginning: true,
  batchSize: 10_000,
  flushMs: 1_000,
  metricsPort: 9464,
};

/** The hot store's fully resolved configuration. */
export interface HotstoreConfig {
  runtime: ServiceRuntimeSettings;
  endpoints: Endpoints;
  /** ClickHouse database of the hot store tables (AUDITLINE_CLICKHOUSE_DATABASE). */
  database: string;
  /** Longest one ClickHouse request may take before it counts as failed (and is retried). */
  insertTimeoutMs: number;
}

const own = {
  AUDITLINE_HOTSTORE_INSERT_TIMEOUT_MS: z.coerce
    .number()
    .int('must be an integer')
    .min(1_000, 'must be at least 1000')
    // Stays below the consumer session timeout (60 s): an insert never outlives the group membership.
    .max(50_000, 'must be at most 50000')
    .default(30_000),
};

/** Reads and validates every hot store setting once; CONFIG_INVALID names the bad variable. */
export function loadHotstoreConfig(env: NodeJS.ProcessEnv = process.env): HotstoreConfig {
  const endpoints = loadEndpoints(env);
  const runtime = loadServiceRuntimeSettings('hotstore', HOTSTORE_DEFAULTS, env);
  const c = parseEnv(own, env);
  return { runtime, endpoints, database: endpoints.clickhouse.database, insertTimeoutMs: c.AUDITLINE_HOTSTORE_INSERT_TIMEOUT_MS };
}
