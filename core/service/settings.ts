import { z } from 'zod';
import { parseEnv } from '../env.js';
import { AuditlineError } from '../errors.js';
import { TOPIC_NAME, TOPIC_NAME_RULE } from '../kafka-names.js';

/**
 * Settings every consumer service shares, read from
 * `AUDITLINE_<SERVICE>_<NAME>` variables (docs/configuration.md) and
 * validated once at start; a bad value fails with the variable's name.
 */
export interface ServiceRuntimeSettings {
  /** Service name, e.g. `hotstore`; names its variables, metrics and DLQ header. */
  service: string;
  /** Kafka consumer group. */
  groupId: string;
  /** Topic the service reads. */
  sourceTopic: string;
  /** Dead-letter topic. */
  dlqTopic: string;
  /** A new consumer group starts at the earliest retained record (true) or at the end (false). */
  fromBeginning: boolean;
  /** Most records handled (and committed) as one unit. */
  batchSize: number;
  /** Longest a fetch waits for more records before the batch is handed on, in ms. */
  flushMs: number;
  /** Where /metrics, /healthz and /readyz listen; port 0 picks a free port (tests). */
  http: { host: string; port: number };
  /** Backoff of retriable failures. */
  retry: { initialMs: number; maxMs: number };
  /**
   * How long a record whose schema id the registry answers "not found" for is retried (from the id's first miss)
   * before it is dead-lettered as SCHEMA_NOT_FOUND: a follower behind or a registry still loading its schemas
   * answers so for ids it will know shortly. 0: dead-letter at once.
   */
  unknownSchemaRetryMs: number;
  /** Longest a graceful shutdown may take before the process exits with an error. */
  shutdownTimeoutMs: number;
  /** pino level. */
  logLevel: string;
}

/** Per-service defaults of the shared settings. */
export type ServiceDefaults = Pick<ServiceRuntimeSettings, 'groupId' | 'sourceTopic' | 'dlqTopic' | 'fromBeginning' | 'batchSize' | 'flushMs'> & {
  metricsPort: number;
};

const kafkaName = (fallback: string) =>
  z
    .string()
    .default(fallback)
    .refine((v) => TOPIC_NAME.test(v), TOPIC_NAME_RULE);
const int = (fallback: number, min: number, max: number) =>
  z.coerce.number().int('must be an integer').min(min, `must be at least ${min}`).max(max, `must be at most ${max}`).default(fallback);
const bool = (fallback: boolean) =>
  z
    .string()
    .optional()
    .refine((v) => v === undefined || /^(true|false|1|0|yes|no)$/i.test(v), 'must be true or false')
    .transform((v) => (v === undefined ? fallback : /^(true|1|yes)$/i.test(v)));

function runtimeShape(d: ServiceDefaults) {
  return {
    GROUP_ID: kafkaName(d.groupId),
    TOPIC: kafkaName(d.sourceTopic),
    DLQ_TOPIC: kafkaName(d.dlqTopic),
    FROM_BEGINNING: bool(d.fromBeginning),
    BATCH_SIZE: int(d.batchSize, 1, 100_000),
    FLUSH_MS: int(d.flushMs, 10, 60_000),
    METRICS_HOST: z.string().default('0.0.0.0'),
    METRICS_PORT: int(d.metricsPort, 0, 65_535),
    RETRY_INITIAL_MS: int(500, 10, 60_000),
    // Retries heartbeat between waits; a wait must stay well below the consumer session timeout.
    RETRY_MAX_MS: int(10_000, 10, 20_000),
    SHUTDOWN_TIMEOUT_MS: int(30_000, 1_000, 600_000),
    UNKNOWN_SCHEMA_RETRY_MS: int(60_000, 0, 3_600_000),
    LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  };
}

type RuntimeShape = ReturnType<typeof runtimeShape>;

/** Variable prefix of a service: `AUDITLINE_HOTSTORE_` for `hotstore`. */
export function settingsPrefix(service: string): string {
  return `AUDITLINE_${service.toUpperCase()}_`;
}

/** Names of the shared settings of one service, `AUDITLINE_<SERVICE>_*` (cli/known-settings.ts). */
export function serviceSettingNames(service: string): string[] {
  const anyDefaults: ServiceDefaults = { groupId: 'g', sourceTopic: 't', dlqTopic: 'd', fromBeginning: false, batchSize: 1, flushMs: 10, metricsPort: 0 };
  return Object.keys(runtimeShape(anyDefaults)).map((key) => `${settingsPrefix(service)}${key}`);
}

/** Reads the shared settings of one service. Throws CONFIG_INVALID naming the variable. */
export function loadServiceRuntimeSettings(service: string, defaults: ServiceDefaults, env: NodeJS.ProcessEnv = process.env): ServiceRuntimeSettings {
  const prefix = settingsPrefix(service);
  const shape = runtimeShape(defaults);
  const raw = parseEnv(Object.fromEntries(Object.entries(shape).map(([k, v]) => [`${prefix}${k}`, v])), env) as Record<string, unknown>;
  const get = <K extends keyof RuntimeShape>(key: K): z.infer<RuntimeShape[K]> => raw[`${prefix}${key}`] as z.infer<RuntimeShape[K]>;
  const retry = { initialMs: get('RETRY_INITIAL_MS'), maxMs: get('RETRY_MAX_MS') };
  if (retry.maxMs < retry.initialMs) {
    throw new AuditlineError('CONFIG_INVALID', `invalid setting ${prefix}RETRY_MAX_MS: must be at least ${prefix}RETRY_INITIAL_MS (${retry.initialMs})`, {
      details: { setting: `${prefix}RETRY_MAX_MS` },
    });
  }
  return {
    service,
    groupId: get('GROUP_ID'),
    sourceTopic: get('TOPIC'),
    dlqTopic: get('DLQ_TOPIC'),
    fromBeginning: get('FROM_BEGINNING'),
    batchSize: get('BATCH_SIZE'),
    flushMs: get('FLUSH_MS'),
    http: { host: get('METRICS_HOST'), port: get('METRICS_PORT') },
    retry,
    unknownSchemaRetryMs: get('UNKNOWN_SCHEMA_RETRY_MS'),
    shutdownTimeoutMs: get('SHUTDOWN_TIMEOUT_MS'),
    logLevel: get('LOG_LEVEL'),
  };
}
