import { migrationVariables } from '../setup.js';
import type { RetentionSettings } from '../retention.js';
import { accessDdl, type PrincipalName } from './access.js';
import { clusterDdl } from './cluster-ddl.js';
import { DEFAULT_MIGRATIONS_DIR, readMigrations } from './migrate.js';

/**
 * The DDL scripts an operator applies by hand (infra/clickhouse/README.md),
 * composed from the migrations and the access definition. print-ddl.ts
 * prints them; nothing here opens a socket.
 */

/** Per-role settings on a cluster: synchronous distributed inserts (acknowledged = on the shard) and local joins (tables are co-sharded by execution_id). */
export const CLUSTER_ROLE_SETTINGS: Partial<Record<PrincipalName, Record<string, string | number>>> = {
  writer: { distributed_foreground_insert: 1 },
  operational: { distributed_product_mode: 'local' },
  compliance: { distributed_product_mode: 'local' },
};

/**
 * Tables kept as one replicated copy on every node instead of sharded
 * behind a Distributed table: the tokenizer deletes from them (`ALTER TABLE
 * ... DELETE`, crypto-shredding), which a Distributed table refuses, and a
 * deletion must reach every copy. Every other table is sharded.
 */
export const REPLICATED_EVERYWHERE: readonly string[] = ['subject_keys', 'execution_subjects'];

export interface ScriptOptions {
  database: string;
  users?: Partial<Record<PrincipalName, { passwordSha256Hex: string }>>;
}

/** Roles, grants (and users when given) for a single server. */
export function singleNodeAccessStatements(options: ScriptOptions): string[] {
  return accessDdl({ database: options.database, ...(options.users ? { users: options.users } : {}) });
}

/**
 * The whole cluster layout: database, replicated and Distributed tables
 * from the migrations rendered with the retention settings, then roles and
 * grants ON CLUSTER on both table names of each pair.
 */
export function clusterStatements(options: ScriptOptions & { cluster: string; retention: RetentionSettings; migrationsDir?: string }): string[] {
  const migrations = readMigrations(options.migrationsDir ?? DEFAULT_MIGRATIONS_DIR, { database: options.database, ...migrationVariables(options.retention) });
  const tables = clusterDdl(migrations, {
    cluster: options.cluster,
    database: options.database,
    layout: (t) => (REPLICATED_EVERYWHERE.includes(t.table) ? 'replicated' : 'sharded'),
  });
  const missing = REPLICATED_EVERYWHERE.filter((name) => !tables.tables.some((t) => t.table === name));
  if (missing.length > 0) throw new Error(`cluster DDL: REPLICATED_EVERYWHERE names ${missing.join(', ')}, which no migration creates`);
  const access = accessDdl({
    database: options.database,
    cluster: options.cluster,
    // Readers of a Distributed table need the rights on its local table too (shards check the initial user with an inter-server secret).
    targets: (name) => {
      const t = tables.tables.find((x) => x.table === name);
      return t?.local ? [name, t.local] : [name];
    },
    roleSettings: CLUSTER_ROLE_SETTINGS,
    ...(options.users ? { users: options.users } : {}),
  });
  return [...tables.statements, ...access];
}
