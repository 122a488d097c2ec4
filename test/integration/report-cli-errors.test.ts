import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { clickhouse, createTokenizerDatabase, endpoints, runCli } from '../helpers/tokenizer-stack.js';

const client = clickhouse();
let database: string;
let env: Record<string, string>;

before(async () => {
  database = await createTokenizerDatabase(client);
  env = { AUDITLINE_CLICKHOUSE_DATABASE: database, AUDITLINE_REPORT_PROGRESS_SECONDS: '0' };
});

after(async () => {
  await client.command({ query: `DROP DATABASE IF EXISTS ${database}` });
  await client.close();
});

// `--to 9999-12-31` (the usual "open end") passed the CLI's check, was recorded as an allowed request, and failed in
// ClickHouse (BAD_QUERY_PARAMETER for the year 10000) as a retriable CLICKHOUSE_UNAVAILABLE, exit 1: a typo read as an outage.
test('report with a period outside the storable time range is wrong usage (exit 2), refused before anything is recorded', { timeout: 60_000 }, async () => {
  for (const period of [
    ['--from', '2026-01-01', '--to', '9999-12-31'],
    ['--quarter', '9999Q4'],
    ['--from', '1800-01-01', '--to', '2026-01-01'],
  ]) {
    const r = await runCli(['report', '--kind', 'executions', ...period, '--as', 'carol', '--role', 'compliance', '--reason', 'SOX-2026 Q4 audit'], env);
    assert.equal(r.code, 2, `${period.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /periods lie within 1900-01-01\.\.2299-12-31/, r.stderr);
  }
  const recorded = await (await client.query({ query: `SELECT count() AS n FROM ${database}.report_requests`, format: 'JSONEachRow' })).json<{ n: string }>();
  assert.equal(Number(recorded[0]!.n), 0, 'nothing recorded for a request that is wrong usage');
});

// A ClickHouse that answers and refuses (wrong password, no grant) was reported as CLICKHOUSE_UNAVAILABLE, retriable:
// an operator chased an outage that was a credentials or grants problem, while `query` said QUERY_FAILED for the same.
test('report and access-review name a ClickHouse refusal QUERY_FAILED, not CLICKHOUSE_UNAVAILABLE; an unreachable server stays CLICKHOUSE_UNAVAILABLE', { timeout: 60_000 }, async () => {
  const wrongPassword = { ...env, AUDITLINE_CLICKHOUSE_URL: endpoints.clickhouse.url, AUDITLINE_CLICKHOUSE_USER: endpoints.clickhouse.username, AUDITLINE_CLICKHOUSE_PASSWORD: 'not-the-password' };
  const asked = ['--as', 'carol', '--role', 'compliance', '--reason', 'SOX-2026 Q4 audit'];
  for (const args of [['report', '--kind', 'alerts', '--quarter', '2026Q4', ...asked], ['access-review', '--quarter', '2026Q4', ...asked]]) {
    const r = await runCli(args, wrongPassword);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /^auditline: QUERY_FAILED: recording the report request: ClickHouse error (REQUIRED_PASSWORD|AUTHENTICATION_FAILED|WRONG_PASSWORD) \(code \d+\)$/m, r.stderr);
  }
  const down = await runCli(['report', '--kind', 'alerts', '--quarter', '2026Q4', ...asked], { ...env, AUDITLINE_CLICKHOUSE_URL: 'http://127.0.0.1:1', AUDITLINE_CLICKHOUSE_USER: 'default', AUDITLINE_CLICKHOUSE_PASSWORD: '' });
  assert.equal(down.code, 1, down.stderr);
  assert.match(down.stderr, /^auditline: CLICKHOUSE_UNAVAILABLE: recording the report request: /m, down.stderr);
});
