import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { DEFAULT_MIGRATIONS_DIR, migrate, readMigrations } from '../../infra/clickhouse/migrate.js';
import { declaredTtls, serverTtls, syncTtls } from '../../infra/clickhouse/ttl.js';
import { loadRetention } from '../../infra/retention.js';
import { migrationVariables } from '../../infra/setup.js';
import { clickhouse, parseExplain } from '../helpers/hotstore-stack.js';
import { uniqueName } from '../helpers/names.js';
import { tempDir } from '../helpers/temp-dir.js';

const client = clickhouse();
const variables = migrationVariables(loadRetention());
const databases: string[] = [];
const INDEXED = ['steps', 'decisions', 'events'] as const;

after(async () => {
  for (const db of databases) await client.command({ query: `DROP DATABASE IF EXISTS ${db}` });
  await client.close();
});

async function rows<T>(query: string, params: Record<string, unknown> = {}): Promise<T[]> {
  return (await client.query({ query, query_params: params, format: 'JSONEachRow' })).json<T>();
}

/** Waits until every mutation of the database finished (MATERIALIZE INDEX runs in the background). */
async function mutationsDone(db: string, timeoutMs = 60_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const [r] = await rows<{ pending: string }>('SELECT countIf(NOT is_done) AS pending FROM system.mutations WHERE database = {db:String}', { db });
    if (Number(r!.pending) === 0) return;
    if (Date.now() > until) throw new Error(`mutations of ${db} still running after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

test('migration 0014 on a database created and filled before it: applied once, the index built for the existing parts, results unchanged', async () => {
  const db = uniqueName('it_hs_mig', '_');
  databases.push(db);
  const before = tempDir('hs-migrations');
  for (const file of readdirSync(DEFAULT_MIGRATIONS_DIR).filter((f) => /^\d{4}_.*\.sql$/.test(f) && Number(f.slice(0, 4)) < 14)) {
    copyFileSync(path.join(DEFAULT_MIGRATIONS_DIR, file), path.join(before, file));
  }
  const old = await migrate(client, { database: db, dir: before, variables });
  assert.ok(old.applied.every((m) => m.version < 14) && old.applied.length >= 11);

  // 3 000 executions over 60 days, one INSERT per month: several parts per table, an execution in one of them.
  const id = `lower(hex(MD5(toString(k))))`;
  const at = `now64(3) - toIntervalSecond((k * 7919) % (86400 * 60))`;
  for (const month of [0, 1, 2]) {
    const ks = `(SELECT number AS k FROM numbers(3000) WHERE intDiv((k * 7919) % (86400 * 60), 86400 * 20) = ${month})`;
    await client.command({
      query: `INSERT INTO ${db}.steps (execution_id, workflow_id, step_id, step_name, attempt, status, start_time, end_time, duration_ms, input_data, output_data, data_truncated, data_original_size_bytes, data_sha256, error_type, error_message, event_id, event_time, sequence)
        SELECT ${id}, 'WF-001', s, concat('step-', toString(s)), 1, 'success', ${at} AS t, t, 1, '{}', '{}', false, 0, '', '', '', concat(${id}, '-s', toString(s)), t, s + 1
        FROM ${ks} ARRAY JOIN [1, 2, 3] AS s`,
    });
    await client.command({
      query: `INSERT INTO ${db}.decisions (execution_id, workflow_id, sequence, step_id, branch_condition, branch_taken, branch_reason, condition_values, event_id, event_time)
        SELECT ${id}, 'WF-001', 9, 2, 'x > 1', 'yes', 'because', '{}', concat(${id}, '-d'), ${at} FROM ${ks}`,
    });
    await client.command({
      query: `INSERT INTO ${db}.events (execution_id, sequence, event_id, event_time, workflow_id, kind, correlation_id, schema_version, producer_service, producer_host, producer_client_version, producer_instance_id, source_topic, source_partition, source_offset)
        SELECT ${id}, 9, concat(${id}, '-d'), ${at}, 'WF-001', 'DecisionRecorded', '', 1, 'bulk', 'h', '0.1.0', 'i', 'audit.events', 0, k FROM ${ks}`,
    });
  }
  const indexes = async () =>
    rows<{ table: string; name: string; type_full: string }>('SELECT table, name, type_full FROM system.data_skipping_indices WHERE database = {db:String} AND table IN {t:Array(String)} ORDER BY table', {
      db,
      t: [...INDEXED],
    });
  assert.deepEqual(await indexes(), [], 'no skip index on the execution-keyed tables before 0014');
  const target = (await rows<{ id: string }>(`SELECT ${id.replaceAll('k', '42')} AS id`))[0]!.id;
  const decisionsBefore = await rows(`SELECT * FROM ${db}.decisions FINAL WHERE execution_id = {id:String}`, { id: target });

  const result = await migrate(client, { database: db, variables });
  // Later migrations (0015 ...) may follow it; none before it runs again.
  assert.equal(result.applied[0]?.file, '0014_hotstore_execution_id_skip_indexes.sql');
  assert.ok(result.applied.every((m) => m.version >= 14));
  await mutationsDone(db);
  assert.deepEqual(
    (await indexes()).map((i) => [i.table, i.name, i.type_full]),
    INDEXED.map((t) => [t, 'idx_execution_id', 'bloom_filter(0.01)']).sort(),
  );
  const unindexed = await rows<{ table: string; name: string }>(
    'SELECT table, name FROM system.parts WHERE database = {db:String} AND table IN {t:Array(String)} AND active AND secondary_indices_compressed_bytes = 0',
    { db, t: [...INDEXED] },
  );
  assert.deepEqual(unindexed, [], 'every existing part has the index after MATERIALIZE INDEX');

  const explained = parseExplain(
    await (await client.query({ query: `EXPLAIN indexes = 1 SELECT * FROM ${db}.steps FINAL WHERE execution_id = {id:String} SETTINGS use_skip_indexes_if_final = 1`, query_params: { id: target }, format: 'TabSeparatedRaw' })).text(),
  );
  const skip = explained[0]!.indexes.find((i) => i.kind === 'Skip' && i.name === 'idx_execution_id');
  const pk = explained[0]!.indexes.find((i) => i.kind === 'PrimaryKey')!;
  assert.ok(skip && skip.selectedGranules < pk.selectedGranules, `the index drops the old parts that do not hold the execution (${skip?.selectedGranules}/${pk.selectedGranules})`);
  assert.deepEqual(await rows(`SELECT * FROM ${db}.decisions FINAL WHERE execution_id = {id:String}`, { id: target }), decisionsBefore);
  assert.equal(decisionsBefore.length, 1);

  const again = await migrate(client, { database: db, variables });
  assert.deepEqual(again.applied, [], 'a second run applies nothing');
});

test('a fresh database gets every migration, 0014 included, and the index on its new parts', async () => {
  const db = uniqueName('it_hs_mig', '_');
  databases.push(db);
  const result = await migrate(client, { database: db, variables });
  assert.ok(result.applied.some((m) => m.version === 14));
  await client.command({
    query: `INSERT INTO ${db}.steps (execution_id, workflow_id, step_id, step_name, attempt, status, start_time, end_time, duration_ms, input_data, output_data, data_truncated, data_original_size_bytes, data_sha256, error_type, error_message, event_id, event_time, sequence)
      SELECT toString(number), 'WF-001', 1, 'a', 1, 'success', now64(3), now64(3), 1, '{}', '{}', false, 0, '', '', '', toString(number), now64(3), 2 FROM numbers(100)`,
  });
  const [part] = await rows<{ bytes: string }>("SELECT sum(secondary_indices_compressed_bytes) AS bytes FROM system.parts WHERE database = {db:String} AND table = 'steps' AND active", { db });
  assert.ok(Number(part!.bytes) > 0, 'an inserted part carries the bloom filter');
});

test('a changed retention value: migrations still apply (their text is unchanged), and syncTtls restates every TTL with the new days, once', async () => {
  const db = uniqueName('it_hs_ttl', '_');
  databases.push(db);
  await migrate(client, { database: db, variables });
  const changedValues = { ttl_days_pii: 20, ttl_days_sox: 3650, ttl_days_internal: 60 };
  assert.notDeepEqual(changedValues, variables);
  // `auditline setup` after retention.yaml changed: before, every migration's checksum moved and setup stopped here.
  const again = await migrate(client, { database: db, variables: changedValues });
  assert.equal(again.applied.length, 0);
  assert.ok(again.skipped.length >= 14);

  const declared = declaredTtls(DEFAULT_MIGRATIONS_DIR);
  const changed = await syncTtls(client, { database: db, dir: DEFAULT_MIGRATIONS_DIR, variables: changedValues });
  assert.equal(changed.length, declared.length, 'every declared TTL differed and was restated');
  const tables = await rows<{ name: string; create_table_query: string }>('SELECT name, create_table_query FROM system.tables WHERE database = {db:String}', { db });
  const server = tables.flatMap((t) => serverTtls(t.name, t.create_table_query));
  for (const d of declared) {
    const rule = server.find((r) => r.table === d.table && r.column === d.column);
    assert.equal(rule?.days, changedValues[d.variable as keyof typeof changedValues], `${d.table}${d.column ? `.${d.column}` : ''}`);
  }
  assert.deepEqual(await syncTtls(client, { database: db, dir: DEFAULT_MIGRATIONS_DIR, variables: changedValues }), [], 'nothing left to change');
  // Column definitions (types, codecs) are kept: the restated column still takes what it took before.
  const [input] = await rows<{ type: string; compression_codec: string }>("SELECT type, compression_codec FROM system.columns WHERE database = {db:String} AND table = 'executions' AND name = 'input'", { db });
  assert.equal(input?.type, 'String');
  assert.match(input?.compression_codec ?? '', /ZSTD\(3\)/);
});

test('an install that recorded rendered checksums (before session 7) is upgraded by the next setup, after which a retention change goes through', async () => {
  const db = uniqueName('it_hs_legacy', '_');
  databases.push(db);
  await migrate(client, { database: db, variables });
  // What an older install recorded: the checksum of the SQL with the retention values filled in.
  for (const m of readMigrations(DEFAULT_MIGRATIONS_DIR, { database: db, ...variables })) {
    await client.command({ query: `ALTER TABLE ${db}.schema_migrations UPDATE checksum = '${m.renderedChecksum}' WHERE version = ${m.version} SETTINGS mutations_sync = 2` });
  }
  const changedValues = { ttl_days_pii: 21, ttl_days_sox: 3000, ttl_days_internal: 61 };
  await assert.rejects(migrate(client, { database: db, variables: changedValues }), /changed after it was applied/, 'a legacy record with changed values cannot be told from an edit');
  assert.equal((await migrate(client, { database: db, variables })).applied.length, 0, 'same values: accepted, and the records upgraded');
  const recorded = await rows<{ checksum: string }>(`SELECT checksum FROM ${db}.schema_migrations ORDER BY version`);
  assert.deepEqual(recorded.map((r) => r.checksum), readMigrations(DEFAULT_MIGRATIONS_DIR, { database: db, ...variables }).map((m) => m.checksum));
  assert.equal((await migrate(client, { database: db, variables: changedValues })).applied.length, 0, 'now a retention change is no edit');
});
