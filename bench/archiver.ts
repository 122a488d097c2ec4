/**
 * `npm run bench -- archiver`: archived MB/s and compression ratio of the
 * archiver against plain node:zlib deflate of the same records, same run.
 *
 * Records: what the tokenizer writes to `audit.events`, made by the
 * tokenizer's own batch handler (bench/lib/tokenized-events.ts): executions
 * in the shape of the tokenizer fixtures (e-mail, name, phone, address in the
 * input, the e-mail again in a step input and in free text, one in seven
 * failed), customers drawn from a pool of BENCH_CUSTOMERS (default 1000), so
 * a returning customer's HMAC tokens and subject key id repeat; each PII
 * field is one AES-GCM bundle with a random IV, which no codec compresses.
 * Archiver: the service's own batch handler (check each record with its
 * writer schema, roll Avro container files of BENCH_ROLL_BYTES, compress
 * blocks with the service's default codec, SHA-256) with S3, the index and
 * the commits replaced by in-memory sinks, so the figure is what one
 * archiver process can encode; `e2e_mb_per_s` adds real uploads to the S3
 * endpoint (moto locally) for a sample, in a scratch bucket deleted at the
 * end (its versions, then the bucket). Baseline: zlib deflateRaw, level 6,
 * blocks of 256 KiB (the archiver's former codec settings), of the same
 * record bytes. Evidence for the compression limit: bytes of random
 * material per event (ciphertext bundles and UUIDs) and the ratio of the
 * same events before tokenization. Last line: one JSON object.
 */
import { createHash } from 'node:crypto';
import { deflateRaw } from 'node:zlib';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { createS3 } from '../core/clients/s3.js';
import { loadEndpoints } from '../core/endpoints.js';
import type { SourceRecord } from '../core/service/index.js';
import { Archiver, ARCHIVE_CODECS, compressBlock, DEFAULT_BLOCK_BYTES, ObjectStore, WriterSchemas, type ArchiveCodec, type ArchiverSettings, type BlockCompression } from '../consumers/archiver/index.js';
import { bootstrapBucket } from '../infra/s3/bootstrap.js';
import { loadRetention } from '../infra/retention.js';
import { auditEventSchema, unframe } from '../schemas/index.js';
import { rawExecutions, tokenize } from './lib/tokenized-events.js';
import { Cleanup } from './lib/run.js';
import { deleteBucket } from './lib/s3-bucket.js';
import { round } from './stats.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const EXECUTIONS = Number(process.env.BENCH_EXECUTIONS ?? 25_000);
const CUSTOMERS = Number(process.env.BENCH_CUSTOMERS ?? 1_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const ROLL_BYTES = Number(process.env.BENCH_ROLL_BYTES ?? 8 * 1024 * 1024);
const CODEC = (process.env.BENCH_CODEC ?? 'zstandard') as ArchiveCodec;
if (!ARCHIVE_CODECS.includes(CODEC)) throw new Error(`BENCH_CODEC must be one of ${ARCHIVE_CODECS.join(', ')}`);
const COMPRESSION: BlockCompression = { codec: CODEC, level: Number(process.env.BENCH_LEVEL ?? (CODEC === 'deflate' ? 6 : 5)), blockBytes: Number(process.env.BENCH_BLOCK_BYTES ?? DEFAULT_BLOCK_BYTES[CODEC]) };
const LEVEL = 6;
const BLOCK = 256 * 1024;
const say = (m: string) => process.stderr.write(`${m}\n`);

const { type, text } = auditEventSchema();
const registry = { schemaText: async () => text };
const generated = performance.now();
const raw = rawExecutions({ executions: EXECUTIONS, customers: CUSTOMERS, seed: 20261128 });
const records: SourceRecord[] = await tokenize(raw);
const rawBytes = records.reduce((n, r) => n + r.value!.length - 5, 0);
const mb = rawBytes / (1024 * 1024);
say(`archiver bench: ${records.length} tokenized records (${round((performance.now() - generated) / 1000)} s to tokenize), ${round(mb)} MB of Avro bodies, files of ${ROLL_BYTES} bytes, ${COMPRESSION.codec} level ${COMPRESSION.level}, blocks of ${COMPRESSION.blockBytes} bytes`);

const settings: ArchiverSettings = { storageClass: 'STANDARD', rollBytes: ROLL_BYTES, rollMs: 3_600_000, digestIntervalMs: 3_600_000, retentionDays: 2557, objectLock: false, requireTokenized: true, compression: COMPRESSION, retry: { initialMs: 100, maxMs: 1000 } };

async function archiverRun(store?: ObjectStore, limit = records.length): Promise<{ seconds: number; cpuSeconds: number; stored: number }> {
  let stored = 0;
  const sink = {
    putOnce: async (o: { key: string; body: Buffer; sha256: string }) => {
      stored += o.body.length;
      if (store) return store.putOnce(o as Parameters<ObjectStore['putOnce']>[0]);
      return { outcome: 'uploaded' as const, object: { key: o.key, versionId: undefined, size: o.body.length, sha256: o.sha256, storageClass: 'STANDARD', retainUntil: undefined, lockMode: undefined, restore: undefined } };
    },
    list: async (prefix: string) => (store ? store.list(prefix) : []),
    // Only read on a key conflict, which the bench's fresh keys never have.
    get: async (key: string) => {
      if (!store) throw new Error(`the bench stores nothing to read back (${key})`);
      return store.get(key);
    },
  };
  const archiver = new Archiver(settings, {
    schemas: new WriterSchemas(registry),
    store: sink,
    index: { insert: async () => undefined },
    chain: { extend: async () => undefined, stored: () => undefined, forget: () => undefined },
    dlq: { publish: async () => undefined },
    commit: async () => undefined,
    committed: async () => undefined,
    logger: pino({ level: 'silent' }),
  });
  const signal = new AbortController().signal;
  const began = performance.now();
  const cpu = process.cpuUsage();
  for (let i = 0; i < limit; i += 5_000) await archiver.handler(records.slice(i, Math.min(limit, i + 5_000)), { signal });
  await archiver.flushAndStop();
  return { seconds: (performance.now() - began) / 1000, cpuSeconds: cpuSecondsSince(cpu), stored };
}

/** CPU of the whole process (main thread and libuv's pool, where the codecs run) since `from`. */
function cpuSecondsSince(from: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(from);
  return (used.user + used.system) / 1e6;
}

async function baselineRun(): Promise<{ seconds: number; cpuSeconds: number; stored: number }> {
  const deflate = promisify(deflateRaw);
  const began = performance.now();
  const cpu = process.cpuUsage();
  let stored = 0;
  let block: Buffer[] = [];
  let size = 0;
  // One deflate stream's worth of work: blocks of the same size as the archiver's, one after the other.
  const flush = async () => {
    stored += (await deflate(Buffer.concat(block, size), { level: LEVEL })).length;
    block = [];
    size = 0;
  };
  for (const r of records) {
    const body = r.value!.subarray(5);
    if (size > 0 && size + body.length > BLOCK) await flush();
    block.push(body);
    size += body.length;
  }
  if (size > 0) await flush();
  return { seconds: (performance.now() - began) / 1000, cpuSeconds: cpuSecondsSince(cpu), stored };
}

// Warm-up both sides (JIT, zlib pool), then alternate rounds; best of each.
await archiverRun(undefined, 20_000);
await baselineRun();
const arch: number[] = [];
const base: number[] = [];
const archCpu: number[] = [];
const baseCpu: number[] = [];
let archStored = 0;
let baseStored = 0;
for (let r = 0; r < ROUNDS; r++) {
  const a = await archiverRun();
  const b = await baselineRun();
  arch.push(a.seconds);
  base.push(b.seconds);
  archCpu.push(a.cpuSeconds);
  baseCpu.push(b.cpuSeconds);
  archStored = a.stored;
  baseStored = b.stored;
  say(`round ${r + 1}: archiver ${round(mb / a.seconds)} MB/s (${round(mb / a.cpuSeconds)} MB per CPU second), baseline deflate ${round(mb / b.seconds)} MB/s (${round(mb / b.cpuSeconds)} MB per CPU second)`);
}
const archSeconds = Math.min(...arch);
const baseSeconds = Math.min(...base);

// Where the time goes: each stage alone on this thread, one after the other (the archiver overlaps the codec with the rest).
function blocksOf(bodies: readonly Buffer[], size: number): Buffer[] {
  const out: Buffer[] = [];
  let block: Buffer[] = [];
  let n = 0;
  for (const b of bodies) {
    if (n > 0 && n + b.length > size) {
      out.push(Buffer.concat(block, n));
      block = [];
      n = 0;
    }
    block.push(b);
    n += b.length;
  }
  if (n > 0) out.push(Buffer.concat(block, n));
  return out;
}
const bodies = records.map((r) => unframe(r.value!).body);
const writer = await new WriterSchemas(registry).get(1);
let at = performance.now();
for (const b of bodies) writer.readIndexFields(b);
const checkMs = performance.now() - at;
at = performance.now();
const blocks = blocksOf(bodies, COMPRESSION.blockBytes);
const compressed: Buffer[] = [];
for (const b of blocks) compressed.push(await compressBlock(COMPRESSION, b));
const compressMs = performance.now() - at;
at = performance.now();
const hash = createHash('sha256');
for (const c of compressed) hash.update(c);
hash.digest();
const sha256Ms = performance.now() - at;

// Why the ratio stops where it does: random material per event, which no codec compresses.
const CIPHERTEXT = /"c":"([A-Za-z0-9+/]+=*)"/g;
const MARKER = /\[\[pii:[^|\]]*\|([A-Za-z0-9_-]+)\]\]/g;
let ciphertextBytes = 0;
for (const b of bodies) {
  const textOf = b.toString('latin1');
  for (const m of textOf.matchAll(CIPHERTEXT)) ciphertextBytes += Buffer.from(m[1]!, 'base64').length;
  for (const m of textOf.matchAll(MARKER)) for (const c of Buffer.from(m[1]!, 'base64url').toString('latin1').matchAll(CIPHERTEXT)) ciphertextBytes += Buffer.from(c[1]!, 'base64').length;
}
// Random UUIDs: each event's event_id, each execution's execution_id (16 bytes of entropy at most each).
const randomBytesTotal = ciphertextBytes + 16 * records.length + 16 * EXECUTIONS;
let untokenizedRaw = 0;
let untokenizedStored = 0;
for (const b of blocksOf(raw.map((e) => type.toBuffer(e)), COMPRESSION.blockBytes)) {
  untokenizedRaw += b.length;
  untokenizedStored += (await compressBlock(COMPRESSION, b)).length;
}

// End to end with uploads to the real S3 endpoint, on a sample (moto keeps everything in memory).
const endpoints = loadEndpoints();
const s3 = createS3(endpoints.s3);
const bucket = `bench-archiver-${Date.now().toString(36)}`;
const sample = Math.min(records.length, 40_000);
const sampleMb = records.slice(0, sample).reduce((n, r) => n + r.value!.length - 5, 0) / (1024 * 1024);
const cleanup = new Cleanup();
let e2e: Awaited<ReturnType<typeof archiverRun>>;
try {
  cleanup.add('S3 client destroy', () => s3.destroy());
  // The bucket has no Object Lock: its versions, and then the bucket, can be deleted.
  cleanup.add(`delete bucket ${bucket}`, () => deleteBucket(s3, bucket));
  await bootstrapBucket(s3, { bucket, retention: loadRetention(), objectLock: false });
  e2e = await archiverRun(new ObjectStore(s3, bucket), sample);
} finally {
  await cleanup.run();
}

const result = {
  bench: 'archiver',
  records: records.length,
  raw_mb: round(mb),
  mb_per_s: round(mb / archSeconds),
  baseline_mb_per_s: round(mb / baseSeconds),
  ratio: round(baseSeconds / archSeconds, 3),
  // The machine is shared: each round pairs both sides back to back; the spread shows how much the load moved.
  round_ratios: arch.map((a, i) => round(base[i]! / a, 3)),
  // CPU seconds of both sides (main thread and thread pool): what the work costs, whatever else the machine runs.
  cpu_ratio: round(Math.min(...baseCpu) / Math.min(...archCpu), 3),
  mb_per_cpu_s: round(mb / Math.min(...archCpu)),
  baseline_mb_per_cpu_s: round(mb / Math.min(...baseCpu)),
  compression_ratio: round(rawBytes / archStored, 2),
  baseline_compression_ratio: round(rawBytes / baseStored, 2),
  e2e_mb_per_s: round(sampleMb / e2e.seconds),
  e2e_records: sample,
  roll_bytes: ROLL_BYTES,
  codec: COMPRESSION.codec,
  level: COMPRESSION.level,
  block_bytes: COMPRESSION.blockBytes,
  baseline: `deflate level ${LEVEL}, blocks of ${BLOCK}`,
  customers: CUSTOMERS,
  bytes_per_event: round(rawBytes / records.length, 0),
  ciphertext_bytes_per_event: round(ciphertextBytes / records.length, 1),
  random_bytes_per_event: round(randomBytesTotal / records.length, 1),
  // What the ratio could be if everything but the random material compressed to nothing.
  compression_bound: round(rawBytes / randomBytesTotal, 2),
  untokenized_compression_ratio: round(untokenizedRaw / untokenizedStored, 2),
  stage_ms: { check: round(checkMs, 0), compress: round(compressMs, 0), sha256: round(sha256Ms, 0) },
};
console.log(JSON.stringify(result));
