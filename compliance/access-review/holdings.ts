import type { ClickHouseClient } from '@clickhouse/client';
import { accessGrants, PRINCIPAL_NAMES, PRINCIPALS } from '../../infra/clickhouse/access.js';
import type { RevealPolicy } from '../../consumers/tokenizer/index.js';
import { queryRows } from '../clickhouse.js';

/** One access someone holds: a ClickHouse grant, a reveal permission or the right to request reports. */
export interface Holding {
  /** Users holding it (ClickHouse), or `*` (anyone acting in the role). */
  holder: string;
  role: string;
  access: string;
  object: string;
  source: 'clickhouse system tables' | 'infra/clickhouse/access.ts' | 'AUDITLINE_REVEAL_POLICY' | 'AUDITLINE_REPORT_ROLES';
  /** ClickHouse users whose reads count as use of a ClickHouse holding. */
  users: string[];
}

export interface ClickHouseHoldings {
  holdings: Holding[];
  /** Where they were read from, and why the definition was used instead when it was. */
  note: string;
  /** Why the server's grants could not be read, when the definition stands in for them (not when it was asked for). */
  unread?: string;
}

interface GrantRow {
  user_name: string | null;
  role_name: string | null;
  access_type: string;
  database: string | null;
  table: string | null;
  column: string | null;
}

/**
 * ClickHouse users, roles and grants on `database` (and global grants)
 * as the server reports them (system.grants, system.role_grants). When the
 * server refuses those tables, the definition in infra/clickhouse/access.ts
 * stands in and `unread` says why: the caller must not present it as the
 * server's grants (the definition is the intended access, and hides a grant
 * made outside it). `fromDefinition` asks for the definition without reading
 * the server.
 * Checked on ClickHouse 26.7: a user without SELECT on system.grants is
 * refused (ACCESS_DENIED), and one with it sees every user's and role's
 * grants, SHOW USERS / SHOW ROLES or not; the server does not filter silently.
 */
export async function clickhouseHoldings(client: ClickHouseClient, database: string, options: { fromDefinition?: boolean } = {}): Promise<ClickHouseHoldings> {
  if (options.fromDefinition) {
    return { holdings: definedHoldings(database), note: 'ClickHouse grants from infra/clickhouse/access.ts (the definition), as asked (--grants-from-definition): the intended access, not read from the server' };
  }
  let grants: GrantRow[];
  let roleGrants: { user_name: string; granted_role_name: string }[];
  try {
    grants = await queryRows<GrantRow>(
      client,
      'reading system.grants',
      `SELECT user_name, role_name, access_type, database, table, column FROM system.grants
       WHERE database = {db:String} OR database IS NULL ORDER BY ifNull(user_name, ''), ifNull(role_name, ''), table, access_type, column`,
      { db: database },
    );
    roleGrants = await queryRows(client, 'reading system.role_grants', 'SELECT user_name, granted_role_name FROM system.role_grants WHERE user_name IS NOT NULL ORDER BY user_name');
  } catch (err) {
    const unread = (err as Error).message;
    return { holdings: definedHoldings(database), note: `ClickHouse grants from infra/clickhouse/access.ts (the definition): the server's system.grants could not be read (${unread})`, unread };
  }
  const usersOf = (role: string) => roleGrants.filter((g) => g.granted_role_name === role).map((g) => g.user_name);
  const groups = new Map<string, { row: GrantRow; columns: string[]; types: string[] }>();
  for (const g of grants) {
    // Global grants of one holder collapse into one holding; table grants group per table and privilege.
    const key = g.database === null ? `${g.user_name}|${g.role_name}|*` : `${g.user_name}|${g.role_name}|${g.access_type}|${g.table}`;
    const group = groups.get(key) ?? { row: g, columns: [], types: [] };
    if (g.column !== null) group.columns.push(g.column);
    if (!group.types.includes(g.access_type)) group.types.push(g.access_type);
    groups.set(key, group);
  }
  const holdings = [...groups.values()].map(({ row, columns, types }): Holding => {
    const users = row.user_name !== null ? [row.user_name] : usersOf(row.role_name ?? '');
    const access = row.database === null ? `global: ${types.length > 4 ? `${types.slice(0, 4).join(', ')} +${types.length - 4} more` : types.join(', ')}` : row.access_type;
    const object = row.database === null ? '*.*' : `${row.database}.${row.table ?? '*'}${columns.length > 0 ? `(${columns.length} columns)` : ''}`;
    return { holder: users.join(', ') || '(no user)', role: row.role_name ?? '(direct)', access, object, source: 'clickhouse system tables', users };
  });
  return { holdings, note: `ClickHouse grants read from the server (system.grants, system.role_grants) for database ${database} and global grants` };
}

/** The ClickHouse access definition (infra/clickhouse/access.ts) as holdings. */
export function definedHoldings(database: string): Holding[] {
  return accessGrants({ database }).map((g) => {
    const p = PRINCIPAL_NAMES.map((n) => PRINCIPALS[n]).find((x) => x.role === g.role)!;
    return {
      holder: p.user,
      role: g.role,
      access: g.privilege,
      object: `${g.database}.${g.table}${g.columns ? `(${g.columns.length} columns)` : ''}`,
      source: 'infra/clickhouse/access.ts',
      users: [p.user],
    };
  });
}

/** Reveal permissions of the reveal policy and the roles that may request reports, as holdings. */
export function configuredHoldings(policy: RevealPolicy, reportRoles: readonly string[]): Holding[] {
  return [
    ...Object.entries(policy).map(([role, rule]): Holding => ({
      holder: '*',
      role,
      access: 'reveal PII',
      object: `executions: ${rule === 'any' ? 'any status' : rule.join(' | ')}`,
      source: 'AUDITLINE_REVEAL_POLICY',
      users: [],
    })),
    ...reportRoles.map((role): Holding => ({ holder: '*', role, access: 'request reports', object: 'reports, access reviews', source: 'AUDITLINE_REPORT_ROLES', users: [] })),
  ];
}
