import type { DataClass, RawSchema } from '../../schemas/index.js';
import { ACCESS_TABLES, columnClasses, type AccessTable } from './column-classes.js';

/**
 * Who may do what in the hot store: the ONE definition from which both the
 * SQL DDL for real servers (`accessDdl`) and the XML users file of the local
 * engine (access-xml.ts) are rendered. Column-level reads are derived from
 * the data classes of the Avro schema (column-classes.ts).
 */
export type PrincipalName = 'writer' | 'operational' | 'compliance';
export const PRINCIPAL_NAMES: readonly PrincipalName[] = ['writer', 'operational', 'compliance'];

export interface Principal {
  name: PrincipalName;
  /** Role that holds the grants; a real deployment grants it to its own users. */
  role: string;
  /** User that holds the role on the local stack (and in the DDL when passwords are given). */
  user: string;
  description: string;
  privilege: 'INSERT' | 'SELECT';
  /**
   * Data classes whose columns the role must not reach. Empty: whole-table
   * grants, which also cover columns added later. Otherwise the grant lists
   * the allowed columns, so a column added later stays hidden until its
   * class is declared (deny by default).
   */
  hides: readonly DataClass[];
}

export const PRINCIPALS: Readonly<Record<PrincipalName, Principal>> = {
  writer: {
    name: 'writer',
    role: 'auditline_write',
    user: 'auditline_writer',
    description: 'the hot store service: inserts rows, reads and alters nothing',
    privilege: 'INSERT',
    hides: [],
  },
  operational: {
    name: 'operational',
    role: 'auditline_read_operational',
    user: 'auditline_operational',
    description: 'open operational reads: every column except those holding a pii-class field',
    privilege: 'SELECT',
    hides: ['pii'],
  },
  compliance: {
    name: 'compliance',
    role: 'auditline_read_compliance',
    user: 'auditline_compliance',
    description: 'restricted compliance reads: every column, the (tokenized) PII columns included',
    privilege: 'SELECT',
    hides: [],
  },
};

/** One privilege of a role on one table; no `columns`: the whole table. */
export interface Grant {
  role: string;
  privilege: 'INSERT' | 'SELECT';
  database: string;
  table: string;
  columns?: string[];
}

export interface AccessOptions {
  /** Database of the hot store tables (AUDITLINE_CLICKHOUSE_DATABASE). */
  database: string;
  /** Tables a grant names for each table of the definition; the cluster variant adds the replicated local table. */
  targets?: (table: AccessTable) => string[];
  /** Schema whose dataClass tags decide the columns. @default the audit event schema */
  schema?: RawSchema;
}

/** Every grant of every principal, in principal then table order. */
export function accessGrants(options: AccessOptions): Grant[] {
  const database = identifier(options.database, 'database');
  const targets = options.targets ?? ((t: AccessTable) => [t]);
  const classes = columnClasses(options.schema);
  return PRINCIPAL_NAMES.flatMap((name) => {
    const p = PRINCIPALS[name];
    return ACCESS_TABLES.flatMap((logical) => {
      const columns = p.hides.length === 0 ? undefined : classes[logical].filter(([, c]) => !p.hides.includes(c)).map(([col]) => col);
      return targets(logical).map((table): Grant => ({ role: p.role, privilege: p.privilege, database, table: identifier(table, 'table'), ...(columns ? { columns } : {}) }));
    });
  });
}

/** `SELECT(a, b) ON db.t`: the part of a GRANT that SQL and the XML users file share. */
export function grantTarget(g: Grant): string {
  return `${g.privilege}${g.columns ? `(${g.columns.join(', ')})` : ''} ON ${g.database}.${g.table}`;
}

/** The privileges of one role as one GRANT body (`SELECT(..) ON db.t1, SELECT(..) ON db.t2`). */
export function roleGrantBody(grants: readonly Grant[], role: string): string {
  return grants.filter((g) => g.role === role).map(grantTarget).join(', ');
}

export interface AccessDdlOptions extends AccessOptions {
  /** Adds `ON CLUSTER '<cluster>'` to every statement. */
  cluster?: string;
  /** Per-role settings (the cluster variant sets distributed query modes). */
  roleSettings?: Partial<Record<PrincipalName, Record<string, string | number>>>;
  /** Users to create, identified by the SHA-256 (hex) of their password; omitted: roles only. */
  users?: Partial<Record<PrincipalName, { passwordSha256Hex: string }>>;
}

/**
 * SQL DDL for a real ClickHouse server (users and roles by SQL need a
 * writable access storage, which the local engine lacks). Safe to run
 * again: roles and users are created if missing, and each role's
 * privileges are replaced as a whole (`WITH REPLACE OPTION`), so a column
 * removed from the definition loses its grant.
 */
export function accessDdl(options: AccessDdlOptions): string[] {
  const grants = accessGrants(options);
  const on = options.cluster ? ` ON CLUSTER '${clusterName(options.cluster)}'` : '';
  const statements: string[] = [];
  for (const name of PRINCIPAL_NAMES) {
    const p = PRINCIPALS[name];
    statements.push(`CREATE ROLE IF NOT EXISTS ${p.role}${on}`);
    const settings = Object.entries(options.roleSettings?.[name] ?? {});
    if (settings.length > 0) {
      statements.push(`ALTER ROLE ${p.role}${on} SETTINGS ${settings.map(([k, v]) => `${identifier(k, 'setting')} = ${sqlValue(v)}`).join(', ')}`);
    }
    statements.push(`GRANT${on} ${roleGrantBody(grants, p.role)} TO ${p.role} WITH REPLACE OPTION`);
  }
  for (const name of PRINCIPAL_NAMES) {
    const user = options.users?.[name];
    if (!user) continue;
    const p = PRINCIPALS[name];
    if (!/^[0-9a-f]{64}$/i.test(user.passwordSha256Hex)) throw new Error(`the password hash of ${p.user} must be 64 hex digits (SHA-256)`);
    statements.push(`CREATE USER IF NOT EXISTS ${p.user}${on} IDENTIFIED WITH sha256_hash BY '${user.passwordSha256Hex.toLowerCase()}'`);
    statements.push(`GRANT${on} ${p.role} TO ${p.user}`);
  }
  return statements;
}

/** Statements as a script for `clickhouse-client --multiquery` (each ends with `;`). */
export function toScript(statements: readonly string[], header = ''): string {
  return `${header}${statements.map((s) => `${s};`).join('\n\n')}\n`;
}

function identifier(value: string, what: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(value)) throw new Error(`${what} name ${JSON.stringify(value)} is not a plain identifier`);
  return value;
}

/** A cluster name as written in `ON CLUSTER '...'`: letters, digits, `_-.` or a `{macro}`. */
export function clusterName(value: string): string {
  if (!/^(?:[A-Za-z0-9_.-]+|\{[a-z_]+\})$/.test(value)) throw new Error(`cluster name ${JSON.stringify(value)} must be letters, digits, _ - . or a {macro}`);
  return value;
}

function sqlValue(v: string | number): string {
  return typeof v === 'number' ? String(v) : `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}
