import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { eraseSubjects, expireKeys, LocalKeyWrapper, setLegalHold, SubjectKeyStore, TokenizerAuditLog, TokenKey } from '../../consumers/tokenizer/index.js';
import { isAuditlineError } from '../../core/errors.js';
import { ExecutionSubjects } from '../../consumers/tokenizer/execution-subjects.js';
import { testKeys } from '../helpers/tokenizer-fixtures.js';
import { clickhouseTime } from '../../core/clients/clickhouse-time.js';
import { clickhouse, createTokenizerDatabase, retentionFileWithGdprDays, runCli } from '../helpers/tokenizer-stack.js';

const client = clickhouse();
const keys = testKeys();
const tokenKey = new TokenKey(Buffer.from(keys.tokenKey, 'base64'));
const wrapper = new LocalKeyWrapper(Buffer.from(keys.masterKey, 'base64'));
const DAY = 86_400_000;
let database: string;
let env: Record<string, string>;

before(async () => {
  database = await createTokenizerDatabase(client);
  env = { AUDITLINE_CLICKHOUSE_DATABASE: database, AUDITLINE_TOKENIZER_MASTER_KEY: keys.masterKey, AUDITLINE_TOKENIZER_TOKEN_KEY: keys.tokenKey };
});

after(async () => {
  await client.command({ query: `DROP DATABASE IF EXISTS ${database}` });
  await client.close();
});

const store = (now: () => number, rotationMs = DAY) => new SubjectKeyStore(client, database, wrapper, { cacheTtlMs: 60_000, rotationMs, now });
const subject = (email: string) => tokenKey.subject(`email:${email}`);
async function keyRows(s: string): Promise<string[]> {
  const rs = await client.query({ query: `SELECT key_id FROM ${database}.subject_keys WHERE subject = {s:String} ORDER BY created_at`, query_params: { s }, format: 'JSONEachRow' });
  return (await rs.json<{ key_id: string }>()).map((r) => r.key_id);
}

test('keys: one per subject until the rotation window passes, shared by instances, found again by id', async () => {
  const now = Date.now();
  const HOUR = DAY / 24;
  // Younger than the 1-day retention of the next test, so its expiry leaves them alone.
  const a = store(() => now - 20 * HOUR, 10 * HOUR);
  const first = (await a.activeKeys([subject('rot@example.com')])).get(subject('rot@example.com'))!;
  const b = store(() => now - 20 * HOUR + 1_000, 10 * HOUR);
  assert.equal((await b.activeKeys([subject('rot@example.com')])).get(subject('rot@example.com'))!.keyId, first.keyId, 'a second instance uses the stored key');
  const later = (await store(() => now, 10 * HOUR).activeKeys([subject('rot@example.com')])).get(subject('rot@example.com'))!;
  assert.notEqual(later.keyId, first.keyId, 'past the rotation window a new key encrypts new values');
  assert.deepEqual(await keyRows(subject('rot@example.com')), [first.keyId, later.keyId]);
  const byId = await store(() => now).keysById([first.keyId, later.keyId, 'kUNKNOWN']);
  assert.deepEqual([...byId.keys()].sort(), [first.keyId, later.keyId].sort(), 'old keys still decrypt what they encrypted');
  assert.equal(byId.get(first.keyId)!.key.export().equals(first.key.export()), true);
  const rows = await (await client.query({ query: `SELECT wrapped_key, wrap_key_id FROM ${database}.subject_keys`, format: 'JSONEachRow' })).json<{ wrapped_key: string; wrap_key_id: string }>();
  assert.ok(rows.every((r) => r.wrap_key_id === wrapper.keyId && !Buffer.from(r.wrapped_key, 'base64').includes(first.key.export())), 'only wrapped keys are stored');
});

test('expiry: keys older than the GDPR retention are destroyed unless the subject is under legal hold; erasure of a held subject is refused', { timeout: 60_000 }, async () => {
  const old = Date.now() - 3 * DAY;
  await store(() => old).activeKeys([subject('old@example.com'), subject('held@example.com')]);
  await store(() => Date.now()).activeKeys([subject('new@example.com')]);
  const heldKeys = await keyRows(subject('held@example.com'));
  const oldKeys = await keyRows(subject('old@example.com'));

  const hold = await runCli(['legal-hold', '--email', 'Held@Example.com', '--as', 'legal-1', '--reason', 'litigation case 9, counsel asked by held@example.com'], env);
  assert.equal(hold.code, 0, hold.stderr);
  const holdRows = await (await client.query({ query: `SELECT reason FROM ${database}.subject_legal_holds WHERE reason LIKE 'litigation case 9%'`, format: 'JSONEachRow' })).json<{ reason: string }>();
  assert.equal(holdRows.length, 1);
  assert.match(holdRows[0]!.reason, /^litigation case 9, counsel asked by \S+$/);
  assert.ok(!holdRows[0]!.reason.includes('held@example.com'), 'the hold reason is stored with the e-mail address masked, like every reason');
  // The address from standard input (`--email -`), as a careful operator passes it: the held subject is found all the same.
  const refused = await runCli(['erase', '--email', '-', '--as', 'dpo-1', '--reason', 'GDPR request 12'], env, 'held@example.com\n');
  assert.equal(refused.code, 6);
  assert.match(refused.stderr, /erasure refused: .*legal hold/);
  assert.deepEqual(await keyRows(subject('held@example.com')), heldKeys, 'a held subject keeps its keys');

  const retention = retentionFileWithGdprDays(1);
  const expired = await runCli(['erase', '--expired', '--retention', retention, '--as', 'ops-cron'], env);
  assert.equal(expired.code, 0, expired.stderr);
  assert.match(expired.stdout, /expired 1 key\(s\) of 1 subject\(s\) older than 1 days; 1 expired key\(s\) kept under legal hold/);
  assert.deepEqual(await keyRows(subject('old@example.com')), [], 'expired keys are physically deleted');
  assert.deepEqual(await keyRows(subject('held@example.com')), heldKeys);
  assert.equal((await keyRows(subject('new@example.com'))).length, 1, 'young keys stay');
  const log = new TokenizerAuditLog(client, database);
  const [record] = await log.erasureRecords(subject('old@example.com'));
  assert.deepEqual([record!.kind, record!.principal, record!.keyIds], ['expiry', 'ops-cron', oldKeys]);
  assert.match(record!.reason, /GDPR retention of 1 days/);

  const again = await runCli(['erase', '--expired', '--retention', retention, '--as', 'ops-cron'], env);
  assert.match(again.stdout, /expired 0 key\(s\)/, 'running expiry again finds nothing new');

  assert.equal((await runCli(['legal-hold', '--email', '-', '--release', '--as', 'legal-1', '--reason', 'case 9 closed'], env, 'held@example.com\n')).code, 0);
  const released = await runCli(['erase', '--expired', '--retention', retention, '--as', 'ops-cron'], env);
  assert.match(released.stdout, /expired 1 key\(s\) of 1 subject\(s\)/);
  assert.deepEqual(await keyRows(subject('held@example.com')), []);

  // An execution of the subject whose later events still wait in audit.raw: the mapping must outlive the erasure, or a
  // tokenizer that restarts finds no subject for them and seals them under a new stored (readable) key.
  await new ExecutionSubjects(client, database, 10).save([{ executionId: 'exec-waiting', subject: subject('never-seen@example.com') }]);
  const nobody = await runCli(['erase', '--email', 'never-seen@example.com', '--as', 'dpo-1', '--reason', 'GDPR request 13'], env);
  assert.equal(nobody.code, 0, nobody.stderr);
  const restarted = new ExecutionSubjects(client, database, 10);
  await restarted.load(['exec-waiting']);
  assert.equal(restarted.get('exec-waiting'), subject('never-seen@example.com'), 'erase keeps the execution mappings (subject tokens only)');
  assert.match(nobody.stderr, /warning: no key was found for this address: nothing was encrypted under it \(if producers hash addresses/);
  // The store tells the tokenizer when a subject was erased, so raw events published before that are sealed under no stored key.
  const afterErasure = (await store(() => Date.now()).activeKeys([subject('never-seen@example.com')])).get(subject('never-seen@example.com'))!;
  assert.ok(afterErasure.erasedAt !== undefined && Math.abs(afterErasure.erasedAt - Date.now()) < 60_000, `erasedAt ${afterErasure.erasedAt}`);
  assert.equal((await store(() => Date.now()).activeKeys([subject('new@example.com')])).get(subject('new@example.com'))!.erasedAt, undefined, 'a subject never erased has none');

  const usage = await runCli(['erase', '--email', 'x@example.com', '--expired', '--as', 'a'], env);
  assert.equal(usage.code, 2, 'a subject and --expired together is wrong usage');
  const noKey = await runCli(['erase', '--email', 'x@example.com', '--as', 'a', '--reason', 'r'], { ...env, AUDITLINE_TOKENIZER_TOKEN_KEY: '' });
  assert.equal(noKey.code, 2);
  assert.match(noKey.stderr, /AUDITLINE_TOKENIZER_TOKEN_KEY: required/);
});

test('with a principals file, erase and legal-hold record the authenticated caller; an unknown caller, a caller without an erase role or --as naming someone else is refused and nothing changes', { timeout: 60_000 }, async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'erase-principals-'));
  const known = path.join(dir, 'known.yaml');
  writeFileSync(known, `principals:\n  dpo-7:\n    roles: [compliance]\n    os_users: [${JSON.stringify(os.userInfo().username)}]\n`, { mode: 0o600 });
  const stranger = path.join(dir, 'stranger.yaml');
  writeFileSync(stranger, 'principals:\n  dpo-8:\n    roles: [compliance]\n    os_users: [somebody-else]\n', { mode: 0o600 });
  const engineer = path.join(dir, 'engineer.yaml');
  writeFileSync(engineer, `principals:\n  u-17:\n    roles: [engineering]\n    os_users: [${JSON.stringify(os.userInfo().username)}]\n`, { mode: 0o600 });
  await store(() => Date.now()).activeKeys([subject('auth@example.com')]);
  const keysBefore = await keyRows(subject('auth@example.com'));
  assert.equal(keysBefore.length, 1);

  const impersonating = await runCli(['erase', '--email', 'auth@example.com', '--as', 'mallory', '--reason', 'GDPR request 31'], { ...env, AUDITLINE_REVEAL_PRINCIPALS_FILE: known });
  assert.equal(impersonating.code, 6, impersonating.stderr);
  assert.match(impersonating.stderr, /erase refused: --as mallory is not the caller: authenticated as dpo-7/);
  const unknown = await runCli(['legal-hold', '--email', 'auth@example.com', '--reason', 'litigation case 10'], { ...env, AUDITLINE_REVEAL_PRINCIPALS_FILE: stranger });
  assert.equal(unknown.code, 6, unknown.stderr);
  assert.match(unknown.stderr, /legal-hold refused: os-user:\S+ is not in the principals file/);
  const noRole = await runCli(['erase', '--email', 'auth@example.com', '--reason', 'GDPR request 31'], { ...env, AUDITLINE_REVEAL_PRINCIPALS_FILE: engineer });
  assert.equal(noRole.code, 6, noRole.stderr);
  assert.match(noRole.stderr, /erase refused: u-17 holds none of the roles AUDITLINE_ERASE_ROLES allows \(compliance, legal\) in the principals file \(holds: engineering\)/);
  const holdNoRole = await runCli(['legal-hold', '--email', 'auth@example.com', '--reason', 'case 11'], { ...env, AUDITLINE_REVEAL_PRINCIPALS_FILE: engineer });
  assert.equal(holdNoRole.code, 6, holdNoRole.stderr);
  const engineeringAllowed = await runCli(['legal-hold', '--email', 'auth@example.com', '--reason', 'case 11', '--release'], { ...env, AUDITLINE_REVEAL_PRINCIPALS_FILE: engineer, AUDITLINE_ERASE_ROLES: 'engineering' });
  assert.equal(engineeringAllowed.code, 0, engineeringAllowed.stderr);
  assert.deepEqual(await keyRows(subject('auth@example.com')), keysBefore, 'refused requests changed nothing');

  const erased = await runCli(['erase', '--email', 'auth@example.com', '--reason', 'GDPR request 31'], { ...env, AUDITLINE_REVEAL_PRINCIPALS_FILE: known });
  assert.equal(erased.code, 0, erased.stderr);
  assert.deepEqual(await keyRows(subject('auth@example.com')), []);
  const [record] = await new TokenizerAuditLog(client, database).erasureRecords(subject('auth@example.com'));
  assert.deepEqual([record!.kind, record!.principal, record!.keyIds], ['request', 'dpo-7', keysBefore]);
});

test('an erasure that runs between a tokenizer looking up a subject and storing its new key: the new key carries the erasure', { timeout: 60_000 }, async () => {
  const racing = subject('erased-mid-lookup@example.com');
  let erasure: Promise<unknown> | undefined;
  // The real client, with the erasure run to completion just before the tokenizer's insert of the new key reaches the
  // server: the tokenizer has already read "no erasure, no key", and `erase` has already looked for keys and found none.
  const interleaved = new Proxy(client, {
    get(target, name, receiver) {
      if (name !== 'insert') return Reflect.get(target, name, receiver) as unknown;
      return async (params: { table: string }) => {
        if (params.table.endsWith('.subject_keys') && !erasure) {
          erasure = eraseSubjects(
            { client, database, tokenKey, keys: new SubjectKeyStore(client, database, undefined, { cacheTtlMs: 0, rotationMs: DAY }), log: new TokenizerAuditLog(client, database) },
            { email: 'erased-mid-lookup@example.com', principal: 'dpo-1', reason: 'GDPR request during a lookup' },
          );
          await erasure;
        }
        return target.insert(params as Parameters<typeof target.insert>[0]);
      };
    },
  });
  const tokenizer = new SubjectKeyStore(interleaved, database, wrapper, { cacheTtlMs: 60_000, rotationMs: DAY });
  const key = (await tokenizer.activeKeys([racing])).get(racing)!;
  assert.ok(erasure, 'the erasure ran inside the lookup');
  const [record] = await new TokenizerAuditLog(client, database).erasureRecords(racing);
  assert.equal(record?.kind, 'request');
  assert.equal(key.erasedAt, record!.at, 'values published before the erasure are sealed under no stored key');
  assert.equal((await tokenizer.activeKeys([racing])).get(racing)!.erasedAt, record!.at, 'the cached key keeps it');
});

test('thousands of subjects in one lookup and thousands of keys in one expiry run: list parameters are split below the URL limits', { timeout: 120_000 }, async () => {
  // Query parameters travel in the URL: one list of 6 000 key ids, or 3 000 subject tokens, was refused whole by ClickHouse
  // ("Field value too long"), so a daily expiry with that many keys due never expired anything again.
  const many = Array.from({ length: 3_000 }, (_, i) => subject(`crowd-${i}@example.com`));
  const found = await store(() => Date.now()).activeKeys(many);
  assert.equal(found.size, many.length, 'every subject of a large batch gets its key');
  const again = await store(() => Date.now()).activeKeys(many);
  assert.equal([...again.values()].filter((k) => k.keyId === found.get(k.subject)!.keyId).length, many.length, 'a second instance finds the same keys');

  const old = clickhouseTime(Date.now() - 40 * DAY);
  const expiring = Array.from({ length: 12_000 }, (_, i) => ({ subject: `expiring-${i % 4_000}`, key_id: `kEXPIRING${String(i).padStart(8, '0')}`, wrapped_key: 'AA==', wrap_key_id: wrapper.keyId, created_at: old }));
  await client.insert({ table: `${database}.subject_keys`, values: expiring, format: 'JSONEachRow' });
  const result = await expireKeys({ client, database, tokenKey, keys: new SubjectKeyStore(client, database, undefined, { cacheTtlMs: 0, rotationMs: DAY }), log: new TokenizerAuditLog(client, database) }, { retentionDays: 30, principal: 'ops-cron' });
  assert.deepEqual([result.keys, result.subjects], [12_000, 4_000]);
  const left = await (await client.query({ query: `SELECT count() AS n FROM ${database}.subject_keys WHERE key_id LIKE 'kEXPIRING%'`, format: 'JSONEachRow' })).json<{ n: string }>();
  assert.equal(Number(left[0]!.n), 0, 'every expired key is deleted');
  const records = await (await client.query({ query: `SELECT count() AS n, sum(length(key_ids)) AS keys FROM ${database}.erasures WHERE kind = 'expiry' AND subject LIKE 'expiring-%'`, format: 'JSONEachRow' })).json<{ n: string; keys: string }>();
  assert.deepEqual([Number(records[0]!.n), Number(records[0]!.keys)], [4_000, 12_000], 'one expiry record per subject, naming each key');
});

test('a legal hold set while an expiry run or an erasure is under way (after it read the holds, before its delete) keeps the subject\'s keys, and no erasure record claims them', { timeout: 60_000 }, async () => {
  const deps = (c: typeof client) => ({ client: c, database, tokenKey, keys: new SubjectKeyStore(c, database, undefined, { cacheTtlMs: 0, rotationMs: DAY }), log: new TokenizerAuditLog(client, database) });
  /** The real client, with `hold` run to completion just before the first delete of subject keys reaches the server. */
  const holdingBeforeDelete = (hold: () => Promise<unknown>) => {
    let done = false;
    return new Proxy(client, {
      get(target, name, receiver) {
        if (name !== 'command') return Reflect.get(target, name, receiver) as unknown;
        return async (params: { query: string }) => {
          if (!done && /ALTER TABLE \S+\.subject_keys DELETE/.test(params.query)) {
            done = true;
            await hold();
          }
          return target.command(params as Parameters<typeof target.command>[0]);
        };
      },
    });
  };
  const holdOf = (email: string) => () => setLegalHold({ client, database, tokenKey }, { email, hold: true, principal: 'legal-1', reason: 'litigation case 77' });

  // Expiry: both subjects' keys are past the retention; the hold on one of them lands after the run read the holds.
  const old = Date.now() - 40 * DAY;
  await store(() => old).activeKeys([subject('held-mid-expiry@example.com'), subject('expires-anyway@example.com')]);
  const heldKeys = await keyRows(subject('held-mid-expiry@example.com'));
  const expiry = await expireKeys(deps(holdingBeforeDelete(holdOf('held-mid-expiry@example.com'))), { retentionDays: 30, principal: 'ops-cron' });
  assert.deepEqual(await keyRows(subject('held-mid-expiry@example.com')), heldKeys, 'the held subject keeps its keys');
  assert.deepEqual(await keyRows(subject('expires-anyway@example.com')), [], 'the other subject expires');
  assert.deepEqual(await new TokenizerAuditLog(client, database).erasureRecords(subject('held-mid-expiry@example.com')), [], 'no record says the held keys were destroyed');
  assert.deepEqual([expiry.subjects, expiry.keys, expiry.held], [1, 1, 1]);

  // Erasure: the hold lands after erase checked the holds.
  await store(() => Date.now()).activeKeys([subject('held-mid-erase@example.com')]);
  const keysBefore = await keyRows(subject('held-mid-erase@example.com'));
  await assert.rejects(
    eraseSubjects(deps(holdingBeforeDelete(holdOf('held-mid-erase@example.com'))), { email: 'held-mid-erase@example.com', principal: 'dpo-1', reason: 'GDPR request 77' }),
    (e) => isAuditlineError(e, 'SUBJECT_ON_LEGAL_HOLD'),
  );
  assert.deepEqual(await keyRows(subject('held-mid-erase@example.com')), keysBefore, 'the held subject keeps its keys');
  assert.deepEqual(await new TokenizerAuditLog(client, database).erasureRecords(subject('held-mid-erase@example.com')), []);
});
