import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promisify } from 'node:util';
import { DeleteObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { assetPath } from '../../core/paths.js';
import { ArchiveIndex, loadVerifyKey, objectKey, ObjectStore, verifyArchive, type VerifyReport } from '../../consumers/archiver/index.js';
import { TOKENIZED_HEADER } from '../../consumers/tokenizer/index.js';
import { buildExecution, idOf } from '../helpers/hotstore-fixtures.js';
import { archiveToEnd, archiverEnv, createTestArchive, listVersions, readObject, s3, signingKeyPem, type TestArchive } from '../helpers/archiver-stack.js';
import { clickhouse, groupOffsets, publish } from '../helpers/hotstore-stack.js';

/**
 * Changes someone with write access to the bucket can make: a digest signs what the archiver wrote, not whatever the
 * bucket holds (an object put at a key of its own inside the committed range, next to the archiver's, is never
 * signed); a delete under Object Lock only adds a marker, and replay still returns the archived events.
 */

const run = promisify(execFile);
const client = clickhouse();
const key = signingKeyPem();
const archives: TestArchive[] = [];

after(async () => {
  for (const a of archives) await a.drop();
  await client.close();
});

test('an object someone else put inside the committed range is not signed by the next digest, and verify names it', async () => {
  const a = await createTestArchive(client, 'arch-foreign', { partitions: 1, objectLock: false });
  archives.push(a);
  const env = { ...process.env, ...archiverEnv({ ...a.names, database: a.database, bucket: a.bucket, signingKey: key.privatePem }, { AUDITLINE_ARCHIVER_OBJECT_LOCK: 'false', AUDITLINE_ARCHIVER_STORAGE_CLASS: 'STANDARD', AUDITLINE_ARCHIVER_ROLL_BYTES: '2048' }) };
  const round = () => archiveToEnd(a, env, 'archiver-foreign');
  const executions = (n: number) => Array.from({ length: n }, () => buildExecution({ workflowId: 'WF-FOREIGN', status: 'success', startedAgoMs: 10_000, steps: [{ name: 'a', status: 'success' }] })).flat();
  await publish(a.names.topic, executions(2), { [TOKENIZED_HEADER]: 'v1' });
  await round();
  const next = (await groupOffsets(a.names.group, a.names.topic)).committed[0]!;
  await publish(a.names.topic, executions(3), { [TOKENIZED_HEADER]: 'v1' });
  // Inside the range the archiver is about to archive, at a key it never writes (its files start at `next`).
  const forged = objectKey(a.names.topic, 0, Date.now(), String(next + 1), String(next + 2));
  const body = Buffer.from('records the archiver never read');
  await s3.send(new PutObjectCommand({ Bucket: a.bucket, Key: forged, Body: body, ChecksumAlgorithm: 'SHA256', ChecksumSHA256: createHash('sha256').update(body).digest('base64') }));
  await round();

  const digests = [...new Set((await listVersions(a.bucket, 'digests/')).map((v) => v.key))].sort();
  const listed = (await Promise.all(digests.map(async (d) => (JSON.parse((await readObject(a.bucket, d)).toString()) as { objects: { key: string }[] }).objects.map((o) => o.key)))).flat();
  assert.ok(listed.length >= 2, `objects listed: ${listed.length}`);
  assert.ok(!listed.includes(forged), 'a digest signed an object the archiver never wrote');

  const index = await new ArchiveIndex(client, a.database).allObjects();
  const report: VerifyReport = await verifyArchive(s3, new ObjectStore(s3, a.bucket), { publicKey: loadVerifyKey({ AUDITLINE_ARCHIVER_PUBLIC_KEY: key.publicPem }), pendingGraceMs: 3_600_000, deep: true, index });
  assert.equal(report.ok, false);
  assert.deepEqual(
    report.problems.map((p) => `${p.kind} ${p.subject}`),
    [`not_listed ${forged}`],
  );
});

test('replay from the archive reads the locked version under a delete marker', async () => {
  const a = await createTestArchive(client, 'arch-replay-del', { partitions: 1, objectLock: true });
  archives.push(a);
  const env = { ...process.env, ...archiverEnv({ ...a.names, database: a.database, bucket: a.bucket, signingKey: key.privatePem }, { AUDITLINE_ARCHIVER_STORAGE_CLASS: 'STANDARD' }) };
  const execution = buildExecution({ workflowId: 'WF-REPLAY-DEL', status: 'failed', startedAgoMs: 20_000, steps: [{ name: 'charge', status: 'failed', attempts: 2 }] });
  await publish(a.names.topic, execution, { [TOKENIZED_HEADER]: 'v1' });
  await archiveToEnd(a, env, 'archiver-replay-deleted');

  const objects = [...new Set((await listVersions(a.bucket, 'events/')).map((v) => v.key))];
  assert.ok(objects.length >= 1);
  for (const k of objects) await s3.send(new DeleteObjectCommand({ Bucket: a.bucket, Key: k }));

  const r = await run(process.execPath, [assetPath('dist', 'cli', 'main.js'), 'replay', idOf(execution), '--source', 'archive'], { env }).then(
    (ok) => ({ code: 0, stdout: ok.stdout, stderr: ok.stderr }),
    (err: { code: number; stdout: string; stderr: string }) => err,
  );
  assert.equal(r.code, 0, r.stderr);
  const doc = JSON.parse(r.stdout) as { source: string; status: string; steps: unknown[]; archive_objects: string[] };
  assert.equal(doc.source, 'archive');
  assert.equal(doc.status, 'failed');
  assert.equal(doc.steps.length, 2, 'both attempts of the step');
  assert.deepEqual([...doc.archive_objects].sort(), [...objects].sort());
});
