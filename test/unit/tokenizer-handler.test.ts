import { test } from 'node:test';
import assert from 'node:assert/strict';
import kafkajs, { type Message } from 'kafkajs';
import { AuditlineError, isAuditlineError } from '../../core/errors.js';
import { BatchAbandonedError, deadLetterMessage, type DeadLetter, type SourceRecord } from '../../core/service/index.js';
import { loadTokenizerConfig } from '../../consumers/tokenizer/config.js';
import { newDataKey, TokenKey } from '../../consumers/tokenizer/crypto.js';
import { createSecretKey } from 'node:crypto';
import { createTokenizerHandler, TOKENIZED_HEADER } from '../../consumers/tokenizer/handler.js';
import { rewriteTokens, type PiiToken } from '../../consumers/tokenizer/pii-format.js';
import { scannedFieldPaths } from '../../core/pii/scanned-fields.js';
import { scanEvent } from '../../consumers/tokenizer/tokenize-event.js';
import { chunkBySize, MAX_RECORD_BYTES, MAX_SEND_BYTES, recordBytes } from '../../core/clients/record-size.js';
import { PartitionTransactions, type TransactionalOutput } from '../../consumers/tokenizer/transactions.js';
import { TokenizerMetrics } from '../../consumers/tokenizer/metrics.js';
import { createLogger } from '../../core/logger.js';
import { Registry } from 'prom-client';
import type { AuditEvent } from '../../schemas/index.js';
import { canaryValues, MemoryKeys, piiExecution, testKeys } from '../helpers/tokenizer-fixtures.js';

const tokenKey = new TokenKey(Buffer.alloc(32, 9));
const policy = { piiFields: new Set(['customer_email', 'customer_name', 'phone_number', 'billing_address']), detectors: new Set(['email', 'phone'] as const), subjectEmailField: 'customer_email' };

function record(offset: number, value: Buffer | null, key = 'k'): SourceRecord {
  return { topic: 'raw', partition: 2, offset: String(offset), key: Buffer.from(key), value, headers: { origin: 'test' }, timestamp: '1700000000000' };
}
const enc = (e: AuditEvent) => Buffer.from(`E${JSON.stringify(e)}`);

function harness(options: { floor?: bigint; commitError?: unknown; stored?: Record<string, string>; metrics?: TokenizerMetrics } = {}) {
  const commits: { partition: number; outputs: readonly TransactionalOutput[]; next: string }[] = [];
  const saved: { executionId: string; subject: string }[] = [];
  const memory = new Map<string, string>();
  const keys = new MemoryKeys();
  const handler = createTokenizerHandler({
    codec: {
      decode: async (b) => {
        const text = b.toString();
        if (text === 'registry-down') throw new AuditlineError('REGISTRY_UNAVAILABLE', 'down', { retriable: true });
        if (!text.startsWith('E')) throw new AuditlineError('WIRE_FORMAT_INVALID', `magic byte is ${b[0]}`);
        return JSON.parse(text.slice(1)) as AuditEvent;
      },
    },
    encoder: { encode: (e) => Buffer.from(JSON.stringify(e)) },
    keys,
    executions: {
      get: (id) => memory.get(id),
      remember: (id, s) => void memory.set(id, s),
      load: async (ids) => {
        let n = 0;
        for (const id of ids) if (options.stored?.[id]) memory.set(id, options.stored[id]!), n++;
        return n;
      },
      save: async (rows) => void saved.push(...rows),
    },
    tokenKey,
    policy,
    paths: scannedFieldPaths(),
    transactions: {
      ready: async () => options.floor ?? 0n,
      commit: async (partition, outputs, next) => {
        if (options.commitError) throw options.commitError;
        commits.push({ partition, outputs, next });
      },
    },
    dlq: { topic: 'dlq', messages: (letters: readonly DeadLetter[]) => letters.map((l) => deadLetterMessage(l, 'tokenizer')) },
    eventsTopic: 'events',
    ...(options.metrics ? { metrics: options.metrics } : {}),
  });
  return { handler, commits, saved, keys, run: (records: SourceRecord[]) => handler(records, { signal: new AbortController().signal }) };
}

const tokensOf = (m: Message): PiiToken[] => {
  const out: PiiToken[] = [];
  const event = JSON.parse(String(m.value)) as AuditEvent;
  const value = Object.values(event.payload)[0] as Record<string, unknown>;
  for (const v of Object.values(value)) if (typeof v === 'string') rewriteTokens(v, (t) => void out.push(t));
  return out;
};

test('a batch: events tokenized under their subject, poison records dead-lettered, all in one commit with the next offset', async () => {
  const a = piiExecution({ status: 'failed' });
  const b = piiExecution({ status: 'failed' });
  const bSubject = tokenKey.subject('email:someone-else@example.com');
  const registry = new Registry();
  const h = harness({ stored: { [b[0]!.execution_id]: bSubject }, metrics: new TokenizerMetrics(registry) });
  const records = [record(10, enc(a[0]!)), record(11, Buffer.from('garbage')), record(12, enc(a[1]!)), record(13, null), record(14, enc(b[1]!)), record(15, enc(a[2]!))];
  const { deadLetters } = await h.run(records);

  assert.deepEqual(deadLetters.map((d) => [d.record.offset, d.code]), [['11', 'WIRE_FORMAT_INVALID'], ['13', 'WIRE_FORMAT_INVALID']]);
  assert.match(deadLetters[0]!.reason, /not in the Confluent wire format/);
  assert.equal(h.commits.length, 1);
  const [{ outputs, next, partition }] = h.commits as [(typeof h.commits)[number]];
  assert.equal(partition, 2);
  assert.equal(next, '16');
  const [events, dlq] = outputs as [TransactionalOutput, TransactionalOutput];
  assert.equal(events.topic, 'events');
  assert.equal(events.messages.length, 4);
  assert.equal(dlq.topic, 'dlq');
  assert.equal(dlq.messages.length, 2);
  assert.equal(String(events.messages[0]!.headers![TOKENIZED_HEADER]), 'v1');
  assert.equal(String(events.messages[0]!.headers!.origin), 'test', 'source headers are kept');
  assert.equal(events.messages[0]!.timestamp, '1700000000000', 'source timestamp kept');

  const all = events.messages.map((m) => String(m.value)).join('\n');
  for (const canary of [...canaryValues(a), ...canaryValues(b)]) assert.ok(!all.includes(canary), `no cleartext ${canary.slice(0, 6)}…`);

  const aKey = h.keys.bySubject.get(tokenKey.subject(`email:${canaryValues(a)[0]}`))!;
  const keyIds = (i: number) => [...new Set(tokensOf(events.messages[i]!).map((t) => t.k))];
  assert.deepEqual([keyIds(0), keyIds(1), keyIds(3)], [[aKey.keyId], [aKey.keyId], [aKey.keyId]], 'the execution subject keys its later events');
  assert.deepEqual(keyIds(2), [h.keys.bySubject.get(bSubject)!.keyId], 'a later event of an execution started elsewhere: subject from the store');
  assert.deepEqual(h.saved, [{ executionId: a[0]!.execution_id, subject: aKey.subject }]);
  assert.equal(tokensOf(events.messages[0]!).find((t) => t.f === 'customer_email')!.t, tokenKey.token(canaryValues(a)[0]));

  // Every value replaced is counted by its source: keyed (in JSON or named in text, as the decision's condition) or a detector's.
  const found = [a[0]!, a[1]!, b[1]!, a[2]!].flatMap((e) => scanEvent(e, {}, policy, scannedFieldPaths()).fields.flatMap((f) => f.scan.slots));
  const counted = (await registry.getSingleMetric('auditline_tokenizer_pii_values_total')!.get()).values;
  const bySource = Object.fromEntries(counted.map((v) => [v.labels.source, v.value]));
  assert.deepEqual(bySource, { field: found.filter((x) => x.keyed).length, email: found.filter((x) => x.field === 'email').length, phone: found.filter((x) => x.field === 'phone').length });
  assert.ok(found.some((x) => x.keyed && x.inline), 'the batch has a value named by its key inside text');
});

test('records below the committed offset (a predecessor committed them) are skipped; nothing left means no transaction', async () => {
  const a = piiExecution();
  const h = harness({ floor: 12n });
  await h.run([record(10, enc(a[0]!)), record(11, enc(a[1]!)), record(12, enc(a[2]!)), record(13, enc(a[3]!))]);
  assert.equal(h.commits[0]!.outputs[0]!.messages.length, 2);
  assert.equal(h.commits[0]!.next, '14');
  const none = harness({ floor: 20n });
  assert.deepEqual(await none.run([record(10, enc(a[0]!))]), { deadLetters: [] });
  assert.equal(none.commits.length, 0);
});

test('a fenced producer abandons the batch; a retriable failure throws for a retry; nothing is committed', async () => {
  const a = piiExecution();
  const fenced = harness({ commitError: new AuditlineError('PRODUCER_FENCED', 'taken over') });
  await assert.rejects(fenced.run([record(1, enc(a[0]!))]), (e) => e instanceof BatchAbandonedError);
  const down = harness();
  await assert.rejects(down.run([record(1, enc(a[0]!)), record(2, Buffer.from('registry-down'))]), (e) => isAuditlineError(e, 'REGISTRY_UNAVAILABLE'));
  assert.equal(down.commits.length, 0);
});

test('tokenizer settings: keys required and validated without echoing them, topics distinct, retry below the session timeout', () => {
  const keys = testKeys();
  const env = { AUDITLINE_TOKENIZER_MASTER_KEY: keys.masterKey, AUDITLINE_TOKENIZER_TOKEN_KEY: keys.tokenKey };
  const config = loadTokenizerConfig(env);
  assert.equal(config.runtime.groupId, 'auditline-tokenizer');
  assert.equal(config.runtime.sourceTopic, 'audit.raw');
  assert.equal(config.eventsTopic, 'audit.events');
  assert.equal(config.transactionalIdPrefix, 'auditline-tokenizer');
  assert.deepEqual(config.piiFields, ['customer_email', 'customer_name', 'phone_number', 'billing_address']);
  assert.equal(config.keys.masterKey.length, 32);
  const refused = (over: Record<string, string | undefined>, pattern: RegExp) =>
    assert.throws(
      () => loadTokenizerConfig({ ...env, ...over }),
      (e) => isAuditlineError(e, 'CONFIG_INVALID') && pattern.test(e.message) && !e.message.includes(keys.masterKey) && !e.message.includes('c2VjcmV0'),
    );
  refused({ AUDITLINE_TOKENIZER_MASTER_KEY: undefined }, /AUDITLINE_TOKENIZER_MASTER_KEY: required/);
  refused({ AUDITLINE_TOKENIZER_MASTER_KEY: 'c2VjcmV0' }, /AUDITLINE_TOKENIZER_MASTER_KEY: must be exactly 32 bytes/);
  refused({ AUDITLINE_TOKENIZER_TOKEN_KEY: keys.masterKey }, /TOKEN_KEY: must differ/);
  refused({ AUDITLINE_TOKENIZER_MASTER_KEY_FILE: '/nonexistent' }, /not both/);
  refused({ AUDITLINE_TOKENIZER_EVENTS_TOPIC: 'audit.raw' }, /EVENTS_TOPIC: must differ/);
  refused({ AUDITLINE_TOKENIZER_SESSION_TIMEOUT_MS: '6000' }, /RETRY_MAX_MS: must be at most half/);
  refused({ AUDITLINE_TOKENIZER_DETECTORS: 'email,ssn' }, /DETECTORS/);
});

test('outputs are sent in runs the broker accepts: at most MAX_SEND_BYTES each, in order, none empty', () => {
  const message = (i: number, bytes: number): Message => ({ key: `k${i}`, value: Buffer.alloc(bytes, 1), headers: { [TOKENIZED_HEADER]: 'v1' } });
  // 2 000 tokenized events of 700 bytes: 1.4 MB, which one record batch may not hold.
  const batch = Array.from({ length: 2000 }, (_, i) => message(i, 700));
  const chunks = chunkBySize(batch);
  assert.ok(chunks.length >= 3, `${chunks.length} runs`);
  for (const c of chunks) assert.ok(c.length > 0 && c.reduce((s, m) => s + recordBytes(m), 0) <= MAX_SEND_BYTES);
  assert.deepEqual(chunks.flat(), batch, 'every record once, in order');
  assert.deepEqual(chunkBySize([]), []);
  const big = message(0, MAX_SEND_BYTES + 1);
  assert.deepEqual(chunkBySize([message(1, 10), big, message(2, 10)]).map((c) => c.length), [1, 1, 1], 'a record above the run size goes alone');
});

test('an event too large once tokenized is dead-lettered with its size; the rest of the batch is written', async () => {
  const [started, step] = piiExecution({ status: 'failed' }) as [AuditEvent, AuditEvent];
  const huge = structuredClone(step);
  const payload = Object.values(huge.payload)[0] as { output_data: string | null };
  // Raw it is below the limit; the tokenizer's output (same bytes plus tokens) is above it.
  payload.output_data = JSON.stringify({ blob: 'x'.repeat(MAX_RECORD_BYTES) });
  const h = harness();
  const { deadLetters } = await h.run([record(1, enc(started)), record(2, enc(huge))]);
  assert.deepEqual(deadLetters.map((d) => [d.record.offset, d.code]), [['2', 'TOKENIZE_FAILED']]);
  assert.match(deadLetters[0]!.reason, new RegExp(`event ${huge.event_id} is \\d+ bytes once tokenized, above the ${MAX_RECORD_BYTES}`));
  const [events, dlq] = h.commits[0]!.outputs as [TransactionalOutput, TransactionalOutput];
  assert.equal(events.messages.length, 1);
  assert.equal(dlq.messages.length, 1);
});

test('the floor follows the commits of a kept partition; a partition whose producer was dropped (rebalance) and started again by commit, with the committed offset moved meanwhile, sends nothing and asks for the batch again', async () => {
  let committed = '100';
  const sent: string[] = [];
  const transaction = async () => ({
    abort: async () => undefined,
    send: async ({ topic }: { topic: string }) => void sent.push(topic),
    sendOffsets: async () => undefined,
    commit: async () => undefined,
    isActive: () => true,
  });
  // Only what PartitionTransactions uses of kafkajs: the real broker behaviour is covered by tokenizer-exactly-once.
  const kafka = { producer: () => ({ connect: async () => undefined, disconnect: async () => undefined, transaction }) };
  const admin = { fetchOffsets: async () => [{ topic: 'raw', partitions: [{ partition: 0, offset: committed }] }] };
  const tx = new PartitionTransactions({
    kafka: kafka as never,
    admin: admin as never,
    sourceTopic: 'raw',
    groupId: 'g',
    transactionalIdPrefix: 'g-txn',
    transactionTimeoutMs: 60_000,
    compression: 'none',
    logger: createLogger('tx-test', 'silent'),
    metrics: new TokenizerMetrics(new Registry()),
  });
  const out = [{ topic: 'events', messages: [{ value: 'x' }] }];
  const floor = await tx.ready(0);
  assert.equal(floor, 100n);
  await tx.commit(0, out, '150', floor);
  assert.deepEqual(sent, ['events'], 'same producer, same floor: committed');

  // A rebalance that keeps the partition may make the consumer fetch the group's offset before that commit's markers
  // are written (100 still) and hand out records 100-149 again: the floor is where this instance's commit moved it.
  tx.assign([0]);
  const next = await tx.ready(0);
  assert.equal(next, 150n, 'the floor follows the commits of this instance');

  tx.assign([]); // the partition went to another instance, which committed up to 200
  committed = '200';
  await assert.rejects(tx.commit(0, out, '250', next), (e) => isAuditlineError(e, 'KAFKA_UNAVAILABLE') && e.retriable && /moved from 150 to 200/.test(e.message));
  assert.deepEqual(sent, ['events'], 'nothing of the stale batch was sent');
  assert.equal(await tx.ready(0), 200n, 'the batch is filtered again from the new offset');
});

test('the output batches carry the configured codec (AUDITLINE_TOKENIZER_COMPRESSION): none by default, gzip when set', async () => {
  const { CompressionTypes } = kafkajs;
  const codecs: unknown[] = [];
  for (const setting of [undefined, 'gzip', 'none']) {
    const keys = testKeys();
    const config = loadTokenizerConfig({ AUDITLINE_TOKENIZER_MASTER_KEY: keys.masterKey, AUDITLINE_TOKENIZER_TOKEN_KEY: keys.tokenKey, ...(setting ? { AUDITLINE_TOKENIZER_COMPRESSION: setting } : {}) });
    const transaction = async () => ({
      abort: async () => undefined,
      send: async ({ compression }: { compression?: unknown }) => void codecs.push(compression),
      sendOffsets: async () => undefined,
      commit: async () => undefined,
      isActive: () => true,
    });
    const kafka = { producer: () => ({ connect: async () => undefined, disconnect: async () => undefined, transaction }) };
    const admin = { fetchOffsets: async () => [{ topic: 'raw', partitions: [{ partition: 0, offset: '0' }] }] };
    const tx = new PartitionTransactions({ kafka: kafka as never, admin: admin as never, sourceTopic: 'raw', groupId: 'g', transactionalIdPrefix: 'g-txn', transactionTimeoutMs: 60_000, compression: config.compression, logger: createLogger('tx-test', 'silent'), metrics: new TokenizerMetrics(new Registry()) });
    await tx.commit(0, [{ topic: 'events', messages: [{ value: 'x' }] }], '1');
  }
  assert.deepEqual(codecs, [CompressionTypes.None, CompressionTypes.GZIP, CompressionTypes.None]);
  const keys = testKeys();
  assert.throws(() => loadTokenizerConfig({ AUDITLINE_TOKENIZER_MASTER_KEY: keys.masterKey, AUDITLINE_TOKENIZER_TOKEN_KEY: keys.tokenKey, AUDITLINE_TOKENIZER_COMPRESSION: 'lz4' }), (e) => isAuditlineError(e, 'CONFIG_INVALID') && /AUDITLINE_TOKENIZER_COMPRESSION/.test(e.message));
});

test('events published before their subject was erased (tokenized only now) are sealed under a key that is never stored; later events under the stored key', async () => {
  const h = harness();
  const events = piiExecution({ email: 'gone@example.com', status: 'failed' });
  const subject = tokenKey.subject('email:gone@example.com');
  // The key made after the erasure at 1700000000000 (the store attaches the erasure time to the subject's keys).
  const stored = { subject, keyId: 'kAFTER', key: createSecretKey(newDataKey()), createdAt: Date.now(), erasedAt: 1_700_000_000_000 };
  h.keys.bySubject.set(subject, stored);
  h.keys.byId.set(stored.keyId, stored);

  await h.run(events.map((e, i) => record(i, enc(e)))); // published at 1700000000000: not after the erasure
  const before = h.commits[0]!.outputs[0]!.messages.flatMap(tokensOf);
  assert.ok(before.length > 0 && before.every((t) => t.k === 'erased'), JSON.stringify(before.map((t) => t.k)));

  await h.run(events.map((e, i) => ({ ...record(10 + i, enc(e)), timestamp: '1700000000001' })));
  const after = h.commits[1]!.outputs[0]!.messages.flatMap(tokensOf);
  assert.ok(after.length > 0 && after.every((t) => t.k === 'kAFTER'), 'published after the erasure: the customer came back, readable as usual');
  assert.equal(before[0]!.t, after[0]!.t, 'tokens are the same either way: equality search still finds the subject');

  // A producer's spool sent after the erasure: the Kafka timestamp is later, the events happened before it.
  const spooled = piiExecution({ email: 'gone@example.com' }).map((e) => ({ ...e, event_time: 1_699_999_999_000 }));
  await h.run(spooled.map((e, i) => ({ ...record(20 + i, enc(e)), timestamp: '1700000000001' })));
  const late = h.commits[2]!.outputs[0]!.messages.flatMap(tokensOf);
  assert.ok(late.length > 0 && late.every((t) => t.k === 'erased'), JSON.stringify(late.map((t) => t.k)));
});
