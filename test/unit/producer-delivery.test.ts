import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { AuditlineError } from '../../core/errors.js';
import { Delivery } from '../../producers/delivery.js';
import { Dispatcher } from '../../producers/dispatcher.js';
import type { KafkaSender } from '../../producers/kafka-sender.js';
import { silentLogger } from '../../producers/logger.js';
import { ProducerMetrics } from '../../producers/metrics.js';
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
  async send(records: readonly SpoolRecord[]): Promise<void> {
    this.attempted.push(records.map((r) => r.value.toString()));
    await new Promise((r) => setTimeout(r, 1));
    if (this.down) throw new AuditlineError('KAFKA_UNAVAILABLE', 'scripted outage', { retriable: true });
    if (this.rejectValue && records.some((r) => r.value.toString() === this.rejectValue)) {
      throw new AuditlineError('AUDIT_REJECTED', 'audit event rejected by Kafka: MESSAGE_TOO_LARGE');
    }
    this.acked.push(records.map((r) => r.value.toString()));
  }
  async close(): Promise<void> {}
}

async function pipeline(ack: AckMode, options: { lingerMs?: number; maxBatchEvents?: number } = {}) {
  const kafka = new ScriptedKafka();
  const sender = kafka as unknown as KafkaSender;
  const metrics = new ProducerMetrics();
  const spool = await Spool.open({ dir: tempDir('auditline-delivery-unit'), instanceId: randomUUID(), maxBytes: 1 << 24, logger: silentLogger });
  const replayer = new SpoolReplayer(spool, sender, { maxBatchEvents: 100, maxBatchBytes: 1 << 20, backoffMs: 10, backoffMaxMs: 20 }, metrics, silentLogger);
  replayer.start();
  const queue = new RecordQueue(1000, 1 << 24);
  const delivery = new Delivery(ack, sender, () => spool, () => replayer.wake(), metrics, silentLogger);
  const dispatcher = new Dispatcher(queue, { lingerMs: options.lingerMs ?? 2, maxBatchEvents: options.maxBatchEvents ?? 100, maxBatchBytes: 1 << 20 }, (b) => delivery.deliver(b), () => performance.now());
  dispatcher.start();
  const send = (value: string): Promise<Settlement> => {
    const ack = deferred<Settlement>();
    const record: QueuedRecord = {
      record: { key: Buffer.from('exec-1'), value: Buffer.from(value), headers: {} },
      bytes: 16,
      enqueuedAt: performance.now(),
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

test('a batch that fills leaves at once; a partial one waits for the linger time; events pushed while one is in flight form the next', async () => {
  const p = await pipeline('broker', { lingerMs: 300, maxBatchEvents: 3 });
  let t0 = performance.now();
  await Promise.all(['f1', 'f2', 'f3'].map(p.send));
  assert.ok(performance.now() - t0 < 250, 'the full batch did not wait for the linger timer');

  t0 = performance.now();
  assert.equal(await p.send('lone'), 'delivered');
  assert.ok(performance.now() - t0 >= 290, 'a lone event waits for others to share its batch');

  const outcomes = await Promise.all(['a', 'b', 'c', 'd', 'e', 'f', 'g'].map(p.send));
  assert.ok(outcomes.every((o) => o === 'delivered'));
  assert.deepEqual(p.kafka.acked, [['f1', 'f2', 'f3'], ['lone'], ['a', 'b', 'c'], ['d', 'e', 'f'], ['g']]);
  await p.stop();
});

test('while anything is spooled, newer events queue behind it, and Kafka gets them all in order', async () => {
  const p = await pipeline('broker');
  p.kafka.down = true;
  assert.equal(await p.send('e1'), 'spooled');
  assert.equal(await p.send('e2'), 'spooled');
  assert.equal(await p.send('e3'), 'spooled');
  // Only e1 was tried directly; e2 and e3 went straight to the spool, behind it (every attempt starts at e1).
  assert.ok(p.kafka.attempted.every((batch) => batch[0] === 'e1'), JSON.stringify(p.kafka.attempted));
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
