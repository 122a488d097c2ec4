import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { splitStatements } from '../../infra/clickhouse/migrate.js';

/** One TTL of a table: the whole row (`column` undefined) or one column. */
export interface TtlRule {
  table: string;
  column?: string;
  days: number;
}

/** A TTL the migrations declare, with the migration variable that sets its days (`ttl_days_pii` ...). */
export interface DeclaredTtl extends Omit<TtlRule, 'days'> {
  variable: string;
}

/**
 * The TTLs the migrations declare (CREATE TABLE statements, unrendered):
 * every `TTL ... INTERVAL {{ttl_days_x}} DAY` of a column line or of the
 * table. Later `ALTER ... MODIFY TTL` migrations are not read (none exist).
 */
export function declaredTtls(migrationsDir: string): DeclaredTtl[] {
  const out: DeclaredTtl[] = [];
  for (const file of readdirSync(migrationsDir).filter((f) => f.endsWith('.sql')).sort()) {
    for (const statement of splitStatements(readFileSync(path.join(migrationsDir, file), 'utf8'))) {
      const sql = statement.replace(/--.*$/gm, '');
      const table = /CREATE TABLE (?:IF NOT EXISTS )?\{\{database\}\}\.(\w+)/i.exec(sql)?.[1];
      if (!table) continue;
      const engineAt = sql.search(/\)\s*ENGINE\s*=/);
      const columns = sql.slice(0, engineAt);
      const engine = sql.slice(engineAt);
      for (const line of columns.split('\n')) {
        const m = /^\s*(\w+)\s.*\bTTL\b.*\{\{\s*(ttl_days_\w+)\s*\}\}/.exec(line);
        if (m) out.push({ table, column: m[1]!, variable: m[2]! });
      }
      const t = /^\s*TTL\b.*\{\{\s*(ttl_days_\w+)\s*\}\}/m.exec(engine);
      if (t) out.push({ table, variable: t[1]! });
    }
  }
  return out;
}

const UNIT_DAYS: Record<string, number> = { Second: 1 / 86_400, Minute: 1 / 1_440, Hour: 1 / 24, Day: 1, Week: 7, Month: 30, Quarter: 91, Year: 365 };
const INTERVAL = /toInterval(Second|Minute|Hour|Day|Week|Month|Quarter|Year)\((\d+)\)|INTERVAL\s+(\d+)\s+(SECOND|MINUTE|HOUR|DAY|WEEK|MONTH|QUARTER|YEAR)/i;

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
  if (days !== undefined) out.push({ table, days });
  return out;
}
