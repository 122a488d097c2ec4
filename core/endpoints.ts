import { z } from 'zod';
import { AuditlineError } from './errors.js';
import { boolVar, parseEnv, portVar, requireSettings, urlVar } from './env.js';

/**
 * Where Auditline finds Kafka, the schema registry, ClickHouse and S3.
 *
 * Every endpoint comes from the environment (docs/configuration.md lists
 * them). When none of the endpoint variables is set, the local stack's
 * endpoints apply (on the ports AUDITLINE_STACK_*_PORT give the launcher)
 * and `usesLocalStack` is true: `npm start` and `npm test` then start the
 * local services themselves.
 */
export interface Endpoints {
  usesLocalStack: boolean;
  kafka: {
    brokers: string[];
    clientId: string;
    ssl: boolean;
    sasl?: { mechanism: 'plain' | 'scram-sha-256' | 'scram-sha-512'; username: string; password: string };
  };
  registry: { url: string; username?: string; password?: string };
  clickhouse: { url: string; username: string; password: string; database: string };
  s3: {
    endpoint?: string;
    region: string;
    bucket: string;
    forcePathStyle: boolean;
    /** Static credentials; when absent the AWS SDK's default provider chain is used. */
    credentials?: { accessKeyId: string; secretAccessKey: string };
    /** Longest wait for a TCP connection, and longest silence on an open request (ms); then the SDK retries. */
    connectTimeoutMs: number;
    idleTimeoutMs: number;
  };
}

/** The ports a local stack listens on (`AUDITLINE_STACK_*_PORT`, docs/configuration.md). */
export interface StackPorts {
  kafka: number;
  kafkaController: number;
  registry: number;
  clickhouse: number;
  s3: number;
}

/** The local stack's default ports; docker-compose.yml publishes the same. */
export const DEFAULT_STACK_PORTS: StackPorts = { kafka: 9092, kafkaController: 9093, registry: 8081, clickhouse: 8123, s3: 9000 };

/** The launcher's port settings (infra/local-stack/settings.ts reads them with the rest of its settings). */
export const stackPortShape = {
  AUDITLINE_STACK_KAFKA_PORT: portVar(DEFAULT_STACK_PORTS.kafka),
  AUDITLINE_STACK_KAFKA_CONTROLLER_PORT: portVar(DEFAULT_STACK_PORTS.kafkaController),
  AUDITLINE_STACK_REGISTRY_PORT: portVar(DEFAULT_STACK_PORTS.registry),
  AUDITLINE_STACK_CLICKHOUSE_PORT: portVar(DEFAULT_STACK_PORTS.clickhouse),
  AUDITLINE_STACK_S3_PORT: portVar(DEFAULT_STACK_PORTS.s3),
};

/** The ports of the local stack the environment configures. */
export function localStackPorts(env: NodeJS.ProcessEnv = process.env): StackPorts {
  const c = parseEnv(stackPortShape, env);
  return {
    kafka: c.AUDITLINE_STACK_KAFKA_PORT,
    kafkaController: c.AUDITLINE_STACK_KAFKA_CONTROLLER_PORT,
    registry: c.AUDITLINE_STACK_REGISTRY_PORT,
    clickhouse: c.AUDITLINE_STACK_CLICKHOUSE_PORT,
    s3: c.AUDITLINE_STACK_S3_PORT,
  };
}

/** What clients connect to for a local stack on `ports`. */
function localUrls(ports: StackPorts) {
  return {
    kafkaBrokers: `127.0.0.1:${ports.kafka}`,
    registryUrl: `http://127.0.0.1:${ports.registry}/apis/ccompat/v7`,
    clickhouseUrl: `http://127.0.0.1:${ports.clickhouse}`,
    s3Endpoint: `http://127.0.0.1:${ports.s3}`,
  };
}

/** Local stack defaults (on the default ports); docker-compose.yml publishes the same ports. */
export const LOCAL_DEFAULTS = {
  ...localUrls(DEFAULT_STACK_PORTS),
  /** The local S3 endpoints accept these; they guard nothing. */
  s3AccessKeyId: 'auditline',
  s3SecretAccessKey: 'auditline-local-secret',
} as const;

const ENDPOINT_VARS = [
  'AUDITLINE_KAFKA_BROKERS',
  'AUDITLINE_SCHEMA_REGISTRY_URL',
  'AUDITLINE_CLICKHOUSE_URL',
  'AUDITLINE_S3_ENDPOINT',
] as const;

/** The Kafka SASL and registry credentials, shared by the services, the CLI and the producer client (producers/env-options.ts). */
export const credentialShape = {
  AUDITLINE_KAFKA_SASL_MECHANISM: z.enum(['plain', 'scram-sha-256', 'scram-sha-512']).optional(),
  AUDITLINE_KAFKA_SASL_USERNAME: z.string().optional(),
  AUDITLINE_KAFKA_SASL_PASSWORD: z.string().optional(),
  AUDITLINE_SCHEMA_REGISTRY_USERNAME: z.string().optional(),
  AUDITLINE_SCHEMA_REGISTRY_PASSWORD: z.string().optional(),
};

type Credentials = z.infer<z.ZodObject<typeof credentialShape>>;

/**
 * Kafka SASL and registry basic auth from parsed settings. Credentials given
 * in part are refused rather than dropped (CONFIG_INVALID naming what is
 * missing): SASL needs all three settings, a registry password its user name
 * (a user name alone sends an empty password).
 */
export function credentialsFrom(c: Credentials): { sasl?: NonNullable<Endpoints['kafka']['sasl']>; registryAuth?: { username: string; password: string } } {
  const saslVars = ['AUDITLINE_KAFKA_SASL_MECHANISM', 'AUDITLINE_KAFKA_SASL_USERNAME', 'AUDITLINE_KAFKA_SASL_PASSWORD'] as const;
  if (saslVars.some((name) => c[name] !== undefined)) requireSettings(c, saslVars, 'SASL needs a mechanism, a username and a password');
  if (c.AUDITLINE_SCHEMA_REGISTRY_PASSWORD !== undefined) requireSettings(c, ['AUDITLINE_SCHEMA_REGISTRY_USERNAME'], 'a registry password needs its username');
  return {
    ...(c.AUDITLINE_KAFKA_SASL_MECHANISM
      ? { sasl: { mechanism: c.AUDITLINE_KAFKA_SASL_MECHANISM, username: c.AUDITLINE_KAFKA_SASL_USERNAME!, password: c.AUDITLINE_KAFKA_SASL_PASSWORD! } }
      : {}),
    ...(c.AUDITLINE_SCHEMA_REGISTRY_USERNAME !== undefined
      ? { registryAuth: { username: c.AUDITLINE_SCHEMA_REGISTRY_USERNAME, password: c.AUDITLINE_SCHEMA_REGISTRY_PASSWORD ?? '' } }
      : {}),
  };
}

const shape = {
  AUDITLINE_KAFKA_BROKERS: z
    .string()
    .default(LOCAL_DEFAULTS.kafkaBrokers)
    .refine((v) => v.split(',').every((b) => /^[^\s:,]+:\d{1,5}$/.test(b.trim())), 'must be host:port[,host:port...]'),
  AUDITLINE_KAFKA_CLIENT_ID: z.string().default('auditline'),
  AUDITLINE_KAFKA_SSL: boolVar(false),
  ...credentialShape,
  AUDITLINE_SCHEMA_REGISTRY_URL: urlVar(LOCAL_DEFAULTS.registryUrl),
  AUDITLINE_CLICKHOUSE_URL: urlVar(LOCAL_DEFAULTS.clickhouseUrl),
  AUDITLINE_CLICKHOUSE_USER: z.string().default('default'),
  AUDITLINE_CLICKHOUSE_PASSWORD: z.string().default(''),
  AUDITLINE_CLICKHOUSE_DATABASE: z
    .string()
    .default('audit')
    .refine((v) => /^[A-Za-z_][A-Za-z0-9_]*$/.test(v), 'must be a plain identifier'),
  AUDITLINE_S3_ENDPOINT: z
    .string()
    .optional()
    .refine((v) => v === undefined || /^https?:\/\/\S+$/.test(v), 'must be an http:// or https:// URL'),
  AUDITLINE_S3_REGION: z.string().default('us-east-1'),
  AUDITLINE_S3_BUCKET: z
    .string()
    .default('auditline-archive')
    .refine((v) => /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(v), 'must be a valid S3 bucket name'),
  AUDITLINE_S3_FORCE_PATH_STYLE: boolVar(true),
  AUDITLINE_S3_ACCESS_KEY_ID: z.string().optional(),
  AUDITLINE_S3_SECRET_ACCESS_KEY: z.string().optional(),
  AUDITLINE_S3_CONNECT_TIMEOUT_MS: z.coerce.number().int('must be an integer').min(100, 'must be at least 100').max(600_000, 'must be at most 600000').default(5_000),
  AUDITLINE_S3_IDLE_TIMEOUT_MS: z.coerce.number().int('must be an integer').min(1_000, 'must be at least 1000').max(3_600_000, 'must be at most 3600000').default(60_000),
  AUDITLINE_ALLOW_PLAINTEXT_CREDENTIALS: boolVar(false),
};

/** Names of the endpoint settings (the unknown-settings warning knows them: cli/known-settings.ts). */
export const ENDPOINT_SETTINGS: readonly string[] = Object.keys(shape);

/** Reads and validates the endpoint settings. Throws CONFIG_INVALID naming the variable. */
export function loadEndpoints(env: NodeJS.ProcessEnv = process.env): Endpoints {
  const c = parseEnv(shape, env);
  const usesLocalStack = ENDPOINT_VARS.every((name) => !env[name] || env[name]?.trim() === '');
  const { sasl, registryAuth } = credentialsFrom(c);
  const s3KeyVars = ['AUDITLINE_S3_ACCESS_KEY_ID', 'AUDITLINE_S3_SECRET_ACCESS_KEY'] as const;
  // One key without the other would fall back to the AWS provider chain (or the local stack's keys).
  if (s3KeyVars.some((name) => c[name] !== undefined)) requireSettings(c, s3KeyVars, 'static S3 credentials need an access key id and a secret access key');
  // With no endpoint configured, clients go where the launcher puts the services.
  const local = usesLocalStack ? localUrls(localStackPorts(env)) : undefined;
  const s3Endpoint = c.AUDITLINE_S3_ENDPOINT ?? local?.s3Endpoint;
  const staticKeys =
    c.AUDITLINE_S3_ACCESS_KEY_ID && c.AUDITLINE_S3_SECRET_ACCESS_KEY
      ? { accessKeyId: c.AUDITLINE_S3_ACCESS_KEY_ID, secretAccessKey: c.AUDITLINE_S3_SECRET_ACCESS_KEY }
      : usesLocalStack
        ? { accessKeyId: LOCAL_DEFAULTS.s3AccessKeyId, secretAccessKey: LOCAL_DEFAULTS.s3SecretAccessKey }
        : undefined;
  const endpoints: Endpoints = {
    usesLocalStack,
    kafka: {
      brokers: (local?.kafkaBrokers ?? c.AUDITLINE_KAFKA_BROKERS).split(',').map((b) => b.trim()),
      clientId: c.AUDITLINE_KAFKA_CLIENT_ID,
      ssl: c.AUDITLINE_KAFKA_SSL,
      ...(sasl ? { sasl } : {}),
    },
    registry: {
      url: local?.registryUrl ?? c.AUDITLINE_SCHEMA_REGISTRY_URL,
      ...registryAuth,
    },
    clickhouse: {
      url: local?.clickhouseUrl ?? c.AUDITLINE_CLICKHOUSE_URL,
      username: c.AUDITLINE_CLICKHOUSE_USER,
      password: c.AUDITLINE_CLICKHOUSE_PASSWORD,
      database: c.AUDITLINE_CLICKHOUSE_DATABASE,
    },
    s3: {
      ...(s3Endpoint ? { endpoint: s3Endpoint } : {}),
      region: c.AUDITLINE_S3_REGION,
      bucket: c.AUDITLINE_S3_BUCKET,
      forcePathStyle: c.AUDITLINE_S3_FORCE_PATH_STYLE,
      ...(staticKeys ? { credentials: staticKeys } : {}),
      connectTimeoutMs: c.AUDITLINE_S3_CONNECT_TIMEOUT_MS,
      idleTimeoutMs: c.AUDITLINE_S3_IDLE_TIMEOUT_MS,
    },
  };
  if (!c.AUDITLINE_ALLOW_PLAINTEXT_CREDENTIALS) refusePlaintextCredentials(endpoints);
  return endpoints;
}

/** Loopback hosts (the local stack): what is sent to them in plaintext never leaves the machine. */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[(.*)\]$/, '$1');
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/** The first broker (`host:port`) that is not on loopback; undefined when all are. */
export function firstRemoteBroker(brokers: readonly string[]): string | undefined {
  return brokers.find((b) => !isLoopbackHost(b.slice(0, b.lastIndexOf(':'))));
}

/** `host[:port]` of an http:// URL to a host other than loopback (what travels there is readable); undefined otherwise. */
export function plainRemoteHost(url: string): string | undefined {
  const u = new URL(url);
  return u.protocol === 'http:' && !isLoopbackHost(u.hostname) ? u.host : undefined;
}

const PLAINTEXT_OPT_IN = 'or set AUDITLINE_ALLOW_PLAINTEXT_CREDENTIALS=true to send them unencrypted anyway';

/**
 * Refuses credentials that would cross the network unencrypted to a host
 * other than loopback: Kafka SASL without TLS (PLAIN sends the password as
 * it is; SCRAM's exchange and every record after it can be read and
 * replayed against offline guessing), a ClickHouse password or registry
 * basic auth over http://. AUDITLINE_ALLOW_PLAINTEXT_CREDENTIALS=true
 * allows them (a network that is private by other means).
 */
function refusePlaintextCredentials(e: Endpoints): void {
  const refuse = (setting: string, reason: string) => {
    throw new AuditlineError('CONFIG_INVALID', `invalid setting ${setting}: ${reason}, ${PLAINTEXT_OPT_IN}`, { details: { setting } });
  };
  const remoteBroker = firstRemoteBroker(e.kafka.brokers);
  if (e.kafka.sasl && !e.kafka.ssl && remoteBroker !== undefined) {
    refuse('AUDITLINE_KAFKA_SSL', `must be true when SASL credentials go to a broker other than loopback (${remoteBroker})`);
  }
  const clickhouseHost = plainRemoteHost(e.clickhouse.url);
  if (e.clickhouse.password !== '' && clickhouseHost !== undefined) {
    refuse('AUDITLINE_CLICKHOUSE_URL', `must be https:// when AUDITLINE_CLICKHOUSE_PASSWORD is set and the host is not loopback (${clickhouseHost})`);
  }
  const registryHost = plainRemoteHost(e.registry.url);
  if (e.registry.username !== undefined && registryHost !== undefined) {
    refuse('AUDITLINE_SCHEMA_REGISTRY_URL', `must be https:// when AUDITLINE_SCHEMA_REGISTRY_USERNAME is set and the host is not loopback (${registryHost})`);
  }
}
