import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { DeleteObjectCommand, HeadObjectCommand } from '@aws-sdk/client-s3';
import { Registry } from 'prom-client';
import { createLogger } from '../../core/logger.js';
import { ArchiveIndex, ArchiverService, loadArchiverConfig } from '../../consumers/archiver/index.js';
import { TOKENIZED_HEADER } from '../../consumers/tokenizer/index.js';
import { buildExecution, idOf } from '../helpers/hotstore-fixtures.js';
import { archivedRecords, archiverEnv, createTestArchive, listVersions, s3, signingKeyPem, type TestArchive } from '../helpers/archiver-stack.js';
import { clickhouse, committedToEnd, publish, readDlq, waitFor } from '../helpers/hotstore-stack.js';

const client = clickhouse();
let archive: TestArchive;

before(async () => {
  archive = await createTestArchive(client, 'arch-time', { partitions: 2, objectLock: false });
});

after(async () => {
  await archive.drop();
  await client.close();
});

test('events whose event_time ClickHouse cannot hold (9e15 ms: no Date; 3e14 ms: year 11476) are dead-lettered; their partition goes on and is committed to the end', async () => {
  const good = buildExecution({ workflowId: 'WF-TIME', status: 'success', startedAgoMs: 10_000, steps: [{ name: 'a', status: 'success' }] });
  // A producer that writes the Avro itself can put any long there; both in one execution, so they share a partition with its good events.
  const mixed = buildExecution({ workflowId: 'WF-TIME', status: 'failed', startedAgoMs: 5_000, steps: [{ name: 'a', status: 'failed' }, { name: 'b', status: 'success' }] });
  mixed[1]!.event_time = 9e15;
  mixed[2]!.event_time = 3e14;
  const refused = new Set([mixed[1]!.event_id, mixed[2]!.event_id]);
  const { names, database, bucket } = archive;
  await publish(names.topic, [...good, ...mixed], { [TOKENIZED_HEADER]: 'v1' });

  const env = { ...process.env, ...archiverEnv({ ...names, database, bucket, signingKey: signingKeyPem().privatePem }, { AUDITLINE_ARCHIVER_OBJECT_LOCK: 'false', AUDITLINE_ARCHIVER_STORAGE_CLASS: 'STANDARD' }) };
  const service = new ArchiverService(loadArchiverConfig(env), { logger: createLogger('archiver-event-time', process.env.IT_LOG ?? 'silent'), registry: new Registry() });
  try {
    await service.start(new AbortController().signal);
    await waitFor('offsets committed to the end (a partition stuck on the bad event_time never is)', () => committedToEnd(names.group, names.topic), 30_000);
  } finally {
    await service.stop();
  }

  const dlq = await readDlq(names.dlq, 2);
  assert.deepEqual(dlq.map((d) => d.key), [idOf(mixed), idOf(mixed)], 'the two refused events, nothing else');
  for (const d of dlq) {
    assert.equal(d.headers['auditline-dlq-error-code'], 'ARCHIVE_RECORD_REFUSED');
    assert.match(d.headers['auditline-dlq-reason'] ?? '', /event_time is outside the storable time range 1900-01-01\.\.2299-12-31/);
  }
  const archived = (await archivedRecords(bucket)).flatMap((o) => o.records.map((r) => r.event_id as string)).sort();
  assert.deepEqual(archived, [...good, ...mixed].map((e) => e.event_id).filter((id) => !refused.has(id)).sort(), 'every other event archived once, the refused ones not at all');
  const index = new ArchiveIndex(client, database);
  assert.ok((await index.objectsOf(idOf(good))).length >= 1, 'the good execution is indexed');
  assert.ok((await index.objectsOf(idOf(mixed))).length >= 1, 'so are the storable events of the mixed one');
});

test('a producer clock years behind: the object is locked for the SOX retention from when it was written, and its version cannot be deleted', async () => {
  const locked = await createTestArchive(client, 'arch-clock', { partitions: 1, objectLock: true });
  try {
    const events = buildExecution({ workflowId: 'WF-CLOCK', status: 'success', startedAgoMs: 10_000, steps: [{ name: 'a', status: 'success' }] });
    const { names, database, bucket } = locked;
    // CreateTime 2019-01-01: counted from it, the 2557 days of retention ended on 2026-01-01.
    await publish(names.topic, events, { [TOKENIZED_HEADER]: 'v1' }, Date.UTC(2019, 0, 1));
    const env = { ...process.env, ...archiverEnv({ ...names, database, bucket, signingKey: signingKeyPem().privatePem }, { AUDITLINE_ARCHIVER_STORAGE_CLASS: 'STANDARD' }) };
    const service = new ArchiverService(loadArchiverConfig(env), { logger: createLogger('archiver-event-time', process.env.IT_LOG ?? 'silent'), registry: new Registry() });
    const started = Date.now();
    try {
      await service.start(new AbortController().signal);
      await waitFor('offsets committed to the end', () => committedToEnd(names.group, names.topic), 30_000);
    } finally {
      await service.stop();
    }
    const objects = (await listVersions(bucket, 'events/')).filter((v) => v.isLatest);
    assert.equal(objects.length, 1);
    const object = objects[0]!;
    assert.match(object.key, /\/dt=2019-01-01\//, 'the key names the records\' day');
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: object.key, VersionId: object.versionId }));
    assert.equal(head.ObjectLockMode, 'COMPLIANCE');
    const retainUntil = head.ObjectLockRetainUntilDate!.getTime();
    assert.ok(retainUntil >= started + 2557 * 86_400_000, `locked until ${head.ObjectLockRetainUntilDate!.toISOString()}: at least 2557 days from the upload`);
    assert.ok(retainUntil <= Date.now() + 2557 * 86_400_000 + 1_000, 'and not later than 2557 days from now');
    await assert.rejects(s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: object.key, VersionId: object.versionId })), (err: { name?: string }) => err.name === 'AccessDenied', 'the version cannot be deleted');
    assert.equal((await archivedRecords(bucket)).flatMap((o) => o.records).length, events.length, 'still there, every event');
  } finally {
    await locked.drop();
  }
});
