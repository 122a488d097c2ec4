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

async function assertTtls(database: string, piiDays: number, internalDays: number): Promise<void> {
  const pii = piiColumns();
  for (const table of ACCESS_TABLES) {
    const got = await ttls(database, table);
    assert.deepEqual(
      got.columns,
      Object.fromEntries(pii[table].map((c) => [c, `toDateTime(event_time) + toIntervalDay(${piiDays})`])),
      `${table}: exactly the PII columns expire after ${piiDays} days`,
    );
    assert.equal(got.table, `toDateTime(event_time) + toIntervalDay(${internalDays})`, `${table}: rows expire after ${internalDays} days`);
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
