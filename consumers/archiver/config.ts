import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { loadEndpoints, type Endpoints } from '../../core/endpoints.js';
import { boolVar, parseEnv } from '../../core/env.js';
import { AuditlineError } from '../../core/errors.js';
import { loadServiceRuntimeSettings, type ServiceDefaults, type ServiceRuntimeSettings } from '../../core/service/index.js';
import { TOPICS } from '../../infra/kafka/topics.js';
import { loadRetention, retentionDaysFor } from '../../infra/retention.js';
import { ARCHIVE_CODECS, CODEC_LEVELS, type ArchiveCodec, type BlockCompression } from './codecs.js';

/** Defaults of the shared service settings for the archiver (docs/archiver.md, "Settings"). */
export const ARCHIVER_DEFAULTS: ServiceDefaults = {
  groupId: 'auditline-archiver',
  sourceTopic: TOPICS.events,
  dlqTopic: TOPICS.dlq,
  // A new archiver must archive everything audit.events still holds.
  fromBeginning: true,
  batchSize: 5_000,
  flushMs: 1_000,
  metricsPort: 9466,
};

/** Storage classes the archive may be written in (STANDARD for MinIO and development). */
export const STORAGE_CLASSES = ['GLACIER_IR', 'GLACIER', 'DEEP_ARCHIVE', 'STANDARD'] as const;
export type StorageClass = (typeof STORAGE_CLASSES)[number];

/** The archiver's fully resolved configuration. */
export interface ArchiverConfig {
  runtime: ServiceRuntimeSettings;
  endpoints: Endpoints;
  bucket: string;
  database: string;
  storageClass: StorageClass;
  /** A file is uploaded once its records reach this many (uncompressed Avro) bytes. */
  rollBytes: number;
  /** ...or once its first record waited this long. */
  rollMs: number;
  /** A partition's digest is written when its last one is at least this old and new objects exist. */
  digestIntervalMs: number;
  /** Objects are written with Object Lock COMPLIANCE until this many days (the SOX retention) after the later of their newest record's Kafka timestamp and their upload. */
  retentionDays: number;
  /** Off only for buckets without Object Lock (tamper tests, MinIO without lock). */
  objectLock: boolean;
  /** Records without the tokenizer's header are refused (dead-lettered): the archive never holds cleartext. */
  requireTokenized: boolean;
  /** Codec, level and block size of the container files (docs/archiver.md, "Performance"). */
  compression: BlockCompression;
  /** Consumer group session timeout: how long the partitions of a crashed member wait before another takes them. */
  sessionTimeoutMs: number;
  signingKey: KeyObject;
}

const P = 'AUDITLINE_ARCHIVER_';
const int = (fallback: number, min: number, max: number) =>
  z.coerce.number().int('must be an integer').min(min, `must be at least ${min}`).max(max, `must be at most ${max}`).default(fallback);

const own = {
  [`${P}STORAGE_CLASS`]: z.enum(STORAGE_CLASSES).default('GLACIER_IR'),
  [`${P}ROLL_BYTES`]: int(64 * 1024 * 1024, 1024, 1024 * 1024 * 1024),
  [`${P}ROLL_MS`]: int(300_000, 100, 86_400_000),
  [`${P}DIGEST_INTERVAL_MS`]: int(3_600_000, 1_000, 86_400_000),
  [`${P}OBJECT_LOCK`]: boolVar(true),
  [`${P}REQUIRE_TOKENIZED`]: boolVar(true),
  [`${P}CODEC`]: z.enum(ARCHIVE_CODECS).default('zstandard'),
  [`${P}DEFLATE_LEVEL`]: int(6, CODEC_LEVELS.deflate.min, CODEC_LEVELS.deflate.max),
  [`${P}ZSTD_LEVEL`]: int(5, CODEC_LEVELS.zstandard.min, CODEC_LEVELS.zstandard.max),
  [`${P}BLOCK_BYTES`]: z.coerce.number().int('must be an integer').min(16 * 1024, 'must be at least 16384').max(64 * 1024 * 1024, 'must be at most 67108864').optional(),
  [`${P}SESSION_TIMEOUT_MS`]: int(30_000, 6_000, 300_000),
};

/** Names of the archiver's own settings and keys (cli/known-settings.ts; the shared ones: serviceSettingNames). */
export const ARCHIVER_SETTINGS: readonly string[] = [...Object.keys(own), ...['SIGNING_KEY', 'PUBLIC_KEY'].flatMap((name) => [`${P}${name}`, `${P}${name}_FILE`])];

/**
 * AUDITLINE_ARCHIVER_ROLL_MS alone, by the rule loadArchiverConfig applies:
 * for `pipeline`, which says when archive objects appear without needing
 * the archiver's keys and endpoints.
 */
export function loadArchiverRollMs(env: NodeJS.ProcessEnv = process.env): number {
  const name = `${P}ROLL_MS`;
  return parseEnv({ [name]: own[name]! }, env)[name] as number;
}

/** Reads and validates every archiver setting once; CONFIG_INVALID names the bad variable (never a key). */
export function loadArchiverConfig(env: NodeJS.ProcessEnv = process.env): ArchiverConfig {
  const endpoints = loadEndpoints(env);
  const runtime = loadServiceRuntimeSettings('archiver', ARCHIVER_DEFAULTS, env);
  const c = parseEnv(own, env) as Record<string, unknown>;
  const get = <T>(name: string) => c[`${P}${name}`] as T;
  const retention = loadRetention(env.AUDITLINE_RETENTION_FILE?.trim() || undefined);
  return {
    runtime,
    endpoints,
    bucket: endpoints.s3.bucket,
    database: endpoints.clickhouse.database,
    storageClass: get<StorageClass>('STORAGE_CLASS'),
    rollBytes: get<number>('ROLL_BYTES'),
    rollMs: get<number>('ROLL_MS'),
    digestIntervalMs: get<number>('DIGEST_INTERVAL_MS'),
    retentionDays: retentionDaysFor(retention, 'sox'),
    objectLock: get<boolean>('OBJECT_LOCK'),
    requireTokenized: get<boolean>('REQUIRE_TOKENIZED'),
    compression: compressionOf(get<ArchiveCodec>('CODEC'), get<number>('DEFLATE_LEVEL'), get<number>('ZSTD_LEVEL'), get<number | undefined>('BLOCK_BYTES')),
    sessionTimeoutMs: get<number>('SESSION_TIMEOUT_MS'),
    signingKey: loadSigningKey(env),
  };
}

/** Default uncompressed block size per codec: deflate looks back 32 KiB whatever the block; zstandard finds a returning customer's tokens megabytes back. */
export const DEFAULT_BLOCK_BYTES: Record<ArchiveCodec, number> = { deflate: 256 * 1024, zstandard: 4 * 1024 * 1024 };

function compressionOf(codec: ArchiveCodec, deflateLevel: number, zstdLevel: number, blockBytes: number | undefined): BlockCompression {
  return { codec, level: codec === 'deflate' ? deflateLevel : zstdLevel, blockBytes: blockBytes ?? DEFAULT_BLOCK_BYTES[codec] };
}

/**
 * The Ed25519 private key that signs digests: PEM (PKCS#8) in
 * AUDITLINE_ARCHIVER_SIGNING_KEY or in the file AUDITLINE_ARCHIVER_SIGNING_KEY_FILE
 * (exactly one). Create one with `openssl genpkey -algorithm ed25519`.
 */
export function loadSigningKey(env: NodeJS.ProcessEnv = process.env): KeyObject {
  const pem = secretText(env, 'SIGNING_KEY', true)!;
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch {
    throw invalid(`${P}SIGNING_KEY`, 'is not a PEM private key');
  }
  if (key.asymmetricKeyType !== 'ed25519') throw invalid(`${P}SIGNING_KEY`, `must be an Ed25519 key, not ${key.asymmetricKeyType}`);
  return key;
}

/**
 * The public key `archive verify` checks signatures with: AUDITLINE_ARCHIVER_PUBLIC_KEY(_FILE)
 * (PEM, SPKI), or derived from the signing key when only that is configured.
 */
export function loadVerifyKey(env: NodeJS.ProcessEnv = process.env): KeyObject {
  const pem = secretText(env, 'PUBLIC_KEY', false);
  if (pem === undefined) return createPublicKey(loadSigningKey(env));
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch {
    throw invalid(`${P}PUBLIC_KEY`, 'is not a PEM public key');
  }
  if (key.asymmetricKeyType !== 'ed25519') throw invalid(`${P}PUBLIC_KEY`, `must be an Ed25519 key, not ${key.asymmetricKeyType}`);
  return key;
}

function secretText(env: NodeJS.ProcessEnv, name: string, required: boolean): string | undefined {
  const direct = env[`${P}${name}`]?.trim();
  const file = env[`${P}${name}_FILE`]?.trim();
  if (direct && file) throw invalid(`${P}${name}`, `set either ${P}${name} or ${P}${name}_FILE, not both`);
  if (!direct && !file) {
    if (required) throw invalid(`${P}${name}`, `required (or ${P}${name}_FILE): an Ed25519 key in PEM, e.g. from \`openssl genpkey -algorithm ed25519\``);
    return undefined;
  }
  if (direct) return direct.replace(/\\n/g, '\n');
  try {
    return readFileSync(file!, 'utf8');
  } catch (err) {
    throw invalid(`${P}${name}_FILE`, `cannot read the file (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}

function invalid(setting: string, reason: string): AuditlineError {
  return new AuditlineError('CONFIG_INVALID', `invalid setting ${setting}: ${reason}`, { details: { setting } });
}
