import type { ClickHouseClient } from '@clickhouse/client';
import type { Period } from '../period.js';
import { queryRows } from '../clickhouse.js';
import { clickhouseTime } from '../../core/clients/clickhouse-time.js';

/** Uses of access in a period, grouped: reveals (pii_access_log) and report requests (report_requests). */
export interface UseGroup {
  principal: string;
  role: string;
  /** `reveal PII` or `request reports`. */
  access: string;
  /** For reveals, the execution status; for reports, the command and kind. */
  object: string;
  outcome: string;
  uses: number;
  last_used: string;
  /** One refusal detail of the group (why it was refused). */
  detail: string;
}

/** ClickHouse reads per user from system.query_log, or undefined where the server has no query log. */
export interface QueryLogUse {
  available: boolean;
  byUser: Map<string, { uses: number; last_used: string }>;
}

export async function accessUses(client: ClickHouseClient, database: string, period: Period): Promise<UseGroup[]> {
  const params = { from: clickhouseTime(period.from), to: clickhouseTime(period.to) };
  const rows = await queryRows<UseGroup>(
    client,
    'reading access records',
    `SELECT principal, role, access, object, outcome, count() AS uses, toString(max(at)) AS last_used, any(detail) AS detail
     FROM
     (
         SELECT principal, toString(role) AS role, 'reveal PII' AS access, concat('executions: ', toString(execution_status)) AS object,
                toString(outcome) AS outcome, at, detail
         FROM ${database}.pii_access_log WHERE at >= {from:DateTime64(3, 'UTC')} AND at < {to:DateTime64(3, 'UTC')}
         UNION ALL
         SELECT principal, toString(role), 'request reports', concat(toString(command), ' ', toString(kind)), toString(outcome), at, detail
         FROM ${database}.report_requests WHERE at >= {from:DateTime64(3, 'UTC')} AND at < {to:DateTime64(3, 'UTC')}
     )
     GROUP BY principal, role, access, object, outcome
     ORDER BY principal, role, access, object, outcome`,
    params,
  );
  return rows.map((r) => ({ ...r, uses: Number(r.uses) }));
}

/** Reads of `database` per ClickHouse user in the period (system.query_log), when the server keeps a query log. */
export async function queryLogUses(client: ClickHouseClient, database: string, period: Period): Promise<QueryLogUse> {
  const [has] = await queryRows<{ n: number | string }>(client, 'looking for system.query_log', "SELECT count() AS n FROM system.tables WHERE database = 'system' AND name = 'query_log'");
  if (Number(has?.n ?? 0) === 0) return { available: false, byUser: new Map() };
  const rows = await queryRows<{ user: string; uses: number | string; last_used: string }>(
    client,
    'reading system.query_log',
    `SELECT user, count() AS uses, toString(max(event_time)) AS last_used FROM system.query_log
     WHERE type = 'QueryFinish' AND event_time >= toDateTime({from:DateTime64(3, 'UTC')}) AND event_time < toDateTime({to:DateTime64(3, 'UTC')})
       AND has(databases, {db:String})
     GROUP BY user`,
    { from: clickhouseTime(period.from), to: clickhouseTime(period.to), db: database },
  );
  return { available: true, byUser: new Map(rows.map((r) => [r.user, { uses: Number(r.uses), last_used: r.last_used }])) };
}
