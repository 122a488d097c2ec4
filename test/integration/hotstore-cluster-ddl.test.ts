import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createClickHouse } from '../../core/clients/clickhouse.js';
import { loadEndpoints } from '../../core/endpoints.js';
import { sha256Hex } from '../../infra/clickhouse/access-xml.js';
import { clusterStatements, singleNodeAccessStatements } from '../../infra/clickhouse/ddl-scripts.js';
import { loadRetention } from '../../infra/retention.js';

/**
 * The local engine has no cluster (no Keeper, no remote servers) and no SQL
 * access storage, so the generated DDL cannot run here; its parser can
 * still check every statement: formatQuery() parses without executing.
 */
const client = createClickHouse(loadEndpoints().clickhouse);
const users = { writer: { passwordSha256Hex: sha256Hex('w') }, operational: { passwordSha256Hex: sha256Hex('o') }, compliance: { passwordSha256Hex: sha256Hex('c') } };

after(() => client.close());

async function format(statement: string): Promise<string> {
  const rs = await client.query({ query: 'SELECT formatQuery({q:String}) AS f', query_params: { q: statement }, format: 'JSONEachRow' });
  return (await rs.json<{ f: string }>())[0]!.f;
}

test('every statement of the cluster script parses in the ClickHouse engine', async () => {
  const statements = clusterStatements({ cluster: 'auditline', database: 'audit', retention: loadRetention(), users });
  const formatted = [];
  for (const s of statements) formatted.push(await format(s));
  const text = formatted.join('\n');
  assert.match(text, /CREATE TABLE IF NOT EXISTS audit\.executions_local ON CLUSTER auditline\n/);
  assert.match(text, /ENGINE = ReplicatedReplacingMergeTree\('\/clickhouse\/tables\/\{shard\}\/\{database\}\/executions', '\{replica\}'\)/);
  assert.match(text, /`input` String CODEC\(ZSTD\(3\)\) TTL toDateTime\(event_time\) \+ toIntervalDay\(30\)/);
  assert.match(text, /INDEX idx_execution_id execution_id TYPE bloom_filter\(0\.01\) GRANULARITY 1/);
  assert.match(text, /ENGINE = Distributed\('auditline', 'audit', 'decisions_local', cityHash64\(execution_id\)\)/);
  assert.match(text, /GRANT ON CLUSTER auditline SELECT\(execution_id, .*\) ON audit\.executions, SELECT\(.*\) ON audit\.executions_local, .* TO auditline_read_operational WITH REPLACE OPTION/);
  assert.match(text, /CREATE USER IF NOT EXISTS auditline_writer ON CLUSTER auditline IDENTIFIED WITH sha256_hash BY '[0-9a-f]{64}'/);
  assert.equal((text.match(/ON CLUSTER auditline/g) ?? []).length, statements.length, 'every statement runs on the whole cluster');
});

test('every statement of the single-server access DDL parses in the ClickHouse engine', async () => {
  for (const s of singleNodeAccessStatements({ database: 'audit', users })) {
    assert.equal((await format(s)).replace(/\\'/g, "'"), s.replace(/\\'/g, "'"), 'formatting changes nothing but layout');
  }
});
