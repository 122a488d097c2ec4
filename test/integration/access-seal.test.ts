import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { HeadObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { ACCESS_SEAL_PREFIX } from '../../consumers/tokenizer/access-seal.js';
import { createArchiveBucket, s3 } from '../helpers/archiver-stack.js';
import { testKeys } from '../helpers/tokenizer-fixtures.js';
import { clickhouse, createTokenizerDatabase, runCli } from '../helpers/tokenizer-stack.js';

const client = clickhouse();
const keys = testKeys();
let database: string;
let bucket: string;
let env: Record<string, string>;

before(async () => {
  database = await createTokenizerDatabase(client);
  bucket = await createArchiveBucket(true);
  env = { AUDITLINE_CLICKHOUSE_DATABASE: database, AUDITLINE_S3_BUCKET: bucket, AUDITLINE_TOKENIZER_MASTER_KEY: keys.masterKey, AUDITLINE_TOKENIZER_TOKEN_KEY: keys.tokenKey };
});

after(async () => {
  await client.command({ query: `DROP DATABASE IF EXISTS ${database}` });
  await client.close();
});

const reveal = (executionId: string, extra: Record<string, string> = {}) =>
  runCli(['reveal', executionId, '--as', 'u-17', '--role', 'engineering', '--reason', 'INC-4711 reproduce the failure'], { ...env, ...extra });
const verify = () => runCli(['access-log', 'verify'], env);

async function rows(): Promise<{ request_id: string; outcome: string }[]> {
  const rs = await client.query({ query: `SELECT request_id, outcome FROM ${database}.pii_access_log ORDER BY at`, format: 'JSONEachRow' });
  return rs.json();
}

async function mutate(sql: string): Promise<void> {
  await client.command({ query: sql, clickhouse_settings: { mutations_sync: '2' } });
}

test('every reveal attempt is sealed in the bucket under Object Lock before it is answered; access-log verify finds a row changed, deleted or forged in ClickHouse', { timeout: 120_000 }, async () => {
  // Two attempts on executions the hot store does not know: refused (exit 5), recorded all the same.
  for (let i = 0; i < 2; i++) assert.equal((await reveal(randomUUID())).code, 5);
  const recorded = await rows();
  assert.equal(recorded.length, 2);

  const intact = await verify();
  assert.equal(intact.code, 0, intact.stderr);
  assert.match(intact.stderr, /2 sealed record\(s\), 2 row\(s\), 0 difference\(s\), 0 row\(s\) from before sealing began: INTACT/);

  // The sealed copy is write-once and locked for the SOX retention: nobody can change or delete it before then.
  const listed = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: ACCESS_SEAL_PREFIX }));
  assert.equal(listed.Contents?.length, 2);
  const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: listed.Contents![0]!.Key! }));
  assert.equal(head.ObjectLockMode, 'COMPLIANCE');
  const years = (head.ObjectLockRetainUntilDate!.getTime() - Date.now()) / (365.25 * 86_400_000);
  assert.ok(years > 6.9 && years < 7.1, `retained ${years.toFixed(2)} years`);

  // Someone with ALTER on the table turns a refusal into an allowed reveal, deletes the other record, forges a third.
  const [first, second] = recorded as [(typeof recorded)[number], (typeof recorded)[number]];
  await mutate(`ALTER TABLE ${database}.pii_access_log UPDATE outcome = 'allowed', detail = '' WHERE request_id = '${first.request_id}'`);
  await mutate(`ALTER TABLE ${database}.pii_access_log DELETE WHERE request_id = '${second.request_id}'`);
  await client.command({
    query: `INSERT INTO ${database}.pii_access_log (at, request_id, principal, role, execution_id, execution_status, fields, reason, outcome, detail, values_revealed, values_unrecoverable)
            VALUES (now64(3), 'forged-1', 'u-17', 'compliance', 'e-x', 'success', ['execution.input'], 'INC-1 audit', 'allowed', '', 3, 0)`,
  });
  // A second row for the first attempt (same time and request id): the verifier must not compare only one of them.
  await client.command({ query: `INSERT INTO ${database}.pii_access_log SELECT * FROM ${database}.pii_access_log WHERE request_id = '${first.request_id}'` });
  const tampered = await verify();
  assert.equal(tampered.code, 8, tampered.stderr);
  assert.match(tampered.stdout, new RegExp(`^ALTERED +${first.request_id} +the row differs in: outcome, detail`, 'm'));
  assert.match(tampered.stdout, new RegExp(`^MISSING_ROW +${second.request_id} `, 'm'));
  assert.match(tampered.stdout, /^UNSEALED_ROW +forged-1 /m);
  assert.match(tampered.stdout, new RegExp(`^DUPLICATE_ROW +${first.request_id} `, 'm'));
  assert.match(tampered.stderr, /4 difference\(s\), 0 row\(s\) from before sealing began: DIFFERENCES FOUND/);

  // A row dated before the first sealed record (as rows written before sealing existed are): shown, not a difference.
  await client.command({
    query: `INSERT INTO ${database}.pii_access_log (at, request_id, principal, role, execution_id, execution_status, fields, reason, outcome, detail, values_revealed, values_unrecoverable)
            VALUES (now64(3) - INTERVAL 1 DAY, 'before-sealing', 'u-17', 'compliance', 'e-y', 'success', [], 'INC-2 audit', 'allowed', '', 1, 0)`,
  });
  const noted = await verify();
  assert.match(noted.stdout, /^BEFORE_SEALING +before-sealing /m);
  assert.match(noted.stderr, /4 difference\(s\), 1 row\(s\) from before sealing began/);
  // Rows and no sealed record at all (another bucket: a wrong setting, or copies removed from a bucket without Object
  // Lock): a difference, not a clean bill.
  const empty = await createArchiveBucket(false);
  const elsewhere = await runCli(['access-log', 'verify'], { ...env, AUDITLINE_S3_BUCKET: empty });
  assert.equal(elsewhere.code, 8, elsewhere.stderr);
  assert.match(elsewhere.stdout, /^NO_SEALS +/m);

  // S3 unreachable: nothing is revealed and nothing written to the table (the sealed copy comes first).
  const before = (await rows()).length;
  const down = await reveal(randomUUID(), { AUDITLINE_S3_ENDPOINT: 'http://127.0.0.1:9', AWS_MAX_ATTEMPTS: '1' });
  assert.equal(down.code, 1, down.stderr);
  assert.equal((await rows()).length, before, 'no row without its sealed copy');
});
