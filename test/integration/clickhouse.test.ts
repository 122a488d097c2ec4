import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createClickHouse } from '../../core/clients/clickhouse.js';
import { loadEndpoints } from '../../core/endpoints.js';
import { isAuditlineError } from '../../core/errors.js';
import { assetPath } from '../../core/paths.js';
import { migrate } from '../../infra/clickhouse/migrate.js';
import { uniqueName } from '../helpers/names.js';

const client = createClickHouse(loadEndpoints().clickhouse);
const fixtures = assetPath('test', 'fixtures', 'clickhouse-migrations');
const databases: string[] = [];

after(async () => {
  for (const db of databases) await client.command({ query: `DROP DATABASE IF EXISTS ${db}` });
  await client.close();
});

function newDatabase(): string {
  const db = uniqueName('it_mig', '_');
  databases.push(db);
  return db;
}

test('the migration runner applies once, records each migration, and a created table takes inserts and answers queries', async () => {
  const database = newDatabase();
  const first = await migrate(client, { database, dir: fixtures, variables: { ttl_days_internal: 90 } });
  assert.deepEqual(first.applied.map((m) => m.version), [1, 2]);
  const second = await migrate(client, { database, dir: fixtures, variables: { ttl_days_internal: 90 } });
  assert.deepEqual(second.applied, []);
  assert.deepEqual(second.skipped.map((m) => m.version), [1, 2]);

  const recorded = await (await client.query({ query: `SELECT version, name FROM ${database}.schema_migrations ORDER BY version`, format: 'JSONEachRow' })).json();
  assert.deepEqual(recorded, [{ version: 1, name: 'create_items' }, { version: 2, name: 'add_status' }]);

  await client.insert({
    table: `${database}.items`,
    format: 'JSONEachRow',
    values: Array.from({ length: 1000 }, (_, i) => ({ id: i, name: `item-${i}`, created_at: Date.now(), status: i % 10 === 0 ? 'failed' : 'ok' })),
  });
  const rows = await (await client.query({
    query: `SELECT status, count() AS n FROM ${database}.items WHERE id < {limit:UInt64} GROUP BY status ORDER BY status`,
    query_params: { limit: 100 },
    format: 'JSONEachRow',
  })).json<{ status: string; n: string | number }>();
  assert.deepEqual(rows.map((r) => [r.status, Number(r.n)]), [['failed', 10], ['ok', 90]]);

  const ddl = await (await client.query({ query: `SHOW CREATE TABLE ${database}.items`, format: 'TabSeparatedRaw' })).text();
  assert.match(ddl, /TTL toDateTime\(created_at\) \+ toIntervalDay\(90\)/);
  assert.match(ddl, /INDEX idx_name name TYPE bloom_filter GRANULARITY 4/);
});

test('a migration edited after it was applied is refused', async () => {
  const database = newDatabase();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mig-'));
  cpSync(fixtures, dir, { recursive: true });
  await migrate(client, { database, dir, variables: { ttl_days_internal: 90 } });
  writeFileSync(path.join(dir, '0002_add_status.sql'), `ALTER TABLE {{database}}.items ADD COLUMN IF NOT EXISTS other UInt8;\n`);
  await assert.rejects(migrate(client, { database, dir, variables: { ttl_days_internal: 90 } }), (e) => isAuditlineError(e, 'MIGRATION_FAILED') && /0002_add_status\.sql changed after it was applied/.test(e.message));
});

test('a failing statement names the migration and leaves it unrecorded', async () => {
  const database = newDatabase();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mig-'));
  writeFileSync(path.join(dir, '0001_broken.sql'), 'CREATE TABLE {{database}}.t (x UInt8) ENGINE = NoSuchEngine;\n');
  await assert.rejects(migrate(client, { database, dir }), (e) => isAuditlineError(e, 'MIGRATION_FAILED') && /migration 0001_broken\.sql failed: .*NoSuchEngine/.test(e.message) && !e.retriable);
  const recorded = await (await client.query({ query: `SELECT count() AS n FROM ${database}.schema_migrations`, format: 'JSONEachRow' })).json<{ n: string | number }>();
  assert.equal(Number(recorded[0]!.n), 0);
});
