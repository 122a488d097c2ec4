import type { ClickHouseClient } from '@clickhouse/client';
import { AuditlineError, errorMessage } from '../../core/errors.js';
import { clickhouseTime } from '../../core/clients/clickhouse-time.js';
import type { Alert } from './alert.js';

/** Tables of the alerts service (migrations 0009 and 0013). */
export const ALERT_TABLES = ['alerts_fired', 'alert_deliveries', 'alerts_state'] as const;

/** Where a partition's state stands: the next signal offset to handle and the last written version. */
export interface Checkpoint {
  nextOffset: string;
  version: number;
}

/** One delivery attempt as alert_deliveries records it. */
export interface DeliveryAttempt {
  attemptedAt: number;
  alertId: string;
  channel: string;
  attempt: number;
  outcome: 'delivered' | 'failed' | 'dead_lettered';
  httpStatus: number;
  /** Error class and status only (never a response body, which a receiver controls). */
  error: string;
  latencyMs: number;
}

const CHECKPOINT = '';

/**
 * How far above every stored version a load claims a partition (loadState):
 * a stale owner, which loaded before and counts on from below the highest
 * version stored, would need this many writes after the load to tie with
 * the new owner's first. 2^24: 2^29 loads of a partition fit in a safe integer.
 */
export const VERSION_STRIDE = 2 ** 24;

/**
 * The alerts service's ClickHouse tables: rule state with its checkpoint
 * (alerts_state), fired alerts (alerts_fired) and delivery attempts
 * (alert_deliveries). Any failure is CLICKHOUSE_UNAVAILABLE (retriable).
 */
export class AlertStore {
  constructor(
    private readonly client: ClickHouseClient,
    readonly database: string,
    private readonly scope: { group: string; topic: string },
  ) {}

  /**
   * Loads one partition for a new owner and claims it: its entries (the
   * latest version of each, deleted ones left out) and checkpoint, then the
   * checkpoint written again at VERSION_STRIDE above the highest stored
   * version, which the returned checkpoint carries. The owner's writes count
   * on from there: what a stale owner (one evicted, or one a rebalance took
   * the partition from, still finishing a batch or tick) stores after this
   * load has a lower version, so it neither ties nor beats the owner's
   * checkpoint or the entries the owner writes. The claim is written before
   * the state is used, so a later load claims above it even if this owner
   * never writes.
   */
  async loadState(partition: number): Promise<{ checkpoint: Checkpoint; entries: [string, string][] }> {
    const rows = await this.run('load rule state', async () => {
      const rs = await this.client.query({
        query: `SELECT entry, argMax(value, version) AS value, argMax(deleted, version) AS deleted, max(version) AS top FROM ${this.database}.alerts_state
                WHERE consumer_group = {g:String} AND topic = {t:String} AND partition = {p:UInt32} GROUP BY entry`,
        query_params: { g: this.scope.group, t: this.scope.topic, p: partition },
        format: 'JSONEachRow',
      });
      return rs.json<{ entry: string; value: string; deleted: number; top: string | number }>();
    });
    let stored: Checkpoint = { nextOffset: '0', version: 0 };
    let top = 0;
    const entries: [string, string][] = [];
    for (const r of rows) {
      top = Math.max(top, Number(r.top));
      if (Number(r.deleted) === 1) continue;
      if (r.entry === CHECKPOINT) stored = JSON.parse(r.value) as Checkpoint;
      else entries.push([r.entry, r.value]);
    }
    const checkpoint: Checkpoint = { nextOffset: stored.nextOffset, version: top + VERSION_STRIDE };
    await this.saveState(partition, [], checkpoint);
    return { checkpoint, entries };
  }

  /**
   * Writes the changed entries and the new checkpoint of a partition in ONE
   * insert (one part of an unpartitioned table: all rows or none).
   */
  async saveState(partition: number, changes: readonly [string, string | null][], checkpoint: Checkpoint): Promise<void> {
    const now = clickhouseTime(Date.now());
    const row = (entry: string, value: string | null) => ({
      consumer_group: this.scope.group,
      topic: this.scope.topic,
      partition,
      entry,
      version: checkpoint.version,
      value: value ?? '',
      deleted: value === null ? 1 : 0,
      updated_at: now,
    });
    const values = [...changes.map(([k, v]) => row(k, v)), row(CHECKPOINT, JSON.stringify(checkpoint))];
    await this.run('save rule state', () => this.client.insert({ table: `${this.database}.alerts_state`, values, format: 'JSONEachRow' }));
  }

  /** Records fired alerts (ReplacingMergeTree on the alert id: writing one again is harmless). */
  async recordFired(alerts: readonly Alert[]): Promise<void> {
    if (alerts.length === 0) return;
    const values = alerts.map((a) => ({
      fired_at: clickhouseTime(a.fired_at),
      alert_id: a.alert_id,
      rule: a.rule,
      rule_kind: a.kind,
      severity: a.severity,
      alert_key: a.key,
      channels: a.channels,
      summary: a.summary,
      execution_ids: a.execution_ids,
      event_count: a.event_count,
      evidence: JSON.stringify(a.evidence),
    }));
    await this.run('record fired alerts', () => this.client.insert({ table: `${this.database}.alerts_fired`, values, format: 'JSONEachRow' }));
  }

  async recordAttempts(attempts: readonly DeliveryAttempt[]): Promise<void> {
    if (attempts.length === 0) return;
    const values = attempts.map((a) => ({
      attempted_at: clickhouseTime(a.attemptedAt),
      alert_id: a.alertId,
      channel: a.channel,
      attempt: a.attempt,
      outcome: a.outcome,
      http_status: a.httpStatus,
      error: a.error,
      latency_ms: Math.max(0, Math.round(a.latencyMs)),
    }));
    await this.run('record delivery attempts', () => this.client.insert({ table: `${this.database}.alert_deliveries`, values, format: 'JSONEachRow' }));
  }

  /** Fails (not retriable) when a table is missing: `auditline setup` applies the migrations. */
  async checkTables(): Promise<void> {
    const rows = await this.run('list tables', async () => {
      const rs = await this.client.query({ query: 'SELECT name FROM system.tables WHERE database = {d:String}', query_params: { d: this.database }, format: 'JSONEachRow' });
      return rs.json<{ name: string }>();
    });
    const have = new Set(rows.map((r) => r.name));
    const missing = ALERT_TABLES.filter((t) => !have.has(t));
    if (missing.length > 0) {
      throw new AuditlineError('STORE_NOT_INITIALIZED', `ClickHouse database ${this.database} lacks ${missing.join(', ')}; run \`npx auditline setup\``, { details: { database: this.database } });
    }
  }

  async ping(timeoutMs = 2_000): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)));
    try {
      return await Promise.race([this.client.ping().then((r) => r.success), timeout]);
    } catch {
      return false;
    } finally {
      clearTimeout(timer);
    }
  }

  private async run<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw new AuditlineError('CLICKHOUSE_UNAVAILABLE', `cannot ${what} in ClickHouse: ${errorMessage(err)}`, { retriable: true, cause: err });
    }
  }
}
