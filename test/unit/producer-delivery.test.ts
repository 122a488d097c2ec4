import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { AuditlineError } from '../../core/errors.js';
import { MAX_RECORD_BYTES, recordBytes } from '../../core/clients/record-size.js';
import { Delivery } from '../../producers/delivery.js';
import { Dispatcher } from '../../producers/dispatcher.js';
import type { KafkaSender } from '../../producers/kafka-sender.js';
import { silentLogger } from '../../producers/logger.js';
import { ProducerMetrics } from '../../producers/metrics.js';
import { spoolFailed } from '../../producers/producer-errors.js';
import type { AckMode } from '../../producers/options.js';
import { RecordQueue, type QueuedRecord, type Settlement } from '../../producers/record-queue.js';
import { deferred } from '../../producers/signal.js';
import { Spool } from '../../producers/spool.js';
import type { SpoolRecord } from '../../producers/spool-format.js';
import { SpoolReplayer } from '../../producers/spool-replayer.js';
import { tempDir } from '../helpers/temp-dir.js';

/** Stands in for Kafka: fails while `down`, records every acknowledged batch. */
class ScriptedKafka {
  down = false;
  rejectValue: string | undefined;
  readonly acked: string[][] = [];
  readonly attempted: string[][] = [];
  /** `latency` stands for the round trip of a send. */
  constructor(private readonly latency: () => Promise<void>) {}
  async send(records: readonly SpoolRecord[]): Promise<void> {
    this.attempted.push(records.map((r) => r.value.toString()));
    await this.latency();
    if (this.down) throw new AuditlineError('KAFKA_UNAVAILABLE', 'scripted outage', { retriable: true });
    if (this.rejectValue && records.some((r) => r.value.toString() === this.rejectValue)) {
      throw new AuditlineError('AUDIT_REJECTED', 'audit event rejected by Kafka: MESSAGE_TOO_LARGE');
    }
    this.acked.push(records.map((r) => r.value.toString()));
  }
  async close(): Promise<void> {}
}

interface PipelineOptions {
  lingerMs?: number;
  maxBatchEvents?: number;
  /** The dispatcher's monotonic clock, also stamping enqueuedAt. @default performance.now */
  clock?: () => number;
  /** A send's round trip. @default 1 ms */
  latency?: () => Promise<void>;
  /** Spool size limit and segment size. @default 16 MiB, the spool's default */
  maxSpoolBytes?: number;
  segmentBytes?: number;
  /** The replayer's first pause after a failure. @default 10 ms */
  replayBackoffMs?: number;
}

async function pipeline(ack: AckMode, options: PipelineOptions = {}) {
  const clock = options.clock ?? (() => performance.now());
  const kafka = new ScriptedKafka(options.latency ?? (() => new Promise((r) => setTimeout(r, 1))));
  const sender = kafka as unknown as KafkaSender;
  const metrics = new ProducerMetrics();
  const spool = await Spool.open({ dir: tempDir('auditline-delivery-unit'), instanceId: randomUUID(), maxBytes: options.maxSpoolBytes ?? 1 << 24, logger: silentLogger, ...(options.segmentBytes ? { segmentBytes: options.segmentBytes } : {}) });
  const replayer = new SpoolReplayer(spool, sender, { maxBatchEvents: 100, maxBatchBytes: 1 << 20, backoffMs: options.replayBackoffMs ?? 10, backoffMaxMs: Math.max(20, options.replayBackoffMs ?? 0) }, metrics, silentLogger);
  replayer.start();
  const queue = new RecordQueue(1000, 1 << 24);
  const delivery = new Delivery(ack, sender, () => spool, () => replayer.wake(), metrics, silentLogger, () => replayer.drain(2_000));
  const dispatcher = new Dispatcher(queue, { lingerMs: options.lingerMs ?? 2, maxBatchEvents: options.maxBatchEvents ?? 100, maxBatchBytes: 1 << 20 }, (b) => delivery.deliver(b), clock);
  dispatcher.start();
  const send = (value: string): Promise<Settlement> => {
    const ack = deferred<Settlement>();
    const spooled = { key: Buffer.from('exec-1'), value: Buffer.from(value), headers: {} };
    const record: QueuedRecord = {
      record: spooled,
      bytes: recordBytes(spooled),
      enqueuedAt: clock(),
      ack,
      eventId: value,
      executionId: 'exec-1',
    };
    queue.push(record);
    dispatcher.wake();
    return ack.promise;
  };
  const stop = async () => {
    await dispatcher.stop();
    await replayer.stop();
    await spool.close();
  };
  return { kafka, spool, replayer, dispatcher, send, stop };
}

test('events are batched: one send carries everything queued within the linger time, in order', async () => {
  const p = await pipeline('broker', { lingerMs: 20 });
  const outcomes = await Promise.all(['e1', 'e2', 'e3', 'e4'].map(p.send));
  assert.deepEqual(outcomes, ['delivered', 'delivered', 'delivered', 'delivered']);
  assert.deepEqual(p.kafka.acked, [['e1', 'e2', 'e3', 'e4']]);
  await p.stop();
});

/** Runs pending I/O callbacks and promise continuations (setImmediate is real in the tests that mock timers). */
const flush = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Flushes until `done()` holds; fails naming `what` if it does not within 1000 turns (no clock time passes meanwhile). */
async function settle(what: string, done: () => boolean): Promise<void> {
  for (let i = 0; i < 1_000 && !done(); i++) await flush();
  assert.ok(done(), `${what}: did not happen while the clock stood still`);
}

test('a batch that fills leaves at once; a partial one waits for the linger time; events pushed while one is in flight form the next', async (t) => {
  // The clock and the linger timer are mocked: time moves only by tick(), so "at once" means "with the clock standing still".
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 0 });
  const p = await pipeline('broker', { lingerMs: 300, maxBatchEvents: 3, clock: () => Date.now(), latency: flush });
  const full = Promise.all(['f1', 'f2', 'f3'].map(p.send));
  await settle('the full batch sent without waiting for the linger timer', () => p.kafka.acked.length === 1);
  assert.deepEqual(await full, ['delivered', 'delivered', 'delivered']);

  const lone = p.send('lone');
  await flush();
  t.mock.timers.tick(299);
  await flush();
  assert.deepEqual(p.kafka.attempted, [['f1', 'f2', 'f3']], 'a lone event waits for others to share its batch');
  t.mock.timers.tick(1);
  await settle('the lone event sent once it waited the linger time', () => p.kafka.acked.length === 2);
  assert.equal(await lone, 'delivered');

  const rest = Promise.all(['a', 'b', 'c', 'd', 'e', 'f', 'g'].map(p.send));
  await settle('the two full batches sent', () => p.kafka.acked.length === 4);
  await flush();
  assert.equal(p.kafka.attempted.length, 4, 'the partial batch of g waits for the linger time');
  t.mock.timers.tick(300);
  await settle('the partial batch sent after the linger time', () => p.kafka.acked.length === 5);
  assert.ok((await rest).every((o) => o === 'delivered'));
  assert.deepEqual(p.kafka.acked, [['f1', 'f2', 'f3'], ['lone'], ['a', 'b', 'c'], ['d', 'e', 'f'], ['g']]);
  await p.stop();
});

test('while anything is spooled, newer events queue behind it, and Kafka gets them all in order', async () => {
  const p = await pipeline('broker');
  p.kafka.down = true;
  assert.equal(await p.send('e1'), 'spooled');
  assert.equal(await p.send('e2'), 'spooled');
  assert.equal(await p.send('e3'), 'spooled');
  // Only e1 was tried directly; e2 and e3 went straight to the spool, behind it: every replay attempt so far (how
  // many depends on the retry timing) starts at e1 and keeps the order.
  assert.deepEqual(p.kafka.attempted[0], ['e1'], 'the first attempt is e1 alone, sent directly');
  for (const batch of p.kafka.attempted) assert.deepEqual(batch, ['e1', 'e2', 'e3'].slice(0, batch.length), JSON.stringify(p.kafka.attempted));
  p.kafka.down = false;
  await p.replayer.drain(5000);
  assert.equal(p.spool.pendingEvents, 0);
  assert.equal(await p.send('e4'), 'delivered', 'direct again once the spool is empty');
  assert.deepEqual(p.kafka.acked.flat(), ['e1', 'e2', 'e3', 'e4']);
  await p.stop();
});

test("ack 'spool': every event is durable in the spool first, then reaches Kafka in order", async () => {
  const p = await pipeline('spool');
  const outcomes = await Promise.all(['a', 'b', 'c'].map(p.send));
  assert.deepEqual(outcomes, ['spooled', 'spooled', 'spooled']);
  await p.replayer.drain(5000);
  assert.deepEqual(p.kafka.acked.flat(), ['a', 'b', 'c']);
  await p.stop();
});

test('a record Kafka refuses fails alone; the rest of its batch is delivered', async () => {
  const p = await pipeline('broker', { lingerMs: 20 });
  p.kafka.rejectValue = 'bad';
  const results = await Promise.allSettled(['ok1', 'bad', 'ok2'].map(p.send));
  assert.deepEqual(results.map((r) => r.status), ['fulfilled', 'rejected', 'fulfilled']);
  assert.equal((results[1] as PromiseRejectedResult).reason.code, 'AUDIT_REJECTED');
  assert.deepEqual(p.kafka.acked.flat(), ['ok1', 'ok2']);
  await p.stop();
});

test('backpressure: beyond the memory bound events wait in line, in order', () => {
  const q = new RecordQueue(2, 1 << 20);
  const mk = (id: string): QueuedRecord => ({ record: { key: Buffer.alloc(0), value: Buffer.from(id), headers: {} }, bytes: 1, enqueuedAt: 0, ack: deferred(), eventId: id, executionId: 'x' });
  for (const id of ['1', '2', '3', '4', '5']) q.push(mk(id));
  assert.equal(q.size, 2, 'only two admitted');
  assert.equal(q.total, 5);
  assert.deepEqual(q.take(10, 1 << 20).map((r) => r.eventId), ['1', '2']);
  assert.deepEqual(q.take(10, 1 << 20).map((r) => r.eventId), ['3', '4']);
  assert.deepEqual(q.take(10, 1 << 20).map((r) => r.eventId), ['5']);
});

test('backpressure: the waiting line is bounded too; a record beyond it is refused, and room made by delivery is used again', () => {
  const q = new RecordQueue(2, 1 << 20, 3);
  const mk = (id: string): QueuedRecord => ({ record: { key: Buffer.alloc(0), value: Buffer.from(id), headers: {} }, bytes: 1, enqueuedAt: 0, ack: deferred(), eventId: id, executionId: 'x' });
  assert.deepEqual(['1', '2', '3', '4', '5', '6'].map((id) => q.push(mk(id))), [true, true, true, true, true, false], 'two admitted, three waiting, the sixth refused');
  assert.equal(q.total, 5);
  q.take(10, 1 << 20);
  assert.equal(q.push(mk('7')), true, 'delivery made room');
  assert.deepEqual([...q.take(10, 1 << 20), ...q.take(10, 1 << 20)].map((r) => r.eventId), ['3', '4', '5', '7']);
});

test('an event larger than a Kafka record may be is refused at once, in spool mode too, and the rest of its batch goes on', async () => {
  for (const ack of ['broker', 'spool'] as const) {
    const p = await pipeline(ack);
    try {
      const big = 'x'.repeat(MAX_RECORD_BYTES);
      const results = await Promise.allSettled([p.send('a'), p.send(big), p.send('b')]);
      assert.deepEqual(results.map((r) => r.status), ['fulfilled', 'rejected', 'fulfilled'], ack);
      const err = (results[1] as PromiseRejectedResult).reason as AuditlineError;
      assert.equal(err.code, 'AUDIT_REJECTED');
      assert.equal(err.retriable, false);
      assert.match(err.message, /bytes encoded, above the \d+ a Kafka record may have; lower maxPayloadBytes/);
      for (let i = 0; i < 200 && !['a', 'b'].every((v) => p.kafka.acked.flat().includes(v)); i++) await new Promise((r) => setTimeout(r, 10));
      assert.ok(['a', 'b'].every((v) => p.kafka.acked.flat().includes(v)), `${ack}: the others reached Kafka`);
      assert.ok(!p.kafka.attempted.flat().includes(big), `${ack}: never sent nor spooled`);
    } finally {
      await p.stop();
    }
  }
});

test('a full spool while Kafka is back: the event waits for the replay to make room instead of failing', async () => {
  // A long replay backoff: when Kafka is back, the spool is still full until something kicks the replayer.
  const p = await pipeline('broker', { maxSpoolBytes: 1024, segmentBytes: 128, replayBackoffMs: 60_000 });
  try {
    p.kafka.down = true;
    let refused: unknown;
    for (let i = 0; i < 100 && refused === undefined; i++) await p.send(`outage-${i}`).catch((err: unknown) => (refused = err));
    assert.match(String(refused), /spool is full/, 'the spool filled up during the outage');
    assert.ok(p.spool.pendingEvents > 0);
    p.kafka.down = false;
    assert.equal(await p.send('after'), 'spooled', 'behind the spooled events, once the replay made room');
    for (let i = 0; i < 200 && !p.kafka.acked.flat().includes('after'); i++) await new Promise((r) => setTimeout(r, 10));
    const acked = p.kafka.acked.flat();
    assert.ok(acked.includes('after'));
    assert.ok(acked.indexOf('after') > acked.indexOf('outage-0'), 'still in order');
  } finally {
    await p.stop();
  }
});

test('Kafka down and the spool failing: AUDIT_UNAVAILABLE carries both errors as its cause, and the Kafka error type is logged', async () => {
  const kafkaError = new AuditlineError('KAFKA_UNAVAILABLE', 'send failed: NOT_ENOUGH_REPLICAS', { retriable: true, details: { kafkaError: 'NOT_ENOUGH_REPLICAS' } });
  const spoolError = spoolFailed('write failed', new Error('ENOSPC: no space left on device'), { spoolDir: '/var/spool/audit' });
  const sender = { send: async () => Promise.reject(kafkaError) } as unknown as KafkaSender;
  // A spool with nothing pending (so the batch is sent first) whose append fails: a full disk.
  const spool = { pendingEvents: 0, dir: '/var/spool/audit', append: async () => Promise.reject(spoolError) } as unknown as Spool;
  const logged: { level: string; fields: Record<string, unknown>; msg: string }[] = [];
  const log = (level: string) => (fields: Record<string, unknown>, msg: string) => void logged.push({ level, fields, msg });
  const logger = { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') };
  const delivery = new Delivery('broker', sender, () => spool, () => {}, new ProducerMetrics(), logger);
  const secret = 'customer-secret-value';
  const spooled = { key: Buffer.from('exec-1'), value: Buffer.from(secret), headers: {} };
  const ack = deferred<Settlement>();
  await delivery.deliver([{ record: spooled, bytes: recordBytes(spooled), enqueuedAt: 0, ack, eventId: 'e1', executionId: 'exec-1' }]);
  const err = await ack.promise.then(
    () => assert.fail('resolved'),
    (e: unknown) => e as AuditlineError,
  );
  assert.equal(err.code, 'AUDIT_UNAVAILABLE');
  assert.equal(err.retriable, true);
  assert.match(err.message, /Kafka is unavailable \(NOT_ENOUGH_REPLICAS\) and the spool failed: spool write failed/);
  assert.ok(err.cause instanceof AggregateError, `cause is ${String(err.cause)}`);
  assert.deepEqual(err.cause.errors, [kafkaError, spoolError], 'the Kafka error, then the spool error');
  assert.equal(err.details.kafkaError, 'NOT_ENOUGH_REPLICAS');
  const entry = logged.find((l) => l.level === 'error');
  assert.ok(entry, JSON.stringify(logged));
  assert.equal(entry.fields.kafkaError, 'NOT_ENOUGH_REPLICAS');
  assert.match(String(entry.fields.spoolError), /spool write failed/);
  assert.ok(!JSON.stringify(logged).includes(secret) && !err.message.includes(secret), 'no payload values');
});

test('flush (dispatcher drain) resolves once the events queued before it are settled, though other workflows keep recording', async () => {
  // Each send waits for a gate, so the test decides when Kafka answers; events keep arriving while one is in flight.
  const gates: (() => void)[] = [];
  const p = await pipeline('broker', { lingerMs: 0, latency: () => new Promise<void>((resolve) => gates.push(resolve)) });
  const first = p.send('before-flush');
  await settle('the first batch in flight', () => gates.length === 1);
  let drained = false;
  const drain = p.dispatcher.drain().then(() => (drained = true));
  const later: Promise<Settlement>[] = [p.send('after-flush-1')];
  gates.shift()!();
  assert.equal(await first, 'delivered');
  await settle('the next batch in flight', () => gates.length === 1);
  later.push(p.send('after-flush-2'));
  await settle('flush resolved: everything recorded before it was delivered', () => drained);
  while (gates.length > 0 || p.kafka.acked.flat().length < 3) {
    gates.shift()?.();
    await flush();
  }
  await drain;
  assert.deepEqual(await Promise.all(later), ['delivered', 'delivered']);
  await p.stop();
});

/**
 * Waits until `done()` holds, failing naming `what` after `timeoutMs` of real time: for steps that pass through the
 * spool's files (writes, position saves), whose I/O takes real time however few turns of the event loop it needs.
 */
async function settleOnDisk(what: string, done: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!done() && performance.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 1));
  assert.ok(done(), `${what}: did not happen within ${timeoutMs} ms`);
}

test("the replayer's drain (flush) ends once what the spool held was acknowledged, though newer events keep being spooled", async () => {
  const gates: (() => void)[] = [];
  const p = await pipeline('spool', { lingerMs: 0, latency: () => new Promise<void>((resolve) => gates.push(resolve)) });
  assert.equal(await p.send('spooled-before'), 'spooled');
  await settleOnDisk('the replay of the first event in flight', () => gates.length === 1);
  let drained = false;
  const drain = p.replayer.drain(60_000).then(() => (drained = true));
  assert.equal(await p.send('spooled-after'), 'spooled');
  gates.shift()!();
  await settleOnDisk('the replay of the newer event in flight', () => gates.length === 1);
  await settleOnDisk('drain resolved: what the spool held when it was called reached Kafka', () => drained);
  assert.deepEqual(p.kafka.acked.flat(), ['spooled-before']);
  gates.shift()!();
  await settleOnDisk('the newer event replayed', () => p.spool.pendingEvents === 0);
  await drain;
  await p.stop();
});
