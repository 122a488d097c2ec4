import type { ClickHouseClient } from '@clickhouse/client';
import { AuditlineError } from '../../core/errors.js';
import { classifyClickHouseError } from './clickhouse-errors.js';
import type { HotstoreMetrics } from './metrics.js';
import { HOTSTORE_TABLES, TABLE_COLUMNS, type EventRows, type HotstoreTable } from './rows.js';

/** What a write may be given besides its events. */
export interface WriteOptions {
  /**
   * Called between the requests of one write (its phases, and each half while
   * refused rows are isolated), which together can take much longer than the
   * consumer's session timeout: keeps the member in its group. Whatever it
   * throws (BatchAbandonedError after a rebalance) ends the write as is.
   */
  heartbeat?: () => Promise<void>;
}

/** The heartbeat's own failure, carried through the writer's error classification unchanged. */
class HeartbeatFailed extends Error {
  constructor(readonly failure: unknown) {
    super('heartbeat failed');
  }
}

/** An event whose rows ClickHouse refused, by its index in the written list. */
export interface RejectedEvent {
  index: number;
  /** Names the ClickHouse error type and code only (server messages may quote row data). */
  reason: string;
}

/**
 * The order in which a batch's tables are written: the tables of one phase
 * in parallel, each phase after the previous one was acknowledged. A step
 * becomes queryable no later than the decisions and the outcome of the same
 * batch that refer to it (so `decisions` never shows a decision of the batch
 * without its step's name, nor `inputs` a finished execution without the
 * steps that came with its outcome); `events`, which answers "is execution X
 * known" and carries the provenance, comes last. A decision recorded while
 * its step still runs arrives in an earlier batch than the step's
 * StepFinished event and is queryable before it: no write order can change
 * that (docs/hotstore.md, "Write order").
 */
export const INSERT_PHASES: readonly (readonly HotstoreTable[])[] = [['executions', 'steps'], ['decisions', 'execution_results'], ['events']];

/**
 * Writes mapped events to ClickHouse, one synchronous insert per table, in
 * the phases of INSERT_PHASES.
 *
 * Idempotent by design: every row carries its event_id at the end of the
 * table's ReplacingMergeTree key, so writing an event twice (redelivery,
 * a retried batch) yields one row in FINAL query results.
 *
 * When ClickHouse refuses a batch for its data, the batch is split in
 * halves until the refusing events are isolated; they are returned as
 * rejected and everything else is written. Any other failure throws
 * CLICKHOUSE_UNAVAILABLE (retriable): the caller retries the whole batch.
 * `events` (provenance) is inserted last, so an event refused by its
 * detail table leaves no provenance row behind. Isolating refused rows
 * takes about two inserts per refused event per halving, far longer than
 * one insert: the write heartbeats between its requests (WriteOptions).
 */
export class HotstoreWriter {
  constructor(
    private readonly client: ClickHouseClient,
    readonly database: string,
    private readonly metrics?: HotstoreMetrics,
  ) {}

  async write(events: readonly EventRows[], options: WriteOptions = {}): Promise<{ rejected: RejectedEvent[] }> {
    const rejected: RejectedEvent[] = [];
    const { heartbeat } = options;
    const beat = heartbeat
      ? async () => {
          try {
            await heartbeat();
          } catch (err) {
            throw new HeartbeatFailed(err);
          }
        }
      : async () => undefined;
    try {
      await this.writeGroup(events.map((rows, index) => ({ rows, index })), rejected, beat);
    } catch (err) {
      if (err instanceof HeartbeatFailed) throw err.failure;
      throw err;
    }
    return { rejected: rejected.sort((a, b) => a.index - b.index) };
  }

  /** True when ClickHouse answers a ping within `timeoutMs`. */
  async ping(timeoutMs = 2_000): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)));
    try {
      return await Promise.race([this.client.ping().then((r) => r.success), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Checks that every table and column the writer needs exists. Throws
   * STORE_NOT_INITIALIZED (not retriable) naming what is missing, or
   * CLICKHOUSE_UNAVAILABLE (retriable) when ClickHouse does not answer.
   */
  async checkSchema(): Promise<void> {
    let rows: { table: string; name: string }[];
    try {
      const rs = await this.client.query({
        query: 'SELECT table, name FROM system.columns WHERE database = {db:String} AND table IN {tables:Array(String)}',
        query_params: { db: this.database, tables: [...HOTSTORE_TABLES] },
        format: 'JSONEachRow',
      });
      rows = await rs.json<{ table: string; name: string }>();
    } catch (err) {
      throw unavailable(err, 'checking the hot store tables');
    }
    const have = new Set(rows.map((r) => `${r.table}.${r.name}`));
    const missing = HOTSTORE_TABLES.flatMap((t) => (TABLE_COLUMNS[t] as readonly string[]).filter((c) => !have.has(`${t}.${c}`)).map((c) => `${t}.${c}`));
    if (missing.length > 0) {
      const tables = [...new Set(missing.map((m) => m.split('.')[0]))];
      throw new AuditlineError(
        'STORE_NOT_INITIALIZED',
        `database ${this.database} lacks ${missing.length} hot store columns (tables ${tables.join(', ')}); run \`npx auditline setup\` to apply the ClickHouse migrations`,
        { details: { database: this.database } },
      );
    }
  }

  private async writeGroup(group: { rows: EventRows; index: number }[], rejected: RejectedEvent[], beat: () => Promise<void>): Promise<void> {
    if (group.length === 0) return;
    try {
      await this.insertAll(group.map((g) => g.rows), beat);
    } catch (err) {
      if (err instanceof HeartbeatFailed) throw err;
      const failure = classifyClickHouseError(err);
      if (failure.retriable) {
        this.metrics?.insertFailed('retriable');
        throw unavailable(err, `inserting ${group.length} events`);
      }
      this.metrics?.insertFailed('rejected');
      if (group.length === 1) {
        const id = group[0]!.rows.eventId;
        // No code: raised here while the rows were written (classifyClickHouseError), not an answer of ClickHouse.
        const reason = failure.code ? `ClickHouse refused the rows of event ${id}: ${failure.type} (code ${failure.code})` : `the rows of event ${id} cannot be written: ${failure.type} raised before ClickHouse answered`;
        rejected.push({ index: group[0]!.index, reason });
        return;
      }
      const middle = Math.ceil(group.length / 2);
      await beat();
      await this.writeGroup(group.slice(0, middle), rejected, beat);
      await beat();
      await this.writeGroup(group.slice(middle), rejected, beat);
    }
  }

  private async insertAll(events: readonly EventRows[], beat: () => Promise<void>): Promise<void> {
    for (const [i, phase] of INSERT_PHASES.entries()) {
      // Each phase may take up to the request timeout: three of them can outlast the session timeout.
      if (i > 0) await beat();
      const settled = await Promise.allSettled(phase.map((table) => this.insertTable(table, rowsOf(events, table))));
      const failures = settled.flatMap((s) => (s.status === 'rejected' ? [s.reason as unknown] : []));
      // An outage wins over refused rows: the whole batch is retried rather than split.
      if (failures.length > 0) throw failures.find((f) => classifyClickHouseError(f).retriable) ?? failures[0];
    }
  }

  private async insertTable(table: HotstoreTable, values: object[]): Promise<void> {
    if (values.length === 0) return;
    const began = performance.now();
    await this.client.insert({
      table: `${this.database}.${table}`,
      values,
      format: 'JSONEachRow',
      clickhouse_settings: {
        // Acknowledged means written: the offset commit depends on it.
        async_insert: 0,
        // Same on a cluster (Distributed tables, infra/clickhouse/cluster-ddl.ts): the insert returns once
        // the shards have the rows, not when they are queued on this node. No effect on a single node.
        distributed_foreground_insert: 1,
        // A column the table lacks must fail the insert, never be dropped silently.
        input_format_skip_unknown_fields: 0,
        // Tables are partitioned by month: a batch of a backfill can span more than the default 100 months, and that
        // error (TOO_MANY_PARTS, retriable as merge pressure) would retry the same batch forever.
        max_partitions_per_insert_block: '0',
      },
    });
    this.metrics?.inserted(table, values.length, (performance.now() - began) / 1000);
  }
}

function rowsOf(events: readonly EventRows[], table: HotstoreTable): object[] {
  return table === 'events' ? events.map((e) => e.event) : events.filter((e) => e.detail.table === table).map((e) => e.detail.row);
}

function unavailable(err: unknown, what: string): AuditlineError {
  const failure = classifyClickHouseError(err);
  return new AuditlineError('CLICKHOUSE_UNAVAILABLE', `ClickHouse failed ${what}: ${failure.summary}`, {
    retriable: true,
    cause: err,
    details: { type: failure.type },
  });
}
