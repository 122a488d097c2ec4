import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { ClickHouseClient } from '@clickhouse/client';
import { AuditlineError, errorMessage } from '../../core/errors.js';
import { assetPath } from '../../core/paths.js';

export const DEFAULT_MIGRATIONS_DIR = assetPath('infra', 'clickhouse', 'migrations');

/** A migration file: `NNNN_description.sql`, statements separated by `;` at line ends. */
export interface Migration {
  file: string;
  version: number;
  name: string;
  sql: string;
  /** SHA-256 of the file as written (placeholders unrendered): a retention change does not change it. */
  checksum: string;
  /** SHA-256 of the rendered SQL, which installs before session 7 recorded; accepted while the values are unchanged. */
  renderedChecksum: string;
}

export interface MigrateOptions {
  database: string;
  dir?: string;
  /** Values for `{{name}}` placeholders, e.g. database and TTL days from the retention settings. */
  variables?: Record<string, string | number>;
  onApplied?: (m: Migration) => void;
}

export interface MigrateResult {
  applied: Migration[];
  skipped: Migration[];
}

const FILE_PATTERN = /^(\d{4,})_([a-z0-9_]+)\.sql$/;

/** Reads and renders the migrations of a folder, in version order. */
export function readMigrations(dir: string, variables: Record<string, string | number>): Migration[] {
  const files = readdirSync(dir).filter((f) => f.endsWith('.sql')).sort();
  const seen = new Set<number>();
  return files.map((file) => {
    const m = FILE_PATTERN.exec(file);
    if (!m) throw new AuditlineError('MIGRATION_FAILED', `migration file ${file} does not match NNNN_name.sql`);
    const version = Number(m[1]);
    if (seen.has(version)) throw new AuditlineError('MIGRATION_FAILED', `two migrations share version ${version}`);
    seen.add(version);
    const template = readFileSync(path.join(dir, file), 'utf8');
    const sql = render(template, variables, `migration ${file}`);
    return { file, version, name: m[2]!, sql, checksum: sha256(template), renderedChecksum: sha256(sql) };
  });
}

/**
 * Applies the migrations not yet recorded in `<database>.schema_migrations`,
 * in order, each once. A recorded migration whose text changed is an error:
 * migrations are append-only. The values of placeholders are not part of
 * the text (a changed retention is applied by syncTtls, infra/clickhouse/ttl.ts).
 */
export async function migrate(client: ClickHouseClient, options: MigrateOptions): Promise<MigrateResult> {
  const db = options.database;
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(db)) throw new AuditlineError('MIGRATION_FAILED', `database name ${db} is not a plain identifier`);
  const migrations = readMigrations(options.dir ?? DEFAULT_MIGRATIONS_DIR, { database: db, ...options.variables });
  await exec(client, `CREATE DATABASE IF NOT EXISTS ${db}`, 'create database');
  await exec(
    client,
    `CREATE TABLE IF NOT EXISTS ${db}.schema_migrations (version UInt32, name String, checksum String, applied_at DateTime64(3, 'UTC') DEFAULT now64(3)) ENGINE = MergeTree ORDER BY version`,
    'create schema_migrations',
  );
  const rs = await client.query({ query: `SELECT version, checksum FROM ${db}.schema_migrations ORDER BY version`, format: 'JSONEachRow' });
  const applied = new Map((await rs.json<{ version: number; checksum: string }>()).map((r) => [Number(r.version), r.checksum]));

  const result: MigrateResult = { applied: [], skipped: [] };
  for (const m of migrations) {
    const recorded = applied.get(m.version);
    if (recorded !== undefined) {
      if (recorded !== m.checksum && recorded !== m.renderedChecksum) {
        throw new AuditlineError('MIGRATION_FAILED', `migration ${m.file} changed after it was applied; add a new migration instead`);
      }
      if (recorded !== m.checksum) {
        // Recorded by an older install (rendered SQL, retention values included): record the text's checksum now, while
        // the values still match, so that a later retention change is not taken for an edited migration.
        await exec(client, `ALTER TABLE ${db}.schema_migrations UPDATE checksum = '${m.checksum}' WHERE version = ${m.version} SETTINGS mutations_sync = 2`, `migration ${m.file}: record its checksum`);
      }
      result.skipped.push(m);
      continue;
    }
    for (const statement of splitStatements(m.sql)) {
      await exec(client, statement, `migration ${m.file}`);
    }
    await client.insert({
      table: `${db}.schema_migrations`,
      values: [{ version: m.version, name: m.name, checksum: m.checksum }],
      format: 'JSONEachRow',
    });
    result.applied.push(m);
    options.onApplied?.(m);
  }
  return result;
}

/** Splits SQL at semicolons that end a line; comments-only chunks are dropped. */
export function splitStatements(sql: string): string[] {
  return sql
    .split(/;\s*(?:\r?\n|$)/)
    .map((s) => s.trim())
    .filter((s) => s.replace(/--.*$/gm, '').trim().length > 0);
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** Replaces `{{name}}` placeholders; `what` names the text in the error for a placeholder without a value. */
export function render(sql: string, variables: Record<string, string | number>, what: string): string {
  return sql.replace(/\{\{\s*([a-z_][a-z0-9_.]*)\s*\}\}/gi, (_, name: string) => {
    const value = variables[name];
    if (value === undefined) throw new AuditlineError('MIGRATION_FAILED', `${what} uses {{${name}}}, which has no value`);
    return String(value);
  });
}

async function exec(client: ClickHouseClient, query: string, what: string): Promise<void> {
  try {
    await client.command({ query });
  } catch (err) {
    const retriable = /ECONNREFUSED|ECONNRESET|socket hang up|Timeout/i.test(errorMessage(err));
    throw new AuditlineError(retriable ? 'CLICKHOUSE_UNAVAILABLE' : 'MIGRATION_FAILED', `${what} failed: ${errorMessage(err)}`, {
      retriable,
      cause: err,
    });
  }
}
