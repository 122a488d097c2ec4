import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, createPrivateKey } from 'node:crypto';
import { promisify } from 'node:util';
import { DeleteObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { Registry } from 'prom-client';
import { createLogger } from '../../core/logger.js';
import { assetPath } from '../../core/paths.js';
import { ArchiveIndex, ArchiverService, DigestChain, digestKey, loadArchiverConfig, loadVerifyKey, objectKey, ObjectStore, sha256Hex, verifyArchive, type RecordedObject, type VerifyReport } from '../../consumers/archiver/index.js';
import { TOKENIZED_HEADER } from '../../consumers/tokenizer/index.js';
import { buildExecution } from '../helpers/hotstore-fixtures.js';
import { archiverEnv, createArchiveBucket, listVersions, readObject, s3, signingKeyPem } from '../helpers/archiver-stack.js';
import { clickhouse, committedToEnd, createHotstoreDatabase, createHotstoreTopics, dropHotstoreTopics, publish, waitFor } from '../helpers/hotstore-stack.js';

const run = promisify(execFile);
const client = clickhouse();
const key = signingKeyPem();

/** One archive under test: its database (archive_index), topics and bucket. */
interface Archive {
  database: string;
  bucket: string;
  names: { topic: string; dlq: string; group: string };
}
const archives: Archive[] = [];

async function newArchive(tag: string): Promise<Archive> {
  // Tamper cases need a bucket WITHOUT Object Lock: with it, S3 refuses the very changes verify must detect.
  const archive = { database: await createHotstoreDatabase(client, `it_arch_${tag}`), names: await createHotstoreTopics(`arch-${tag}`, 2), bucket: await createArchiveBucket(false) };
  archives.push(archive);
  return archive;
}

after(async () => {
  for (const a of archives) {
    await dropHotstoreTopics(a.names, [a.names.group]);
    await client.command({ query: `DROP DATABASE IF EXISTS ${a.database}` });
  }
  await client.close();
});

const env = (a: Archive) => ({ ...process.env, ...archiverEnv({ ...a.names, database: a.database, bucket: a.bucket, signingKey: key.privatePem }, { AUDITLINE_ARCHIVER_OBJECT_LOCK: 'false', AUDITLINE_ARCHIVER_STORAGE_CLASS: 'STANDARD', AUDITLINE_ARCHIVER_ROLL_BYTES: '2048' }) });

async function archiveRound(a: Archive, executions: number): Promise<void> {
  const events = Array.from({ length: executions }, (_, i) => buildExecution({ workflowId: `WF-V${i % 3}`, status: i % 2 ? 'failed' : 'success', startedAgoMs: 10_000, steps: [{ name: 'a', status: 'success' }] })).flat();
  await publish(a.names.topic, events, { [TOKENIZED_HEADER]: 'v1' });
  const service = new ArchiverService(loadArchiverConfig(env(a)), { logger: createLogger('archiver-verify', 'silent'), registry: new Registry() });
  try {
    await service.start(new AbortController().signal);
    await waitFor('offsets committed to the end', () => committedToEnd(a.names.group, a.names.topic), 30_000);
  } finally {
    await service.stop();
  }
}

const verify = (a: Archive, grace = 3_600_000, index?: ReadonlyMap<string, RecordedObject>): Promise<VerifyReport> =>
  verifyArchive(s3, new ObjectStore(s3, a.bucket), { publicKey: loadVerifyKey({ AUDITLINE_ARCHIVER_PUBLIC_KEY: key.publicPem }), pendingGraceMs: grace, deep: true, ...(index ? { index } : {}) });
const kinds = (r: VerifyReport) => r.problems.map((p) => `${p.kind} ${p.subject}`).sort();
const verifyCli = (a: Archive, extra: string[] = [], grace = '1') =>
  run(process.execPath, [assetPath('dist', 'cli', 'main.js'), 'archive', 'verify', '--grace', grace, ...extra], { env: { ...env(a), AUDITLINE_ARCHIVER_SIGNING_KEY: '', AUDITLINE_ARCHIVER_PUBLIC_KEY: key.publicPem } }).then(
    (ok) => ({ code: 0, stdout: ok.stdout, stderr: ok.stderr }),
    (err: { code: number; stdout: string; stderr: string }) => err,
  );

test('verify passes on an intact archive and names each object changed, deleted or not listed, and an altered digest', async () => {
  const a = await newArchive('verify');
  const { bucket } = a;
  await archiveRound(a, 6);
  await archiveRound(a, 6); // a second service run extends the chains
  const intact = await verify(a);
  assert.deepEqual(kinds(intact), []);
  assert.ok(intact.ok && intact.objectsChecked >= 4, `objects checked: ${intact.objectsChecked}`);
  const digests = [...new Set((await listVersions(bucket, 'digests/')).map((v) => v.key))].sort();
  assert.ok(digests.some((d) => d.endsWith('/0000000001.json')), 'chains have more than one digest');

  const objects = [...new Set((await listVersions(bucket, 'events/')).map((v) => v.key))].sort();
  const [changed, deleted] = [objects[0]!, objects[1]!];
  const original = await readObject(bucket, changed);
  const flipped = Buffer.from(original);
  flipped[flipped.length - 20] = flipped[flipped.length - 20]! ^ 0xff;
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: changed, Body: flipped }));
  await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: deleted }));
  const stray = objects[objects.length - 1]!.replace(/\d{20}-(\d{20})\.avro$/, (_m, last: string) => `${String(BigInt(last) + 1n).padStart(20, '0')}-${String(BigInt(last) + 5n).padStart(20, '0')}.avro`);
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: stray, Body: 'not archived by us' }));

  // The first digest of a chain that has a second one (each partition has its own chain; random execution ids may
  // leave a partition without events in the second round, and its chain then has one digest and nothing to break).
  const firstDigest = digests.find((d) => d.endsWith('/0000000001.json'))!.replace(/0000000001\.json$/, '0000000000.json');
  assert.ok(digests.includes(firstDigest), `${firstDigest} exists`);
  const digest = JSON.parse((await readObject(bucket, firstDigest)).toString()) as { objects: { size: number }[] };
  digest.objects[0]!.size += 1;
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: firstDigest, Body: JSON.stringify(digest) }));

  const report = await verify(a, 0);
  assert.equal(report.ok, false);
  const found = kinds(report);
  assert.ok(found.includes(`changed ${changed}`), found.join('\n'));
  assert.ok(found.includes(`overwritten ${changed}`), found.join('\n'));
  assert.ok(found.includes(`missing ${deleted}`), found.join('\n'));
  assert.ok(found.includes(`not_listed ${stray}`), found.join('\n'));
  assert.ok(found.includes(`digest_invalid ${firstDigest}`), found.join('\n'));
  assert.ok(found.includes(`overwritten ${firstDigest}`), found.join('\n'));
  assert.ok(found.some((f) => f.startsWith('chain_broken ') && f.includes(firstDigest.replace('0000000000', '0000000001'))), found.join('\n'));

  // The command names them too, with a non-zero exit code.
  const cli = await verifyCli(a);
  assert.equal(cli.code, 8);
  for (const subject of [changed, deleted, stray, firstDigest]) assert.ok(cli.stdout.includes(subject), `CLI output names ${subject}`);
});

test('an object deleted or replaced before a digest was signed: no digest signs the replaced one, the version history shows the replacement, the check against archive_index names both', async () => {
  const a = await newArchive('verify_index');
  await archiveRound(a, 6);
  const objects = [...new Set((await listVersions(a.bucket, 'events/')).map((v) => v.key))].sort();
  assert.ok(objects.length >= 2, `objects: ${objects.length}`);
  // The state before any digest: no digest exists yet (all versions removed, as if the archiver had not written them).
  for (const v of await listVersions(a.bucket, 'digests/')) await s3.send(new DeleteObjectCommand({ Bucket: a.bucket, Key: v.key, VersionId: v.versionId }));
  const [deleted, replaced] = [objects[0]!, objects[1]!];
  await s3.send(new DeleteObjectCommand({ Bucket: a.bucket, Key: deleted }));
  const flipped = Buffer.from(await readObject(a.bucket, replaced));
  flipped[flipped.length - 20] = flipped[flipped.length - 20]! ^ 0xff;
  // With its SHA-256 checksum, as the archiver stores it: the bucket alone cannot tell the two apart.
  await s3.send(new PutObjectCommand({ Bucket: a.bucket, Key: replaced, Body: flipped, ChecksumAlgorithm: 'SHA256', ChecksumSHA256: createHash('sha256').update(flipped).digest('base64') }));
  // The archiver signs new digests: of the objects as it recorded them in archive_index, so not the replaced one.
  await archiveRound(a, 2);
  assert.ok((await listVersions(a.bucket, 'digests/')).length > 0, 'digests written again');

  // No digest vouches for the replaced object: not listed, or pending within the grace period when no later object of
  // its partition is listed (the second round's executions may all land in the other partition).
  const unsigned = (r: VerifyReport) => {
    assert.ok(kinds(r).includes(`not_listed ${replaced}`) || r.pending.includes(replaced), `${replaced} is signed:\n${kinds(r).join('\n')}`);
    return kinds(r).filter((k) => k !== `not_listed ${replaced}`);
  };
  const chainsOnly = await verify(a);
  assert.deepEqual(unsigned(chainsOnly), [`missing ${deleted}`, `overwritten ${replaced}`], 'the delete marker shows the deletion, the versions the replacement');
  const index = await new ArchiveIndex(client, a.database).allObjects();
  assert.ok(index.has(deleted) && index.has(replaced));
  const withIndex = await verify(a, undefined, index);
  assert.deepEqual(unsigned(withIndex), [`index_mismatch ${replaced}`, `missing ${deleted}`, `overwritten ${replaced}`]);
  assert.ok(withIndex.indexedChecked >= objects.length, `indexed objects checked: ${withIndex.indexedChecked}`);

  // Objects written after the last digest are pending (grace of an hour), as in verify() above.
  const cli = await verifyCli(a, [], '3600');
  assert.equal(cli.code, 8, cli.stderr);
  assert.match(cli.stdout, new RegExp(`^INDEX_MISMATCH +${replaced.replace(/[.]/g, '\\.')} .*the archiver recorded .*: replaced `, 'm'));
  assert.match(cli.stdout, new RegExp(`^MISSING +${deleted.replace(/[.]/g, '\\.')} .*recorded in archive_index`, 'm'));
  const bucketOnly = await verifyCli(a, ['--no-index'], '3600');
  assert.equal(bucketOnly.code, 8, bucketOnly.stdout);
  assert.ok(bucketOnly.stdout.includes(replaced), bucketOnly.stdout);
  assert.match(bucketOnly.stdout, new RegExp(`^MISSING +${deleted.replace(/[.]/g, '\\.')} .*before any digest listed it`, 'm'), 'without the index the delete marker still shows the deletion');
  assert.match(bucketOnly.stderr, /archive_index not checked: --no-index/);
});

test('digests and objects the lifecycle rule removed after the retention are expired, not missing; a deletion before it, or inside the chain, is still a problem', async () => {
  const days = 10; // the retention verify is told, as if 10 days were the SOX retention
  const lifecycle = async (tag: string, remove: (keys: { digests: string[]; objects: string[] }, bucket: string) => Promise<void>) => {
    const bucket = await createArchiveBucket(false);
    const store = new ObjectStore(s3, bucket);
    const chain = new DigestChain(store, { topic: 'audit.events', signingKey: createPrivateKey(key.privatePem), retentionDays: days, objectLock: false });
    const objects: string[] = [];
    for (let i = 0; i < 3; i++) {
      const body = Buffer.from(`${tag} records ${i}`);
      const k = objectKey('audit.events', 0, Date.now(), String(i * 10), String(i * 10 + 9));
      await store.putOnce({ key: k, body, sha256: sha256Hex(body), storageClass: 'STANDARD', retainUntil: undefined, metadata: {}, contentType: 'application/avro' });
      objects.push(k);
      assert.ok(await chain.extend(0, BigInt(i * 10 + 10)));
    }
    const digests = [0, 1, 2].map((n) => digestKey('audit.events', 0, n));
    await remove({ digests, objects }, bucket);
    // archive_index still recording the first object (its TTL ends about when the lifecycle deletes it; merges are late).
    const index = new Map<string, RecordedObject>([[objects[0]!, { sha256: '', size: 0, lastEventMs: Date.now() }]]);
    const at = async (now: Date, o: { from?: Date; index?: boolean } = {}) =>
      verifyArchive(s3, store, { publicKey: loadVerifyKey({ AUDITLINE_ARCHIVER_PUBLIC_KEY: key.publicPem }), pendingGraceMs: 0, deep: false, retentionDays: days, now, ...(o.index ? { index } : {}), ...(o.from ? { from: o.from } : {}) });
    return { digests, objects, at };
  };
  const later = new Date(Date.now() + (days + 1) * 86_400_000);
  const marker = (Key: string, bucket: string) => s3.send(new DeleteObjectCommand({ Bucket: bucket, Key }));

  // Lifecycle "Expiration" on a versioned bucket: a delete marker on digest 0 and the object it lists, and on an object of digest 1.
  const marked = await lifecycle('marked', async ({ digests, objects }, bucket) => {
    for (const k of [digests[0]!, objects[0]!, objects[1]!]) await marker(k, bucket);
  });
  const expired = await marked.at(later, { index: true });
  assert.deepEqual(kinds(expired), [], 'nothing wrong once the retention is over');
  assert.equal(expired.ok, true);
  assert.deepEqual(expired.expired, [{ chain: 'audit.events/0', first: 0, last: 0 }]);
  assert.equal(expired.digests, 2, 'the chain is checked from digest 1');
  assert.deepEqual(kinds(await marked.at(later, { from: later })), [], 'with --from too');
  const early = await marked.at(new Date(), { index: true });
  assert.equal(early.ok, false, 'the same deletions inside the retention are tampering');
  assert.deepEqual(kinds(early), [`digest_missing ${marked.digests[0]}`, `missing ${marked.objects[0]}`, `missing ${marked.objects[1]}`]);
  assert.deepEqual(early.expired, []);

  // Later the noncurrent versions expire as well: digest 0 and its object leave no version at all.
  const gone = await lifecycle('gone', async ({ digests, objects }, bucket) => {
    for (const v of await listVersions(bucket)) if (v.key === digests[0] || v.key === objects[0]) await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: v.key, VersionId: v.versionId }));
  });
  const vanished = await gone.at(later);
  assert.deepEqual(kinds(vanished), []);
  assert.deepEqual(vanished.expired, [{ chain: 'audit.events/0', first: 0, last: 0 }]);
  assert.deepEqual(kinds(await gone.at(new Date())), [`digest_missing ${gone.digests[1]}`], 'a chain starting at 1 within the retention has lost its start');

  // A digest deleted in the middle of the chain is never lawful, however old.
  const middle = await lifecycle('middle', async ({ digests }, bucket) => void (await marker(digests[1]!, bucket)));
  const broken = await middle.at(later);
  assert.equal(broken.ok, false);
  assert.deepEqual(kinds(broken), [`digest_missing ${middle.digests[1]}`, `not_listed ${middle.objects[1]}`], 'and the object only it listed is signed by no digest');
  assert.deepEqual(broken.expired, []);
});

test('an object deleted before any digest listed it (the newest ones) is missing, also without the index; one the lifecycle removed after the retention is expired', async () => {
  const bucket = await createArchiveBucket(false);
  const store = new ObjectStore(s3, bucket);
  const chain = new DigestChain(store, { topic: 'audit.events', signingKey: createPrivateKey(key.privatePem), retentionDays: 10, objectLock: false });
  const objects: string[] = [];
  for (let i = 0; i < 3; i++) {
    const body = Buffer.from(`newest records ${i}`);
    const k = objectKey('audit.events', 0, Date.now(), String(i * 10), String(i * 10 + 9));
    await store.putOnce({ key: k, body, sha256: sha256Hex(body), storageClass: 'STANDARD', retainUntil: undefined, metadata: {}, contentType: 'application/avro' });
    objects.push(k);
  }
  assert.deepEqual((await chain.extend(0, 10n))?.objects.map((o) => o.key), [objects[0]]);
  // The last object, written after the last digest, is deleted (a delete marker: the bucket's history keeps the version).
  await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: objects[2]! }));
  const at = (now: Date) => verifyArchive(s3, store, { publicKey: loadVerifyKey({ AUDITLINE_ARCHIVER_PUBLIC_KEY: key.publicPem }), pendingGraceMs: 3_600_000, deep: false, retentionDays: 10, now });
  const report = await at(new Date());
  assert.deepEqual(kinds(report), [`missing ${objects[2]}`], 'the deletion is named; the other unlisted object is pending');
  assert.equal(report.ok, false);
  assert.deepEqual(report.pending, [objects[1]]);
  const later = await at(new Date(Date.now() + 11 * 86_400_000));
  assert.ok(!kinds(later).some((k) => k.endsWith(objects[2]!)), kinds(later).join('\n'));
});
