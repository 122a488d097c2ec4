import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { createHash } from 'node:crypto';
import { DeleteObjectCommand, HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { Registry } from 'prom-client';
import { createLogger } from '../../core/logger.js';
import { assetPath } from '../../core/paths.js';
import { ArchiveIndex, ArchiverService, loadArchiverConfig, loadVerifyKey, ObjectStore, verifyArchive } from '../../consumers/archiver/index.js';
import { HotstoreService, loadHotstoreConfig } from '../../consumers/hotstore/index.js';
import { TOKENIZED_HEADER } from '../../consumers/tokenizer/index.js';
import { buildExecution, idOf } from '../helpers/hotstore-fixtures.js';
import { readAvroFile } from '../helpers/avro-files.js';
import { archivedRecords, archiverEnv, createArchiveBucket, listVersions, readObject, s3, signingKeyPem } from '../helpers/archiver-stack.js';
import { clickhouse, committedToEnd, createHotstoreDatabase, createHotstoreTopics, dropHotstoreTopics, publish, readDlq, storedEvents, waitFor } from '../helpers/hotstore-stack.js';

const run = promisify(execFile);
const cli = assetPath('dist', 'cli', 'main.js');
const client = clickhouse();
const key = signingKeyPem();
let database: string;
let bucket: string;
let names: { topic: string; dlq: string; group: string };
const stoppers: (() => Promise<void>)[] = [];

const failed = buildExecution({ workflowId: 'WF-ARCH', status: 'failed', startedAgoMs: 60_000, steps: [{ name: 'charge', status: 'failed', attempts: 2 }], decisions: [{ step: 1, condition: 'amount > 10', taken: 'retry', reason: 'amount=12' }] });
const ok = buildExecution({ workflowId: 'WF-ARCH', status: 'success', startedAgoMs: 30_000, steps: [{ name: 'charge', status: 'success' }] });
const events = [...failed, ...ok];

before(async () => {
  database = await createHotstoreDatabase(client, 'it_arch');
  names = await createHotstoreTopics('arch-service', 2);
  bucket = await createArchiveBucket(true);
  await publish(names.topic, events, { [TOKENIZED_HEADER]: 'v1' });
  await publish(names.topic, [{ key: 'poison', raw: Buffer.from('not avro') }], { [TOKENIZED_HEADER]: 'v1' });
  await publish(names.topic, [ok[0]!], { origin: 'test' }); // no tokenizer header: refused
});

after(async () => {
  for (const stop of stoppers) await stop().catch(() => undefined);
  await dropHotstoreTopics(names, [names.group, `${names.group}-hs`]);
  await client.command({ query: `DROP DATABASE IF EXISTS ${database}` });
  await client.close();
});

const env = () => ({ ...process.env, ...archiverEnv({ ...names, database, bucket, signingKey: key.privatePem }, { AUDITLINE_ARCHIVER_STORAGE_CLASS: 'GLACIER', AUDITLINE_ARCHIVER_DIGEST_INTERVAL_MS: '1000' }) });

test('the archiver writes every tokenized event to Object-Locked GLACIER objects, dead-letters the rest, indexes and signs them', async () => {
  const service = new ArchiverService(loadArchiverConfig(env()), { logger: createLogger('archiver-test', process.env.IT_LOG ?? 'silent'), registry: new Registry() });
  stoppers.push(() => service.stop());
  await service.start(new AbortController().signal);
  await waitFor('offsets committed to the end', () => committedToEnd(names.group, names.topic), 30_000);
  await service.stop();

  const dlq = await readDlq(names.dlq, 2);
  assert.deepEqual(dlq.map((d) => d.headers['auditline-dlq-error-code']).sort(), ['ARCHIVE_RECORD_REFUSED', 'WIRE_FORMAT_INVALID']);
  assert.ok(dlq.every((d) => d.headers['auditline-dlq-service'] === 'archiver'));

  const objects = await archivedRecords(bucket);
  assert.ok(objects.length >= 1);
  for (const o of objects) {
    assert.match(o.key, new RegExp(`^events/${names.topic.replace(/\./g, '\\.')}/p=000[01]/dt=\\d{4}-\\d{2}-\\d{2}/\\d{20}-\\d{20}\\.avro$`));
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: o.key }));
    assert.equal(head.StorageClass, 'GLACIER');
    assert.equal(head.ObjectLockMode, 'COMPLIANCE');
    const days = ((head.ObjectLockRetainUntilDate?.getTime() ?? 0) - Date.now()) / 86_400_000;
    assert.ok(days > 2556 && days <= 2557, `retained ~2557 days from the newest record, got ${days}`);
  }
  const archivedIds = objects.flatMap((o) => o.records.map((r) => r.event_id as string)).sort();
  assert.deepEqual(archivedIds, events.map((e) => e.event_id).sort(), 'every tokenized event exactly once; nothing refused is archived');

  // Read back with nothing but avsc, the codec's decompressor (zstandard by default) and the file.
  const dir = await mkdtemp(path.join(os.tmpdir(), 'archiver-it-'));
  try {
    const file = path.join(dir, 'object.avro');
    await writeFile(file, await readObject(bucket, objects[0]!.key));
    const { codec, records: read } = await readAvroFile(file);
    assert.equal(codec, 'zstandard', 'the default codec');
    const original = new Map(events.map((e) => [e.event_id, e]));
    assert.ok(read.length > 0);
    for (const r of read as { event_id: string }[]) assert.deepEqual(JSON.parse(JSON.stringify(r)), JSON.parse(JSON.stringify(original.get(r.event_id))));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }

  // Locked: no delete of the version, an overwrite only adds a version.
  // The object holding the failed execution: the replay test below then also reads past the version put on top of it.
  const target = objects.find((o) => o.records.some((r) => r.execution_id === idOf(failed)))!;
  const [first] = (await listVersions(bucket, target.key)).filter((v) => v.isLatest && v.key === target.key);
  await assert.rejects(s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: first!.key, VersionId: first!.versionId })), (err: Error) => err.name === 'AccessDenied');
  const before = await readObject(bucket, first!.key, first!.versionId);
  // A version that claims the archived bytes' SHA-256 in its metadata but holds other bytes: replay below must not take it.
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: first!.key, Body: 'forged, with the right hash claimed', Metadata: { sha256: createHash('sha256').update(before).digest('hex') } }));
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: first!.key, Body: 'tampered' }));
  assert.ok((await readObject(bucket, first!.key, first!.versionId)).equals(before), 'the locked version keeps its bytes');

  // The index knows both executions; the digests list every object.
  const index = new ArchiveIndex(client, database);
  assert.ok((await index.objectsOf(idOf(failed))).length >= 1);
  assert.ok((await index.objectsOf(idOf(ok))).length >= 1);
  const report = await verifyArchive(s3, new ObjectStore(s3, bucket), { publicKey: loadVerifyKey(env()), pendingGraceMs: 0, deep: false });
  assert.ok(report.digests >= 1);
  assert.deepEqual(
    report.problems.map((p) => [p.kind, p.subject]).sort(),
    [['changed', first!.key], ['overwritten', first!.key]],
    'only the object the test overwrote is reported: its current version is not the listed one, and its versions differ',
  );
});

test('replay rebuilds a failed execution from the hot store, then from the archive (Glacier restore) after its rows were removed', async () => {
  const hs = new HotstoreService(
    loadHotstoreConfig({ ...process.env, AUDITLINE_CLICKHOUSE_DATABASE: database, AUDITLINE_HOTSTORE_TOPIC: names.topic, AUDITLINE_HOTSTORE_DLQ_TOPIC: names.dlq, AUDITLINE_HOTSTORE_GROUP_ID: `${names.group}-hs`, AUDITLINE_HOTSTORE_FLUSH_MS: '100' }),
    { logger: createLogger('hotstore-test', 'silent'), registry: new Registry() },
  );
  stoppers.push(() => hs.stop());
  await hs.start(new AbortController().signal);
  await waitFor('hot store loaded', async () => (await storedEvents(client, database)) >= events.length, 30_000);
  await hs.stop();

  const replay = async (...args: string[]) => {
    const r = await run(process.execPath, [cli, 'replay', idOf(failed), ...args], { env: env() }).catch((err: { code: number; stdout: string; stderr: string }) => err);
    return { code: 'code' in r ? r.code : 0, stdout: r.stdout, stderr: r.stderr };
  };
  const hot = await replay();
  assert.equal(hot.code, 0, hot.stderr);
  const fromHot = JSON.parse(hot.stdout) as Record<string, unknown> & { steps: { status: string; error: unknown }[] };
  assert.equal(fromHot.source, 'hotstore');

  for (const table of ['events', 'executions', 'steps', 'decisions', 'execution_results']) {
    await client.command({ query: `TRUNCATE TABLE ${database}.${table}` });
  }
  const cold = await replay('--wait', '--wait-timeout', '30');
  assert.equal(cold.code, 0, cold.stderr);
  const fromArchive = JSON.parse(cold.stdout) as typeof fromHot & { archive_objects: string[] };
  assert.equal(fromArchive.source, 'archive');
  assert.equal(fromArchive.status, 'failed');
  assert.equal(fromArchive.pii, 'tokenized');
  for (const field of ['workflow', 'trigger', 'triggered_by', 'input', 'decisions', 'result'] as const) {
    assert.deepEqual(fromArchive[field], fromHot[field], `${field} is the same from both sources`);
  }
  assert.deepEqual(fromArchive.steps.map((s) => [s.status, s.error]), fromHot.steps.map((s) => [s.status, s.error]));
  assert.equal(fromArchive.steps.length, 2, 'both attempts of the failed step');
  for (const k of fromArchive.archive_objects) {
    // The archiver's version: the oldest (the first test may have put a newer one on top of a locked object).
    const original = (await listVersions(bucket, k)).filter((v) => v.key === k).at(-1)!;
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: k, VersionId: original.versionId }));
    assert.equal(head.StorageClass, 'GLACIER');
    assert.match(head.Restore ?? '', /ongoing-request="false"/, 'replay requested the restore');
  }

  const unknown = await run(process.execPath, [cli, 'replay', '00000000-0000-4000-8000-000000000000'], { env: env() }).catch((err: { code: number }) => err);
  assert.equal((unknown as { code: number }).code, 5);
});
