import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import type avro from 'avsc';
import { Registry } from 'prom-client';
import { createLogger } from '../../core/logger.js';
import { ArchiveIndex, ArchiverService, encodeContainerFile, loadArchiverConfig, loadVerifyKey, objectKey, ObjectStore, syncMarkerFor, verifyArchive } from '../../consumers/archiver/index.js';
import { TOKENIZED_HEADER } from '../../consumers/tokenizer/index.js';
import { auditEventSchema } from '../../schemas/index.js';
import { buildExecution, idOf } from '../helpers/hotstore-fixtures.js';
import { archiverEnv, createTestArchive, listVersions, s3, signingKeyPem, type TestArchive } from '../helpers/archiver-stack.js';
import { clickhouse, committedToEnd, groupOffsets, publish, waitFor } from '../helpers/hotstore-stack.js';

const client = clickhouse();
const key = signingKeyPem();
let archive: TestArchive;

before(async () => {
  archive = await createTestArchive(client, 'arch-conflict', { partitions: 1, objectLock: false });
});

after(async () => {
  await archive.drop();
  await client.close();
});

const env = (extra: Record<string, string> = {}) => ({
  ...process.env,
  ...archiverEnv({ ...archive.names, database: archive.database, bucket: archive.bucket, signingKey: key.privatePem }, { AUDITLINE_ARCHIVER_OBJECT_LOCK: 'false', AUDITLINE_ARCHIVER_STORAGE_CLASS: 'STANDARD', AUDITLINE_ARCHIVER_DIGEST_INTERVAL_MS: '1000', ...extra }),
});

/** Runs an archiver until `done` holds, then stops it gracefully (open files rolled, digests written). */
async function runArchiver(done: (registry: Registry) => Promise<boolean>, extra: Record<string, string> = {}): Promise<void> {
  const registry = new Registry();
  const service = new ArchiverService(loadArchiverConfig(env(extra)), { logger: createLogger('archiver-conflict', process.env.IT_LOG ?? 'silent'), registry });
  try {
    await service.start(new AbortController().signal);
    await waitFor('the archiver to finish or to stop at the conflict', () => done(registry), 30_000);
  } finally {
    await service.stop();
  }
}

/** Times the batch consumer retried a batch the handler failed (the archiver stopped at the conflict retries it). */
async function handleRetries(registry: Registry): Promise<number> {
  const metric = (await registry.getMetricsAsJSON()).find((m) => m.name === 'auditline_archiver_retries_total');
  return (metric?.values ?? []).filter((v) => v.labels.stage === 'handle').reduce((n, v) => n + v.value, 0);
}

/** Keys of every object the partition's digests list. */
async function digestedKeys(): Promise<string[]> {
  const keys: string[] = [];
  for (const v of (await listVersions(archive.bucket, 'digests/')).filter((d) => d.isLatest)) {
    const res = await s3.send(new GetObjectCommand({ Bucket: archive.bucket, Key: v.key }));
    keys.push(...(JSON.parse(await res.Body!.transformToString()) as { objects: { key: string }[] }).objects.map((o) => o.key));
  }
  return keys;
}

test('an object someone else put at the next key stops the partition there, also across restarts, and no digest ever signs it', async () => {
  const { names, database, bucket } = archive;
  const first = buildExecution({ workflowId: 'WF-CONFLICT', status: 'success', startedAgoMs: 20_000, steps: [{ name: 'a', status: 'success' }] });
  await publish(names.topic, first, { [TOKENIZED_HEADER]: 'v1' });
  await runArchiver(() => committedToEnd(names.group, names.topic));
  const archivedBefore = (await listVersions(bucket, 'events/')).map((v) => v.key);
  assert.ok(archivedBefore.length >= 1);
  const at = BigInt(first.length); // the next offset, where the archiver stands

  // Someone with write access puts a valid container file with other records at the key the archiver will write next
  // (the day is the UTC day of the next record's Kafka timestamp: both days around midnight are covered).
  const { raw, type } = auditEventSchema();
  const other = buildExecution({ workflowId: 'WF-FORGED', status: 'success', startedAgoMs: 5_000, steps: [{ name: 'a', status: 'success' }] }).slice(0, 3);
  const foreignKeys = new Set<string>();
  const placeForeign = async () => {
    const foreign = objectKey(names.topic, 0, Date.now(), at.toString(), (at + 2n).toString());
    if (foreignKeys.has(foreign)) return;
    foreignKeys.add(foreign);
    const body = await encodeContainerFile({ schema: raw as avro.Schema, bodies: other.map((e) => type.toBuffer(e)), syncMarker: syncMarkerFor(foreign), metadata: {}, compression: { codec: 'zstandard', level: 5, blockBytes: 64 * 1024 } });
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: foreign, Body: body }));
  };
  await placeForeign();
  const second = buildExecution({ workflowId: 'WF-CONFLICT', status: 'failed', startedAgoMs: 10_000, steps: [{ name: 'a', status: 'failed' }, { name: 'b', status: 'success' }] });
  assert.ok(second.length > 3, 'records past the foreign object\'s range');
  await publish(names.topic, second, { [TOKENIZED_HEADER]: 'v1' });
  await placeForeign();

  // Stopped at the conflict: the batch is retried (each retry rolls the file again and meets the conflict), nothing is committed past it.
  await runArchiver(async (registry) => (await handleRetries(registry)) >= 3 || committedToEnd(names.group, names.topic));
  // A restart stopped before its first batch (the broker holds the fetch for FLUSH_MS, waiting for 1 MiB): its graceful stop
  // writes the partition's digest without having met the conflict in this process.
  await runArchiver(async () => true, { AUDITLINE_ARCHIVER_FLUSH_MS: '10000' });
  // Another restart reads the same records again and stops at the same key.
  await runArchiver(async (registry) => (await handleRetries(registry)) >= 2 || committedToEnd(names.group, names.topic));

  const { committed } = await groupOffsets(names.group, names.topic);
  assert.equal(committed[0], Number(at), 'the committed offset stays where the foreign object starts');
  const objects = (await listVersions(bucket, 'events/')).map((v) => v.key).sort();
  assert.deepEqual(objects, [...archivedBefore, ...foreignKeys].sort(), 'no object written around the foreign one');
  const digested = await digestedKeys();
  for (const k of archivedBefore) assert.ok(digested.includes(k), `${k}, archived before the foreign object, is signed`);
  for (const k of foreignKeys) assert.ok(!digested.includes(k), `the foreign object ${k} is never signed`);
  const index = new ArchiveIndex(client, database);
  assert.deepEqual(await index.objectsOf(idOf(second)), [], 'the execution after the conflict is not indexed');
  // archive verify names the foreign object: no digest lists it (the operator's cue).
  const report = await verifyArchive(s3, new ObjectStore(s3, bucket), { publicKey: loadVerifyKey({ AUDITLINE_ARCHIVER_PUBLIC_KEY: key.publicPem }), pendingGraceMs: 0, deep: true });
  const present = [...foreignKeys].filter((k) => objects.includes(k));
  assert.deepEqual(report.problems.map((p) => `${p.kind} ${p.subject}`).sort(), present.map((k) => `not_listed ${k}`).sort());
});
