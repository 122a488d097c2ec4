import { z } from 'zod';
import { credentialsFrom, credentialShape } from '../core/endpoints.js';
import { boolVar, parseEnv } from '../core/env.js';
import { producerHashKeySchema } from '../core/pii/producer-hash.js';
import type { ProducerOptions } from './options.js';

type Kind = 'string' | 'list' | 'int' | 'bool' | 'spoolDir';

/**
 * Environment variable of each option (docs/producer.md, options table).
 * Kafka and registry connection settings share the names of the other
 * Auditline components (docs/configuration.md).
 */
export const PRODUCER_ENV_VARS = {
  brokers: ['AUDITLINE_KAFKA_BROKERS', 'list'],
  schemaRegistryUrl: ['AUDITLINE_SCHEMA_REGISTRY_URL', 'string'],
  service: ['AUDITLINE_PRODUCER_SERVICE', 'string'],
  topic: ['AUDITLINE_PRODUCER_TOPIC', 'string'],
  clientId: ['AUDITLINE_KAFKA_CLIENT_ID', 'string'],
  ssl: ['AUDITLINE_KAFKA_SSL', 'bool'],
  allowPlaintextCredentials: ['AUDITLINE_ALLOW_PLAINTEXT_CREDENTIALS', 'bool'],
  ack: ['AUDITLINE_PRODUCER_ACK', 'string'],
  onAuditFailure: ['AUDITLINE_PRODUCER_ON_AUDIT_FAILURE', 'string'],
  spoolDir: ['AUDITLINE_PRODUCER_SPOOL_DIR', 'spoolDir'],
  maxSpoolBytes: ['AUDITLINE_PRODUCER_MAX_SPOOL_BYTES', 'int'],
  piiFields: ['AUDITLINE_PRODUCER_PII_FIELDS', 'list'],
  piiMode: ['AUDITLINE_PRODUCER_PII_MODE', 'string'],
  piiHashKey: ['AUDITLINE_PRODUCER_PII_HASH_KEY', 'string'],
  maxPayloadBytes: ['AUDITLINE_PRODUCER_MAX_PAYLOAD_BYTES', 'int'],
  lingerMs: ['AUDITLINE_PRODUCER_LINGER_MS', 'int'],
  maxBatchEvents: ['AUDITLINE_PRODUCER_MAX_BATCH_EVENTS', 'int'],
  maxBatchBytes: ['AUDITLINE_PRODUCER_MAX_BATCH_BYTES', 'int'],
  maxQueuedEvents: ['AUDITLINE_PRODUCER_MAX_QUEUED_EVENTS', 'int'],
  maxQueuedBytes: ['AUDITLINE_PRODUCER_MAX_QUEUED_BYTES', 'int'],
  maxWaitingEvents: ['AUDITLINE_PRODUCER_MAX_WAITING_EVENTS', 'int'],
  sendTimeoutMs: ['AUDITLINE_PRODUCER_SEND_TIMEOUT_MS', 'int'],
  replayBackoffMs: ['AUDITLINE_PRODUCER_REPLAY_BACKOFF_MS', 'int'],
  replayBackoffMaxMs: ['AUDITLINE_PRODUCER_REPLAY_BACKOFF_MAX_MS', 'int'],
  flushTimeoutMs: ['AUDITLINE_PRODUCER_FLUSH_TIMEOUT_MS', 'int'],
} as const satisfies Partial<Record<keyof ProducerOptions, readonly [string, Kind]>>;

function typeOf(kind: Kind): z.ZodType {
  switch (kind) {
    case 'int':
      return z.coerce.number({ message: 'must be a number' }).int('must be an integer').optional();
    case 'bool':
      return boolVar(false).optional();
    default:
      return z.string().optional();
  }
}

const shape: Record<string, z.ZodType> = {
  ...Object.fromEntries(Object.values(PRODUCER_ENV_VARS).map(([name, kind]) => [name, typeOf(kind)])),
  ...credentialShape,
};

/**
 * Producer options from environment variables: only the variables that are
 * set (and not blank) appear in the result, so it can be spread under
 * options given in code, which win. Types are checked here (CONFIG_INVALID
 * naming the variable); ranges and required options are checked by
 * createAuditProducer. AUDITLINE_PRODUCER_SPOOL_DIR=off disables the spool.
 */
export function producerOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): Partial<ProducerOptions> {
  const vars = parseEnv(shape, env) as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const [option, [name, kind]] of Object.entries(PRODUCER_ENV_VARS) as [string, readonly [string, Kind]][]) {
    const raw = env[name];
    if (raw === undefined || raw.trim() === '') continue;
    const value = vars[name];
    if (kind === 'list') out[option] = String(value).split(',').map((s) => s.trim()).filter((s) => s !== '');
    else if (kind === 'spoolDir') out[option] = ['off', 'false', 'none'].includes(String(value).toLowerCase()) ? false : value;
    else out[option] = value;
  }
  // Credentials given in part are refused rather than dropped, as by loadEndpoints: the producer would connect without them.
  const { sasl, registryAuth } = credentialsFrom(vars as Parameters<typeof credentialsFrom>[0]);
  if (sasl) out.sasl = sasl;
  if (registryAuth) out.schemaRegistryAuth = registryAuth;
  return out as Partial<ProducerOptions>;
}

/**
 * The producers' hash key as producers read it (AUDITLINE_PRODUCER_PII_HASH_KEY:
 * trimmed like every setting, blank = not set, at least 16 characters), for
 * `erase` and `legal-hold`: they derive the `hashed:` subjects producers in
 * `hash` mode sent, and a key read otherwise (a secret file's trailing
 * newline kept) would name other subjects and leave the real ones untouched.
 * CONFIG_INVALID names the variable, never its value.
 */
export function loadProducerHashKey(env: NodeJS.ProcessEnv = process.env): string | undefined {
  return parseEnv({ [PRODUCER_ENV_VARS.piiHashKey[0]]: producerHashKeySchema.optional() }, env)[PRODUCER_ENV_VARS.piiHashKey[0]];
}
