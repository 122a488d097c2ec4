import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { DeleteObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { Registry } from 'prom-client';
import { createLogger } from '../../core/logger.js';
import { assetPath } from '../../core/paths.js';
import { ArchiverService, loadArchiverConfig, loadVerifyKey, ObjectStore, verifyArchive, type VerifyReport } from '../../consumers/archiver/index.js';
import { TOKENIZED_HEADER } from '../../consumers/tokenizer/index.js';
import { buildExecution } from '../helpers/hotstore-fixtures.js';
import { archiverEnv, createArchiveBucket, listVersions, readObject, s3, signingKeyPem } from '../helpers/archiver-stack.js';
import { clickhouse, committedToEnd, createHotstoreDatabase, createHotstoreTopics, dropHotstoreTopics, publish, waitFor } from '../helpers/hotstore-stack.js';

const run = promisify(execFile);
const client = clickhouse();
const key = signingKeyPem();
let database: string;
let bucket: string;
let names: { topic: string; dlq: string; group: string };

before(async () => {
  database = await createHotstoreDatabase(client, 'it_arch_verify');
  names = await createHotstoreTopics('arch-verify', 2);
  // Tamper cases need a bucket WITHOUT Object Lock: with it, S3 refuses the very changes verify must detect.
  bucket = await createArchiveBucket(false);
});

after(async () => {
  await dropHotstoreTopics(names, [names.group]);
  await client.command({ query: `DROP DATABASE IF EXISTS ${database}` });
  await client.close();
});

const env = () => ({ ...process.env, ...archiverEnv({ ...names, database, bucket, signingKey: key.privatePem }, { AUDITLINE_ARCHIVER_OBJECT_LOCK: 'false', AUDITLINE_ARCHIVER_STORAGE_CLASS: 'STANDARD', AUDITLINE_ARCHIVER_ROLL_BYTES: '2048' }) });

async function archiveRound(executions: number): Promise<void> {
  const events = Array.from({ length: executions }, (_, i) => buildExecution({ workflowId: `WF-V${i % 3}`, status: i % 2 ? 'failed' : 'success', startedAgoMs: 10_000, steps: [{ name: 'a', status: 'success' }] })).flat();
  await publish(names.topic, events, { [TOKENIZED_HEADER]: 'v1' });
  const service = new ArchiverService(loadArchiverConfig(env()), { logger: createLogger('archiver-verify', 'silent'), registry: new Registry() });
  try {
    await service.start(new AbortController().signal);
    await waitFor('offsets committed to the end', () => committedToEnd(names.group, names.topic), 30_000);
  } finally {
    await service.stop();
  }
}

const verify = (grace = 3_600_000): Promise<VerifyReport> => verifyArchive(s3, new ObjectStore(s3, bucket), { publicKey: loadVerifyKey({ AUDITLINE_ARCHIVER_PUBLIC_KEY: key.publicPem }), pendingGraceMs: grace, deep: true });
const kinds = (r: VerifyReport) => r.problems.map((p) => `${p.kind} ${p.subject}`).sort();

test('verify passes on an intact archive and names each object changed, deleted or not listed, and an altered digest', async () => {
  await archiveRound(6);
  await archiveRound(6); // a second service run extends the chains
  const intact = await verify();
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

  const firstDigest = digests.find((d) => d.endsWith('/0000000000.json'))!;
  const digest = JSON.parse((await readObject(bucket, firstDigest)).toString()) as { objects: { size: number }[] };
  digest.objects[0]!.size += 1;
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: firstDigest, Body: JSON.stringify(digest) }));

  const report = await verify(0);
  assert.equal(report.ok, false);
  const found = kinds(report);
  assert.ok(found.includes(`changed ${changed}`), found.join('\n'));
  assert.ok(found.includes(`missing ${deleted}`), found.join('\n'));
  assert.ok(found.includes(`not_listed ${stray}`), found.join('\n'));
  assert.ok(found.includes(`digest_invalid ${firstDigest}`), found.join('\n'));
  assert.ok(found.includes(`overwritten ${firstDigest}`), found.join('\n'));
  assert.ok(found.some((f) => f.startsWith('chain_broken ') && f.includes(firstDigest.replace('0000000000', '0000000001'))), found.join('\n'));

  // The command names them too, with a non-zero exit code.
  const cli = await run(process.execPath, [assetPath('dist', 'cli', 'main.js'), 'archive', 'verify', '--grace', '1'], { env: { ...env(), AUDITLINE_ARCHIVER_SIGNING_KEY: '', AUDITLINE_ARCHIVER_PUBLIC_KEY: key.publicPem } }).catch(
    (err: { code: number; stdout: string; stderr: string }) => err,
  );
  assert.equal((cli as { code?: number }).code, 8);
  for (const subject of [changed, deleted, stray, firstDigest]) assert.ok(cli.stdout.includes(subject), `CLI output names ${subject}`);
});
