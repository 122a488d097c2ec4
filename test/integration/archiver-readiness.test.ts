import net from 'node:net';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { CreateBucketCommand, DeleteBucketCommand, HeadObjectCommand } from '@aws-sdk/client-s3';
import { Registry } from 'prom-client';
import { createS3 } from '../../core/clients/s3.js';
import { createLogger } from '../../core/logger.js';
import { ArchiverService, loadArchiverConfig, ObjectStore } from '../../consumers/archiver/index.js';
import { S3Readiness } from '../../consumers/archiver/s3-readiness.js';
import { sleep } from '../../core/service/index.js';
import { TOKENIZED_HEADER } from '../../consumers/tokenizer/index.js';
import { loadRetention, retentionDaysFor } from '../../infra/retention.js';
import { buildExecution } from '../helpers/hotstore-fixtures.js';
import { archiverEnv, createTestArchive, listVersions, s3, signingKeyPem, type TestArchive } from '../helpers/archiver-stack.js';
import { ClickHouseProxy } from '../helpers/hotstore-proxy.js';
import { clickhouse, committedToEnd, endpoints, publish, waitFor } from '../helpers/hotstore-stack.js';
import { uniqueName } from '../helpers/names.js';

const client = clickhouse();
let archive: TestArchive;

before(async () => {
  archive = await createTestArchive(client, 'arch-ready', { partitions: 1, objectLock: false });
});

after(async () => {
  await archive.drop();
  await client.close();
});

const s3Target = () => {
  const url = new URL(endpoints.s3.endpoint ?? 'http://127.0.0.1:9000');
  return { host: url.hostname, port: Number(url.port || 80) };
};

/** An archiver of `a` (STANDARD objects) whose S3 requests go through `proxy`. */
async function proxiedArchiver(a: TestArchive, proxy: ClickHouseProxy, extra: Record<string, string>, name: string): Promise<ArchiverService> {
  const env = {
    ...process.env,
    ...archiverEnv({ ...a.names, database: a.database, bucket: a.bucket, signingKey: signingKeyPem().privatePem }, { AUDITLINE_ARCHIVER_STORAGE_CLASS: 'STANDARD', ...extra }),
    // An endpoint of one's own turns the local stack's default keys off: the stack's keys, given.
    AUDITLINE_S3_ENDPOINT: await proxy.start(),
    AUDITLINE_S3_ACCESS_KEY_ID: endpoints.s3.credentials?.accessKeyId ?? '',
    AUDITLINE_S3_SECRET_ACCESS_KEY: endpoints.s3.credentials?.secretAccessKey ?? '',
  };
  return new ArchiverService(loadArchiverConfig(env), { logger: createLogger(name, process.env.IT_LOG ?? 'silent'), registry: new Registry() });
}

// Uploads retry S3 failures forever, so an archiver with S3 down archives nothing: /readyz must say so, and say it
// is S3, while Kafka and ClickHouse stay ok.
test('the archiver is not ready while its S3 endpoint does not answer or its bucket is gone, and ready again when S3 is back', async () => {
  const proxy = new ClickHouseProxy(s3Target());
  const { bucket } = archive;
  const service = await proxiedArchiver(archive, proxy, { AUDITLINE_ARCHIVER_OBJECT_LOCK: 'false' }, 'archiver-readiness');
  try {
    await service.start(AbortSignal.timeout(60_000));
    await waitFor('ready with S3 answering', async () => (await service.readiness()).ready, 30_000);

    proxy.set('down');
    const down = await waitFor('not ready with S3 unreachable', async () => {
      const r = await service.readiness();
      return !r.ready && r;
    });
    assert.equal(down.checks.s3?.ok, false);
    assert.match(down.checks.s3?.detail ?? '', new RegExp(`HEAD s3://${bucket} failed`));
    assert.equal(down.checks.kafka?.ok, true, 'the group is still joined');
    assert.equal(down.checks.clickhouse?.ok, true);

    proxy.set('up');
    const back = await waitFor('ready again with S3 back', async () => {
      const r = await service.readiness();
      return r.ready && r;
    });
    assert.deepEqual(back.checks.s3, { ok: true });

    await s3.send(new DeleteBucketCommand({ Bucket: bucket }));
    const gone = await waitFor('not ready with the bucket deleted', async () => {
      const r = await service.readiness();
      return !r.ready && r;
    });
    assert.match(gone.checks.s3?.detail ?? '', /NotFound|NoSuchBucket|404/);
  } finally {
    await service.stop();
    await proxy.close();
  }
});

// The local S3 (moto) does not check request signatures, so refused or expired credentials are tested with a fake
// client in test/unit/archiver-s3-readiness.test.ts.
test('the S3 check on the real local S3: ok for an existing bucket, not ok for a missing one, and bounded in time', async () => {
  const existing = uniqueName('it-arch-ready-ok');
  await s3.send(new CreateBucketCommand({ Bucket: existing }));
  try {
    assert.deepEqual(await new S3Readiness(new ObjectStore(s3, existing)).check(), { ok: true });
    const missing = await new S3Readiness(new ObjectStore(s3, uniqueName('it-arch-missing'))).check();
    assert.equal(missing.ok, false);
    assert.match(missing.detail ?? '', /NotFound/);
  } finally {
    await s3.send(new DeleteBucketCommand({ Bucket: existing }));
  }
  // A server that accepts the connection and never answers: the check gives up at its own deadline.
  const mute = net.createServer(() => undefined);
  await new Promise<void>((resolve) => mute.listen(0, '127.0.0.1', resolve));
  const hanging = createS3({ ...endpoints.s3, endpoint: `http://127.0.0.1:${(mute.address() as net.AddressInfo).port}` });
  const started = Date.now();
  const hung = await new S3Readiness(new ObjectStore(hanging, 'any-bucket'), { timeoutMs: 500, ttlMs: 0, now: Date.now }).check();
  const took = Date.now() - started;
  hanging.destroy();
  mute.close();
  assert.equal(hung.ok, false);
  assert.match(hung.detail ?? '', /deadline/);
  assert.ok(took < 3_000, `the probe took ${took} ms`);
});

// Object Lock: until the later of the newest record's Kafka timestamp and the time of the upload, + the SOX retention
// (docs/archiver.md). An upload that waited out an S3 outage must be counted from when it was stored.
test('an object stored after an S3 outage is locked until its upload + the SOX retention, not from when its roll began', async () => {
  const a = await createTestArchive(client, 'arch-lock-late', { partitions: 1, objectLock: true });
  const proxy = new ClickHouseProxy(s3Target());
  const service = await proxiedArchiver(a, proxy, { AUDITLINE_ARCHIVER_ROLL_MS: '3000' }, 'archiver-lock-late');
  try {
    await service.start(AbortSignal.timeout(60_000));
    await publish(a.names.topic, buildExecution({ workflowId: 'WF-LOCK', status: 'success', startedAgoMs: 10_000, steps: [{ name: 'a', status: 'success' }] }), { [TOKENIZED_HEADER]: 'v1' });
    await waitFor('a file open', async () => service.archiver.pendingRecords > 0, 30_000);
    proxy.set('down'); // the time roll (3 s) begins during the outage and retries its upload
    await sleep(8_000);
    proxy.set('up');
    await waitFor('offsets committed to the end', () => committedToEnd(a.names.group, a.names.topic), 30_000);
  } finally {
    await service.stop();
    await proxy.close();
  }
  const days = retentionDaysFor(loadRetention(), 'sox');
  const keys = [...new Set((await listVersions(a.bucket, 'events/')).map((v) => v.key))];
  assert.ok(keys.length >= 1);
  try {
    for (const k of keys) {
      const head = await s3.send(new HeadObjectCommand({ Bucket: a.bucket, Key: k }));
      const stored = head.LastModified!.getTime();
      const until = head.ObjectLockRetainUntilDate!.getTime();
      assert.ok(until >= stored + days * 86_400_000, `${k}: locked until ${new Date(until).toISOString()}, ${(stored + days * 86_400_000 - until) / 1000} s before its upload (${head.LastModified!.toISOString()}) + ${days} days`);
    }
  } finally {
    await a.drop();
  }
});
