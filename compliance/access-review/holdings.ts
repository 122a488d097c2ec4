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
  /** A partial revoke (system.grants is_partial_revoke): access taken away, not held; never UNUSED. */
  revoke?: boolean;
}

export interface ClickHouseHoldings {
  holdings: Holding[];
  /** Where they were read from, and why the definition was used instead when it was. */
  note: string;
  /** Why the server's grants could not be read, when the definition stands in for them (not when it was asked for). */
  unread?: string;
}

/** A row of system.grants (ClickHouse 26.7): a grant, or a partial revoke that narrows a wider grant of the same holder. */
export interface GrantRow {
  user_name: string | null;
  role_name: string | null;
  access_type: string;
  database: string | null;
  table: string | null;
  column: string | null;
  /** 1: the row takes the privilege away (`REVOKE SELECT(c) ON db.t` after `GRANT SELECT ON db.*`). */
  is_partial_revoke: number | boolean;
  /** 1: `database` (with `table` null) or `table` is a prefix (`GRANT SELECT ON audit*.*`, `ON db.exec*`). */
  is_wildcard: number | boolean;
}

/** A row of system.role_grants: a role granted to a user (`user_name`) or to another role (`role_name`). */
export interface RoleGrantRow {
  user_name: string | null;
  role_name: string | null;
  granted_role_name: string;
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
  let roleGrants: RoleGrantRow[];
  try {
    grants = await queryRows<GrantRow>(
      client,
      'reading system.grants',
      // A wildcard grant names a prefix of the database (`audit*.*`): it covers the database as much as `audit.*` does.
      `SELECT user_name, role_name, access_type, database, table, column, is_partial_revoke, is_wildcard FROM system.grants
       WHERE database = {db:String} OR database IS NULL OR (is_wildcard AND table IS NULL AND startsWith({db:String}, database))
       ORDER BY ifNull(user_name, ''), ifNull(role_name, ''), table, access_type, is_partial_revoke, column`,
      { db: database },
    );
    roleGrants = await queryRows(client, 'reading system.role_grants', 'SELECT user_name, role_name, granted_role_name FROM system.role_grants ORDER BY ifNull(user_name, \'\'), ifNull(role_name, \'\')');
  } catch (err) {
    const unread = (err as Error).message;
    return { holdings: definedHoldings(database), note: `ClickHouse grants from infra/clickhouse/access.ts (the definition): the server's system.grants could not be read (${unread})`, unread };
  }
  return { holdings: holdingsFromGrants(grants, roleGrants), note: `ClickHouse grants read from the server (system.grants, system.role_grants) for database ${database} and global grants` };
}

/**
 * Holdings of system.grants rows. A role's holders are the users granted it
 * directly or through other roles (a role granted to a role), so a grant
 * reached through a nested role is not shown as held by nobody. A partial
 * revoke is its own row (`REVOKE <privilege>`), never shown as a grant.
 */
export function holdingsFromGrants(grants: readonly GrantRow[], roleGrants: readonly RoleGrantRow[]): Holding[] {
  const usersOf = (role: string, seen: Set<string>): string[] => {
    if (seen.has(role)) return [];
    seen.add(role);
    return roleGrants
      .filter((g) => g.granted_role_name === role)
      .flatMap((g) => (g.user_name !== null ? [g.user_name] : g.role_name !== null ? usersOf(g.role_name, seen) : []));
  };
  const groups = new Map<string, { row: GrantRow; columns: string[]; types: string[] }>();
  for (const g of grants) {
    const revoke = Boolean(Number(g.is_partial_revoke));
    // Global grants of one holder collapse into one holding; table grants group per table and privilege; revokes apart from grants.
    const key = `${revoke}|${g.user_name}|${g.role_name}|${g.database === null ? '*' : `${g.access_type}|${g.database}|${g.table}`}`;
    const group = groups.get(key) ?? { row: g, columns: [], types: [] };
    if (g.column !== null) group.columns.push(g.column);
    if (!group.types.includes(g.access_type)) group.types.push(g.access_type);
    groups.set(key, group);
  }
  return [...groups.values()].map(({ row, columns, types }): Holding => {
    const users = row.user_name !== null ? [row.user_name] : [...new Set(usersOf(row.role_name ?? '', new Set()))].sort();
    const revoke = Boolean(Number(row.is_partial_revoke));
    const privilege = row.database === null ? `global: ${types.length > 4 ? `${types.slice(0, 4).join(', ')} +${types.length - 4} more` : types.join(', ')}` : row.access_type;
    const wildcard = Boolean(Number(row.is_wildcard)) ? '*' : '';
    const object =
      row.database === null ? '*.*' : row.table === null ? `${row.database}${wildcard}.*` : `${row.database}.${row.table}${wildcard}${columns.length > 0 ? `(${columns.length} columns)` : ''}`;
    return { holder: users.join(', ') || '(no user)', role: row.role_name ?? '(direct)', access: revoke ? `REVOKE ${privilege}` : privilege, object, source: 'clickhouse system tables', users, ...(revoke ? { revoke: true } : {}) };
  });
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
