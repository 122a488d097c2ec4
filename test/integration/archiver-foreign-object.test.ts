import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { ArchiveIndex, loadVerifyKey, objectKey, ObjectStore, verifyArchive, type VerifyReport } from '../../consumers/archiver/index.js';
import { TOKENIZED_HEADER } from '../../consumers/tokenizer/index.js';
import { buildExecution } from '../helpers/hotstore-fixtures.js';
import { archiveToEnd, archiverEnv, createTestArchive, listVersions, readObject, s3, signingKeyPem, type TestArchive } from '../helpers/archiver-stack.js';
import { clickhouse, groupOffsets, publish } from '../helpers/hotstore-stack.js';

/**
 * A digest signs what the archiver wrote, not whatever the bucket holds: an object someone else put at a key of
 * its own inside the committed range (next to the archiver's, not at one of its keys) must never be signed.
 */

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
