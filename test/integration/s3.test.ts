import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectVersionsCommand,
  PutObjectCommand,
  RestoreObjectCommand,
} from '@aws-sdk/client-s3';
import { createS3 } from '../../core/clients/s3.js';
import { loadEndpoints } from '../../core/endpoints.js';
import { bootstrapBucket, lifecycleRules } from '../../infra/s3/bootstrap.js';
import { loadRetention } from '../../infra/retention.js';
import { uniqueName } from '../helpers/names.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const s3 = createS3(loadEndpoints().s3);
const retention = loadRetention();
after(() => s3.destroy());

const errorName = async (p: Promise<unknown>): Promise<string> => {
  try {
    await p;
    return 'no error';
  } catch (err) {
    return (err as { name: string }).name;
  }
};

test('bootstrap creates a versioned bucket with Object Lock and lifecycle rules from the retention settings, idempotently', async () => {
  const bucket = uniqueName('it-archive');
  const state = await bootstrapBucket(s3, { bucket, retention });
  assert.equal(state.versioning, 'Enabled');
  assert.deepEqual(state.objectLock, { enabled: true, mode: 'COMPLIANCE', days: 2557 });
  assert.deepEqual(
    state.lifecycleRules.map((r) => [r.ID, r.Expiration?.Days]),
    lifecycleRules(retention).map((r) => [r.ID, 2558]),
  );
  assert.deepEqual(await bootstrapBucket(s3, { bucket, retention }), state, 'a second run changes nothing');
  // With objects in it (every bucket after the first run of the pipeline): setup runs again all the same.
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'events/x.avro', Body: 'x', ChecksumAlgorithm: 'SHA256' }));
  assert.deepEqual(await bootstrapBucket(s3, { bucket, retention }), state, 'a run on a bucket that holds objects');
});

test('an object under COMPLIANCE retention cannot be deleted or overwritten before its date', async () => {
  const bucket = uniqueName('it-lock');
  await bootstrapBucket(s3, { bucket, retention });
  const Key = 'events/audit.events/p0/00000000-00000099.avro';
  const retainUntil = new Date(Date.now() + 7 * 24 * 3600 * 1000);
  const put = await s3.send(
    new PutObjectCommand({ Bucket: bucket, Key, Body: 'original', ObjectLockMode: 'COMPLIANCE', ObjectLockRetainUntilDate: retainUntil, ChecksumAlgorithm: 'SHA256' }),
  );
  const VersionId = put.VersionId!;
  assert.ok(VersionId);
  // HeadObject, not GetObjectRetention: moto 5.2.5 answers the latter with the object body (docs/local-stack.md).
  const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key, VersionId }));
  assert.equal(head.ObjectLockMode, 'COMPLIANCE');
  // S3 keeps whole seconds; moto keeps milliseconds.
  assert.ok(Math.abs((head.ObjectLockRetainUntilDate?.getTime() ?? 0) - retainUntil.getTime()) < 1000, 'retain-until date kept');

  assert.equal(await errorName(s3.send(new DeleteObjectCommand({ Bucket: bucket, Key, VersionId }))), 'AccessDenied');
  assert.equal(await errorName(s3.send(new DeleteObjectCommand({ Bucket: bucket, Key, VersionId, BypassGovernanceRetention: true }))), 'AccessDenied', 'no bypass in COMPLIANCE mode');

  // An "overwrite" and a plain delete only add a version / a delete marker: the locked bytes stay.
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key, Body: 'tampered' }));
  await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key }));
  const original = await s3.send(new GetObjectCommand({ Bucket: bucket, Key, VersionId }));
  assert.equal(await original.Body!.transformToString(), 'original');
  const versions = await s3.send(new ListObjectVersionsCommand({ Bucket: bucket, Prefix: Key }));
  assert.equal(versions.Versions?.length, 2);
  assert.equal(versions.DeleteMarkers?.length, 1);
});

test('a GLACIER object must be restored before it can be read', async () => {
  const bucket = uniqueName('it-glacier');
  await bootstrapBucket(s3, { bucket, retention, objectLock: false });
  const Key = 'events/cold.avro';
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key, Body: 'cold bytes', StorageClass: 'GLACIER' }));
  const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key }));
  assert.equal(head.StorageClass, 'GLACIER');
  assert.equal(await errorName(s3.send(new GetObjectCommand({ Bucket: bucket, Key }))), 'InvalidObjectState');

  await s3.send(new RestoreObjectCommand({ Bucket: bucket, Key, RestoreRequest: { Days: 1, GlacierJobParameters: { Tier: 'Standard' } } }));
  const restored = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key }));
  assert.match(restored.Restore ?? '', /ongoing-request="false"/);
  const body = await s3.send(new GetObjectCommand({ Bucket: bucket, Key }));
  assert.equal(await body.Body!.transformToString(), 'cold bytes');
});
