import { clusterName } from './access.js';
import { splitStatements, type Migration } from './migrate.js';

/**
 * The cluster variant of the migrations. Every `CREATE TABLE` of a
 * MergeTree-family engine gets one of two layouts:
 *
 * - `sharded` (the default): `<table>_local`, a Replicated<engine> table ON
 *   CLUSTER with the same columns, codecs, column TTLs, skip indexes,
 *   PARTITION BY, ORDER BY and table TTL, replicated per shard under
 *   `/clickhouse/tables/{shard}/{database}/<table>`; and `<table>`, a
 *   Distributed table over it, so that the services, the CLI and the queries
 *   keep using the names they use on a single node.
 * - `replicated`: `<table>` itself becomes a Replicated<engine> table with
 *   ONE replica set across the whole cluster (`/clickhouse/tables/all/...`,
 *   replica `{shard}-{replica}`), no Distributed table: for small tables that
 *   code mutates (`ALTER TABLE ... DELETE` is refused by Distributed tables),
 *   such as the tokenizer's key store, where a delete must reach every copy.
 *
 * Sharded rows go by execution_id when the table has it, else by the first
 * expression of its sorting key: every copy of an event (redelivery) lands
 * on the shard that already holds it, so ReplacingMergeTree still collapses
 * them and FINAL stays exact per shard, and one execution's rows of every
 * table sit on one shard (joins by execution_id stay local). Two kinds of
 * ALTER of a later migration are converted: a skip index change (`ADD
 * INDEX`, `MATERIALIZE INDEX`) or a TTL change (`MODIFY TTL`, `MODIFY COLUMN
 * c TTL`), sent to the replicated table ON CLUSTER, and
 * `ADD COLUMN`, sent to the replicated table and to its Distributed table.
 * Other statements the generator cannot convert fail loudly, naming the
 * migration, so that the cluster DDL never silently lags behind the
 * migrations.
 */
export type ClusterLayout = 'sharded' | 'replicated';

export interface ClusterDdlOptions {
  /** Cluster name from the servers' `remote_servers` (or a macro such as `{cluster}`). */
  cluster: string;
  /** Database of the tables; every migration must use it. */
  database: string;
  /** Suffix of the replicated tables behind Distributed ones. @default '_local' */
  localSuffix?: string;
  /** Layout of each table. @default every table `sharded` */
  layout?: (table: ParsedCreateTable) => ClusterLayout;
  /** Sharding expression of a sharded table. @default `cityHash64(execution_id)`, else cityHash64 of the first sorting key expression */
  shardingKey?: (table: ParsedCreateTable) => string;
}

/** A `CREATE TABLE db.t (...) ENGINE = E(args) <clauses>` statement, taken apart. */
export interface ParsedCreateTable {
  database: string;
  table: string;
  /** Column, INDEX, PROJECTION and CONSTRAINT definitions, as written. */
  elements: string[];
  engine: { name: string; args: string };
  /** Everything after the engine: PARTITION BY, ORDER BY, TTL, SETTINGS... */
  clauses: string;
}

export interface ClusterTable {
  migration: string;
  table: string;
  layout: ClusterLayout;
  /** The replicated table behind the Distributed one (sharded layout only). */
  local?: string;
  shardingKey?: string;
}

export interface ClusterDdl {
  statements: string[];
  tables: ClusterTable[];
}

/** Converts rendered migrations (readMigrations) into cluster DDL, in migration order. */
export function clusterDdl(migrations: readonly Migration[], options: ClusterDdlOptions): ClusterDdl {
  const cluster = clusterName(options.cluster);
  const suffix = options.localSuffix ?? '_local';
  const on = ` ON CLUSTER '${cluster}'`;
  const statements = [`CREATE DATABASE IF NOT EXISTS ${options.database}${on}`];
  const tables: ClusterTable[] = [];
  for (const m of migrations) {
    for (const statement of splitStatements(m.sql)) {
      const alter = parseIndexAlter(statement) ?? parseTtlAlter(statement);
      if (alter) {
        statements.push(clusterPartsAlter(alter, tables, { file: m.file, database: options.database, on }));
        continue;
      }
      const added = parseAddColumn(statement);
      if (added) {
        // A column added later reaches the replicated table and the Distributed table over it alike.
        const target = tables.find((t) => t.table === added.table);
        if (added.database !== options.database || !target) throw new Error(`cluster DDL: migration ${m.file} alters ${added.database}.${added.table}, which no earlier migration created`);
        for (const name of target.local ? [target.local, target.table] : [target.table]) statements.push(`ALTER TABLE ${added.database}.${name}${on} ${added.command}`);
        continue;
      }
      const t = parseCreateTable(statement);
      if (!t) throw new Error(`cluster DDL: migration ${m.file} has a statement other than CREATE TABLE, an index or TTL ALTER or ADD COLUMN (${firstWords(statement)}); extend infra/clickhouse/cluster-ddl.ts`);
      if (t.database !== options.database) throw new Error(`cluster DDL: migration ${m.file} creates ${t.database}.${t.table}, outside database ${options.database}`);
      const engine = /^(?!Replicated)([A-Za-z]*MergeTree)$/.exec(t.engine.name);
      if (!engine) throw new Error(`cluster DDL: migration ${m.file}: table ${t.table} has engine ${t.engine.name}, not a non-replicated MergeTree family engine`);
      const layout = options.layout?.(t) ?? 'sharded';
      const sharded = layout === 'sharded';
      const name = sharded ? `${t.table}${suffix}` : t.table;
      const replication = sharded
        ? [`'/clickhouse/tables/{shard}/{database}/${t.table}'`, `'{replica}'`]
        : [`'/clickhouse/tables/all/{database}/${t.table}'`, `'{shard}-{replica}'`];
      const args = [...replication, ...(t.engine.args.trim() ? [t.engine.args.trim()] : [])];
      statements.push(
        [
          `CREATE TABLE IF NOT EXISTS ${t.database}.${name}${on}`,
          `(\n${t.elements.map((e) => `    ${e}`).join(',\n')}\n)`,
          `ENGINE = Replicated${engine[1]}(${args.join(', ')})`,
          t.clauses,
        ]
          .filter(Boolean)
          .join('\n'),
      );
      if (!sharded) {
        tables.push({ migration: m.file, table: t.table, layout });
        continue;
      }
      const shardingKey = (options.shardingKey ?? defaultShardingKey)(t);
      statements.push(
        `CREATE TABLE IF NOT EXISTS ${t.database}.${t.table}${on} AS ${t.database}.${name}\nENGINE = Distributed('${cluster}', '${t.database}', '${name}', ${shardingKey})`,
      );
      tables.push({ migration: m.file, table: t.table, layout, local: name, shardingKey });
    }
  }
  return { statements, tables };
}

/**
 * `ALTER TABLE db.t <command>` with exactly one command matching `command`
 * (comments allowed): a second one (`, DROP COLUMN ...`) might need other
 * tables, so such a statement is not taken apart.
 */
function parseSingleAlter(statement: string, command: RegExp): ParsedAlter | undefined {
  const m = new RegExp(`^ALTER\\s+TABLE\\s+([A-Za-z_][A-Za-z0-9_]*)\\.([A-Za-z_][A-Za-z0-9_]*)\\s+((?:${command.source})\\s[\\s\\S]*)$`, 'i').exec(stripLineComments(statement).trim());
  if (!m || /,\s*(?:ADD|DROP|MODIFY|MATERIALIZE|CLEAR|UPDATE|DELETE|RENAME)\s/i.test(stripQuoted(m[3]!))) return undefined;
  return { database: m[1]!, table: m[2]!, command: m[3]!.trim() };
}

/** Parses `ALTER TABLE db.t ADD COLUMN ...`; undefined for any other statement, other ALTERs included. */
export function parseAddColumn(statement: string): ParsedAlter | undefined {
  return parseSingleAlter(statement, /ADD\s+COLUMN/);
}

/** An ALTER TABLE statement of one command that a migration may make: a skip index change, a TTL change, or ADD COLUMN. */
export interface ParsedAlter {
  database: string;
  table: string;
  /** Everything after the table name, as written (`ADD INDEX IF NOT EXISTS ...`, `MATERIALIZE INDEX ... SETTINGS ...`, `ADD COLUMN ...`). */
  command: string;
}

/**
 * Parses an ALTER TABLE that adds or materializes a skip index (comments
 * allowed); undefined for any other statement (ADD COLUMN: parseAddColumn).
 */
export function parseIndexAlter(statement: string): ParsedAlter | undefined {
  return parseSingleAlter(statement, /(?:ADD|MATERIALIZE)\s+INDEX/);
}

/**
 * Parses an ALTER TABLE that changes a TTL, the table's (`MODIFY TTL`) or a
 * column's (`MODIFY COLUMN <c> TTL`); undefined for any other statement.
 */
export function parseTtlAlter(statement: string): ParsedAlter | undefined {
  return parseSingleAlter(statement, /MODIFY\s+(?:COLUMN\s+\w+\s+)?TTL/);
}

/**
 * A skip index and a TTL live in the data parts, so the ALTER goes to the
 * replicated table (`<t>_local` of a pair, else `<t>`), ON CLUSTER; a
 * Distributed table has no parts. Re-running the script repeats MATERIALIZE
 * INDEX and the TTL change, mutations that rewrite every part.
 */
function clusterPartsAlter(alter: ParsedAlter, tables: readonly ClusterTable[], where: { file: string; database: string; on: string }): string {
  if (alter.database !== where.database) throw new Error(`cluster DDL: migration ${where.file} alters ${alter.database}.${alter.table}, outside database ${where.database}`);
  const target = tables.find((t) => t.table === alter.table);
  if (!target) throw new Error(`cluster DDL: migration ${where.file} alters ${alter.table}, which no earlier migration creates`);
  return `ALTER TABLE ${alter.database}.${target.local ?? target.table}${where.on} ${alter.command}`;
}

/** Parses a CREATE TABLE statement (comments allowed); undefined for any other statement. */
export function parseCreateTable(statement: string): ParsedCreateTable | undefined {
  const sql = stripLineComments(statement).trim();
  const head = /^CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?([A-Za-z_][A-Za-z0-9_]*)\.([A-Za-z_][A-Za-z0-9_]*)\s*\(/i.exec(sql);
  if (!head) return undefined;
  const open = head[0].length - 1;
  const close = matchingParen(sql, open);
  const elements = splitTopLevel(sql.slice(open + 1, close));
  const rest = sql.slice(close + 1).trim();
  const engine = /^ENGINE\s*=\s*([A-Za-z0-9_]+)\s*/i.exec(rest);
  if (!engine) return undefined;
  let after = rest.slice(engine[0].length);
  let args = '';
  if (after.startsWith('(')) {
    const end = matchingParen(after, 0);
    args = after.slice(1, end);
    after = after.slice(end + 1);
  }
  return { database: head[1]!, table: head[2]!, elements, engine: { name: engine[1]!, args }, clauses: after.trim() };
}

/** Names of the columns (not indexes, projections or constraints) of a parsed table, in order. */
export function columnNames(t: ParsedCreateTable): string[] {
  return t.elements.filter((e) => !/^(INDEX|PROJECTION|CONSTRAINT)\s/i.test(e)).map((e) => /^`?([^`\s]+)`?/.exec(e)![1]!);
}

/** The ORDER BY expression of a parsed table, as written. */
export function orderBy(t: ParsedCreateTable): string | undefined {
  const m = /\bORDER\s+BY\s+/i.exec(t.clauses);
  if (!m) return undefined;
  const from = m.index + m[0].length;
  if (t.clauses[from] === '(') return t.clauses.slice(from, matchingParen(t.clauses, from) + 1);
  return /^\S+/.exec(t.clauses.slice(from))![0];
}

function defaultShardingKey(t: ParsedCreateTable): string {
  if (columnNames(t).includes('execution_id')) return 'cityHash64(execution_id)';
  const key = orderBy(t);
  if (!key) throw new Error(`cluster DDL: table ${t.table} has no ORDER BY to shard by; pass shardingKey`);
  // A prefix of the sorting key: copies that ReplacingMergeTree must collapse share it, so they share a shard.
  const first = key.startsWith('(') ? splitTopLevel(key.slice(1, -1))[0] : key;
  return `cityHash64(${first})`;
}

/** Index of the parenthesis closing the one at `open`, skipping quoted text. */
function matchingParen(text: string, open: number): number {
  let depth = 0;
  for (let i = open; i < text.length; i++) {
    const c = text[i];
    if (c === "'" || c === '`' || c === '"') {
      i = closingQuote(text, i);
      continue;
    }
    if (c === '(') depth++;
    if (c === ')' && --depth === 0) return i;
  }
  throw new Error(`unbalanced parentheses in: ${firstWords(text)}`);
}

function closingQuote(text: string, start: number): number {
  const quote = text[start];
  for (let i = start + 1; i < text.length; i++) {
    if (text[i] === '\\') i++;
    else if (text[i] === quote) return i;
  }
  throw new Error(`unterminated quote in: ${firstWords(text)}`);
}

/** Splits at commas outside parentheses and quotes. */
function splitTopLevel(text: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === "'" || c === '`' || c === '"') i = closingQuote(text, i);
    else if (c === '(') depth++;
    else if (c === ')') depth--;
    else if (c === ',' && depth === 0) {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(text.slice(start));
  return parts.map((p) => p.trim()).filter((p) => p.length > 0);
}

function stripLineComments(sql: string): string {
  let out = '';
  for (let i = 0; i < sql.length; i++) {
    const c = sql[i];
    if (c === "'" || c === '`' || c === '"') {
      const end = closingQuote(sql, i);
      out += sql.slice(i, end + 1);
      i = end;
    } else if (c === '-' && sql[i + 1] === '-') {
      while (i < sql.length && sql[i] !== '\n') i++;
      out += '\n';
    } else out += c;
  }
  return out;
}

/** The text with quoted parts blanked out, for looking at its keywords. */
function stripQuoted(sql: string): string {
  let out = '';
  for (let i = 0; i < sql.length; i++) {
    if (sql[i] === "'" || sql[i] === '`' || sql[i] === '"') {
      const end = closingQuote(sql, i);
      out += ' '.repeat(end - i + 1);
      i = end;
    } else out += sql[i];
  }
  return out;
}

function firstWords(sql: string): string {
  return stripLineComments(sql).trim().split(/\s+/).slice(0, 4).join(' ');
}
