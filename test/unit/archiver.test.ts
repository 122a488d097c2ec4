import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import avro from 'avsc';
import { readFileSync } from 'node:fs';
import { assetPath } from '../../core/paths.js';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { ARCHIVER_METRICS, Archiver, ArchiverMetrics, DigestChain, WriterSchemas, digestKey, compressBlock, decodeContainerFile, encodeContainerFile, objectKey, parseObjectKey, readDigest, signDigest, syncMarkerFor, DIGEST_FORMAT, type BlockCompression, type DigestBody } from '../../consumers/archiver/index.js';
import { applyRevealed, piiFields, renderReplay } from '../../consumers/archiver/index.js';
import { replayFromEvents } from '../../consumers/archiver/replay-document.js';
import type { ObjectStore, PutArchiveObject } from '../../consumers/archiver/object-store.js';
import { ArchiveIndex, type IndexRow } from '../../consumers/archiver/index-store.js';
import { ClickHouseError, type ClickHouseClient } from '@clickhouse/client';
import { AuditlineError, isAuditlineError } from '../../core/errors.js';
import { readAvroFile } from '../helpers/avro-files.js';
import { BatchAbandonedError, type DeadLetter, type SourceRecord } from '../../core/service/index.js';
import { auditEventSchema, frame, sampleExecution, UnknownSchemaIds, unwrapPayload, type AuditEvent, type RegistryClient } from '../../schemas/index.js';
import { settle } from '../helpers/lagging-registry.js';

const { raw, type, text } = auditEventSchema();
const events = [...sampleExecution({ status: 'failed' }), ...sampleExecution()];

for (const compression of [
  { codec: 'deflate', level: 6, blockBytes: 16 * 1024 },
  { codec: 'zstandard', level: 5, blockBytes: 16 * 1024 },
] satisfies BlockCompression[]) {
  test(`a ${compression.codec} container file is a pure function of its inputs, byte for byte what avsc BlockEncoder writes, and reads back with avsc alone`, async () => {
    const key = objectKey('audit.events', 3, Date.UTC(2026, 10, 28, 10), '100', '107');
    const many = Array.from({ length: 300 }, () => sampleExecution()).flat();
    const input = { schema: raw as avro.Schema, bodies: many.map((e) => type.toBuffer(e)), syncMarker: syncMarkerFor(key), metadata: { 'auditline.topic': 'audit.events' }, compression };
    const a = await encodeContainerFile(input);
    const b = await encodeContainerFile(input);
    assert.ok(a.equals(b), 'same key and records: same bytes');
    assert.ok(!a.equals(await encodeContainerFile({ ...input, syncMarker: syncMarkerFor(`${key}x`) })), 'the marker comes from the key');

    const encoder = new avro.streams.BlockEncoder(raw as avro.Schema, {
      codec: compression.codec,
      codecs: { [compression.codec]: (buf: Buffer, cb: (err: Error | null, out?: Buffer) => void) => void compressBlock(compression, buf).then((out) => cb(null, out), cb) },
      syncMarker: input.syncMarker,
      blockSize: compression.blockBytes,
      metadata: { 'auditline.topic': Buffer.from('audit.events') },
    } as ConstructorParameters<typeof avro.streams.BlockEncoder>[1]);
    const chunks: Buffer[] = [];
    const done = new Promise<void>((resolve, reject) => encoder.on('data', (c: Buffer) => chunks.push(c)).on('end', resolve).on('error', reject));
    for (const e of many) encoder.write(e);
    encoder.end();
    await done;
    assert.ok(Buffer.concat(chunks).equals(a), 'identical to the file avsc writes from the decoded values');

    // Nothing but avsc, the codec's decompressor and the file: the schema comes from the header.
    const dir = await mkdtemp(path.join(os.tmpdir(), 'archiver-unit-'));
    try {
      const file = path.join(dir, 'f.avro');
      await writeFile(file, a);
      const { codec, records: read } = await readAvroFile(file);
      assert.equal(codec, compression.codec);
      assert.deepEqual(JSON.parse(JSON.stringify(read)), JSON.parse(JSON.stringify(many)));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    const decoded = await decodeContainerFile(a);
    assert.equal(decoded.metadata['auditline.topic'], 'audit.events');
    assert.equal(decoded.records.length, many.length);
  });
}

test('object keys are date-partitioned, ordered by offset and parse back', () => {
  const key = objectKey('audit.events', 3, Date.UTC(2026, 10, 28, 23, 59), '100', '2000');
  assert.equal(key, 'events/audit.events/p=0003/dt=2026-11-28/00000000000000000100-00000000000000002000.avro');
  assert.deepEqual(parseObjectKey(key), { topic: 'audit.events', partition: 3, day: '2026-11-28', firstOffset: 100n, lastOffset: 2000n });
  assert.equal(parseObjectKey('digests/x/p=0001/0000000001.json'), undefined);
});

test('a digest verifies under its key and not after any change or under another key', () => {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const other = generateKeyPairSync('ed25519').publicKey;
  const body: DigestBody = {
    format: DIGEST_FORMAT,
    topic: 'audit.events',
    partition: 0,
    sequence: 1,
    created_at: '2026-11-28T00:00:00.000Z',
    period_start: null,
    previous: { key: 'digests/audit.events/p=0000/0000000000.json', sha256: 'a'.repeat(64) },
    objects: [{ key: 'k', version_id: 'v', sha256: 'b'.repeat(64), size: 10, first_offset: '0', last_offset: '9' }],
  };
  const file = signDigest(body, privateKey);
  assert.equal(readDigest(file, publicKey).valid, true);
  assert.equal(readDigest(file, other).valid, false);
  const altered = Buffer.from(file.toString().replace('"size": 10', '"size": 11'));
  assert.notEqual(altered.toString(), file.toString());
  assert.equal(readDigest(altered, publicKey).valid, false);
});

/** An Archiver over in-memory stand-ins for S3, ClickHouse and Kafka commits (the integration tests use the real ones). */
function harness(settings: Partial<ConstructorParameters<typeof Archiver>[0]> = {}, stored: PutArchiveObject[] = [], registry: Pick<RegistryClient, 'schemaText'> = { schemaText: async (id: number) => (id === 1 ? text : Promise.reject(new AuditlineError('SCHEMA_NOT_FOUND', `schema id ${id} is not registered`))) }, now?: () => number) {
  /** Objects in the bucket: `stored` (put there before, by anyone), then what this archiver uploads. */
  const puts: PutArchiveObject[] = [...stored];
  /** Every upload asked for, including those of a key already there. */
  const attempts: PutArchiveObject[] = [];
  const commits: string[] = [];
  const log: string[] = [];
  const indexed: IndexRow[] = [];
  const dead: DeadLetter[] = [];
  /** Partitions a digest was asked for. */
  const digests: number[] = [];
  /** The bound each digest was asked for: it may list objects ending below this offset (the committed one). */
  const digestBounds: [partition: number, below: bigint][] = [];
  /** Committed offset by partition, as the group coordinator has it. */
  const committed = new Map<number, bigint>();
  /** Uploads still to fail (retriable, as an S3 outage) before they go through again; index inserts still to be refused (not retriable). */
  const outage = { failingPuts: 0, refusedIndexInserts: 0 };
  /** The archiver's own metrics, on a registry of this harness. */
  const metrics = new Registry();
  const archiver = new Archiver(
    { storageClass: 'GLACIER', rollBytes: 1_000_000, rollMs: 60_000, digestIntervalMs: 3_600_000, retentionDays: 2557, objectLock: true, requireTokenized: true, compression: { codec: 'zstandard', level: 5, blockBytes: 64 * 1024 }, retry: { initialMs: 1, maxMs: 2 }, ...settings },
    {
      schemas: new WriterSchemas(registry),
      store: {
        putOnce: async (o) => {
          if (outage.failingPuts > 0) {
            outage.failingPuts -= 1;
            throw new AuditlineError('S3_UNAVAILABLE', 'S3 does not answer', { retriable: true });
          }
          attempts.push(o);
          // As ObjectStore.putOnce: a key holding the same bytes is 'existing', other bytes a 'conflict' (never overwritten).
          const there = puts.find((p) => p.key === o.key);
          if (there) return { outcome: there.sha256 === o.sha256 ? 'existing' : 'conflict', object: { key: o.key, versionId: 'v0', size: there.body.length, sha256: there.sha256, storageClass: there.storageClass, retainUntil: there.retainUntil, lockMode: 'COMPLIANCE', restore: undefined } };
          puts.push(o);
          log.push(`put ${o.key}`);
          return { outcome: 'uploaded', object: { key: o.key, versionId: 'v1', size: o.body.length, sha256: o.sha256, storageClass: o.storageClass, retainUntil: o.retainUntil, lockMode: 'COMPLIANCE', restore: undefined } };
        },
        list: async (prefix: string) => puts.filter((p) => p.key.startsWith(prefix)).map((p) => ({ key: p.key, size: p.body.length, lastModified: new Date() })),
        get: async (key: string) => puts.find((p) => p.key === key)!.body,
      },
      index: {
        insert: async (rows) => {
          if (outage.refusedIndexInserts > 0) {
            outage.refusedIndexInserts -= 1;
            throw new AuditlineError('ROW_REJECTED', 'the index refused the rows', { retriable: false });
          }
          indexed.push(...rows);
        },
      },
      chain: {
        extend: async (partition, below) => {
          digests.push(partition);
          digestBounds.push([partition, below]);
          return undefined;
        },
        stored: () => undefined,
        forget: () => undefined,
      },
      dlq: { publish: async (letters) => void dead.push(...letters) },
      commit: async (_t, p, offset) => {
        log.push(`commit ${p}@${offset}`);
        commits.push(offset);
        committed.set(p, BigInt(offset));
      },
      committed: async (p) => committed.get(p),
      logger: pino({ level: 'silent' }),
      ...(now ? { now } : {}),
      metrics: new ArchiverMetrics(metrics),
    },
  );
  /** auditline_archiver_objects_total by outcome. */
  const objects = async () => Object.fromEntries((await metrics.getSingleMetric(ARCHIVER_METRICS.objects.name)!.get()).values.map((v) => [v.labels.outcome, v.value]));
  return { archiver, puts, attempts, commits, log, indexed, dead, outage, digests, digestBounds, committed, objects };
}

const rec = (offset: number, value: Buffer | null, tokenized = true): SourceRecord => ({
  topic: 'audit.events',
  partition: 0,
  offset: String(offset),
  key: null,
  value,
  headers: tokenized ? { 'auditline-tokenized': Buffer.from('v1') } : {},
  timestamp: String(Date.UTC(2026, 10, 28, 12)),
});
const encoded = (e: AuditEvent) => frame(1, type.toBuffer(e));

test('the archiver commits a partition only after its object was uploaded and indexed, and skips records it already holds', async () => {
  const h = harness({ rollBytes: 1_500 }, [], undefined, () => Date.UTC(2026, 10, 28, 11)); // the clock an hour behind the records: their time sets the retention
  const records = events.map((e, i) => rec(i, encoded(e)));
  await h.archiver.handler(records.slice(0, 3), { signal: new AbortController().signal });
  await h.archiver.handler(records.slice(0, 8), { signal: new AbortController().signal }); // a redelivery overlapping what is held
  await h.archiver.flushAndStop();
  assert.ok(h.puts.length >= 2, 'rolled by size and at shutdown');
  const archived = (await Promise.all(h.puts.map(async (p) => (await decodeContainerFile(p.body)).records.length))).reduce((a, b) => a + b, 0);
  assert.equal(archived, 8, 'each record once');
  for (const p of h.puts) {
    const parsed = parseObjectKey(p.key)!;
    assert.ok(h.log.indexOf(`put ${p.key}`) < h.log.indexOf(`commit 0@${parsed.lastOffset + 1n}`), 'upload before commit');
    assert.equal(p.storageClass, 'GLACIER');
    assert.equal(p.retainUntil?.toISOString(), new Date(Date.UTC(2026, 10, 28, 12) + 2557 * 86_400_000).toISOString());
  }
  assert.equal(h.commits.at(-1), '8');
  assert.equal(new Set(h.indexed.map((r) => r.execution_id)).size, 2);
});

test('an object whose records carry a Kafka timestamp years behind the clock is locked for the retention from now, not from that timestamp', async () => {
  const now = Date.UTC(2026, 11, 7, 9, 30, 0, 250);
  const h = harness({}, [], undefined, () => now);
  // A producer whose clock reads 2019: counted from its CreateTime, the retention (2557 days) would already be over.
  await h.archiver.handler(events.slice(0, 3).map((e, i) => ({ ...rec(i, encoded(e)), timestamp: String(Date.UTC(2019, 0, 1)) })), { signal: new AbortController().signal });
  await h.archiver.flushAndStop();
  assert.equal(h.puts.length, 1);
  assert.match(h.puts[0]!.key, /\/dt=2019-01-01\//, 'the key still names the records\' day');
  assert.equal(h.puts[0]!.retainUntil?.toISOString(), new Date(Date.UTC(2026, 11, 7, 9, 30, 1) + 2557 * 86_400_000).toISOString(), 'now + 2557 days, rounded up to the second');
});

test('a graceful stop extends the digest chain of every partition it owns, also one whose last object was rolled before the stop', async () => {
  const h = harness({ rollBytes: 1 }); // every batch is rolled (uploaded) at once: no open file is left at the stop
  h.archiver.assigned([0, 1]);
  await h.archiver.handler(events.slice(0, 2).map((e, i) => rec(i, encoded(e))), { signal: new AbortController().signal });
  const before = h.digests.length;
  await h.archiver.flushAndStop();
  assert.ok(h.puts.length >= 1, 'the records were uploaded before the stop');
  assert.deepEqual(h.digests.slice(before).sort(), [0, 1], 'a digest asked for each owned partition at the stop');
});

test('records that cannot be archived are dead-lettered with a reason; the others are archived', async () => {
  const h = harness();
  await h.archiver.handler([rec(0, encoded(events[0]!)), rec(1, Buffer.from('garbage')), rec(2, encoded(events[1]!), false), rec(3, frame(9, Buffer.from([1]))), rec(4, frame(1, Buffer.from([1])))], { signal: new AbortController().signal });
  await h.archiver.flushAndStop();
  assert.deepEqual(h.dead.map((d) => [d.record.offset, d.code]), [['1', 'WIRE_FORMAT_INVALID'], ['2', 'ARCHIVE_RECORD_REFUSED'], ['3', 'SCHEMA_NOT_FOUND'], ['4', 'DECODE_FAILED']]);
  assert.equal((await decodeContainerFile(h.puts[0]!.body)).records.length, 1);
  assert.match(h.puts[0]!.key, /00000000000000000000-00000000000000000004\.avro$/, 'the range covers the dead letters inside it');
});

/**
 * A registry follower that lags behind, in process: ids in `known` have the
 * event schema, others get the miss RegistryClient.schemaText throws for the
 * registry's own "not found" (UnknownSchemaIds: retriable for the window from
 * the first miss, then final). The HTTP side of it: test/integration/unknown-schema-ids.test.ts.
 */
function laggingSchemas(known: Set<number>, windowMs: number): Pick<RegistryClient, 'schemaText'> {
  const unknownIds = new UnknownSchemaIds(windowMs);
  return {
    schemaText: async (id) => {
      if (!known.has(id)) throw unknownIds.miss(id, 'the lagging registry');
      unknownIds.found(id);
      return text;
    },
  };
}

test('a schema id the registry does not know yet holds the partition (retried) until it does; one it never knows is dead-lettered after the window and the rest archived', async () => {
  const known = new Set([1]);
  const h = harness({}, [], laggingSchemas(known, 400));
  // Id 2: just registered; the registry answers "not found" for it for the first 150 ms.
  setTimeout(() => known.add(2), 150);
  const late = await settle(h.archiver.handler, [rec(0, encoded(events[0]!)), rec(1, frame(2, type.toBuffer(events[1]!))), rec(2, encoded(events[2]!))]);
  assert.deepEqual(late.deadLetters, []);
  assert.ok(late.attempts > 1, 'retried while the id was unknown');
  // Id 9 never exists: dead-lettered once the window is over; the records around it are archived.
  const poison = await settle(h.archiver.handler, [rec(3, encoded(events[3]!)), rec(4, frame(9, Buffer.from([1]))), rec(5, encoded(events[4]!))]);
  assert.ok(poison.elapsedMs >= 400, `dead-lettered after ${poison.elapsedMs.toFixed(0)} ms, before the window was over`);
  await h.archiver.flushAndStop();
  assert.deepEqual(h.dead.map((d) => [d.record.offset, d.code]), [['4', 'SCHEMA_NOT_FOUND']]);
  assert.match(h.dead[0]!.reason, /schema id 9 .* not registered .*still unknown \d+ ms after its first lookup/);
  const archived = (await Promise.all(h.puts.map(async (p) => (await decodeContainerFile(p.body)).records.length))).reduce((a, b) => a + b, 0);
  assert.equal(archived, 5, 'every other record archived, the one written with id 2 too');
  assert.equal(h.commits.at(-1), '6', 'committed past the dead letter');
});

test('replay documents rebuild an execution from its events; reveal substitutes only named fields', () => {
  const failed = sampleExecution({ status: 'failed' });
  const doc = replayFromEvents(failed[0]!.execution_id, [...failed, failed[1]!, ...sampleExecution()], ['k']);
  assert.equal(doc.status, 'failed');
  // A second ExecutionFinished with another status (forged, to pass a failed-only reveal rule): the outcomes disagree.
  const finished = failed.find((e) => unwrapPayload(e.payload).kind === 'ExecutionFinished')!;
  const other = structuredClone(finished);
  other.event_id = '33333333-3333-4333-8333-333333333333';
  (unwrapPayload(other.payload).value as { status: string }).status = 'success';
  assert.equal(replayFromEvents(finished.execution_id, [...failed, other], ['k']).status, 'conflicting');
  // The same, reusing the genuine event's id: collapsing copies by event_id must not let the forged one replace it.
  const success = sampleExecution();
  const genuine = success.find((e) => unwrapPayload(e.payload).kind === 'ExecutionFinished')!;
  const forged = structuredClone(genuine);
  (unwrapPayload(forged.payload).value as { status: string }).status = 'failed';
  assert.equal(replayFromEvents(genuine.execution_id, [...success, forged], ['k']).status, 'conflicting', 'a forged outcome under a reused event id');
  assert.equal(replayFromEvents(genuine.execution_id, [forged, ...success], ['k']).status, 'conflicting', 'the forged copy before it');
  assert.equal(replayFromEvents(genuine.execution_id, [...success, structuredClone(genuine)], ['k']).status, 'success', 'a redelivered copy is no conflict');
  assert.equal(doc.steps.length, 1, 'redelivered copy collapses');
  assert.equal(doc.steps[0]!.error?.type, 'TimeoutError');
  assert.equal(doc.decisions[0]!.branch_taken, 'manual-approval');
  const fields = piiFields(doc);
  assert.ok(fields.some((f) => f.name === 'execution.input'));
  const revealed = applyRevealed(doc, new Map([['execution.input', '{"customer_email":"x@example.com"}']]));
  assert.deepEqual(renderReplay(revealed).input, { customer_email: 'x@example.com' });
  assert.equal(revealed.pii, 'revealed');
});

test('every archiver metric, setting and error code is documented', () => {
  const doc = (name: string) => readFileSync(assetPath('docs', name), 'utf8');
  const metrics = doc('metrics.md');
  for (const { name } of Object.values(ARCHIVER_METRICS)) assert.ok(metrics.includes(`\`${name}\``), `${name} in docs/metrics.md`);
  const source = readFileSync(assetPath('consumers', 'archiver', 'config.ts'), 'utf8');
  const names = [...source.matchAll(/\$\{P\}([A-Z_]+)/g)].map((m) => `AUDITLINE_ARCHIVER_${m[1]}`);
  assert.ok(names.length >= 8);
  for (const name of new Set(names)) {
    for (const file of ['archiver.md', 'configuration.md']) assert.ok(doc(file).includes(name), `${name} in docs/${file}`);
  }
  for (const code of ['ARCHIVE_RECORD_REFUSED', 'ARCHIVE_RESTORE_PENDING', 'EXECUTION_NOT_FOUND']) assert.ok(doc('errors.md').includes(`\`${code}\``), `${code} in docs/errors.md`);
  for (const command of ['`run archiver`', '`archive verify', '`archive reindex', '`replay <execution_id>']) assert.ok(doc('cli.md').includes(command), `${command} in docs/cli.md`);
});

test('after a crash, a file that starts where an object already starts ends where that object ended: same key, same bytes', async () => {
  const records = events.map((e, i) => rec(i, encoded(e)));
  const first = harness({ rollBytes: 1_500 });
  await first.archiver.handler(records, { signal: new AbortController().signal });
  const earlier = first.puts[0]!;
  // The next run knows that object (it is in the bucket) but rolls by time, not size: it must still rebuild exactly that file.
  const second = harness({ rollBytes: 1_000_000 });
  second.puts.push(earlier);
  await second.archiver.handler(records, { signal: new AbortController().signal });
  await second.archiver.flushAndStop();
  const again = second.attempts.find((p) => p.key === earlier.key);
  assert.ok(again, `rebuilt ${earlier.key}`);
  assert.ok(again.body.equals(earlier.body), 'same bytes');
  await first.archiver.flushAndStop();
});

test('while an upload is retried the archiver keeps its group membership alive, and gives the batch up uncommitted once the group moved on', async () => {
  const h = harness({ rollBytes: 1 });
  h.outage.failingPuts = 3;
  let beats = 0;
  const result = await h.archiver.handler([rec(0, encoded(events[0]!))], { signal: new AbortController().signal, heartbeat: async () => void beats++ });
  assert.deepEqual(result.deadLetters, []);
  assert.equal(beats, 3, 'one heartbeat between each failed attempt and the next');
  assert.deepEqual(h.commits, ['1'], 'committed once the upload went through');

  h.outage.failingPuts = 100;
  const gone = h.archiver.handler([rec(1, encoded(events[1]!))], {
    signal: new AbortController().signal,
    heartbeat: async () => {
      throw new Error('The group is rebalancing, so a rejoin is needed');
    },
  });
  await assert.rejects(gone, (e) => e instanceof BatchAbandonedError);
  assert.deepEqual(h.commits, ['1'], "nothing more committed: the partition's new owner archives the record");
  assert.equal(h.puts.length, 1);
});

test('a key that already holds other bytes: the same records (another codec wrote them before a crash) are indexed as they are; other records (put there by someone else) stop the partition uncommitted', async () => {
  const records = events.slice(0, 5).map((e, i) => rec(i, encoded(e)));
  // An earlier upload of offsets 0-2 by a deflate archiver: same records, other bytes.
  const earlier = harness({ compression: { codec: 'deflate', level: 6, blockBytes: 64 * 1024 } });
  await earlier.archiver.handler(records.slice(0, 3), { signal: new AbortController().signal });
  await earlier.archiver.flushAndStop();
  const [object] = earlier.puts;
  assert.ok(object && parseObjectKey(object.key)!.lastOffset === 2n);

  const same = harness({}, [object]);
  await same.archiver.handler(records, { signal: new AbortController().signal });
  await same.archiver.flushAndStop();
  assert.equal(same.commits[0], '3', 'the adopted range 0-2 is committed');
  const rows = same.indexed.filter((r) => r.object_key === object.key);
  assert.ok(rows.length > 0 && rows.every((r) => r.object_sha256 === object.sha256), 'indexed with the hash of the bytes in the bucket');
  assert.equal((await same.objects()).conflict, 1, 'counted as a conflict: other bytes, the same records');

  // Someone else's object at the key the archiver would write next: other records, the archiver's range adopted.
  const foreignBody = (await (async () => {
    const other = harness({ compression: { codec: 'deflate', level: 6, blockBytes: 64 * 1024 } });
    await other.archiver.handler([rec(0, encoded(events[5]!)), rec(1, encoded(events[6]!)), rec(2, encoded(events[7]!))], { signal: new AbortController().signal });
    await other.archiver.flushAndStop();
    return other.puts[0]!;
  })());
  const foreign = { ...foreignBody, key: object.key };
  const attacked = harness({}, [foreign]);
  attacked.archiver.assigned([0, 1]);
  const conflict = (e: unknown) => isAuditlineError(e, 'ARCHIVE_KEY_CONFLICT') && e.retriable;
  await assert.rejects(attacked.archiver.handler(records, { signal: new AbortController().signal }), conflict);
  // The batch consumer retries the same batch, then (were it settled) the next one comes: the partition stays stopped at the key.
  await assert.rejects(attacked.archiver.handler(records, { signal: new AbortController().signal }), conflict, 'a retry of the batch rolls the file again, it is no no-op');
  const next = events.slice(5, 8).map((e, i) => rec(5 + i, encoded(e)));
  await assert.rejects(attacked.archiver.handler(next, { signal: new AbortController().signal }), conflict, 'later records do not join the file with the adopted range');
  await attacked.archiver.flushAndStop();
  assert.ok(attacked.digests.includes(1), 'the stop, which cannot roll partition 0, still writes the digest of partition 1');
  assert.deepEqual(attacked.commits, [], 'nothing committed past the foreign object');
  assert.deepEqual(attacked.indexed, [], 'and nothing indexed under its key');
  assert.deepEqual(attacked.puts.map((p) => p.key), [object.key], 'no other key written around it');
  assert.ok(attacked.attempts.length >= 4 && attacked.attempts.every((p) => p.key === object.key), 'every attempt rolled the same file to the same key');
  assert.deepEqual(await attacked.objects(), { foreign: attacked.attempts.length }, 'each attempt that found the foreign object counted as foreign, none as a conflict or stored');
  // The periodic digest (tick) of the partition, called directly: it must not sign a listing that holds the foreign object.
  await (attacked.archiver as unknown as { digest(partition: number, force: boolean): Promise<void> }).digest(0, true);
  const bounds = attacked.digestBounds.filter(([p]) => p === 0).map(([, below]) => below);
  assert.ok(bounds.length >= 2, 'the stop and the tick asked for digests of partition 0');
  assert.ok(bounds.every((below) => below <= parseObjectKey(object.key)!.firstOffset), 'each may list only objects ending below the committed offset: never the foreign one');
  assert.ok(same.digests.includes(0), 'the partition without a foreign object got its digest as usual');
});

test('a record whose event_time the index cannot hold (9e15 or 3e14 ms, as a producer writing the Avro itself can) is dead-lettered with the reason; the rest of the batch is archived and committed', async () => {
  const h = harness();
  const at = (e: AuditEvent, eventTime: number): AuditEvent => ({ ...structuredClone(e), event_time: eventTime });
  const batch = [rec(0, encoded(events[0]!)), rec(1, encoded(at(events[1]!, 9e15))), rec(2, encoded(events[2]!)), rec(3, encoded(at(events[3]!, 3e14))), rec(4, encoded(events[4]!))];
  const result = await h.archiver.handler(batch, { signal: new AbortController().signal });
  await h.archiver.flushAndStop();
  assert.deepEqual(result.deadLetters.map((d) => [d.record.offset, d.code]), [['1', 'ARCHIVE_RECORD_REFUSED'], ['3', 'ARCHIVE_RECORD_REFUSED']]);
  assert.deepEqual(h.dead.map((d) => d.record.offset), ['1', '3'], 'published to the DLQ');
  for (const d of h.dead) {
    assert.match(d.reason, /event_time is outside the storable time range 1900-01-01\.\.2299-12-31/);
    assert.doesNotMatch(d.reason, /9000000000000000|300000000000000/, 'the value is not in the reason');
  }
  const archived = (await decodeContainerFile(h.puts[0]!.body)).records as AuditEvent[];
  assert.deepEqual(archived.map((r) => r.event_id), [events[0]!, events[2]!, events[4]!].map((e) => e.event_id));
  assert.ok(h.indexed.every((r) => r.first_event_time < Date.UTC(2300, 0, 1) && r.last_event_time < Date.UTC(2300, 0, 1)), 'no index row carries the refused times');
  assert.deepEqual(h.commits, ['5'], 'committed past the refused records');
});

test('a record whose Kafka timestamp no object key or retention date can be made from (9e15) is dead-lettered; the rest is archived', async () => {
  const h = harness();
  const batch = [rec(0, encoded(events[0]!)), { ...rec(1, encoded(events[1]!)), timestamp: '9000000000000000' }, rec(2, encoded(events[2]!))];
  const result = await h.archiver.handler(batch, { signal: new AbortController().signal });
  await h.archiver.flushAndStop();
  assert.deepEqual(result.deadLetters.map((d) => [d.record.offset, d.code]), [['1', 'ARCHIVE_RECORD_REFUSED']]);
  assert.match(h.dead[0]!.reason, /Kafka timestamp is outside the storable time range/);
  assert.deepEqual(((await decodeContainerFile(h.puts[0]!.body)).records as AuditEvent[]).map((r) => r.event_id), [events[0]!.event_id, events[2]!.event_id]);
  assert.deepEqual(h.commits, ['3']);
});

test('an index row whose time no Date holds fails the insert as not retriable (it was retried forever as a connection failure)', async () => {
  let sent = 0;
  const index = new ArchiveIndex({ insert: async () => void sent++ } as unknown as ClickHouseClient, 'db');
  const row: IndexRow = { execution_id: 'e', object_key: 'k', workflow_id: 'w', first_event_time: 9e15, last_event_time: 9e15, events: 1, source_topic: 't', source_partition: 0, first_offset: '0', last_offset: '0', storage_class: 'STANDARD', object_sha256: 'a'.repeat(64), object_size: 1 };
  await assert.rejects(index.insert([row]), (e) => isAuditlineError(e, 'ROW_REJECTED') && !e.retriable && /RangeError/.test(e.message));
  assert.equal(sent, 0, 'nothing reached ClickHouse');
});

test('an index failure is CLICKHOUSE_UNAVAILABLE (retriable) only when ClickHouse is unwell; rows or a read it refuses are ROW_REJECTED / QUERY_FAILED, not retriable', async () => {
  const failing = (err: unknown) => new ArchiveIndex({ insert: async () => Promise.reject(err), query: async () => Promise.reject(err) } as unknown as ClickHouseClient, 'db');
  const row: IndexRow = { execution_id: 'e', object_key: 'k', workflow_id: 'w', first_event_time: 0, last_event_time: 0, events: 1, source_topic: 't', source_partition: 0, first_offset: '0', last_offset: '0', storage_class: 'STANDARD', object_sha256: 'a'.repeat(64), object_size: 1 };
  const refused = new ClickHouseError({ message: 'Cannot parse input', code: '27', type: 'CANNOT_PARSE_INPUT_ASSERTION_FAILED' });
  await assert.rejects(failing(refused).insert([row]), (e) => isAuditlineError(e, 'ROW_REJECTED') && !e.retriable && /CANNOT_PARSE_INPUT_ASSERTION_FAILED/.test(e.message));
  await assert.rejects(failing(refused).objectsOf('e'), (e) => isAuditlineError(e, 'QUERY_FAILED') && !e.retriable);
  const down = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:8123'), { code: 'ECONNREFUSED' });
  await assert.rejects(failing(down).insert([row]), (e) => isAuditlineError(e, 'CLICKHOUSE_UNAVAILABLE') && e.retriable);
  await assert.rejects(failing(down).allObjects(), (e) => isAuditlineError(e, 'CLICKHOUSE_UNAVAILABLE') && e.retriable);
  const busy = new ClickHouseError({ message: 'Too many parts', code: '252', type: 'TOO_MANY_PARTS' });
  await assert.rejects(failing(busy).insert([row]), (e) => isAuditlineError(e, 'CLICKHOUSE_UNAVAILABLE') && e.retriable);
});

test('a roll that failed is retried by the next attempt on the partition (same key, same bytes), not settled as a no-op, and no record joins its file', async () => {
  const h = harness({ rollBytes: 1 }); // every record is rolled at once
  h.outage.refusedIndexInserts = 1; // uploaded, then the index refuses the rows (not retriable)
  await assert.rejects(h.archiver.handler([rec(0, encoded(events[0]!))], { signal: new AbortController().signal }), (e) => isAuditlineError(e, 'ROW_REJECTED'));
  assert.deepEqual(h.commits, []);
  // The batch consumer's retry of the batch: it must roll the file again and commit it.
  await h.archiver.handler([rec(0, encoded(events[0]!))], { signal: new AbortController().signal });
  assert.deepEqual(h.commits, ['1'], 'the retry rolled the file and committed it');
  assert.equal(h.attempts.length, 2);
  assert.equal(h.attempts[1]!.key, h.attempts[0]!.key, 'same key');
  assert.ok(h.attempts[1]!.body.equals(h.attempts[0]!.body), 'same bytes');
  assert.ok(h.indexed.length > 0, 'indexed on the retry');

  // Failed again; this time the next batch comes first (a tick or another path may have tried it): the roll still comes first.
  h.outage.refusedIndexInserts = 1;
  await assert.rejects(h.archiver.handler([rec(1, encoded(events[1]!))], { signal: new AbortController().signal }));
  await h.archiver.handler([rec(2, encoded(events[2]!))], { signal: new AbortController().signal });
  await h.archiver.flushAndStop();
  assert.deepEqual(h.puts.map((p) => p.key.slice(-46)), ['00000000000000000000-00000000000000000000.avro', '00000000000000000001-00000000000000000001.avro', '00000000000000000002-00000000000000000002.avro'], 'one object per file, none overlapping');
  assert.deepEqual(h.commits, ['1', '2', '3']);
});

test('a digest lists the objects below the committed offset only: one at a key the archiver has not committed (someone else\'s) is not signed', async () => {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const bucket = new Map<string, Buffer>();
  const at = (first: string, last: string) => objectKey('audit.events', 0, Date.UTC(2026, 10, 28, 12), first, last);
  for (const key of [at('0', '2'), at('3', '5'), at('6', '8')]) bucket.set(key, Buffer.from(key));
  const store = {
    list: async (prefix: string, startAfter?: string) => [...bucket.keys()].filter((k) => k.startsWith(prefix) && (!startAfter || k > startAfter)).sort().map((key) => ({ key, size: bucket.get(key)!.length, lastModified: new Date() })),
    get: async (key: string) => bucket.get(key)!,
    head: async (key: string) => (bucket.has(key) ? { key, versionId: 'v1', size: bucket.get(key)!.length, sha256: 'a'.repeat(64), storageClass: 'STANDARD', retainUntil: undefined, lockMode: undefined, restore: undefined } : undefined),
    putOnce: async (o: PutArchiveObject) => {
      bucket.set(o.key, o.body);
      return { outcome: 'uploaded' as const, object: { key: o.key, versionId: 'v1', size: o.body.length, sha256: o.sha256, storageClass: 'STANDARD', retainUntil: undefined, lockMode: undefined, restore: undefined } };
    },
  };
  const chain = new DigestChain(store as unknown as ObjectStore, { topic: 'audit.events', signingKey: privateKey, retentionDays: 2557, objectLock: false });
  // Committed up to 6: 0-2 and 3-5 were archived; 6-8 is the foreign object the archiver stopped at.
  const first = await chain.extend(0, 6n);
  assert.deepEqual(first?.objects.map((o) => o.key), [at('0', '2'), at('3', '5')]);
  assert.equal(await chain.extend(0, 6n), undefined, 'nothing more to list while the partition stands at 6');
  const second = await chain.extend(0, 9n);
  assert.deepEqual(second?.objects.map((o) => o.key), [at('6', '8')], 'listed once its offsets are committed');
  assert.equal(readDigest(bucket.get(digestKey('audit.events', 0, 1))!, publicKey).valid, true);
});

test('a partition assigned again after an eviction starts over from the records Kafka hands it: the stale open file and position are dropped', async () => {
  const h = harness();
  const records = events.map((e, i) => rec(i, encoded(e)));
  h.archiver.assigned([0]);
  await h.archiver.handler(records.slice(0, 3), { signal: new AbortController().signal }); // offsets 0-2 wait in the open file
  // Evicted (a missed session timeout) while another member archived and committed 0-4; rejoined with partition 0 again,
  // Kafka hands it the records from the committed offset 5.
  h.archiver.assigned([0]);
  await h.archiver.handler(records.slice(5, 8), { signal: new AbortController().signal });
  await h.archiver.flushAndStop();
  assert.deepEqual(h.puts.map((p) => p.key.slice(-46)), ['00000000000000000005-00000000000000000007.avro'], 'one file of the records handed after the rejoin, not 0-7 with a gap');
  assert.equal((await decodeContainerFile(h.puts[0]!.body)).records.length, 3);
  assert.deepEqual(h.commits, ['8']);
});

test('a tick while the previous one still waits (an S3 outage) returns at once instead of queueing behind it on the partition lock', async () => {
  const h = harness({ rollMs: 1 });
  await h.archiver.handler([rec(0, encoded(events[0]!))], { signal: new AbortController().signal });
  await new Promise((r) => setTimeout(r, 5)); // the file is due for its time roll
  h.outage.failingPuts = Number.MAX_SAFE_INTEGER;
  const tick = () => (h.archiver as unknown as { tick(): Promise<void> }).tick();
  let firstDone = false;
  const first = tick().then(() => void (firstDone = true));
  await new Promise((r) => setTimeout(r, 20));
  let secondDone = false;
  const second = tick().then(() => void (secondDone = true));
  await new Promise((r) => setTimeout(r, 20));
  const during = { firstDone, secondDone };
  h.outage.failingPuts = 0; // the outage ends (also when an assertion below fails: the retries would not stop)
  await Promise.all([first, second]);
  assert.equal(during.firstDone, false, 'the first tick still retried the upload');
  assert.equal(during.secondDone, true, 'the second returned without waiting for it');
  assert.deepEqual(h.commits, ['1']);
  assert.equal(h.puts.length, 1);
  await h.archiver.flushAndStop();
});
