import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { loadEndpoints, type Endpoints } from '../../core/endpoints.js';
import { parseEnv } from '../../core/env.js';
import { AuditlineError } from '../../core/errors.js';
import { loadServiceRuntimeSettings, type ServiceDefaults, type ServiceRuntimeSettings } from '../../core/service/index.js';
import { TOPICS } from '../../infra/kafka/topics.js';
import { DETECTION_KINDS, type DetectionKind } from '../../core/pii/detectors.js';
import { DEFAULT_PII_FIELDS } from '../../core/pii/fields.js';
import { loadPrincipalDirectory, type PrincipalDirectory } from './principals.js';
import { DEFAULT_REVEAL_POLICY, parseRevealPolicy, type RevealPolicy } from './reveal.js';
import { TOPIC_NAME, TOPIC_NAME_RULE } from '../../core/kafka-names.js';

/** Defaults of the shared service settings for the tokenizer (docs/tokenizer.md, "Settings"). */
export const TOKENIZER_DEFAULTS: ServiceDefaults = {
  groupId: 'auditline-tokenizer',
  sourceTopic: TOPICS.raw,
  dlqTopic: TOPICS.dlq,
  // audit.raw is kept for hours: a new tokenizer group must take everything it still holds.
  fromBeginning: true,
  batchSize: 2_000,
  flushMs: 200,
  metricsPort: 9465,
};

/** Codecs of the events topic's batches that kafkajs (and every other Kafka client) reads without a plug-in. */
export const OUTPUT_COMPRESSIONS = ['none', 'gzip'] as const;
export type OutputCompression = (typeof OUTPUT_COMPRESSIONS)[number];

export { DEFAULT_PII_FIELDS };

/** Secret key material, read from the environment or from files; never logged. */
export interface KeyMaterial {
  /** 32 bytes: wraps the per-subject data keys (LocalKeyWrapper). */
  masterKey: Buffer;
  /** At least 32 bytes: HMAC key of tokens and subject tokens. Must never change (tokens would stop matching). */
  tokenKey: Buffer;
  /** Master keys being rotated out (AUDITLINE_TOKENIZER_PREVIOUS_MASTER_KEY): still unwrap the rows they wrapped. */
  previousMasterKeys: Buffer[];
}

/** The tokenizer's fully resolved configuration. */
export interface TokenizerConfig {
  runtime: ServiceRuntimeSettings;
  endpoints: Endpoints;
  /** ClickHouse database of the key store and the audit tables (AUDITLINE_CLICKHOUSE_DATABASE). */
  database: string;
  /** Topic tokenized events are written to. */
  eventsTopic: string;
  /** Prefix of the per-partition transactional ids: `<prefix>-<source topic>-<partition>`. */
  transactionalIdPrefix: string;
  transactionTimeoutMs: number;
  sessionTimeoutMs: number;
  keys: KeyMaterial;
  /** Lower-cased JSON keys whose values are PII. */
  piiFields: string[];
  detectors: DetectionKind[];
  subjectEmailField: string;
  subjectIdField: string | undefined;
  keyCacheTtlMs: number;
  keyRotationMs: number;
  executionCacheSize: number;
  clickhouseTimeoutMs: number;
  /**
   * Compression of the batches written to the events topic (AUDITLINE_TOKENIZER_COMPRESSION). `none` (the default)
   * spends no tokenizer CPU on it; `gzip` makes the topic's batches about 3.5 times smaller on the broker's disk and
   * network for 10-20 % more tokenizer CPU per event (docs/tokenizer.md, "Performance"). Only codecs every kafkajs consumer reads without
   * extra packages are offered.
   */
  compression: OutputCompression;
  /**
   * Test-only (AUDITLINE_TOKENIZER_TEST_PAUSE_BEFORE_COMMIT, 0 = off): before the n-th transaction commit of the
   * process, after its records and offsets were sent, the process logs and stops itself (SIGSTOP), so that a test
   * can SIGKILL it with a transaction open. Never set it in a deployment.
   */
  testPauseBeforeCommit: number;
}

const P = 'AUDITLINE_TOKENIZER_';
const int = (fallback: number, min: number, max: number) =>
  z.coerce.number().int('must be an integer').min(min, `must be at least ${min}`).max(max, `must be at most ${max}`).default(fallback);
const nameList = (fallback: readonly string[]) =>
  z
    .string()
    .default(fallback.join(','))
    .transform((v) => v.split(',').map((s) => s.trim().toLowerCase()).filter(Boolean))
    .refine((list) => list.length > 0, 'must name at least one field');
const fieldName = z.string().regex(/^[A-Za-z0-9_.$-]{1,100}$/, 'must be a JSON key name').transform((v) => v.toLowerCase());

const own = {
  [`${P}EVENTS_TOPIC`]: z.string().default(TOPICS.events).refine((v) => TOPIC_NAME.test(v), TOPIC_NAME_RULE),
  [`${P}TRANSACTIONAL_ID_PREFIX`]: z.string().regex(/^[A-Za-z0-9._-]{1,200}$/, 'must be 1-200 characters of A-Z a-z 0-9 . _ -').optional(),
  [`${P}TRANSACTION_TIMEOUT_MS`]: int(60_000, 1_000, 900_000),
  [`${P}SESSION_TIMEOUT_MS`]: int(30_000, 6_000, 300_000),
  [`${P}PII_FIELDS`]: nameList(DEFAULT_PII_FIELDS),
  [`${P}DETECTORS`]: z
    .string()
    .default(DETECTION_KINDS.join(','))
    .transform((v) => v.split(',').map((s) => s.trim().toLowerCase()).filter(Boolean))
    .refine((list) => list.every((d) => (DETECTION_KINDS as readonly string[]).includes(d)), `must be a comma-separated subset of ${DETECTION_KINDS.join(', ')}`),
  [`${P}SUBJECT_EMAIL_FIELD`]: fieldName.default('customer_email'),
  [`${P}SUBJECT_ID_FIELD`]: fieldName.optional(),
  [`${P}KEY_CACHE_TTL_MS`]: int(60_000, 0, 3_600_000),
  [`${P}KEY_ROTATION_HOURS`]: int(24, 1, 24 * 365),
  [`${P}EXECUTION_CACHE_SIZE`]: int(100_000, 100, 10_000_000),
  [`${P}CLICKHOUSE_TIMEOUT_MS`]: int(30_000, 1_000, 50_000),
  [`${P}COMPRESSION`]: z.enum(OUTPUT_COMPRESSIONS).default('none'),
  [`${P}TEST_PAUSE_BEFORE_COMMIT`]: int(0, 0, 1_000_000),
};

/** Names of the tokenizer's own settings, its keys' and reveal's (cli/known-settings.ts; the shared ones: serviceSettingNames). */
export const TOKENIZER_SETTINGS: readonly string[] = [
  ...Object.keys(own),
  ...['MASTER_KEY', 'TOKEN_KEY', 'PREVIOUS_MASTER_KEY'].flatMap((name) => [`${P}${name}`, `${P}${name}_FILE`]),
  'AUDITLINE_REVEAL_POLICY',
  'AUDITLINE_REVEAL_PRINCIPALS_FILE',
  'AUDITLINE_REVEAL_TOKEN',
];

/** Reads and validates every tokenizer setting once; CONFIG_INVALID names the bad variable (never a key's value). */
export function loadTokenizerConfig(env: NodeJS.ProcessEnv = process.env): TokenizerConfig {
  const endpoints = loadEndpoints(env);
  const runtime = loadServiceRuntimeSettings('tokenizer', TOKENIZER_DEFAULTS, env);
  const c = parseEnv(own, env) as Record<string, unknown>;
  const get = <T>(name: string) => c[`${P}${name}`] as T;
  const sessionTimeoutMs = get<number>('SESSION_TIMEOUT_MS');
  if (runtime.retry.maxMs * 2 > sessionTimeoutMs) {
    throw invalid(`${P}RETRY_MAX_MS`, `must be at most half of ${P}SESSION_TIMEOUT_MS (${sessionTimeoutMs}): the consumer heartbeats between retries`);
  }
  const eventsTopic = get<string>('EVENTS_TOPIC');
  if (eventsTopic === runtime.sourceTopic) throw invalid(`${P}EVENTS_TOPIC`, `must differ from ${P}TOPIC`);
  return {
    runtime,
    endpoints,
    database: endpoints.clickhouse.database,
    eventsTopic,
    transactionalIdPrefix: get<string | undefined>('TRANSACTIONAL_ID_PREFIX') ?? runtime.groupId,
    transactionTimeoutMs: get<number>('TRANSACTION_TIMEOUT_MS'),
    sessionTimeoutMs,
    keys: loadKeyMaterial(env),
    piiFields: get<string[]>('PII_FIELDS'),
    detectors: get<DetectionKind[]>('DETECTORS'),
    subjectEmailField: get<string>('SUBJECT_EMAIL_FIELD'),
    subjectIdField: get<string | undefined>('SUBJECT_ID_FIELD'),
    keyCacheTtlMs: get<number>('KEY_CACHE_TTL_MS'),
    keyRotationMs: get<number>('KEY_ROTATION_HOURS') * 3_600_000,
    executionCacheSize: get<number>('EXECUTION_CACHE_SIZE'),
    clickhouseTimeoutMs: get<number>('CLICKHOUSE_TIMEOUT_MS'),
    compression: get<OutputCompression>('COMPRESSION'),
    testPauseBeforeCommit: get<number>('TEST_PAUSE_BEFORE_COMMIT'),
  };
}

/**
 * The tokenizer's consumer group and transactional id prefix alone, without its keys: what the Kafka ACLs
 * (`auditline acls`) grant it.
 */
export function loadTokenizerKafkaNames(env: NodeJS.ProcessEnv = process.env): { groupId: string; transactionalIdPrefix: string } {
  const runtime = loadServiceRuntimeSettings('tokenizer', TOKENIZER_DEFAULTS, env);
  const prefix = parseEnv({ [`${P}TRANSACTIONAL_ID_PREFIX`]: own[`${P}TRANSACTIONAL_ID_PREFIX`] }, env)[`${P}TRANSACTIONAL_ID_PREFIX`] as string | undefined;
  return { groupId: runtime.groupId, transactionalIdPrefix: prefix ?? runtime.groupId };
}

/**
 * The master key (AUDITLINE_TOKENIZER_MASTER_KEY or _MASTER_KEY_FILE: 32
 * bytes, base64) and the tokenization key (AUDITLINE_TOKENIZER_TOKEN_KEY
 * or _TOKEN_KEY_FILE: at least 32 bytes, base64). Exactly one of each pair
 * must be set; a file holds the base64 text. Also used by `erase` and
 * `reveal`.
 */
export function loadKeyMaterial(env: NodeJS.ProcessEnv = process.env): KeyMaterial {
  const masterKey = loadMasterKey(env);
  const tokenKey = loadTokenKey(env);
  if (masterKey.equals(tokenKey)) throw invalid(`${P}TOKEN_KEY`, `must differ from ${P}MASTER_KEY`);
  return { masterKey, tokenKey, previousMasterKeys: loadPreviousMasterKeys(env) };
}

/**
 * The master key being rotated out (AUDITLINE_TOKENIZER_PREVIOUS_MASTER_KEY or _FILE, 32 bytes base64; optional):
 * during a rotation, rows it wrapped stay readable until `auditline keys rotate-master` rewrapped them.
 */
export function loadPreviousMasterKeys(env: NodeJS.ProcessEnv = process.env): Buffer[] {
  if (!env[`${P}PREVIOUS_MASTER_KEY`]?.trim() && !env[`${P}PREVIOUS_MASTER_KEY_FILE`]?.trim()) return [];
  const previous = secret(env, 'PREVIOUS_MASTER_KEY', (b) => b.length === 32, 'must be exactly 32 bytes, base64-encoded');
  if (previous.equals(loadMasterKey(env))) throw invalid(`${P}PREVIOUS_MASTER_KEY`, `must differ from ${P}MASTER_KEY`);
  return [previous];
}

/** The master key alone (what `reveal` needs). */
export function loadMasterKey(env: NodeJS.ProcessEnv = process.env): Buffer {
  return secret(env, 'MASTER_KEY', (b) => b.length === 32, 'must be exactly 32 bytes, base64-encoded (e.g. `openssl rand -base64 32`)');
}

/** The tokenization key alone (what `erase` and `legal-hold` need to find a subject). */
export function loadTokenKey(env: NodeJS.ProcessEnv = process.env): Buffer {
  return secret(env, 'TOKEN_KEY', (b) => b.length >= 32, 'must be at least 32 bytes, base64-encoded (e.g. `openssl rand -base64 32`)');
}

function secret(env: NodeJS.ProcessEnv, name: string, ok: (b: Buffer) => boolean, rule: string): Buffer {
  const direct = env[`${P}${name}`]?.trim();
  const file = env[`${P}${name}_FILE`]?.trim();
  if (direct && file) throw invalid(`${P}${name}`, `set either ${P}${name} or ${P}${name}_FILE, not both`);
  if (!direct && !file) throw invalid(`${P}${name}`, `required (or ${P}${name}_FILE): ${rule}`);
  let text = direct;
  const setting = direct ? `${P}${name}` : `${P}${name}_FILE`;
  if (file) {
    try {
      text = readFileSync(file, 'utf8').trim();
    } catch (err) {
      throw invalid(setting, `cannot read the file (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  }
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(text!) && !/^[A-Za-z0-9_-]+$/.test(text!)) throw invalid(setting, rule);
  const bytes = Buffer.from(text!, 'base64');
  if (!ok(bytes)) throw invalid(setting, rule);
  return bytes;
}

function invalid(setting: string, reason: string): AuditlineError {
  return new AuditlineError('CONFIG_INVALID', `invalid setting ${setting}: ${reason}`, { details: { setting } });
}

/** Roles allowed to reveal and for which execution statuses: AUDITLINE_REVEAL_POLICY, e.g. `engineering:failed,compliance:any,legal:any` (the default). */
export function loadRevealPolicy(env: NodeJS.ProcessEnv = process.env): RevealPolicy {
  const text = env.AUDITLINE_REVEAL_POLICY?.trim();
  return text ? parseRevealPolicy(text) : DEFAULT_REVEAL_POLICY;
}

/**
 * How reveal callers are authenticated: AUDITLINE_REVEAL_PRINCIPALS_FILE (principals, their roles, OS accounts and
 * token digests; unset: roles are only claimed) and AUDITLINE_REVEAL_TOKEN (the caller's bearer token; unset: the
 * OS account identifies the caller). docs/tokenizer.md, "Who is asking".
 */
export function loadRevealAuth(env: NodeJS.ProcessEnv = process.env): { directory: PrincipalDirectory | undefined; token: string | undefined } {
  const file = env.AUDITLINE_REVEAL_PRINCIPALS_FILE?.trim();
  const token = env.AUDITLINE_REVEAL_TOKEN?.trim();
  if (token && !file) throw invalid('AUDITLINE_REVEAL_TOKEN', 'is only used with AUDITLINE_REVEAL_PRINCIPALS_FILE, which is not set');
  return { directory: file ? loadPrincipalDirectory(file) : undefined, token: token || undefined };
}
