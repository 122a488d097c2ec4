import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { ArchiveIndex, DigestChain, objectKey, ObjectStore, parseObjectKey, sha256Hex, verifyArchive, type VerifyReport } from '../../consumers/archiver/index.js';
import { utcDay } from '../../consumers/archiver/keys.js';
import { TOKENIZED_HEADER } from '../../consumers/tokenizer/index.js';
import { buildExecution } from '../helpers/hotstore-fixtures.js';
import { archiveToEnd, archiverEnv, createArchiveBucket, createTestArchive, listVersions, s3, signingKeyPem, type TestArchive } from '../helpers/archiver-stack.js';
import { clickhouse, createHotstoreDatabase, publish } from '../helpers/hotstore-stack.js';

/**
 * An object's day (in its key, which orders a partition's listing) is its first record's Kafka timestamp: the
 * producer's clock. Objects whose day is far behind (or ahead of) the objects around them must still be signed by a
 * digest, before a later object lifts the chain's highest offset past them.
 */

const client = clickhouse();
const key = signingKeyPem();
const signingKey = createPrivateKey(key.privatePem);
const publicKey = createPublicKey(key.publicPem);
const topic = 'audit.events';
const DAY = 86_400_000;
const archives: TestArchive[] = [];
const databases: string[] = [];

after(async () => {
  for (const a of archives) await a.drop();
  for (const d of databases) await client.command({ query: `DROP DATABASE IF EXISTS ${d}` });
  await client.close();
});

const verify = (bucket: string): Promise<VerifyReport> => verifyArchive(s3, new ObjectStore(s3, bucket), { publicKey, pendingGraceMs: 0, deep: false });
const problems = (r: VerifyReport) => r.problems.map((p) => `${p.kind} ${p.subject}`);

/** The bucket as the archiver uses it, remembering where each listing started. */
class WatchedStore extends ObjectStore {
  readonly listings: { prefix: string; startAfter: string | undefined }[] = [];
  override list(prefix: string, startAfter?: string) {
    this.listings.push({ prefix, startAfter });
    return super.list(prefix, startAfter);
  }
}

/** Stores an object of partition 0 whose first record's Kafka timestamp is `ts`, as the archiver would (key, checksum). */
async function put(store: ObjectStore, ts: number, first: number, last: number): Promise<string> {
  const body = Buffer.from(`records ${first}-${last}`);
  const k = objectKey(topic, 0, ts, String(first), String(last));
  await store.putOnce({ key: k, body, sha256: sha256Hex(body), storageClass: 'STANDARD', retainUntil: undefined, metadata: {}, contentType: 'application/avro' });
  return k;
}

const eventListings = (store: WatchedStore) => store.listings.filter((l) => l.prefix.startsWith('events/'));

test('the archiver signs an object whose records are days behind the clock of those before it, after a restart and within a run', async () => {
  const a = await createTestArchive(client, 'arch-days', { partitions: 1, objectLock: false });
  archives.push(a);
  const env = { ...process.env, ...archiverEnv({ ...a.names, database: a.database, bucket: a.bucket, signingKey: key.privatePem }, { AUDITLINE_ARCHIVER_OBJECT_LOCK: 'false', AUDITLINE_ARCHIVER_STORAGE_CLASS: 'STANDARD', AUDITLINE_ARCHIVER_ROLL_BYTES: '1024' }) };
  const round = () => archiveToEnd(a, env, 'archiver-digest-days');
  const executions = (n: number) => Array.from({ length: n }, () => buildExecution({ workflowId: 'WF-DAYS', status: 'success', startedAgoMs: 10_000, steps: [{ name: 'a', status: 'success' }] })).flat();
  await publish(a.names.topic, executions(2), { [TOKENIZED_HEADER]: 'v1' });
  await round(); // digest 0 lists today's objects
  const behind = Date.now() - 3 * DAY;
  // A producer whose clock is 3 days behind, then one with the right time again: after a restart (the first digest does
  // not know what was stored before it) and within the run (the digest at the stop).
  await publish(a.names.topic, executions(4), { [TOKENIZED_HEADER]: 'v1' }, behind);
  await publish(a.names.topic, executions(2), { [TOKENIZED_HEADER]: 'v1' });
  await round();

  const objects = [...new Set((await listVersions(a.bucket, 'events/')).map((v) => v.key))];
  const old = objects.filter((k) => parseObjectKey(k)!.day === utcDay(behind));
  assert.ok(old.length >= 2, `objects of the day 3 days back: ${old.length}`);
  const lastOld = old.map((k) => parseObjectKey(k)!.lastOffset).reduce((x, y) => (y > x ? y : x));
  assert.ok(objects.some((k) => parseObjectKey(k)!.firstOffset > lastOld && parseObjectKey(k)!.day !== utcDay(behind)), 'a later object of another day was signed after them');
  const report = await verify(a.bucket);
  assert.deepEqual(problems(report), [], 'every object is listed by a digest');
  assert.equal(report.objectsChecked, objects.length);
});

test('objects stored by another process since the last digest: archive_index says from which day the next digest lists', async () => {
  const bucket = await createArchiveBucket(false);
  const database = await createHotstoreDatabase(client, 'it_arch_days_index');
  databases.push(database);
  const index = new ArchiveIndex(client, database);
  const store = new WatchedStore(s3, bucket);
  const now = Date.now();
  // Each object indexed as the archiver records it (the SHA-256 and size it wrote): a digest signs only such objects.
  const row = (k: string, first: number, last: number) => {
    const body = Buffer.from(`records ${first}-${last}`);
    return { execution_id: `x-${first}`, object_key: k, workflow_id: 'WF', first_event_time: now, last_event_time: now, events: 1, source_topic: topic, source_partition: 0, first_offset: String(first), last_offset: String(last), storage_class: 'STANDARD', object_sha256: sha256Hex(body), object_size: body.length };
  };
  const a = await put(store, now, 0, 9);
  await index.insert([row(a, 0, 9)]);
  const first = await new DigestChain(store, { topic, signingKey, retentionDays: 2557, objectLock: false, index }).extend(0, 10n);
  assert.deepEqual(first?.objects.map((o) => o.key), [a]);
  // Stored (and indexed) by a member that crashed before its digest: one 3 days behind, one of today after it.
  const b = await put(store, now - 3 * DAY, 10, 19);
  const c = await put(store, now, 20, 29);
  await index.insert([row(b, 10, 19), row(c, 20, 29)]);
  assert.equal(await index.lowestObjectKey(topic, 0, 9n, 30n), b);
  assert.equal(await index.lowestObjectKey(topic, 0, 29n, 30n), undefined);

  store.listings.length = 0;
  const next = new DigestChain(store, { topic, signingKey, retentionDays: 2557, objectLock: false, index }); // the next owner
  const second = await next.extend(0, 30n);
  assert.deepEqual(second?.objects.map((o) => o.key), [b, c], 'the object days behind is listed, in offset order');
  assert.deepEqual(eventListings(store).map((l) => l.startAfter), [`events/${topic}/p=0000/dt=${utcDay(now - 3 * DAY)}`], 'listed from its day, not the whole partition');
  assert.equal(await next.extend(0, 30n), undefined, 'nothing left to list');
  assert.deepEqual(problems(await verify(bucket)), []);
});

test('objects the archiver stored since its last digest: days behind, or after one days ahead, are listed from the lowest day among them', async () => {
  const bucket = await createArchiveBucket(false);
  const store = new WatchedStore(s3, bucket);
  const chain = new DigestChain(store, { topic, signingKey, retentionDays: 2557, objectLock: false });
  const now = Date.now();
  // A producer clock 30 days ahead: counted from that object, the old listing started 28 days ahead and skipped today's.
  const ahead = await put(store, now + 30 * DAY, 0, 9);
  chain.stored(0, ahead);
  assert.deepEqual((await chain.extend(0, 10n))?.objects.map((o) => o.key), [ahead]);
  const today = await put(store, now, 10, 19);
  chain.stored(0, today);
  const behind = await put(store, now - 5 * DAY, 20, 29);
  chain.stored(0, behind);
  store.listings.length = 0;
  assert.deepEqual((await chain.extend(0, 30n))?.objects.map((o) => o.key), [today, behind]);
  assert.deepEqual(eventListings(store).map((l) => l.startAfter), [`events/${topic}/p=0000/dt=${utcDay(now - 5 * DAY)}`], 'from the lowest day stored, not the whole partition');
  // Everything stored is listed: the next listing starts 2 days before the head's last object again.
  store.listings.length = 0;
  assert.equal(await chain.extend(0, 30n), undefined);
  assert.deepEqual(eventListings(store).map((l) => l.startAfter), [`events/${topic}/p=0000/dt=${utcDay(now - 7 * DAY)}`]);
  assert.deepEqual(problems(await verify(bucket)), []);
});

test('a chain never told what is stored (a script, a tool) and without an index lists the whole partition: an object days behind is still signed', async () => {
  const bucket = await createArchiveBucket(false);
  const store = new WatchedStore(s3, bucket);
  const chain = new DigestChain(store, { topic, signingKey, retentionDays: 2557, objectLock: false });
  const now = Date.now();
  const a = await put(store, now, 0, 9);
  assert.deepEqual((await chain.extend(0, 10n))?.objects.map((o) => o.key), [a]);
  const b = await put(store, now - 3 * DAY, 10, 19);
  const c = await put(store, now, 20, 29);
  store.listings.length = 0;
  assert.deepEqual((await chain.extend(0, 30n))?.objects.map((o) => o.key), [b, c]);
  assert.deepEqual(eventListings(store).map((l) => l.startAfter), [undefined], 'the whole partition');
  assert.deepEqual(problems(await verify(bucket)), []);
});
