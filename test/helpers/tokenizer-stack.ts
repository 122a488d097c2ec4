import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { ClickHouseClient } from '@clickhouse/client';
import type { IHeaders, KafkaMessage } from 'kafkajs';
import { createClickHouse } from '../../core/clients/clickhouse.js';
import { createKafka } from '../../core/clients/kafka.js';
import { loadEndpoints } from '../../core/endpoints.js';
import { assetPath } from '../../core/paths.js';
import { migrate } from '../../infra/clickhouse/migrate.js';
import { bootstrapBucket } from '../../infra/s3/bootstrap.js';
import { createS3 } from '../../core/clients/s3.js';
import { HeadBucketCommand } from '@aws-sdk/client-s3';
import { DEFAULT_RETENTION_FILE, loadRetention } from '../../infra/retention.js';
import { migrationVariables } from '../../infra/setup.js';
import { AuditEventCodec, RegistryClient, type AuditEvent } from '../../schemas/index.js';
import { createTestTopics } from './kafka.js';
import { uniqueName } from './names.js';
import { registerTestSubjects } from './subjects.js';
import { tempDir } from './temp-dir.js';
import { testKeys } from './tokenizer-fixtures.js';

export const endpoints = loadEndpoints();
export const kafka = createKafka(endpoints.kafka);

export function clickhouse(): ClickHouseClient {
  return createClickHouse(endpoints.clickhouse);
}

/** A fresh database with every migration applied (hot store and tokenizer tables). */
export async function createTokenizerDatabase(client: ClickHouseClient): Promise<string> {
  const database = uniqueName('it_tk', '_');
  await migrate(client, { database, variables: migrationVariables(loadRetention()) });
  // Reveals seal their access records in the configured bucket (SealedAccessLog): it exists as `setup` makes it.
  const s3 = createS3(endpoints.s3);
  try {
    const exists = () =>
      s3.send(new HeadBucketCommand({ Bucket: endpoints.s3.bucket })).then(
        () => true,
        () => false,
      );
    // Once only: the local S3 server refuses to set Object Lock again on a bucket that holds objects (another test
    // file may have made it meanwhile, and sealed a record in it).
    if (!(await exists())) await bootstrapBucket(s3, { bucket: endpoints.s3.bucket, retention: loadRetention() }).catch(async (err: unknown) => {
      if (!(await exists())) throw err;
    });
  } finally {
    s3.destroy();
  }
  return database;
}

export interface TokenizerNames {
  raw: string;
  events: string;
  dlq: string;
  group: string;
}

/** Unique raw, events and DLQ topics (auto-creation is off) and a unique group id; raw and events subjects registered, as `setup` does (unless `subjects: false`). */
export async function createTokenizerTopics(prefix: string, partitions = 3, options: { subjects?: boolean } = {}): Promise<TokenizerNames> {
  const base = uniqueName(`it-${prefix}`);
  const names = { raw: `${base}.raw`, events: `${base}.events`, dlq: `${base}.dlq`, group: `${base}-tokenizer` };
  await createTestTopics(kafka, [
    { name: names.raw, partitions },
    { name: names.events, partitions },
    { name: names.dlq, partitions: 1 },
  ]);
  if (options.subjects !== false) await registerTestSubjects([names.raw, names.events]);
  return names;
}

export async function dropTokenizerTopics(names: TokenizerNames, groups: string[] = []): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  await admin.deleteGroups([names.group, ...groups]).catch(() => undefined);
  await admin.deleteTopics({ topics: [names.raw, names.events, names.dlq] }).catch(() => undefined);
  await admin.disconnect();
}

/** Environment of a tokenizer on the test's topics, database and fresh keys (fast timeouts for tests). */
export function tokenizerEnv(names: TokenizerNames, database: string, keys = testKeys(), extra: Record<string, string> = {}): Record<string, string> {
  return {
    AUDITLINE_CLICKHOUSE_DATABASE: database,
    AUDITLINE_TOKENIZER_TOPIC: names.raw,
    AUDITLINE_TOKENIZER_EVENTS_TOPIC: names.events,
    AUDITLINE_TOKENIZER_DLQ_TOPIC: names.dlq,
    AUDITLINE_TOKENIZER_GROUP_ID: names.group,
    AUDITLINE_TOKENIZER_MASTER_KEY: keys.masterKey,
    AUDITLINE_TOKENIZER_TOKEN_KEY: keys.tokenKey,
    AUDITLINE_TOKENIZER_FLUSH_MS: '100',
    AUDITLINE_TOKENIZER_RETRY_INITIAL_MS: '100',
    AUDITLINE_TOKENIZER_RETRY_MAX_MS: '1000',
    // An unknown schema id (a test's poison record) is dead-lettered after 1 s of retries instead of 60.
    AUDITLINE_TOKENIZER_UNKNOWN_SCHEMA_RETRY_MS: '1000',
    AUDITLINE_TOKENIZER_SESSION_TIMEOUT_MS: '6000',
    AUDITLINE_TOKENIZER_METRICS_HOST: '127.0.0.1',
    AUDITLINE_TOKENIZER_METRICS_PORT: '0',
    ...extra,
  };
}

/** A record to publish: an event (Avro through the registry, key = execution id) or raw bytes (poison). */
export type Outgoing = AuditEvent | { key: string; raw: Buffer };

/** Publishes records in order with acks=all; `headers` go on every record. */
export async function publish(topic: string, records: readonly Outgoing[], headers: IHeaders = {}): Promise<void> {
  const codec = new AuditEventCodec(new RegistryClient(endpoints.registry), topic);
  await codec.init();
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  try {
    for (let i = 0; i < records.length; i += 2_000) {
      await producer.send({
        topic,
        acks: -1,
        messages: records.slice(i, i + 2_000).map((r) => ('raw' in r ? { key: r.key, value: r.raw, headers } : { key: r.execution_id, value: codec.encode(r), headers })),
      });
    }
  } finally {
    await producer.disconnect();
  }
}

export interface ReadRecord {
  partition: number;
  offset: string;
  key: string;
  value: Buffer;
  headers: Record<string, string>;
}

/**
 * Reads a topic from the start until `count` records arrived (rejects after
 * `timeoutMs`), then waits `settleMs` more for any surplus (duplicates).
 * Isolation level read_committed unless `readUncommitted`.
 */
export async function readTopic(topic: string, count: number, options: { timeoutMs?: number; settleMs?: number; readUncommitted?: boolean } = {}): Promise<ReadRecord[]> {
  const consumer = kafka.consumer({ groupId: uniqueName('it-tk-reader'), maxWaitTimeInMs: 100, readUncommitted: options.readUncommitted ?? false });
  const got: ReadRecord[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    let timer: NodeJS.Timeout | undefined;
    await new Promise<void>((resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`read ${got.length} of ${count} records of ${topic} within ${options.timeoutMs ?? 20_000} ms`)), options.timeoutMs ?? 20_000);
      consumer
        .run({
          eachMessage: async ({ partition, message }) => {
            got.push(toRecord(partition, message));
            if (got.length >= count) resolve();
          },
        })
        .catch(reject);
    }).finally(() => clearTimeout(timer));
    if (options.settleMs) await new Promise((r) => setTimeout(r, options.settleMs));
  } finally {
    await consumer.disconnect();
  }
  return got;
}

function toRecord(partition: number, m: KafkaMessage): ReadRecord {
  return {
    partition,
    offset: m.offset,
    key: m.key?.toString() ?? '',
    value: m.value ?? Buffer.alloc(0),
    headers: Object.fromEntries(Object.entries(m.headers ?? {}).map(([k, v]) => [k, Buffer.isBuffer(v) ? v.toString() : String(v)])),
  };
}

/** Decodes tokenized records of the events topic. */
export async function decodeAll(topic: string, records: readonly ReadRecord[]): Promise<AuditEvent[]> {
  const codec = new AuditEventCodec(new RegistryClient(endpoints.registry), topic);
  return Promise.all(records.map((r) => codec.decode(r.value)));
}

/** `node dist/cli/main.js run tokenizer` as a child, everything it prints captured. */
export interface TokenizerChild {
  process: ChildProcess;
  /** Everything written to stdout and stderr so far. */
  output: () => string;
  logs: () => Record<string, unknown>[];
  exited: Promise<number | null>;
  port: Promise<number>;
}

export function startTokenizerChild(env: Record<string, string>): TokenizerChild {
  const child = spawn(process.execPath, [assetPath('dist', 'cli', 'main.js'), 'run', 'tokenizer'], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let resolvePort: (port: number) => void = () => undefined;
  const port = new Promise<number>((resolve) => (resolvePort = resolve));
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    out += chunk;
    const m = /"port":(\d+)/.exec(out);
    if (m) resolvePort(Number(m[1]));
  });
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const logs = () =>
    out
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  return { process: child, output: () => out, logs, exited, port };
}

/** Runs the CLI (`node dist/cli/main.js …`) to completion. */
export async function runCli(args: string[], env: Record<string, string>, input?: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [assetPath('dist', 'cli', 'main.js'), ...args], { env: { ...process.env, ...env }, stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
  if (input !== undefined) child.stdin!.end(input);
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  child.stderr!.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  return { code, stdout, stderr };
}

/** A copy of the retention settings with the GDPR retention set to `days`. */
export function retentionFileWithGdprDays(days: number): string {
  const text = readFileSync(DEFAULT_RETENTION_FILE, 'utf8').replace(/(gdpr:[\s\S]*?retention_days: )30/, `$1${days}`);
  const file = path.join(tempDir('tk-retention'), 'retention.yaml');
  writeFileSync(file, text);
  return file;
}
