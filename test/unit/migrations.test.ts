import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isAuditlineError } from '../../core/errors.js';
import { assetPath } from '../../core/paths.js';
import { readMigrations, splitStatements } from '../../infra/clickhouse/migrate.js';

const fixtures = assetPath('test', 'fixtures', 'clickhouse-migrations');

test('statements split at semicolons ending a line; comment-only chunks dropped', () => {
  assert.deepEqual(splitStatements("-- header\nCREATE TABLE a (x String DEFAULT ';');\n\nALTER TABLE a ADD COLUMN y UInt8;\n-- trailing comment\n"), [
    "-- header\nCREATE TABLE a (x String DEFAULT ';')",
    'ALTER TABLE a ADD COLUMN y UInt8',
  ]);
});

test('migrations are read in version order with placeholders rendered', () => {
  const ms = readMigrations(fixtures, { database: 'db1', ttl_days_internal: 90 });
  assert.deepEqual(ms.map((m) => [m.version, m.name]), [[1, 'create_items'], [2, 'add_status']]);
  assert.match(ms[0]!.sql, /CREATE TABLE IF NOT EXISTS db1\.items/);
  assert.match(ms[0]!.sql, /INTERVAL 90 DAY/);
  const other = readMigrations(fixtures, { database: 'db1', ttl_days_internal: 30 })[0]!;
  assert.equal(ms[0]!.checksum, other.checksum, 'the checksum is of the text as written: a retention change does not change it');
  assert.notEqual(ms[0]!.renderedChecksum, other.renderedChecksum, 'the rendered checksum (recorded by older installs) does');
});

test('a missing placeholder value or a bad file name is refused', () => {
  assert.throws(() => readMigrations(fixtures, { database: 'db1' }), (e) => isAuditlineError(e, 'MIGRATION_FAILED') && /\{\{ttl_days_internal\}\}/.test(e.message));
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mig-'));
  writeFileSync(path.join(dir, 'create.sql'), 'SELECT 1;');
  assert.throws(() => readMigrations(dir, {}), /create.sql does not match NNNN_name.sql/);
});
