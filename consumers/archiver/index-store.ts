import type { ClickHouseClient } from '@clickhouse/client';
import { AuditlineError } from '../../core/errors.js';
import { clickhouseTime } from '../../core/clients/clickhouse-time.js';
import { classifyClickHouseError } from '../hotstore/index.js';

/** One row of `archive_index`: the events of one execution inside one archive object. */
export interface IndexRow {
  execution_id: string;
  object_key: string;
  workflow_id: string;
  /** Epoch ms. */
  first_event_time: number;
  last_event_time: number;
  events: number;
  source_topic: string;
  source_partition: number;
  first_offset: string;
  last_offset: string;
  storage_class: string;
  object_sha256: string;
  object_size: number;
}

/** An archive object that holds events of an execution, as the index knows it. */
export interface IndexedObject {
  object_key: string;
  events: number;
  storage_class: string;
  object_sha256: string;
}

/** An archive object as the archiver recorded it in the index when it wrote it. */
export interface RecordedObject {
  sha256: string;
  size: number;
  /** Epoch ms of its newest event. */
  lastEventMs: number;
}

/**
 * The execution -> objects index in ClickHouse (migration 0008). Inserts
 * are idempotent (ReplacingMergeTree on execution_id, object_key); a
 * failure is CLICKHOUSE_UNAVAILABLE (retriable) unless the rows were refused
 * (by ClickHouse, or as they were written here: classifyClickHouseError):
 * then ROW_REJECTED, or QUERY_FAILED for a read, not retriable.
 */
export class ArchiveIndex {
  constructor(
    private readonly client: ClickHouseClient,
    private readonly database: string,
  ) {}

  async insert(rows: readonly IndexRow[]): Promise<void> {
    if (rows.length === 0) return;
    try {
      await this.client.insert({
        table: `${this.database}.archive_index`,
        values: rows.map((r) => ({ ...r, first_event_time: clickhouseTime(r.first_event_time), last_event_time: clickhouseTime(r.last_event_time), first_offset: Number(r.first_offset), last_offset: Number(r.last_offset) })),
        format: 'JSONEachRow',
        clickhouse_settings: { date_time_input_format: 'best_effort' },
      });
    } catch (err) {
      throw indexError(err, this.database, 'insert into');
    }
  }

  /** Objects holding events of the execution, in offset order. */
  async objectsOf(executionId: string): Promise<IndexedObject[]> {
    try {
      const rs = await this.client.query({
        query: `SELECT object_key, sum(events) AS events, any(storage_class) AS storage_class, any(object_sha256) AS object_sha256
FROM ${this.database}.archive_index FINAL
WHERE execution_id = {id:String}
GROUP BY object_key, source_partition, first_offset
ORDER BY source_partition, first_offset`,
        query_params: { id: executionId },
        format: 'JSONEachRow',
      });
      return (await rs.json<IndexedObject>()).map((r) => ({ ...r, events: Number(r.events) }));
    } catch (err) {
      throw indexError(err, this.database, 'read');
    }
  }

  /**
   * Every object the index knows, with the SHA-256 and size the archiver
   * recorded when it wrote it and the time of its newest event (epoch ms):
   * `archive verify` checks the bucket against them.
   */
  async allObjects(): Promise<Map<string, RecordedObject>> {
    try {
      const rs = await this.client.query({
        query: `SELECT object_key, any(object_sha256) AS sha256, any(object_size) AS size, toUnixTimestamp64Milli(max(last_event_time)) AS last_event_ms
FROM ${this.database}.archive_index
GROUP BY object_key`,
        format: 'JSONEachRow',
      });
      const rows = await rs.json<{ object_key: string; sha256: string; size: number | string; last_event_ms: number | string }>();
      return new Map(rows.map((r) => [r.object_key, { sha256: r.sha256, size: Number(r.size), lastEventMs: Number(r.last_event_ms) }]));
    } catch (err) {
      throw indexError(err, this.database, 'read');
    }
  }

  /**
   * The lowest key (key order is day, then offset) of the partition's objects
   * whose offsets lie in (`after`, `below`), or undefined when there are
   * none: where a digest's listing of the objects its chain does not list
   * yet must start when nobody remembers what was stored (DigestChain). A
   * scan of the table's partition and offset columns.
   */
  async lowestObjectKey(topic: string, partition: number, after: bigint, below: bigint): Promise<string | undefined> {
    try {
      const rs = await this.client.query({
        query: `SELECT min(object_key) AS object_key, count() AS n
FROM ${this.database}.archive_index
WHERE source_topic = {topic:String} AND source_partition = {partition:Int32} AND first_offset > {after:Int64} AND last_offset < {below:Int64}`,
        query_params: { topic, partition, after: after.toString(), below: below.toString() },
        format: 'JSONEachRow',
      });
      const [row] = await rs.json<{ object_key: string; n: number | string }>();
      return row && Number(row.n) > 0 ? row.object_key : undefined;
    } catch (err) {
      throw indexError(err, this.database, 'read');
    }
  }

  /**
   * What the archiver recorded (SHA-256 and size) for each object of the partition whose offsets lie in (`after`,
   * `below`): a digest signs only those (DigestChain), never an object it finds in the bucket that the archiver did not
   * write. An object reindexed after a change can have more than one record. Same scan as lowestObjectKey.
   */
  async recordedObjects(topic: string, partition: number, after: bigint, below: bigint): Promise<Map<string, { sha256: string; size: number }[]>> {
    try {
      const rs = await this.client.query({
        query: `SELECT object_key, groupUniqArray((object_sha256, object_size)) AS recorded
FROM ${this.database}.archive_index
WHERE source_topic = {topic:String} AND source_partition = {partition:Int32} AND first_offset > {after:Int64} AND last_offset < {below:Int64}
GROUP BY object_key`,
        query_params: { topic, partition, after: after.toString(), below: below.toString() },
        format: 'JSONEachRow',
      });
      const rows = await rs.json<{ object_key: string; recorded: [string, number | string][] }>();
      return new Map(rows.map((r) => [r.object_key, r.recorded.map(([sha256, size]) => ({ sha256, size: Number(size) }))]));
    } catch (err) {
      throw indexError(err, this.database, 'read');
    }
  }

  async ping(): Promise<boolean> {
    return (await this.client.ping()).success;
  }

  /** Fails (retriably) until the table exists: `auditline setup` creates it. */
  async checkTable(): Promise<void> {
    try {
      await this.client.query({ query: `SELECT 1 FROM ${this.database}.archive_index LIMIT 0`, format: 'JSONEachRow' }).then((rs) => rs.json());
    } catch (err) {
      throw indexError(err, this.database, 'read');
    }
  }
}

function indexError(err: unknown, database: string, what: string): AuditlineError {
  const failure = classifyClickHouseError(err);
  if (failure.type === 'UNKNOWN_TABLE' || failure.type === 'UNKNOWN_DATABASE') {
    return new AuditlineError('STORE_NOT_INITIALIZED', `table ${database}.archive_index does not exist; run \`npx auditline setup\``, { cause: err });
  }
  const message = `cannot ${what} ${database}.archive_index: ${failure.summary}`;
  if (failure.retriable) return new AuditlineError('CLICKHOUSE_UNAVAILABLE', message, { retriable: true, cause: err });
  // ClickHouse answered and refused (or the rows could not be built here): trying again cannot help, and it is no outage.
  return new AuditlineError(what === 'insert into' ? 'ROW_REJECTED' : 'QUERY_FAILED', message, { cause: err });
}
