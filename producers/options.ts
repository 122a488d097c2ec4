import os from 'node:os';
import { inspect } from 'node:util';
import path from 'node:path';
import type { Registry } from 'prom-client';
import { z } from 'zod';
import { AuditlineError } from '../core/errors.js';
import { MAX_RECORD_BYTES } from '../core/clients/record-size.js';
import { producerHashKeySchema } from '../core/pii/producer-hash.js';
import { DEFAULT_PII_FIELDS } from '../core/pii/fields.js';
import { URL_CREDENTIALS_RULE, urlHasCredentials } from '../core/env.js';
import { firstRemoteBroker, plainRemoteHost } from '../core/endpoints.js';
import { TOPICS } from '../infra/kafka/topics.js';
import { PRODUCER_ENV_VARS } from './env-options.js';
import { isProducerLogger, silentLogger, type ProducerLogger } from './logger.js';
import { TOPIC_NAME } from '../core/kafka-names.js';

/** When a recording call resolves: see docs/producer.md, "Delivery guarantees". */
export type AckMode = 'broker' | 'spool';
/** What a recording call does when its event can be neither sent nor spooled. */
export type AuditFailurePolicy = 'throw' | 'continue';
/** How values of PII fields leave the process. */
export type PiiMode = 'cleartext' | 'hash' | 'mask';

/** The PII fields of docs/events.md; matched by key name at any depth of a JSON payload. */
export { DEFAULT_PII_FIELDS };

export interface SaslOptions {
  mechanism: 'plain' | 'scram-sha-256' | 'scram-sha-512';
  username: string;
  password: string;
}

/**
 * Options of createAuditProducer. Only `brokers`, `schemaRegistryUrl` and
 * `service` are required; docs/producer.md lists every option with its
 * environment variable and default.
 */
export interface ProducerOptions {
  /** Bootstrap brokers as host:port. */
  brokers: string[];
  /** Base URL of the Confluent-compatible schema registry API. */
  schemaRegistryUrl: string;
  /** Name of the embedding service; part of every event's producer identity. */
  service: string;
  /** @default 'audit.raw' */
  topic?: string;
  /** @default `auditline-<service>` */
  clientId?: string;
  /** TLS to the brokers. @default false */
  ssl?: boolean;
  sasl?: SaslOptions;
  schemaRegistryAuth?: { username: string; password: string };
  /**
   * Allow `sasl` without `ssl` to brokers, and `schemaRegistryAuth` over http://, to hosts other than loopback
   * (credentials readable on the network). @default false: such options are refused
   */
  allowPlaintextCredentials?: boolean;
  /** @default 'broker' */
  ack?: AckMode;
  /** @default 'throw' (fail closed) */
  onAuditFailure?: AuditFailurePolicy;
  /** Directory of the durable spool; `false` disables spooling. @default `$XDG_STATE_HOME/auditline/spool/<service>` (`~/.local/state/...`) */
  spoolDir?: string | false;
  /** The spool refuses events beyond this size. @default 1 GiB */
  maxSpoolBytes?: number;
  /** Key names whose values are PII, matched case-insensitively at any depth. @default DEFAULT_PII_FIELDS */
  piiFields?: string[];
  /** @default 'cleartext' (the tokenizer downstream handles PII) */
  piiMode?: PiiMode;
  /** HMAC key for piiMode 'hash' (at least 16 characters); required in that mode. */
  piiHashKey?: string;
  /** Largest JSON payload kept whole, in UTF-8 bytes; at most MAX_PAYLOAD_BYTES (305834). @default 262144 */
  maxPayloadBytes?: number;
  /** How long the first queued event waits for others to share its batch. @default 5 */
  lingerMs?: number;
  /** @default 500 */
  maxBatchEvents?: number;
  /** Encoded bytes per batch (a single larger event still goes alone). @default 524288 */
  maxBatchBytes?: number;
  /** Events held in memory before recording calls wait (backpressure). @default 10000 */
  maxQueuedEvents?: number;
  /** Encoded bytes held in memory before recording calls wait. @default 33554432 */
  maxQueuedBytes?: number;
  /** Events that may wait in memory beyond maxQueuedEvents; more fail at once with AUDIT_UNAVAILABLE (retriable). @default 100000 */
  maxWaitingEvents?: number;
  /** Longest a send to Kafka may take before the batch goes to the spool. @default 5000 */
  sendTimeoutMs?: number;
  /** First pause after a failed replay of the spool; doubles up to replayBackoffMaxMs. @default 1000 */
  replayBackoffMs?: number;
  /** @default 30000 */
  replayBackoffMaxMs?: number;
  /** Longest flush()/close() wait for Kafka to take the spool. @default 30000 */
  flushTimeoutMs?: number;
  /** Where the producer logs (pino fits); silent by default. */
  logger?: ProducerLogger;
  /** prom-client registry for the producer's metrics; none by default. */
  metrics?: Registry;
}

/** Every option with its default applied, validated; what the producer runs on. */
export interface ResolvedProducerOptions {
  readonly brokers: readonly string[];
  readonly schemaRegistryUrl: string;
  readonly service: string;
  readonly topic: string;
  readonly clientId: string;
  readonly ssl: boolean;
  readonly sasl?: SaslOptions | undefined;
  readonly schemaRegistryAuth?: { username: string; password: string } | undefined;
  readonly allowPlaintextCredentials: boolean;
  readonly ack: AckMode;
  readonly onAuditFailure: AuditFailurePolicy;
  readonly spoolDir: string | false;
  readonly maxSpoolBytes: number;
  readonly piiFields: readonly string[];
  readonly piiMode: PiiMode;
  readonly piiHashKey?: string | undefined;
  readonly maxPayloadBytes: number;
  readonly lingerMs: number;
  readonly maxBatchEvents: number;
  readonly maxBatchBytes: number;
  readonly maxQueuedEvents: number;
  readonly maxQueuedBytes: number;
  readonly maxWaitingEvents: number;
  readonly sendTimeoutMs: number;
  readonly replayBackoffMs: number;
  readonly replayBackoffMaxMs: number;
  readonly flushTimeoutMs: number;
  readonly logger: ProducerLogger;
  readonly metrics?: Registry | undefined;
}

const KiB = 1024;
const MiB = 1024 * KiB;

/**
 * Largest maxPayloadBytes whose events can all be sent: a StepFinished
 * carries three payloads cut to it (input, output, error message) in one
 * Kafka record of at most MAX_RECORD_BYTES, and 64 KiB stay for the rest
 * (names and ids of at most a few KB each, a decision's condition of up to
 * 30 KB with its two payloads, key, headers, Avro framing). A larger setting
 * would only have events refused (AUDIT_REJECTED) after they were built.
 */
export const MAX_PAYLOAD_BYTES = Math.floor((MAX_RECORD_BYTES - 64 * KiB) / 3);

/** The default spool directory before session 7 (`os.tmpdir()`): its leftover segments are adopted by the default one. */
export function formerDefaultSpoolDir(service: string): string {
  return path.join(os.tmpdir(), 'auditline-spool', service);
}

/**
 * The default spool directory: the account's state directory
 * (`$XDG_STATE_HOME`, else `~/.local/state`), which survives a reboot, unlike
 * `os.tmpdir()` (a tmpfs on many hosts) where acknowledged events would be lost.
 */
export function defaultSpoolDir(service: string, env: NodeJS.ProcessEnv = process.env): string {
  const state = env.XDG_STATE_HOME && path.isAbsolute(env.XDG_STATE_HOME) ? env.XDG_STATE_HOME : path.join(os.homedir(), '.local', 'state');
  return path.join(state, 'auditline', 'spool', service);
}

/** Defaults of every optional setting; two depend on the service name. */
export function producerDefaults(service: string) {
  return {
    topic: TOPICS.raw,
    clientId: `auditline-${service}`,
    ssl: false,
    allowPlaintextCredentials: false,
    ack: 'broker' as AckMode,
    onAuditFailure: 'throw' as AuditFailurePolicy,
    spoolDir: defaultSpoolDir(service) as string | false,
    maxSpoolBytes: 1024 * MiB,
    piiFields: [...DEFAULT_PII_FIELDS],
    piiMode: 'cleartext' as PiiMode,
    maxPayloadBytes: 256 * KiB,
    lingerMs: 5,
    maxBatchEvents: 500,
    maxBatchBytes: 512 * KiB,
    maxQueuedEvents: 10_000,
    maxQueuedBytes: 32 * MiB,
    maxWaitingEvents: 100_000,
    sendTimeoutMs: 5_000,
    replayBackoffMs: 1_000,
    replayBackoffMaxMs: 30_000,
    flushTimeoutMs: 30_000,
    logger: silentLogger,
  };
}

const int = (min: number, max: number, whyMax?: string) =>
  z
    .number({ message: 'must be a number' })
    .int('must be an integer')
    .min(min, `must be at least ${min}`)
    .max(max, `must be at most ${max}${whyMax ? `: ${whyMax}` : ''}`);
const text = (pattern: RegExp, rule: string) => z.string({ message: 'must be a string' }).regex(pattern, rule);

const schema = z
  .strictObject({
    brokers: z.array(text(/^[^\s:,]+:\d{1,5}$/, 'must be host:port'), { message: 'must be an array of host:port strings' }).min(1, 'must name at least one broker'),
    schemaRegistryUrl: text(/^https?:\/\/\S+$/, 'must be an http:// or https:// URL')
      .refine((v) => !urlHasCredentials(v), `${URL_CREDENTIALS_RULE} (schemaRegistryAuth)`)
      .transform((v) => v.replace(/\/+$/, '')),
    service: text(/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/, 'must be 1-100 characters of letters, digits, dot, dash or underscore'),
    topic: text(TOPIC_NAME, 'must be a valid Kafka topic name'),
    clientId: text(/^\S{1,255}$/, 'must be 1-255 characters without spaces'),
    ssl: z.boolean({ message: 'must be true or false' }),
    sasl: z
      .strictObject({
        mechanism: z.enum(['plain', 'scram-sha-256', 'scram-sha-512']),
        username: z.string().min(1, 'must not be empty'),
        password: z.string({ message: 'must be a string' }),
      })
      .optional(),
    schemaRegistryAuth: z.strictObject({ username: z.string().min(1, 'must not be empty'), password: z.string({ message: 'must be a string' }) }).optional(),
    allowPlaintextCredentials: z.boolean({ message: 'must be true or false' }),
    ack: z.enum(['broker', 'spool']),
    onAuditFailure: z.enum(['throw', 'continue']),
    spoolDir: z.union([z.literal(false), z.string().min(1, 'must not be empty')], { message: 'must be a directory path or false' }),
    maxSpoolBytes: int(MiB, Number.MAX_SAFE_INTEGER),
    piiFields: z.array(text(/^[^\s]{1,200}$/, 'must be a key name without spaces'), { message: 'must be an array of key names' }),
    piiMode: z.enum(['cleartext', 'hash', 'mask']),
    piiHashKey: producerHashKeySchema.optional(),
    maxPayloadBytes: int(KiB, MAX_PAYLOAD_BYTES, `a step event carries its input, output and error message, each up to this size, in one Kafka record of at most ${MAX_RECORD_BYTES} bytes`),
    lingerMs: int(0, 10_000),
    maxBatchEvents: int(1, 100_000),
    maxBatchBytes: int(KiB, 64 * MiB),
    maxQueuedEvents: int(1, 10_000_000),
    maxQueuedBytes: int(KiB, 16 * 1024 * MiB),
    maxWaitingEvents: int(1, 100_000_000),
    sendTimeoutMs: int(100, 600_000),
    replayBackoffMs: int(10, 600_000),
    replayBackoffMaxMs: int(10, 3_600_000),
    flushTimeoutMs: int(0, 3_600_000),
    logger: z.custom<ProducerLogger>(isProducerLogger, 'must have debug, info, warn and error functions'),
    metrics: z
      .custom<Registry>(
        (v) => typeof v === 'object' && v !== null && typeof (v as Registry).registerMetric === 'function' && typeof (v as Registry).getSingleMetric === 'function',
        'must be a prom-client Registry',
      )
      .optional(),
  })
  .superRefine((o, ctx) => {
    // As loadEndpoints does for the services: credentials must not cross the network in the clear.
    const remoteBroker = firstRemoteBroker(o.brokers);
    if (!o.allowPlaintextCredentials && o.sasl && !o.ssl && remoteBroker !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['ssl'], message: `must be true when sasl credentials go to a broker other than loopback (${remoteBroker}), or set allowPlaintextCredentials` });
    }
    const registryHost = plainRemoteHost(o.schemaRegistryUrl);
    if (!o.allowPlaintextCredentials && o.schemaRegistryAuth && registryHost !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['schemaRegistryUrl'], message: `must be https:// when schemaRegistryAuth is set and the host is not loopback (${registryHost}), or set allowPlaintextCredentials` });
    }
    if (o.piiMode === 'hash' && !o.piiHashKey) ctx.addIssue({ code: 'custom', path: ['piiHashKey'], message: "required when piiMode is 'hash'" });
    if (o.ack === 'spool' && o.spoolDir === false) ctx.addIssue({ code: 'custom', path: ['spoolDir'], message: "must be a directory when ack is 'spool'" });
    if (o.maxBatchEvents > o.maxQueuedEvents) ctx.addIssue({ code: 'custom', path: ['maxBatchEvents'], message: 'must not exceed maxQueuedEvents' });
    if (o.maxBatchBytes > o.maxQueuedBytes) ctx.addIssue({ code: 'custom', path: ['maxBatchBytes'], message: 'must not exceed maxQueuedBytes' });
    if (o.spoolDir !== false && o.maxBatchBytes > o.maxSpoolBytes) {
      ctx.addIssue({ code: 'custom', path: ['maxBatchBytes'], message: 'must not exceed maxSpoolBytes: a batch that large could never be spooled, even into an empty spool' });
    }
    if (o.replayBackoffMaxMs < o.replayBackoffMs) ctx.addIssue({ code: 'custom', path: ['replayBackoffMaxMs'], message: 'must not be below replayBackoffMs' });
  });

/**
 * Resolves options in three stages: the caller's options, then defaults for
 * everything left out (undefined counts as left out), then validation into a
 * fully resolved object. Throws PRODUCER_INVALID_OPTIONS naming the option
 * path and the rule; unknown options are rejected. Values are never echoed.
 */
export function resolveProducerOptions(options: ProducerOptions): ResolvedProducerOptions {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new AuditlineError('PRODUCER_INVALID_OPTIONS', 'invalid producer option (root): must be an object', { details: { option: '(root)' } });
  }
  const given = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));
  const service = typeof given.service === 'string' ? given.service : 'unnamed';
  const result = schema.safeParse({ ...producerDefaults(service), ...given });
  if (!result.success) {
    const problems = result.error.issues.flatMap((issue) => {
      if (issue.code === 'unrecognized_keys') return issue.keys.map((key) => ({ path: formatPath([...issue.path, key]), message: 'unknown option' }));
      const p = formatPath(issue.path);
      const missing = issue.code === 'invalid_type' && issue.path.length === 1 && given[String(issue.path[0])] === undefined;
      const envVar = (PRODUCER_ENV_VARS as Record<string, readonly [string, string]>)[p]?.[0];
      const hint = envVar ? ` (or set ${envVar})` : '';
      return [{ path: p, message: missing ? `required${hint}` : issue.message }];
    });
    throw new AuditlineError('PRODUCER_INVALID_OPTIONS', `invalid producer option ${problems.map((x) => `${x.path}: ${x.message}`).join('; ')}`, {
      details: { option: problems[0]?.path },
    });
  }
  const resolved: ResolvedProducerOptions = result.data;
  // An application that logs or prints its producer's options (JSON.stringify, pino, console.log) must not print its secrets.
  const shown = () => redactSecrets(resolved);
  Object.defineProperty(resolved, 'toJSON', { value: shown, enumerable: false });
  Object.defineProperty(resolved, inspect.custom, { value: shown, enumerable: false });
  return Object.freeze(resolved);
}

const REDACTED = '[redacted]';

/** The options with the SASL and registry passwords and the PII hash key replaced by `[redacted]`. */
function redactSecrets(o: ResolvedProducerOptions): Record<string, unknown> {
  return {
    ...o,
    ...(o.sasl ? { sasl: { ...o.sasl, password: REDACTED } } : {}),
    ...(o.schemaRegistryAuth ? { schemaRegistryAuth: { ...o.schemaRegistryAuth, password: REDACTED } } : {}),
    ...(o.piiHashKey ? { piiHashKey: REDACTED } : {}),
  };
}

function formatPath(parts: readonly PropertyKey[]): string {
  let out = '';
  for (const part of parts) out += typeof part === 'number' ? `[${part}]` : out ? `.${String(part)}` : String(part);
  return out || '(root)';
}
