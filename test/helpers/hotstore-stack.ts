import type { ClickHouseClient } from '@clickhouse/client';
import type { IHeaders } from 'kafkajs';
import { createClickHouse } from '../../core/clients/clickhouse.js';
import { createKafka } from '../../core/clients/kafka.js';
import { loadEndpoints } from '../../core/endpoints.js';
import { migrate } from '../../infra/clickhouse/migrate.js';
import { loadRetention } from '../../infra/retention.js';
import { migrationVariables } from '../../infra/setup.js';
import { AuditEventCodec, RegistryClient, type AuditEvent } from '../../schemas/index.js';
import { TOKENIZED_HEADER } from '../../consumers/tokenizer/index.js';
import { consumeCount, createTestTopics } from './kafka.js';
import { uniqueName } from './names.js';
import { registerTestSubjects } from './subjects.js';

/** Endpoints of the running services. */
export const endpoints = loadEndpoints();
export const kafka = createKafka(endpoints.kafka);

/** A fresh database with every hot store migration applied. */
export async function createHotstoreDatabase(client: ClickHouseClient, prefix = 'it_hs'): Promise<string> {
  const database = uniqueName(prefix, '_');
  await migrate(client, { database, variables: migrationVariables(loadRetention()) });
  return database;
}

export function clickhouse(): ClickHouseClient {
  return createClickHouse(endpoints.clickhouse);
}

/** Unique source and DLQ topics (auto-creation is off) plus a unique group id; the source topic's subject registered, as `setup` does (unless `subjects: false`). */
export async function createHotstoreTopics(prefix: string, partitions = 3, options: { subjects?: boolean } = {}): Promise<{ topic: string; dlq: string; group: string }> {
  const topic = uniqueName(`it-${prefix}`);
  const names = { topic, dlq: `${topic}.dlq`, group: `${topic}-group` };
  await createTestTopics(kafka, [
    { name: names.topic, partitions },
    { name: names.dlq, partitions: 1 },
  ]);
  if (options.subjects !== false) await registerTestSubjects([names.topic]);
  return names;
}

/** Environment of a hot store on the given topics, group and database, plus `extra` (later keys win). */
export function hotstoreEnv(names: { topic: string; dlq: string; group: string }, database: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    AUDITLINE_CLICKHOUSE_DATABASE: database,
    AUDITLINE_HOTSTORE_TOPIC: names.topic,
    AUDITLINE_HOTSTORE_DLQ_TOPIC: names.dlq,
    AUDITLINE_HOTSTORE_GROUP_ID: names.group,
    ...extra,
  };
}

/** Deletes test topics and consumer groups, ignoring failures. */
export async function dropHotstoreTopics(names: { topic: string; dlq: string }, groups: string[]): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  await admin.deleteGroups(groups).catch(() => undefined);
  await admin.deleteTopics({ topics: [names.topic, names.dlq] }).catch(() => undefined);
  await admin.disconnect();
}

/** A record to publish: an encoded event, or raw bytes (poison). */
export type Outgoing = AuditEvent | { key: string; raw: Buffer };

/**
 * Publishes events (Avro through the registry, key = execution id) and raw
 * records, in order, acks=all, all with `headers`: by default the
 * tokenizer's header (the hot store refuses records without it) and
 * `origin: test`; `createTime` (epoch ms) is the Kafka timestamp a producer
 * with that clock sets, instead of now.
 */
export async function publish(topic: string, records: readonly Outgoing[], headers: IHeaders = { origin: 'test', [TOKENIZED_HEADER]: 'v1' }, createTime?: number): Promise<void> {
  const codec = new AuditEventCodec(new RegistryClient(endpoints.registry), topic);
  await codec.init();
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  try {
    await producer.send({
      topic,
      acks: -1,
      messages: records.map((r) =>
        ({ ...('raw' in r ? { key: r.key, value: r.raw } : { key: r.execution_id, value: codec.encode(r) }), headers, ...(createTime === undefined ? {} : { timestamp: String(createTime) }) }),
      ),
    });
  } finally {
    await producer.disconnect();
  }
}

export interface DlqRecord {
  key: string;
  value: Buffer;
  headers: Record<string, string>;
}

/** Reads `count` records of a DLQ topic from its start. */
export async function readDlq(topic: string, count: number, timeoutMs = 15_000): Promise<DlqRecord[]> {
  const consumer = kafka.consumer({ groupId: uniqueName('it-dlq-reader'), maxWaitTimeInMs: 100 });
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    const got = await consumeCount(consumer, count, timeoutMs);
    return got.map(({ message }) => ({ key: message.key?.toString() ?? '', value: message.value ?? Buffer.alloc(0), headers: headerText(message.headers) }));
  } finally {
    await consumer.disconnect();
  }
}

function headerText(headers: IHeaders | undefined): Record<string, string> {
  return Object.fromEntries(Object.entries(headers ?? {}).map(([k, v]) => [k, Buffer.isBuffer(v) ? v.toString() : String(v)]));
}

/** True when the group committed every partition of the topic up to its end (an empty partition needs no commit). */
export async function committedToEnd(group: string, topic: string): Promise<boolean> {
  const { committed, end } = await groupOffsets(group, topic);
  // An empty partition has nothing to commit: -1 (never committed) or -2 (reset to earliest) is as good as 0.
  return Object.entries(end).every(([p, high]) => {
    const at = committed[Number(p)] ?? -1;
    return at === high || (high === 0 && at < 0);
  });
}

/** Committed offsets of a group on a topic (negative: none), and the end offsets, per partition. */
export async function groupOffsets(group: string, topic: string): Promise<{ committed: Record<number, number>; end: Record<number, number> }> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const [fetched] = await admin.fetchOffsets({ groupId: group, topics: [topic] });
    const ends = await admin.fetchTopicOffsets(topic);
    return {
      committed: Object.fromEntries((fetched?.partitions ?? []).map((p) => [p.partition, Number(p.offset)])),
      end: Object.fromEntries(ends.map((p) => [p.partition, Number(p.high)])),
    };
  } finally {
    await admin.disconnect();
  }
}

/** Polls `check` every 100 ms until it returns a truthy value; rejects after `timeoutMs` naming `what`. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined | false>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${String(last)})` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Number of distinct events stored (FINAL: redelivered copies collapse). */
export async function storedEvents(client: ClickHouseClient, database: string): Promise<number> {
  const rs = await client.query({ query: `SELECT count() AS n FROM ${database}.events FINAL`, format: 'JSONEachRow' });
  return Number((await rs.json<{ n: number | string }>())[0]!.n);
}

/** One `ReadFromMergeTree` step of `EXPLAIN indexes = 1`. */
export interface ExplainedRead {
  table: string;
  /** Index sections by kind (PrimaryKey, Skip, Partition, Min-Max). */
  indexes: { kind: string; name?: string; keys: string[]; condition?: string; selectedGranules: number; totalGranules: number }[];
}

/** Parses the text of `EXPLAIN indexes = 1` into its reads and their index sections. */
export function parseExplain(text: string): ExplainedRead[] {
  const reads: ExplainedRead[] = [];
  const lines = text.split('\n').map((l) => l.replace(/^[\s│├└─]+/, '').trimEnd());
  let read: ExplainedRead | undefined;
  let index: ExplainedRead['indexes'][number] | undefined;
  let inKeys = false;
  for (const line of lines) {
    const from = /^ReadFromMergeTree \(([^)]+)\)/.exec(line);
    if (from) {
      read = { table: from[1]!, indexes: [] };
      reads.push(read);
      index = undefined;
      continue;
    }
    if (!read) continue;
    if (/^(PrimaryKey|Skip|Partition|Min-Max|MinMax)$/.test(line)) {
      index = { kind: line, keys: [], selectedGranules: NaN, totalGranules: NaN };
      read.indexes.push(index);
      inKeys = false;
      continue;
    }
    if (!index) continue;
    if (line === 'Keys:') {
      inKeys = true;
      continue;
    }
    const kv = /^(Name|Condition|Granules|Parts|Description|Search Algorithm|Ranges): ?(.*)$/.exec(line);
    if (kv) {
      inKeys = false;
      if (kv[1] === 'Name') index.name = kv[2];
      if (kv[1] === 'Condition') index.condition = kv[2];
      if (kv[1] === 'Granules') {
        const [sel, total] = kv[2]!.split('/').map(Number);
        index.selectedGranules = sel!;
        index.totalGranules = total!;
      }
      continue;
    }
    if (inKeys && line) index.keys.push(line);
  }
  return reads;
}
