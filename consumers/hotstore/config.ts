import { z } from 'zod';
import { loadEndpoints, type Endpoints } from '../../core/endpoints.js';
import { boolVar, parseEnv } from '../../core/env.js';
import { AuditlineError } from '../../core/errors.js';
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
  // At a trickle a fetch returns after flushMs (it waits for 1 MiB otherwise): a quarter second keeps publish ->
  // queryable well under 2 s on a loaded machine, at most four parts per table per second (the small batches of
  // one fetch share their INSERTs, CoalescingWriter).
  flushMs: 250,
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
  /** How long a member that stopped heartbeating (crashed) keeps its partitions before another member takes them. */
  sessionTimeoutMs: number;
  /**
   * Test-only (AUDITLINE_HOTSTORE_TEST_PAUSE_AFTER_INSERT, off by default): after the first batch's inserts were
   * acknowledged and before its offsets are committed, the process logs and stops itself (SIGSTOP), so that a test
   * can SIGKILL it exactly between insert and commit. Never set it in a deployment.
   */
  testPauseAfterInsert: boolean;
  /** Batches below this many events, handed over by the same fetch, share their INSERTs (CoalescingWriter); 0: every batch writes alone. */
  coalesceBelow: number;
  /** Refuse (dead-letter) records without the tokenizer's header, so cleartext PII never reaches the store (AUDITLINE_HOTSTORE_REQUIRE_TOKENIZED). */
  requireTokenized: boolean;
}

const own = {
  AUDITLINE_HOTSTORE_INSERT_TIMEOUT_MS: z.coerce
    .number()
    .int('must be an integer')
    .min(1_000, 'must be at least 1000')
    // Stays below the consumer session timeout (checked below): an insert never outlives the group membership.
    .max(50_000, 'must be at most 50000')
    .default(30_000),
  AUDITLINE_HOTSTORE_SESSION_TIMEOUT_MS: z.coerce.number().int('must be an integer').min(6_000, 'must be at least 6000').max(300_000, 'must be at most 300000').default(60_000),
  AUDITLINE_HOTSTORE_COALESCE_BELOW: z.coerce.number().int('must be an integer').min(0, 'must be at least 0').max(100_000, 'must be at most 100000').default(1_000),
  AUDITLINE_HOTSTORE_REQUIRE_TOKENIZED: boolVar(true),
  AUDITLINE_HOTSTORE_TEST_PAUSE_AFTER_INSERT: boolVar(false),
};

/** Names of the hot store's own settings (cli/known-settings.ts; the shared ones: serviceSettingNames). */
export const HOTSTORE_SETTINGS: readonly string[] = Object.keys(own);

/** Reads and validates every hot store setting once; CONFIG_INVALID names the bad variable. */
export function loadHotstoreConfig(env: NodeJS.ProcessEnv = process.env): HotstoreConfig {
  const endpoints = loadEndpoints(env);
  const runtime = loadServiceRuntimeSettings('hotstore', HOTSTORE_DEFAULTS, env);
  const c = parseEnv(own, env);
  const sessionTimeoutMs = c.AUDITLINE_HOTSTORE_SESSION_TIMEOUT_MS;
  if (c.AUDITLINE_HOTSTORE_INSERT_TIMEOUT_MS >= sessionTimeoutMs) {
    throw invalid('AUDITLINE_HOTSTORE_INSERT_TIMEOUT_MS', `must be below AUDITLINE_HOTSTORE_SESSION_TIMEOUT_MS (${sessionTimeoutMs}): an insert never outlives the group membership`);
  }
  if (runtime.retry.maxMs * 2 > sessionTimeoutMs) {
    throw invalid('AUDITLINE_HOTSTORE_RETRY_MAX_MS', `must be at most half of AUDITLINE_HOTSTORE_SESSION_TIMEOUT_MS (${sessionTimeoutMs}): the consumer heartbeats between retries`);
  }
  return {
    runtime,
    endpoints,
    database: endpoints.clickhouse.database,
    insertTimeoutMs: c.AUDITLINE_HOTSTORE_INSERT_TIMEOUT_MS,
    sessionTimeoutMs,
    coalesceBelow: c.AUDITLINE_HOTSTORE_COALESCE_BELOW,
    requireTokenized: c.AUDITLINE_HOTSTORE_REQUIRE_TOKENIZED,
    testPauseAfterInsert: c.AUDITLINE_HOTSTORE_TEST_PAUSE_AFTER_INSERT,
  };
}

function invalid(setting: string, reason: string): AuditlineError {
  return new AuditlineError('CONFIG_INVALID', `invalid setting ${setting}: ${reason}`, { details: { setting } });
}
