import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { LocalKeyWrapper, SubjectKeyStore, TokenizerAuditLog, TokenKey } from '../../consumers/tokenizer/index.js';
import { testKeys } from '../helpers/tokenizer-fixtures.js';
import { clickhouse, createTokenizerDatabase, runCli } from '../helpers/tokenizer-stack.js';

const client = clickhouse();
const keys = testKeys();
const oldMaster = Buffer.from(keys.masterKey, 'base64');
const newMaster = randomBytes(32);
const tokenKey = new TokenKey(Buffer.from(keys.tokenKey, 'base64'));
let database: string;

before(async () => {
  database = await createTokenizerDatabase(client);
});

after(async () => {
  await client.command({ query: `DROP DATABASE IF EXISTS ${database}` });
  await client.close();
});

const store = (current: Buffer, previous: Buffer[] = []) =>
  new SubjectKeyStore(client, database, new LocalKeyWrapper(current), { cacheTtlMs: 0, rotationMs: 86_400_000, previousWrappers: previous.map((k) => new LocalKeyWrapper(k)) });

async function wrapIds(): Promise<string[]> {
  const rs = await client.query({ query: `SELECT wrap_key_id FROM ${database}.subject_keys ORDER BY key_id`, format: 'JSONEachRow' });
  return (await rs.json<{ wrap_key_id: string }>()).map((r) => r.wrap_key_id);
}

test('master key rotation: the old master stays readable during the rotation, `keys rotate-master` rewraps every subject key once, then the old master is no longer needed', { timeout: 60_000 }, async () => {
  const subjects = Array.from({ length: 25 }, (_, i) => tokenKey.subject(`email:rot-${i}@example.com`));
  const created = await store(oldMaster).activeKeys(subjects);
  const ids = [...created.values()].map((k) => k.keyId);
  const oldId = new LocalKeyWrapper(oldMaster).keyId;
  const newId = new LocalKeyWrapper(newMaster).keyId;
  assert.deepEqual(new Set(await wrapIds()), new Set([oldId]));

  const notConfigured = new Set<string>();
  assert.equal((await store(newMaster).keysById(ids, (id) => void notConfigured.add(id))).size, 0, 'the new master alone cannot unwrap keys the old one wrapped');
  assert.deepEqual([...notConfigured], [oldId], 'and says which master key they need');
  const during = await store(newMaster, [oldMaster]).keysById(ids);
  assert.equal(during.size, ids.length, 'with the old master configured as previous, every key unwraps during the rotation');

  const env = {
    AUDITLINE_CLICKHOUSE_DATABASE: database,
    AUDITLINE_TOKENIZER_MASTER_KEY: newMaster.toString('base64'),
    AUDITLINE_TOKENIZER_PREVIOUS_MASTER_KEY: keys.masterKey,
    AUDITLINE_TOKENIZER_TOKEN_KEY: keys.tokenKey,
  };
  const rotated = await runCli(['keys', 'rotate-master'], env);
  assert.equal(rotated.code, 0, rotated.stderr);
  assert.match(rotated.stdout, new RegExp(`rewrapped 25 subject key\\(s\\) under master key ${newId} \\(from ${oldId}\\)`));
  assert.deepEqual(await wrapIds(), ids.map(() => newId), 'one row per key, all under the new master');

  const after = await store(newMaster).keysById(ids);
  assert.equal(after.size, ids.length, 'the new master alone now unwraps every key');
  for (const [id, key] of after) assert.ok(key.key.export().equals(created.get(key.subject)!.key.export()), `key ${id} is the same data key`);
  assert.equal((await store(oldMaster).keysById(ids)).size, 0, 'the old master unwraps nothing any more');

  const again = await runCli(['keys', 'rotate-master'], env);
  assert.match(again.stdout, /rewrapped 0 subject key\(s\)/, 'running it again finds nothing to do');
  const missingPrevious = await runCli(['keys', 'rotate-master'], { ...env, AUDITLINE_TOKENIZER_PREVIOUS_MASTER_KEY: '' });
  assert.equal(missingPrevious.code, 2);
});

test('an erasure recorded while the master key rotation runs is not undone by the rotation: the rewrapped key of an erased subject is deleted again', { timeout: 60_000 }, async () => {
  const erased = tokenKey.subject('email:erased-mid-rotation@example.com');
  const kept = tokenKey.subject('email:kept-mid-rotation@example.com');
  const older = randomBytes(32);
  await store(older).activeKeys([erased, kept]);
  // The erasure of one subject lands while the rotation works (recorded after the rotation began: its time is later).
  await new TokenizerAuditLog(client, database).recordErasures([{ at: Date.now() + 5_000, kind: 'request', principal: 'dpo-1', subject: erased, keyIds: [], reason: 'GDPR request during a rotation' }]);
  const result = await store(newMaster, [older]).rewrapAll();
  assert.ok(result.rewrapped >= 2);
  const left = async (subject: string) => (await store(newMaster).keyIdsOf(subject)).length;
  assert.equal(await left(erased), 0, 'the erased subject has no key after the rotation');
  assert.equal(await left(kept), 1, 'the other subject keeps its rewrapped key');
});

test('rotation pages through keys it cannot unwrap: they are counted and left, every other key is rewrapped', { timeout: 60_000 }, async () => {
  const stranger = randomBytes(32);
  const readable = await store(oldMaster).activeKeys(Array.from({ length: 7 }, (_, i) => tokenKey.subject(`email:page-${i}@example.com`)));
  const foreign = await store(stranger).activeKeys(Array.from({ length: 5 }, (_, i) => tokenKey.subject(`email:foreign-${i}@example.com`)));
  const next = randomBytes(32);
  // Pages of two rows: unreadable rows fall on several pages, among rows of this file's earlier tests (under newMaster).
  const batches: { rewrapped: number; unreadable: number }[] = [];
  const result = await store(next, [oldMaster, newMaster]).rewrapAll(2, (done) => batches.push(done));
  assert.equal(result.unreadable, 5, 'the keys of a master not configured are counted');
  assert.ok(batches.length >= 6, `progress after every page (${batches.length})`);
  assert.deepEqual(batches.at(-1), { rewrapped: result.rewrapped, unreadable: 5 }, 'the last progress is the result');
  const byId = await store(next).keysById([...readable.values(), ...foreign.values()].map((k) => k.keyId));
  assert.deepEqual(new Set(byId.keys()), new Set([...readable.values()].map((k) => k.keyId)), 'every readable key is now under the new master');
  assert.equal((await store(stranger).keysById([...foreign.values()].map((k) => k.keyId))).size, 5, 'the unreadable keys are left as they were');
});

test("rotation vs erasure is judged by each key's creation time, not by the rotation host's clock: a key older than its subject's erasure is deleted, a key made after it (the customer came back) stays", { timeout: 60_000 }, async () => {
  const minute = 60_000;
  const behind = tokenKey.subject('email:erased-clock-behind@example.com');
  const returned = tokenKey.subject('email:came-back@example.com');
  const older = randomBytes(32);
  const made = (subject: string, at: number) =>
    new SubjectKeyStore(client, database, new LocalKeyWrapper(older), { cacheTtlMs: 0, rotationMs: 86_400_000, now: () => at }).activeKeys([subject]);
  await made(behind, Date.now() - 10 * minute);
  await made(returned, Date.now() - 10 * minute);
  const log = new TokenizerAuditLog(client, database);
  // Recorded by a host whose clock is a minute behind the rotation's: its time is before the rotation began.
  await log.recordErasures([{ at: Date.now() - minute, kind: 'request', principal: 'dpo-1', subject: behind, keyIds: [], reason: 'GDPR request, clock behind' }]);
  await log.recordErasures([{ at: Date.now() - 20 * minute, kind: 'request', principal: 'dpo-1', subject: returned, keyIds: [], reason: 'GDPR request long ago' }]);
  await store(randomBytes(32), [older, oldMaster, newMaster]).rewrapAll();
  const left = async (subject: string) => (await store(newMaster).keyIdsOf(subject)).length;
  assert.equal(await left(behind), 0, 'a key created before the erasure does not come back');
  assert.equal(await left(returned), 1, 'a key created after an old erasure stays');
});
