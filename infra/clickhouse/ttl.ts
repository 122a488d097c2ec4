import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { ClickHouseClient } from '@clickhouse/client';
import { AuditlineError, errorMessage } from '../../core/errors.js';
import { render, splitStatements } from './migrate.js';

/** One TTL of a table: the whole row (`column` undefined) or one column. */
export interface TtlRule {
  table: string;
  column?: string;
  days: number;
  /**
   * A table TTL that does more or less than delete every row at that age, as the server states it after the
   * interval (`WHERE workflow_id = 'x'`, `TO DISK 'cold'`, a second rule): the rows it keeps outlive the retention.
   */
  beyond?: string;
}

/** A TTL the migrations declare, with the migration variable that sets its days (`ttl_days_pii` ...). */
export interface DeclaredTtl extends Omit<TtlRule, 'days'> {
  variable: string;
  /** The TTL expression as the migration writes it, placeholders unrendered (`toDateTime(event_time) + INTERVAL {{ttl_days_pii}} DAY`). */
  expression: string;
  /** A column's definition before its TTL (type, default, codec), unrendered: `MODIFY COLUMN` restates it. */
  definition?: string;
}

/**
 * The TTLs the migrations declare, unrendered, as the last migration to
 * touch each one leaves it: every `TTL ... INTERVAL {{ttl_days_x}} DAY` of a
 * column line or of the table in a CREATE TABLE statement, replaced by a
 * later `ALTER TABLE ... MODIFY TTL` (table) or `MODIFY COLUMN <c> TTL`
 * (column; its CREATE definition is kept).
 */
export function declaredTtls(migrationsDir: string): DeclaredTtl[] {
  const out: DeclaredTtl[] = [];
  const at = (table: string, column: string | undefined) => out.findIndex((d) => d.table === table && d.column === column);
  for (const file of readdirSync(migrationsDir).filter((f) => f.endsWith('.sql')).sort()) {
    for (const statement of splitStatements(readFileSync(path.join(migrationsDir, file), 'utf8'))) {
      const sql = statement.replace(/--.*$/gm, '').trim();
      const alter = /^ALTER TABLE \{\{database\}\}\.(\w+) MODIFY (?:COLUMN (\w+) )?TTL\s+(.*\{\{\s*(ttl_days_\w+)\s*\}\}.*?)\s*;?$/is.exec(sql);
      if (alter) {
        const [, table, column, expression, variable] = alter as unknown as [string, string, string | undefined, string, string];
        const i = at(table, column);
        if (i < 0) throw new Error(`migration ${file} changes the TTL of ${table}${column ? `.${column}` : ''}, which no earlier migration declares`);
        out[i] = { ...out[i]!, expression, variable };
        continue;
      }
      const table = /CREATE TABLE (?:IF NOT EXISTS )?\{\{database\}\}\.(\w+)/i.exec(sql)?.[1];
      if (!table) continue;
      const engineAt = sql.search(/\)\s*ENGINE\s*=/);
      const columns = sql.slice(0, engineAt);
      const engine = sql.slice(engineAt);
      for (const line of columns.split('\n')) {
        const m = /^\s*(\w+)\s+(.*?)\s+TTL\s+(.*\{\{\s*(ttl_days_\w+)\s*\}\}.*?)\s*,?\s*$/.exec(line);
        if (m) out.push({ table, column: m[1]!, definition: m[2]!, expression: m[3]!, variable: m[4]! });
      }
      const t = /^\s*TTL\s+(.*\{\{\s*(ttl_days_\w+)\s*\}\}.*?)\s*;?\s*$/m.exec(engine);
      if (t) out.push({ table, expression: t[1]!, variable: t[2]! });
    }
  }
  return out;
}

const UNIT_DAYS: Record<string, number> = { Second: 1 / 86_400, Minute: 1 / 1_440, Hour: 1 / 24, Day: 1, Week: 7, Month: 30, Quarter: 91, Year: 365 };
const INTERVAL = /toInterval(Second|Minute|Hour|Day|Week|Month|Quarter|Year)\((\d+)\)|INTERVAL\s+(\d+)\s+(SECOND|MINUTE|HOUR|DAY|WEEK|MONTH|QUARTER|YEAR)/i;
const INTERVALS = new RegExp(INTERVAL.source, 'gi');

function intervalDays(expr: string): number | undefined {
  const m = INTERVAL.exec(expr);
  if (!m) return undefined;
  const unit = m[1] ?? `${m[4]![0]}${m[4]!.slice(1).toLowerCase()}`;
  return Number(m[2] ?? m[3]) * UNIT_DAYS[unit]!;
}

/**
 * The TTLs of a table as the server states them in `create_table_query`
 * (system.tables): column TTLs in the column list, the table TTL after ENGINE.
 */
export function serverTtls(table: string, createTableQuery: string): TtlRule[] {
  const engineAt = createTableQuery.search(/\)\s*ENGINE\s*=/);
  const columns = engineAt < 0 ? createTableQuery : createTableQuery.slice(0, engineAt);
  const engine = engineAt < 0 ? '' : createTableQuery.slice(engineAt);
  const out: TtlRule[] = [];
  // A column definition runs from its back-quoted name to the next one; its TTL expression names columns unquoted.
  for (const m of columns.matchAll(/`(\w+)`\s([^`]*?)\bTTL\b([^`]*)/g)) {
    const days = intervalDays(m[3]!);
    if (days !== undefined) out.push({ table, column: m[1]!, days });
  }
  const t = /\bTTL\b(.*?)(?:\bSETTINGS\b|$)/s.exec(engine);
  const days = t ? intervalDays(t[1]!) : undefined;
  if (days !== undefined) {
    // What follows the last interval: nothing (or DELETE) for a TTL that deletes every row; else a WHERE, a move, another rule.
    const last = [...t![1]!.matchAll(INTERVALS)].at(-1)!;
    const rest = t![1]!.slice(last.index + last[0].length).trim().replace(/^DELETE\b\s*/i, '');
    out.push(rest === '' ? { table, days } : { table, days, beyond: rest });
  }
  return out;
}

/**
 * Whether a TTL on the server enforces `days`: it deletes every row (or
 * empties the column) at that age, no later and no more selectively. What
 * `retention plan` reports as ok and `setup` leaves as it is.
 */
export function ttlEnforces(rule: TtlRule | undefined, days: number): boolean {
  return rule !== undefined && rule.beyond === undefined && Math.abs(rule.days - days) < 1e-9;
}

/**
 * Brings the TTLs of the migrated tables to the retention settings: every
 * TTL a migration declares whose days on the server differ from the
 * settings' is restated with `ALTER TABLE ... MODIFY TTL` (table) or
 * `MODIFY COLUMN ... TTL` (column). ClickHouse then applies it to the
 * existing parts in the background. Migrations stay append-only; this is
 * how `auditline setup` carries a changed retention value into ClickHouse.
 * Returns the TTLs it changed (`table` or `table.column`).
 */
export async function syncTtls(client: ClickHouseClient, options: { database: string; dir: string; variables: Record<string, string | number> }): Promise<string[]> {
  const db = options.database;
  const variables: Record<string, string | number> = { database: db, ...options.variables };
  let tables: { name: string; create_table_query: string }[];
  try {
    const rs = await client.query({ query: 'SELECT name, create_table_query FROM system.tables WHERE database = {db:String}', query_params: { db }, format: 'JSONEachRow' });
    tables = await rs.json();
  } catch (err) {
    throw new AuditlineError('MIGRATION_FAILED', `cannot read the table definitions of ${db}: ${errorMessage(err)}`, { cause: err });
  }
  const onServer = new Map(tables.map((t) => [t.name, serverTtls(t.name, t.create_table_query)]));
  const changed: string[] = [];
  for (const d of declaredTtls(options.dir)) {
    const rules = onServer.get(d.table);
    const wanted = Number(variables[d.variable]);
    if (!rules || !Number.isFinite(wanted)) continue;
    if (ttlEnforces(rules.find((r) => r.column === d.column), wanted)) continue;
    const what = `ttl of ${d.table}${d.column ? `.${d.column}` : ''}`;
    const expression = render(d.expression, variables, what);
    const statement = d.column
      ? `ALTER TABLE ${db}.${d.table} MODIFY COLUMN ${d.column} ${render(d.definition!, variables, what)} TTL ${expression}`
      : `ALTER TABLE ${db}.${d.table} MODIFY TTL ${expression}`;
    try {
      await client.command({ query: statement });
    } catch (err) {
      throw new AuditlineError('MIGRATION_FAILED', `cannot change the ${what} to ${wanted} days: ${errorMessage(err)}`, { cause: err });
    }
    changed.push(d.column ? `${d.table}.${d.column}` : d.table);
  }
  return changed;
}
