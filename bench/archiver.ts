/**
 * `npm run bench -- archiver`: archived MB/s and compression ratio of the
 * archiver against plain node:zlib deflate of the same records, same run.
 *
 * Records: tokenized audit events as the tokenizer leaves them (PII as
 * `{"$pii": {t, m, f, k, c}}` with an HMAC token and AES-GCM ciphertext, random
 * bytes that do not compress), Avro in the Confluent wire format, spread over
 * executions of a few workflows. Archiver: the service's own batch handler
 * (decode each record with its writer schema, check it, roll Avro container
 * files of AUDITLINE_ARCHIVER_ROLL_BYTES with deflate, SHA-256) with S3,
 * the index and the commits replaced by in-memory sinks, so the figure is
 * what one archiver process can encode; `e2e_mb_per_s` adds real uploads to
 * the S3 endpoint (moto locally) for a sample. Baseline: zlib deflateRaw,
 * same level and block size, of the same record bytes. Last line: one JSON object.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { deflateRaw } from 'node:zlib';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { createS3 } from '../core/clients/s3.js';
import { loadEndpoints } from '../core/endpoints.js';
import type { SourceRecord } from '../core/service/index.js';
import { Archiver, ObjectStore, WriterSchemas, type ArchiverSettings } from '../consumers/archiver/index.js';
import { bootstrapBucket } from '../infra/s3/bootstrap.js';
import { loadRetention } from '../infra/retention.js';
import { auditEventSchema, frame, payloadOf, SCHEMA_VERSION, type AuditEvent } from '../schemas/index.js';
import { round } from './stats.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const EXECUTIONS = Number(process.env.BENCH_EXECUTIONS ?? 25_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const ROLL_BYTES = Number(process.env.BENCH_ROLL_BYTES ?? 8 * 1024 * 1024);
const LEVEL = 6;
const BLOCK = 256 * 1024;
const say = (m: string) => process.stderr.write(`${m}\n`);

function pii(field: string, mask: string): { $pii: Record<string, unknown> } {
  return { $pii: { v: 1, t: randomBytes(32).toString('base64url'), m: mask, f: field, k: `sk_${randomBytes(8).toString('hex')}`, c: randomBytes(44).toString('base64') } };
}

function execution(i: number, t0: number): AuditEvent[] {
  const execution_id = randomUUID();
  const workflow_id = `WF-${String(i % 12).padStart(3, '0')}`;
  const producer = { service: 'billing-worker', host: `worker-${i % 8}`, client_version: '0.1.0', instance_id: `inst-${i % 8}` };
  let sequence = 0;
  const ev = (at: number, payload: AuditEvent['payload']): AuditEvent => ({ event_id: randomUUID(), event_time: at, execution_id, workflow_id, sequence: ++sequence, correlation_id: `trace-${i}`, producer, schema_version: SCHEMA_VERSION, payload });
  const failed = i % 7 === 0;
  const input = JSON.stringify({ customer_email: pii('customer_email', 'a***@example.com'), customer_name: pii('customer_name', 'A***'), invoice_id: `INV-${100000 + i}`, amount: 1000 + (i % 5000), currency: 'EUR', items: [{ sku: `SKU-${i % 40}`, qty: 1 + (i % 3) }] });
  return [
    ev(t0, payloadOf('ExecutionStarted', { workflow_name: 'Invoice sync', workflow_version: '1.4.0', trigger: 'webhook', triggered_by: { kind: 'service', id: 'svc-billing' }, start_time: t0, input, input_truncation: null, parent_execution_id: null })),
    ev(t0 + 40, payloadOf('StepFinished', { step_id: 1, step_name: 'fetch-invoice', attempt: 1, start_time: t0 + 1, end_time: t0 + 40, duration_ms: 39, status: failed ? 'failed' : 'success', input_data: JSON.stringify({ invoice_id: `INV-${100000 + i}` }), output_data: failed ? null : JSON.stringify({ status: 'open', amount: 1000 + (i % 5000), billing_address: pii('billing_address', '*** Main St') }), data_truncation: null, error: failed ? { type: 'TimeoutError', message: 'upstream timed out after 30s' } : null })),
    ev(t0 + 41, payloadOf('DecisionRecorded', { step_id: 1, branch_condition: 'amount > 10000', branch_taken: 'auto-approve', branch_reason: 'amount below threshold', condition_values: JSON.stringify({ amount: 1000 + (i % 5000) }) })),
    ev(t0 + 50, payloadOf('ExecutionFinished', { end_time: t0 + 50, duration_ms: 50, status: failed ? 'failed' : 'success', output: failed ? null : JSON.stringify({ approved: true }), error: failed ? { type: 'TimeoutError', message: 'step fetch-invoice failed' } : null })),
  ];
}

const { type, text } = auditEventSchema();
const registry = { schemaText: async () => text };
const t0 = Date.now() - 3_600_000;
const records: SourceRecord[] = [];
let rawBytes = 0;
for (let i = 0; i < EXECUTIONS; i++) {
  for (const e of execution(i, t0 + i * 10)) {
    const value = frame(1, type.toBuffer(e));
    rawBytes += value.length - 5;
    records.push({ topic: 'audit.events', partition: 0, offset: String(records.length), key: Buffer.from(e.execution_id), value, headers: { 'auditline-tokenized': Buffer.from('v1') }, timestamp: String(e.event_time) });
  }
}
const mb = rawBytes / (1024 * 1024);
say(`archiver bench: ${records.length} records, ${round(mb)} MB of Avro bodies, files of ${ROLL_BYTES} bytes, deflate level ${LEVEL}`);

const settings: ArchiverSettings = { storageClass: 'STANDARD', rollBytes: ROLL_BYTES, rollMs: 3_600_000, digestIntervalMs: 3_600_000, retentionDays: 2557, objectLock: false, requireTokenized: true, deflateLevel: LEVEL, retry: { initialMs: 100, maxMs: 1000 } };

async function archiverRun(store?: ObjectStore, limit = records.length): Promise<{ seconds: number; stored: number }> {
  let stored = 0;
  const sink = {
    putOnce: async (o: { key: string; body: Buffer; sha256: string }) => {
      stored += o.body.length;
      if (store) return store.putOnce(o as Parameters<ObjectStore['putOnce']>[0]);
      return { outcome: 'uploaded' as const, object: { key: o.key, versionId: undefined, size: o.body.length, sha256: o.sha256, storageClass: 'STANDARD', retainUntil: undefined, lockMode: undefined, restore: undefined } };
    },
    list: async (prefix: string) => (store ? store.list(prefix) : []),
  };
  const archiver = new Archiver(settings, {
    schemas: new WriterSchemas(registry),
    store: sink,
    index: { insert: async () => undefined },
    chain: { extend: async () => undefined },
    dlq: { publish: async () => undefined },
    commit: async () => undefined,
    logger: pino({ level: 'silent' }),
  });
  const signal = new AbortController().signal;
  const began = performance.now();
  for (let i = 0; i < limit; i += 5_000) await archiver.handler(records.slice(i, Math.min(limit, i + 5_000)), { signal });
  await archiver.flushAndStop();
  return { seconds: (performance.now() - began) / 1000, stored };
}

async function baselineRun(): Promise<{ seconds: number; stored: number }> {
  const deflate = promisify(deflateRaw);
  const began = performance.now();
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
  return { seconds: (performance.now() - began) / 1000, stored };
}

// Warm-up both sides (JIT, zlib pool), then alternate rounds; best of each.
await archiverRun(undefined, 20_000);
await baselineRun();
const arch: number[] = [];
const base: number[] = [];
let archStored = 0;
let baseStored = 0;
for (let r = 0; r < ROUNDS; r++) {
  const a = await archiverRun();
  const b = await baselineRun();
  arch.push(a.seconds);
  base.push(b.seconds);
  archStored = a.stored;
  baseStored = b.stored;
  say(`round ${r + 1}: archiver ${round(mb / a.seconds)} MB/s, baseline deflate ${round(mb / b.seconds)} MB/s`);
}
const archSeconds = Math.min(...arch);
const baseSeconds = Math.min(...base);

// End to end with uploads to the real S3 endpoint, on a sample (moto keeps everything in memory).
const endpoints = loadEndpoints();
const s3 = createS3(endpoints.s3);
const bucket = `bench-archiver-${Date.now().toString(36)}`;
await bootstrapBucket(s3, { bucket, retention: loadRetention(), objectLock: false });
const sample = Math.min(records.length, 40_000);
const sampleMb = records.slice(0, sample).reduce((n, r) => n + r.value!.length - 5, 0) / (1024 * 1024);
const e2e = await archiverRun(new ObjectStore(s3, bucket), sample);
s3.destroy();

const result = {
  bench: 'archiver',
  records: records.length,
  raw_mb: round(mb),
  mb_per_s: round(mb / archSeconds),
  baseline_mb_per_s: round(mb / baseSeconds),
  ratio: round(baseSeconds / archSeconds, 3),
  // The machine is shared: each round pairs both sides back to back; the spread shows how much the load moved.
  round_ratios: arch.map((a, i) => round(base[i]! / a, 3)),
  compression_ratio: round(rawBytes / archStored, 2),
  baseline_compression_ratio: round(rawBytes / baseStored, 2),
  e2e_mb_per_s: round(sampleMb / e2e.seconds),
  e2e_records: sample,
  roll_bytes: ROLL_BYTES,
  deflate_level: LEVEL,
};
console.log(JSON.stringify(result));
