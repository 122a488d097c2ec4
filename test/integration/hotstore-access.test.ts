import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { ClickHouseError, type ClickHouseClient } from '@clickhouse/client';
import { isAuditlineError } from '../../core/errors.js';
import { eventToRows, executionKnown, failedExecutions, HotstoreWriter } from '../../consumers/hotstore/index.js';
import { PRINCIPALS } from '../../infra/clickhouse/access.js';
import { ACCESS_TABLES, columnClasses, piiColumns } from '../../infra/clickhouse/column-classes.js';
import { migrate } from '../../infra/clickhouse/migrate.js';
import { loadStackSettings } from '../../infra/local-stack/settings.js';
import { loadRetention } from '../../infra/retention.js';
import { migrationVariables } from '../../infra/setup.js';
import { buildExecution, idOf } from '../helpers/hotstore-fixtures.js';
import { startPrivateClickHouse, type PrivateClickHouse } from '../helpers/hotstore-private-clickhouse.js';

/**
 * Grants enforced by the real engine: a private ClickHouse started by the
 * launcher (users.xml from infra/clickhouse/access.ts), the real migrations
 * applied AFTER the server started (the grants name tables that did not
 * exist yet), rows written by the hot store writer as the writer user.
 */
let ch: PrivateClickHouse;
let db: string;
const clients = {} as Record<'default' | 'writer' | 'operational' | 'compliance', ClickHouseClient>;
const execution = buildExecution({
  workflowId: 'WF-ACCESS',
  status: 'failed',
  startedAgoMs: 60_000,
  steps: [{ name: 'charge', status: 'failed' }],
  decisions: [{ step: 1, condition: 'amount > 1000', taken: 'manual_review', reason: 'large amount' }],
});
const executionId = idOf(execution);
const compliancePassword = `c-${randomBytes(6).toString('hex')}`;

before(async () => {
  ch = await startPrivateClickHouse({ AUDITLINE_STACK_CLICKHOUSE_COMPLIANCE_PASSWORD: compliancePassword });
  db = ch.database;
  const passwords = loadStackSettings({ ...process.env, ...ch.env }).clickhouse.passwords;
  assert.equal(passwords.compliance, compliancePassword);
  clients.default = ch.client('default');
  clients.writer = ch.client(PRINCIPALS.writer.user, passwords.writer);
  clients.operational = ch.client(PRINCIPALS.operational.user, passwords.operational);
  clients.compliance = ch.client(PRINCIPALS.compliance.user, passwords.compliance);
  await migrate(clients.default, { database: db, variables: migrationVariables(loadRetention()) });
});

after(async () => {
  if (ch) await ch.stop();
});

async function rows(client: ClickHouseClient, query: string): Promise<Record<string, unknown>[]> {
  return (await client.query({ query, format: 'JSONEachRow' })).json<Record<string, unknown>>();
}

/** Resolves when the statement fails with ACCESS_DENIED (code 497) and nothing else. */
async function denied(client: ClickHouseClient, query: string, kind: 'query' | 'command' = 'query'): Promise<void> {
  await assert.rejects(
    kind === 'query' ? rows(client, query) : client.command({ query }),
    (e) => e instanceof ClickHouseError && e.type === 'ACCESS_DENIED' && e.code === '497',
    query,
  );
}

test('the writer user writes through the hot store writer, and may not drop, truncate, alter or read', async () => {
  const writer = new HotstoreWriter(clients.writer, db);
  await writer.checkSchema();
  const result = await writer.write(execution.map((e, i) => eventToRows(e, { topic: 'audit.events', partition: 0, offset: String(i) })));
  assert.deepEqual(result.rejected, []);
  const stored = await rows(clients.default, `SELECT count() AS n FROM ${db}.events WHERE execution_id = '${executionId}'`);
  assert.equal(Number(stored[0]!.n), execution.length);

  await denied(clients.writer, `DROP TABLE ${db}.steps`, 'command');
  await denied(clients.writer, `TRUNCATE TABLE ${db}.executions`, 'command');
  await denied(clients.writer, `ALTER TABLE ${db}.decisions DELETE WHERE 1`, 'command');
  await denied(clients.writer, `CREATE TABLE ${db}.other (x UInt8) ENGINE = MergeTree ORDER BY x`, 'command');
  await denied(clients.writer, `SELECT execution_id FROM ${db}.executions`);
});

test('the operational user reads every non-PII column (FINAL too) and is denied each PII column', async () => {
  const classes = columnClasses();
  const pii = piiColumns();
  for (const table of ACCESS_TABLES) {
    const open = classes[table].map(([c]) => c).filter((c) => !pii[table].includes(c));
    const got = await rows(clients.operational, `SELECT ${open.join(', ')} FROM ${db}.${table} FINAL WHERE execution_id = '${executionId}'`);
    assert.ok(got.length > 0, `${table}: rows of the execution are readable`);
    assert.deepEqual(Object.keys(got[0]!), open);
    for (const column of pii[table]) {
      await denied(clients.operational, `SELECT ${column} FROM ${db}.${table}`);
      await denied(clients.operational, `SELECT count() FROM ${db}.${table} WHERE ${column} != ''`);
    }
    if (pii[table].length > 0) await denied(clients.operational, `SELECT * FROM ${db}.${table}`);
  }
  await denied(clients.operational, `INSERT INTO ${db}.events (execution_id) VALUES ('x')`, 'command');
  assert.equal(await executionKnown(clients.operational, db, executionId), true);
  // The "failed executions" query selects error_message (PII): refused for the open role.
  await assert.rejects(failedExecutions(clients.operational, db, { workflowId: 'WF-ACCESS', sinceSeconds: 3600, limit: 10 }), (e) => isAuditlineError(e, 'QUERY_FAILED') && /ACCESS_DENIED/.test(e.message));
});

test('the compliance user reads the PII columns, and writes nothing', async () => {
  const pii = piiColumns();
  const input = await rows(clients.compliance, `SELECT input FROM ${db}.executions FINAL WHERE execution_id = '${executionId}'`);
  assert.match(String(input[0]!.input), /"customer_email":\{"token":"tok_/);
  for (const table of ACCESS_TABLES) {
    if (pii[table].length === 0) continue;
    const got = await rows(clients.compliance, `SELECT ${pii[table].join(', ')} FROM ${db}.${table} FINAL WHERE execution_id = '${executionId}'`);
    assert.ok(got.length > 0, table);
  }
  const failed = await failedExecutions(clients.compliance, db, { workflowId: 'WF-ACCESS', sinceSeconds: 3600, limit: 10 });
  assert.deepEqual(failed.map((f) => [f.execution_id, f.error_message]), [[executionId, 'a step failed']]);
  await denied(clients.compliance, `INSERT INTO ${db}.events (execution_id) VALUES ('x')`, 'command');
  await denied(clients.compliance, `DROP TABLE ${db}.events`, 'command');
});

test('default keeps full access without a password; a wrong password is refused', async () => {
  const scratch = `${db}_scratch`;
  await clients.default.command({ query: `CREATE DATABASE IF NOT EXISTS ${scratch}` });
  await clients.default.command({ query: `CREATE TABLE ${scratch}.t (x UInt8) ENGINE = MergeTree ORDER BY x` });
  await clients.default.command({ query: `DROP DATABASE ${scratch}` });
  const grants = (await (await clients.default.query({ query: 'SHOW GRANTS', format: 'TabSeparatedRaw' })).text());
  assert.match(grants, /GRANT .*\bCREATE\b.*\bDROP\b.* ON \*\.\* TO default/);
  const wrong = ch.client(PRINCIPALS.operational.user, 'not-the-password');
  await assert.rejects(rows(wrong, 'SELECT 1'), (e) => e instanceof ClickHouseError && e.type === 'AUTHENTICATION_FAILED');
});

test('a column added later without a declared class (infra/clickhouse/column-classes.ts) is hidden from the operational role and readable for compliance', async () => {
  await clients.default.command({ query: `ALTER TABLE ${db}.events ADD COLUMN IF NOT EXISTS added_later String DEFAULT 'x'` });
  await denied(clients.operational, `SELECT added_later FROM ${db}.events`);
  const got = await rows(clients.compliance, `SELECT added_later FROM ${db}.events WHERE execution_id = '${executionId}' LIMIT 1`);
  assert.deepEqual(got, [{ added_later: 'x' }]);
});
