import type { ClickHouseClient } from '@clickhouse/client';
import { chCall, database, selectRowsIn } from './clickhouse.js';
import { clickhouseTime } from '../../core/clients/clickhouse-time.js';

/**
 * Which data subject each execution belongs to (execution id → subject
 * token), learned from its ExecutionStarted event and needed for its later
 * events, whose payloads rarely name the customer. Kept in memory (LRU of
 * `maxEntries`) and in ClickHouse (`execution_subjects`, TTL of the GDPR
 * retention), so a restarted or rebalanced instance still knows the
 * executions its predecessor started.
 */
export class ExecutionSubjects {
  private readonly db: string;
  private readonly cache = new Map<string, string>();

  constructor(
    private readonly client: ClickHouseClient,
    databaseName: string,
    private readonly maxEntries: number,
  ) {
    this.db = database(databaseName);
  }

  get(executionId: string): string | undefined {
    const subject = this.cache.get(executionId);
    if (subject !== undefined) {
      // Refresh recency: Map iteration order is insertion order.
      this.cache.delete(executionId);
      this.cache.set(executionId, subject);
    }
    return subject;
  }

  /** Remembers in memory only; {@link save} writes to ClickHouse. */
  remember(executionId: string, subject: string): void {
    this.cache.delete(executionId);
    this.cache.set(executionId, subject);
    while (this.cache.size > this.maxEntries) this.cache.delete(this.cache.keys().next().value!);
  }

  /** Loads the subjects of executions not in memory from ClickHouse; returns how many were found. */
  async load(executionIds: readonly string[]): Promise<number> {
    const ids = [...new Set(executionIds)].filter((id) => !this.cache.has(id));
    if (ids.length === 0) return 0;
    const rows = await selectRowsIn<{ execution_id: string; subject: string }>(
      this.client,
      'looking up execution subjects',
      `SELECT execution_id, any(subject) AS subject FROM ${this.db}.execution_subjects WHERE execution_id IN {ids:Array(String)} GROUP BY execution_id`,
      'ids',
      ids,
    );
    for (const r of rows) this.remember(r.execution_id, r.subject);
    return rows.length;
  }

  /** Writes mappings (idempotent: ReplacingMergeTree keyed by execution id). */
  async save(rows: readonly { executionId: string; subject: string }[], now = Date.now()): Promise<void> {
    if (rows.length === 0) return;
    await chCall('storing execution subjects', () =>
      this.client.insert({
        table: `${this.db}.execution_subjects`,
        values: rows.map((r) => ({ execution_id: r.executionId, subject: r.subject, created_at: clickhouseTime(now) })),
        format: 'JSONEachRow',
      }),
    );
  }
}
