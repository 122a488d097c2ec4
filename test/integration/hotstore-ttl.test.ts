import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parse, stringify } from 'yaml';
import { createClickHouse } from '../../core/clients/clickhouse.js';
import { loadEndpoints } from '../../core/endpoints.js';
import { columnNames, parseCreateTable } from '../../infra/clickhouse/cluster-ddl.js';
import { ACCESS_TABLES, piiColumns } from '../../infra/clickhouse/column-classes.js';
import { migrate } from '../../infra/clickhouse/migrate.js';
import { DEFAULT_RETENTION_FILE, loadRetention, type RetentionSettings } from '../../infra/retention.js';
import { migrationVariables } from '../../infra/setup.js';
import { uniqueName } from '../helpers/names.js';
import { tempDir } from '../helpers/temp-dir.js';

/** The TTLs ClickHouse actually holds (SHOW CREATE TABLE) follow the retention file, through the real migrations. */
const client = createClickHouse(loadEndpoints().clickhouse);
const databases: string[] = [];

after(async () => {
  for (const db of databases) await client.command({ query: `DROP DATABASE IF EXISTS ${db}` });
  await client.close();
});

async function migratedWith(retention: RetentionSettings): Promise<string> {
  const database = uniqueName('it_ttl', '_');
  databases.push(database);
  await migrate(client, { database, variables: migrationVariables(retention) });
  return database;
}

/** Per table: the columns with a column TTL and their TTL expressions, and the table TTL, as the server shows them. */
async function ttls(database: string, table: string): Promise<{ columns: Record<string, string>; table: string }> {
  const ddl = await (await client.query({ query: `SHOW CREATE TABLE ${database}.${table}`, format: 'TabSeparatedRaw' })).text();
  const parsed = parseCreateTable(ddl.trim());
  assert.ok(parsed, `SHOW CREATE TABLE ${table} parses`);
  const columns: Record<string, string> = {};
  for (const element of parsed.elements) {
    const ttl = /\sTTL\s(.+)$/.exec(element);
    if (ttl) columns[columnNames({ ...parsed, elements: [element] })[0]!] = ttl[1]!;
  }
  return { columns, table: /(?:^|\n)TTL (.+)/.exec(parsed.clauses)?.[1] ?? '' };
}

/** A TTL as the server states it: from the event's time held between 1970-01-02 and the row's arrival (migration 0019). */
const bounded = (days: number) => `toDateTime(least(greatest(event_time, toDateTime64('1970-01-02 00:00:00', 3, 'UTC')), ingested_at)) + toIntervalDay(${days})`;

async function assertTtls(database: string, piiDays: number, internalDays: number): Promise<void> {
  const pii = piiColumns();
  for (const table of ACCESS_TABLES) {
    const got = await ttls(database, table);
    assert.deepEqual(
      got.columns,
      Object.fromEntries(pii[table].map((c) => [c, bounded(piiDays)])),
      `${table}: exactly the PII columns expire after ${piiDays} days`,
    );
    assert.equal(got.table, bounded(internalDays), `${table}: rows expire after ${internalDays} days`);
  }
}

test('with the default retention file, PII columns expire after 30 days and rows after 90', async () => {
  const retention = loadRetention();
  assert.deepEqual([migrationVariables(retention).ttl_days_pii, migrationVariables(retention).ttl_days_internal], [30, 90]);
  await assertTtls(await migratedWith(retention), 30, 90);
});

test('a changed retention file (GDPR 14 days, operational 60) changes the TTLs ClickHouse holds', async () => {
  const doc = parse(readFileSync(DEFAULT_RETENTION_FILE, 'utf8')) as { requirements: Record<string, { retention_days: number }> };
  doc.requirements.gdpr!.retention_days = 14;
  doc.requirements.operational!.retention_days = 60;
  const file = path.join(tempDir('retention'), 'retention.yaml');
  writeFileSync(file, stringify(doc));
  await assertTtls(await migratedWith(loadRetention(file)), 14, 60);
});

test('event times outside what a TTL can hold (1970-2106) do not wrap: a row dated 1960 expires, one dated 2200 keeps its PII from its arrival', async () => {
  // ClickHouse's DateTime wraps outside 1970-2106: with toDateTime(event_time), 1960 read as 2096 and kept its PII 70 years.
  const database = await migratedWith(loadRetention());
  const row = (id: string, eventTime: string) =>
    `('${id}', 'WF-001', 'wf', '1', 'manual', 'user', 'u1', ${eventTime}, '', '{"customer_email":"tok-${id}"}', '${id}', ${eventTime}, 1)`;
  await client.command({
    query: `INSERT INTO ${database}.executions (execution_id, workflow_id, workflow_name, workflow_version, trigger, triggered_by_kind, triggered_by_id, start_time, parent_execution_id, input, event_id, event_time, sequence) VALUES
      ${row('dated-1960', "toDateTime64('1960-01-01 00:00:00', 3, 'UTC')")}, ${row('dated-2200', "toDateTime64('2200-01-01 00:00:00', 3, 'UTC')")}, ${row('dated-now', 'now64(3)')}, ${row('dated-2025', "toDateTime64('2025-01-01 00:00:00', 3, 'UTC')")}`,
  });
  const archived = (id: string, eventTime: string) => `('${id}', 'k/${id}', 'WF-001', ${eventTime}, ${eventTime}, 1, 'audit.events', 0, 0, 0, 'GLACIER', '', 0)`;
  await client.command({
    query: `INSERT INTO ${database}.archive_index (execution_id, object_key, workflow_id, first_event_time, last_event_time, events, source_topic, source_partition, first_offset, last_offset, storage_class, object_sha256, object_size) VALUES
      ${archived('dated-2110', "toDateTime64('2110-01-01 00:00:00', 3, 'UTC')")}, ${archived('dated-2012', "toDateTime64('2012-01-01 00:00:00', 3, 'UTC')")}`,
  });
  for (const table of ['executions', 'archive_index']) await client.command({ query: `OPTIMIZE TABLE ${database}.${table} FINAL` });
  const executions = await (await client.query({ query: `SELECT execution_id, input FROM ${database}.executions ORDER BY execution_id`, format: 'JSONEachRow' })).json<{ execution_id: string; input: string }>();
  assert.deepEqual(executions, [
    { execution_id: 'dated-2200', input: '{"customer_email":"tok-dated-2200"}' },
    { execution_id: 'dated-now', input: '{"customer_email":"tok-dated-now"}' },
  ], 'rows past the 90 days (1960, 2025) are gone; the 2200 row is kept, PII and all, from its arrival');
  const index = await (await client.query({ query: `SELECT execution_id FROM ${database}.archive_index ORDER BY execution_id`, format: 'JSONEachRow' })).json<{ execution_id: string }>();
  // The index row of an object archived now lives SOX days from now (its object's lock runs from its upload), whatever the record's date.
  assert.deepEqual(index.map((r) => r.execution_id), ['dated-2012', 'dated-2110']);
});
