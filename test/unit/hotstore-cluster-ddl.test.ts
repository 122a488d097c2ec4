import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { HOTSTORE_TABLES } from '../../consumers/hotstore/index.js';
import { clusterDdl, columnNames, orderBy, parseAddColumn, parseCreateTable, parseIndexAlter, parseTtlAlter } from '../../infra/clickhouse/cluster-ddl.js';
import { clusterStatements, REPLICATED_EVERYWHERE } from '../../infra/clickhouse/ddl-scripts.js';
import { DEFAULT_MIGRATIONS_DIR, readMigrations, splitStatements } from '../../infra/clickhouse/migrate.js';
import { loadRetention } from '../../infra/retention.js';

const variables = { database: 'audit', ttl_days_pii: 30, ttl_days_sox: 2557, ttl_days_internal: 90 };
const migrations = readMigrations(DEFAULT_MIGRATIONS_DIR, variables);
const statements = migrations.flatMap((m) => splitStatements(m.sql));
const originals = statements.map((s) => parseCreateTable(s)).filter((t) => t !== undefined);
const alters = statements.map((s) => parseIndexAlter(s)).filter((a) => a !== undefined);
const additions = statements.map((s) => parseAddColumn(s)).filter((a) => a !== undefined);
const ttlChanges = statements.map((s) => parseTtlAlter(s)).filter((a) => a !== undefined);
const ddl = clusterDdl(migrations, { cluster: 'auditline', database: 'audit' });
/** The generated CREATE statements, in order (the index ALTERs of later migrations come after them). */
const creates = ddl.statements.filter((s) => s.startsWith('CREATE TABLE'));

test('every table of the real migrations becomes a replicated local table plus a Distributed table', () => {
  assert.deepEqual(
    ddl.tables.map((t) => [t.table, t.layout, t.local]),
    originals.map((t) => [t.table, 'sharded', `${t.table}_local`]),
  );
  for (const table of HOTSTORE_TABLES) assert.ok(ddl.tables.some((t) => t.table === table), table);
  assert.equal(ddl.statements[0], "CREATE DATABASE IF NOT EXISTS audit ON CLUSTER 'auditline'");
  assert.equal(statements.length, originals.length + alters.length + additions.length + ttlChanges.length, 'every statement of the migrations is a CREATE TABLE, an index or TTL ALTER or an ADD COLUMN');
  assert.equal(ddl.statements.length, 1 + 2 * originals.length + alters.length + 2 * additions.length + ttlChanges.length);
});

test('skip index ALTERs of the migrations go to the replicated local table ON CLUSTER, after its CREATE', () => {
  assert.ok(alters.length >= 6, 'migration 0014 adds and materializes idx_execution_id on steps, decisions, events');
  for (const table of ['steps', 'decisions', 'events']) {
    const add = ddl.statements.findIndex((s) => s.startsWith(`ALTER TABLE audit.${table}_local ON CLUSTER 'auditline' ADD INDEX IF NOT EXISTS idx_execution_id execution_id TYPE bloom_filter(0.01) GRANULARITY 1`));
    const materialize = ddl.statements.indexOf(`ALTER TABLE audit.${table}_local ON CLUSTER 'auditline' MATERIALIZE INDEX idx_execution_id SETTINGS mutations_sync = 0`);
    const create = ddl.statements.findIndex((s) => s.startsWith(`CREATE TABLE IF NOT EXISTS audit.${table}_local `));
    assert.ok(create >= 0 && add > create && materialize > add, table);
  }
  assert.ok(!ddl.statements.some((s) => /^ALTER TABLE audit\.(?!\w+_local )\w+ ON CLUSTER '\w+' (ADD|MATERIALIZE) INDEX/.test(s)), 'no index ALTER of a Distributed table');
});

test('TTL changes of a later migration (0019) go to the replicated local table ON CLUSTER, never to the Distributed one', () => {
  assert.equal(ttlChanges.length, 14, 'migration 0019: 8 PII column TTLs, 5 hot store table TTLs, archive_index');
  const input = ddl.statements.findIndex((s) => s.startsWith("ALTER TABLE audit.executions_local ON CLUSTER 'auditline' MODIFY COLUMN input TTL toDateTime(least(greatest(event_time, "));
  const table = ddl.statements.findIndex((s) => s.startsWith("ALTER TABLE audit.archive_index_local ON CLUSTER 'auditline' MODIFY TTL toDateTime(least(greatest(last_event_time, indexed_at), "));
  const create = ddl.statements.findIndex((s) => s.startsWith('CREATE TABLE IF NOT EXISTS audit.executions_local '));
  assert.ok(create >= 0 && input > create && table > create);
  assert.ok(!ddl.statements.some((s) => /^ALTER TABLE audit\.(?!\w+_local )\w+ ON CLUSTER '\w+' MODIFY (COLUMN \w+ )?TTL/.test(s)), 'no TTL ALTER of a Distributed table');
});

test('a column added by a later migration (0016) reaches the replicated table and the Distributed one', () => {
  assert.ok(ddl.statements.includes("ALTER TABLE audit.pii_access_log_local ON CLUSTER 'auditline' ADD COLUMN IF NOT EXISTS identified_by LowCardinality(String) DEFAULT '' AFTER principal"));
  assert.ok(ddl.statements.includes("ALTER TABLE audit.pii_access_log ON CLUSTER 'auditline' ADD COLUMN IF NOT EXISTS identified_by LowCardinality(String) DEFAULT '' AFTER principal"));
});

test('the replicated table keeps columns, codecs, column TTLs, indexes, partitioning, ORDER BY and table TTL; engine args name shard, database, table and replica', () => {
  for (const [i, original] of originals.entries()) {
    const sql = creates[2 * i]!;
    assert.ok(sql.startsWith(`CREATE TABLE IF NOT EXISTS audit.${original.table}_local ON CLUSTER 'auditline'\n`), original.table);
    const local = parseCreateTable(sql.replace(" ON CLUSTER 'auditline'", ''))!;
    assert.deepEqual(local.elements, original.elements, `${original.table}: columns and indexes`);
    assert.equal(local.clauses, original.clauses, `${original.table}: PARTITION BY, ORDER BY, TTL`);
    // Engine parameters (e.g. the version column of ReplacingMergeTree(version)) follow the replication arguments.
    const own = original.engine.args ? `, ${original.engine.args}` : '';
    assert.deepEqual(local.engine, { name: `Replicated${original.engine.name}`, args: `'/clickhouse/tables/{shard}/{database}/${original.table}', '{replica}'${own}` });
    if ((HOTSTORE_TABLES as readonly string[]).includes(original.table)) assert.equal(local.engine.name, 'ReplicatedReplacingMergeTree');
    assert.equal(orderBy(local), orderBy(original));
  }
  const executions = creates[0]!;
  assert.match(executions, /\n    input String CODEC\(ZSTD\(3\)\) TTL toDateTime\(event_time\) \+ INTERVAL 30 DAY,\n/);
  assert.match(executions, /\n    INDEX idx_execution_id execution_id TYPE bloom_filter\(0\.01\) GRANULARITY 1\n\)/);
  assert.match(executions, /\nPARTITION BY toYYYYMM\(start_time\)\nORDER BY \(workflow_id, start_time, execution_id, event_id\)\nTTL toDateTime\(event_time\) \+ INTERVAL 90 DAY$/);
});

test('the Distributed table keeps the service-facing name and shards by execution_id, else by the first sorting key expression', () => {
  for (const [i, original] of originals.entries()) {
    const t = original.table;
    const key = columnNames(original).includes('execution_id') ? 'execution_id' : /^\(?([^,)]+)/.exec(orderBy(original)!)![1];
    if ((HOTSTORE_TABLES as readonly string[]).includes(t)) assert.equal(key, 'execution_id', t);
    assert.equal(
      creates[2 * i + 1],
      `CREATE TABLE IF NOT EXISTS audit.${t} ON CLUSTER 'auditline' AS audit.${t}_local\nENGINE = Distributed('auditline', 'audit', '${t}_local', cityHash64(${key}))`,
    );
  }
});

test('the cluster script keeps the tables the tokenizer deletes from as one replicated copy per node, without a Distributed table', () => {
  const script = clusterStatements({ cluster: 'c', database: 'audit', retention: loadRetention() });
  for (const table of REPLICATED_EVERYWHERE) {
    const create = script.find((s) => s.startsWith(`CREATE TABLE IF NOT EXISTS audit.${table} ON CLUSTER 'c'\n`))!;
    assert.match(create, new RegExp(`ENGINE = Replicated\\w*MergeTree\\('/clickhouse/tables/all/\\{database\\}/${table}', '\\{shard\\}-\\{replica\\}'`));
    assert.ok(!script.some((s) => s.includes(`audit.${table}_local`) || s.includes(`'${table}_local'`)), `${table} has no local/Distributed pair`);
  }
  for (const table of HOTSTORE_TABLES) assert.ok(script.some((s) => s.includes(`ENGINE = Distributed('c', 'audit', '${table}_local'`)), table);
});

test('TTLs in the cluster DDL follow the retention settings', () => {
  const retention = loadRetention();
  retention.requirements.gdpr!.retention_days = 14;
  retention.requirements.operational!.retention_days = 60;
  const script = clusterStatements({ cluster: 'c', database: 'audit', retention }).join('\n');
  assert.match(script, /input String CODEC\(ZSTD\(3\)\) TTL toDateTime\(event_time\) \+ INTERVAL 14 DAY/);
  assert.match(script, /TTL toDateTime\(event_time\) \+ INTERVAL 60 DAY/);
  assert.doesNotMatch(script, /INTERVAL (30|90) DAY/);
  assert.match(script, /ALTER ROLE auditline_write ON CLUSTER 'c' SETTINGS distributed_foreground_insert = 1/);
  assert.match(script, /ALTER ROLE auditline_read_operational ON CLUSTER 'c' SETTINGS distributed_product_mode = 'local'/);
});

test('engine arguments are kept, other engines and other statements are refused naming the migration', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'cluster-ddl-'));
  writeFileSync(
    path.join(dir, '0001_versioned.sql'),
    "-- a comment with a ; and a (\nCREATE TABLE {{database}}.t (id String, v UInt64, note String DEFAULT 'a, (b)') ENGINE = ReplacingMergeTree(v) ORDER BY id SETTINGS index_granularity = 1024;\n",
  );
  const out = clusterDdl(readMigrations(dir, { database: 'db' }), { cluster: '{cluster}', database: 'db' });
  assert.match(out.statements[1]!, /ENGINE = ReplicatedReplacingMergeTree\('\/clickhouse\/tables\/\{shard\}\/\{database\}\/t', '\{replica\}', v\)\nORDER BY id SETTINGS index_granularity = 1024$/);
  assert.match(out.statements[1]!, /note String DEFAULT 'a, \(b\)'\n\)/);
  assert.match(out.statements[2]!, /Distributed\('\{cluster\}', 'db', 't_local', cityHash64\(id\)\)$/);
  const replicated = clusterDdl(readMigrations(dir, { database: 'db' }), { cluster: 'c', database: 'db', layout: () => 'replicated' });
  assert.equal(replicated.statements.length, 2);
  assert.match(replicated.statements[1]!, /^CREATE TABLE IF NOT EXISTS db\.t ON CLUSTER 'c'\n[\s\S]*ENGINE = ReplicatedReplacingMergeTree\('\/clickhouse\/tables\/all\/\{database\}\/t', '\{shard\}-\{replica\}', v\)/);

  writeFileSync(path.join(dir, '0002_alter.sql'), '-- a later column\nALTER TABLE {{database}}.t ADD COLUMN IF NOT EXISTS x UInt8 DEFAULT 0 AFTER id;\n');
  assert.deepEqual(clusterDdl(readMigrations(dir, { database: 'db' }), { cluster: 'c', database: 'db' }).statements.slice(3), [
    "ALTER TABLE db.t_local ON CLUSTER 'c' ADD COLUMN IF NOT EXISTS x UInt8 DEFAULT 0 AFTER id",
    "ALTER TABLE db.t ON CLUSTER 'c' ADD COLUMN IF NOT EXISTS x UInt8 DEFAULT 0 AFTER id",
  ]);
  assert.deepEqual(clusterDdl(readMigrations(dir, { database: 'db' }), { cluster: 'c', database: 'db', layout: () => 'replicated' }).statements.slice(2), ["ALTER TABLE db.t ON CLUSTER 'c' ADD COLUMN IF NOT EXISTS x UInt8 DEFAULT 0 AFTER id"]);
  writeFileSync(path.join(dir, '0002_alter.sql'), 'ALTER TABLE {{database}}.t DROP COLUMN note;\n');
  assert.throws(() => clusterDdl(readMigrations(dir, { database: 'db' }), { cluster: 'c', database: 'db' }), /migration 0002_alter\.sql has a statement other than CREATE TABLE, an index or TTL ALTER or ADD COLUMN \(ALTER TABLE db\.t DROP\)/);
  writeFileSync(path.join(dir, '0002_alter.sql'), 'ALTER TABLE {{database}}.nope ADD COLUMN x UInt8;\n');
  assert.throws(() => clusterDdl(readMigrations(dir, { database: 'db' }), { cluster: 'c', database: 'db' }), /0002_alter\.sql alters db\.nope, which no earlier migration created/);
  writeFileSync(path.join(dir, '0002_alter.sql'), "ALTER TABLE {{database}}.t ADD INDEX IF NOT EXISTS i note TYPE set(0) GRANULARITY 1, ADD COLUMN x UInt8;\n");
  assert.throws(() => clusterDdl(readMigrations(dir, { database: 'db' }), { cluster: 'c', database: 'db' }), /0002_alter\.sql has a statement other than CREATE TABLE, an index or TTL ALTER or ADD COLUMN/);
  writeFileSync(path.join(dir, '0002_alter.sql'), 'ALTER TABLE {{database}}.nope ADD INDEX i x TYPE minmax GRANULARITY 1;\n');
  assert.throws(() => clusterDdl(readMigrations(dir, { database: 'db' }), { cluster: 'c', database: 'db' }), /0002_alter\.sql alters nope, which no earlier migration creates/);
  writeFileSync(path.join(dir, '0002_alter.sql'), "-- index\nALTER TABLE {{database}}.t ADD INDEX IF NOT EXISTS i note TYPE set(0) GRANULARITY 1;\nALTER TABLE {{database}}.t MATERIALIZE INDEX i;\n");
  assert.deepEqual(clusterDdl(readMigrations(dir, { database: 'db' }), { cluster: 'c', database: 'db' }).statements.slice(3), [
    "ALTER TABLE db.t_local ON CLUSTER 'c' ADD INDEX IF NOT EXISTS i note TYPE set(0) GRANULARITY 1",
    "ALTER TABLE db.t_local ON CLUSTER 'c' MATERIALIZE INDEX i",
  ]);
  assert.deepEqual(clusterDdl(readMigrations(dir, { database: 'db' }), { cluster: 'c', database: 'db', layout: () => 'replicated' }).statements.slice(2), [
    "ALTER TABLE db.t ON CLUSTER 'c' ADD INDEX IF NOT EXISTS i note TYPE set(0) GRANULARITY 1",
    "ALTER TABLE db.t ON CLUSTER 'c' MATERIALIZE INDEX i",
  ]);
  writeFileSync(path.join(dir, '0002_alter.sql'), 'CREATE TABLE {{database}}.m (x UInt8) ENGINE = Memory;\n');
  assert.throws(() => clusterDdl(readMigrations(dir, { database: 'db' }), { cluster: 'c', database: 'db' }), /0002_alter\.sql: table m has engine Memory/);
  assert.throws(() => clusterDdl(migrations, { cluster: 'c', database: 'other' }), /creates audit\.executions, outside database other/);
  assert.throws(() => clusterDdl(migrations, { cluster: "c' --", database: 'audit' }), /cluster name/);
});
