import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { ClickHouseClient } from '@clickhouse/client';
import { accessReview, quarterOf, quarterPeriod, type Period } from '../../compliance/index.js';
import { DEFAULT_REVEAL_POLICY } from '../../consumers/tokenizer/index.js';
import { createClickHouse } from '../../core/clients/clickhouse.js';
import { assetPath } from '../../core/paths.js';
import { localConfigXml } from '../../infra/clickhouse/access-xml.js';
import { migrate } from '../../infra/clickhouse/migrate.js';
import { clickhouseDir } from '../../infra/local-stack/provision.js';
import { loadStackSettings } from '../../infra/local-stack/settings.js';
import { loadRetention } from '../../infra/retention.js';
import { migrationVariables } from '../../infra/setup.js';
import { freePort } from '../helpers/ports.js';
import { tempDir } from '../helpers/temp-dir.js';

/**
 * Grants the access review must read as the server means them, on a private
 * ClickHouse engine (the local engine takes users and roles from a users
 * file only, so this test starts one with its own): a role granted to a
 * role, a wildcard grant on a prefix of the database, and a partial revoke.
 */
const DATABASE = 'audit';
const user = (name: string, grants: string[]) =>
  `<${name}><password>x</password><networks><ip>127.0.0.1</ip></networks><profile>default</profile><quota>default</quota><grants>${grants.map((g) => `<query>${g}</query>`).join('')}</grants></${name}>`;
const USERS_XML = `<?xml version="1.0"?>
<clickhouse>
  <profiles><default/></profiles>
  <quotas><default/></quotas>
  <roles>
    <r3_inner_pii><grants><query>GRANT SELECT ON ${DATABASE}.executions</query></grants></r3_inner_pii>
    <r3_outer_team><grants><query>GRANT r3_inner_pii</query></grants></r3_outer_team>
  </roles>
  <users>
    <default><password></password><networks><ip>127.0.0.1</ip></networks><profile>default</profile><quota>default</quota></default>
    ${user('r3_nested', ['GRANT r3_outer_team'])}
    ${user('r3_wild', ['GRANT SELECT ON aud*.*'])}
    ${user('r3_revoked', [`GRANT SELECT ON ${DATABASE}.*`, `REVOKE SELECT(input) ON ${DATABASE}.executions`])}
  </users>
</clickhouse>
`;

let server: ChildProcess;
let client: ClickHouseClient;

before(async () => {
  const settings = loadStackSettings();
  const port = await freePort();
  const dir = tempDir('access-review-grants');
  mkdirSync(path.join(dir, 'data'));
  writeFileSync(path.join(dir, 'users.xml'), USERS_XML, { mode: 0o600 });
  writeFileSync(path.join(dir, 'config.xml'), localConfigXml(path.join(dir, 'users.xml')), { mode: 0o600 });
  const lib = path.join(clickhouseDir(settings), 'libchdb.so');
  server = spawn(settings.python, [assetPath('infra', 'local-stack', 'clickhouse-launcher.py'), lib, `${path.join(dir, 'data')}/`, String(port), `--config-file=${path.join(dir, 'config.xml')}`], { cwd: dir, stdio: 'ignore' });
  client = createClickHouse({ url: `http://127.0.0.1:${port}`, username: 'default', password: '', database: DATABASE });
  const deadline = Date.now() + 90_000;
  while (!(await client.ping()).success) {
    assert.ok(Date.now() < deadline && server.exitCode === null, 'the private ClickHouse did not start within 90 s');
    await new Promise((r) => setTimeout(r, 500));
  }
  await migrate(client, { database: DATABASE, variables: migrationVariables(loadRetention()) });
});

after(async () => {
  await client?.close();
  if (server && server.exitCode === null) {
    server.kill('SIGTERM');
    await once(server, 'exit');
  }
});

// The review listed a role granted through another role as held by "(no user)", left out a wildcard grant on a prefix of
// the database (`aud*.*`), and showed a partial revoke as a grant of the revoked column.
test('the access review names the users of a nested role, wildcard grants, and partial revokes as revokes', { timeout: 120_000 }, async () => {
  const quarter = quarterOf(Date.now());
  const review = await accessReview({ client, database: DATABASE, period: quarterPeriod(quarter) as Period, policy: DEFAULT_REVEAL_POLICY, reportRoles: ['compliance'] });
  const holdings = review.rows.filter((r) => r.entry === 'holding' && r.finding.includes('source: clickhouse system tables'));
  const show = JSON.stringify(holdings.filter((h) => /r3_/.test(`${h.holder} ${h.role}`)), null, 1);

  const inner = holdings.find((h) => h.role === 'r3_inner_pii');
  assert.equal(inner?.holder, 'r3_nested', `r3_nested holds r3_inner_pii through r3_outer_team: ${show}`);
  assert.equal(inner?.object, 'audit.executions');

  const wild = holdings.find((h) => h.holder === 'r3_wild');
  assert.deepEqual([wild?.access, wild?.object], ['SELECT', 'aud*.*'], `the wildcard grant covers the database: ${show}`);

  const revoked = holdings.filter((h) => h.holder === 'r3_revoked').map((h) => [h.access, h.object, h.flag]);
  assert.equal(revoked.length, 2, show);
  assert.deepEqual(revoked.find((r) => r[1] === 'audit.*')?.slice(0, 2), ['SELECT', 'audit.*']);
  const revoke = holdings.find((h) => h.holder === 'r3_revoked' && h.object !== 'audit.*');
  assert.deepEqual([revoke?.access, revoke?.object, revoke?.flag], ['REVOKE SELECT', 'audit.executions(1 columns)', ''], `a partial revoke is no grant: ${show}`);
  assert.match(revoke!.finding, /^partial revoke/);
});
