import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { isAuditlineError } from '../../core/errors.js';
import { signature, TargetPolicy, webhookBody } from '../../consumers/alerts/index.js';
import { alertId } from '../../consumers/alerts/alert.js';
import { alert } from '../helpers/sample-alert.js';
import { TokenBucket } from '../../consumers/alerts/rate-limit.js';
import { StoppedError } from '../../core/service/index.js';
import { Registry } from 'prom-client';
import { createLogger } from '../../core/logger.js';
import { DeliveryWorker, outboxMessages, parseOutboxEntry } from '../../consumers/alerts/delivery.js';
import { AlertsMetrics } from '../../consumers/alerts/metrics.js';
import { RetryHolds } from '../../consumers/alerts/retry-holds.js';
import type { Channel } from '../../consumers/alerts/channels.js';

test('the signature is HMAC-SHA256 over "<timestamp>.<body>" with the channel secret', () => {
  const secret = Buffer.from('0123456789abcdef0123');
  const expected = createHmac('sha256', secret).update('1700000000.{"a":1}').digest('hex');
  assert.equal(signature(secret, '1700000000', '{"a":1}'), `v1=${expected}`);
  assert.notEqual(signature(secret, '1700000001', '{"a":1}'), `v1=${expected}`, 'the timestamp is signed');
});

test('alert ids are deterministic per rule, key and cause', () => {
  assert.equal(alertId('r', 'k', 'c'), alertId('r', 'k', 'c'));
  assert.notEqual(alertId('r', 'k', 'c'), alertId('r', 'k', 'd'));
  assert.match(alertId('r', 'k', 'c'), /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
});

test('payloads: Slack-compatible text/blocks, and generic JSON with rule, key and evidence', () => {
  const slack = JSON.parse(webhookBody(alert, 'slack')) as { text: string; blocks: { type: string }[] };
  assert.match(slack.text, /^\[HIGH\] r: 5 matching events$/);
  assert.equal(slack.blocks[0]!.type, 'section');
  const json = JSON.parse(webhookBody(alert, 'json')) as Record<string, unknown>;
  assert.equal(json.alert_id, alert.alert_id);
  assert.equal(json.key, 'WF-1');
  assert.deepEqual(json.execution_ids, ['x1', 'x2']);
  assert.equal(json.fired_at, '2026-01-01T00:00:00.000Z');
  assert.deepEqual((json.evidence as { links: string[] }).links, alert.evidence.links);
});

test('SSRF: loopback, private, link-local and mapped addresses are refused unless allowed', async () => {
  const p = new TargetPolicy();
  for (const a of ['127.0.0.1', '10.1.2.3', '172.20.0.1', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0', '::1', 'fe80::1', 'fd00::1', '::ffff:127.0.0.1', '::ffff:10.0.0.1', '::ffff:7f00:1', '::7f00:1', '::ffff:0:7f00:1', '64:ff9b::7f00:1', '64:ff9b:1::a00:1', '2002:7f00:1::1', 'fec0::1', '100::1']) {
    assert.equal(p.permits(a), false, `${a} refused`);
  }
  for (const a of ['93.184.216.34', '8.8.8.8', '2606:4700::1111', '2a00:1450:4001::200e']) assert.equal(p.permits(a), true, `${a} allowed`);
  await assert.rejects(p.resolve(new URL('http://localhost:8080/hook'), 'c'), (err: unknown) => isAuditlineError(err, 'SSRF_REFUSED'));
  await assert.rejects(p.resolve(new URL('http://[::1]/hook'), 'c'), (err: unknown) => isAuditlineError(err, 'SSRF_REFUSED'));
  const allowed = new TargetPolicy(['127.0.0.1/32']);
  assert.deepEqual(await allowed.resolve(new URL('http://127.0.0.1:1/x'), 'c'), { address: '127.0.0.1', family: 4 });
  assert.equal(allowed.permits('127.0.0.2'), false, 'only what is allowed');
});

/** A clock that moves only while the bucket sleeps: each wait is recorded, none takes real time. */
function fakeClock() {
  const clock = {
    t: 0,
    waits: [] as number[],
    now: () => clock.t,
    sleep: async (ms: number, signal: AbortSignal) => {
      if (signal.aborted) return false;
      clock.waits.push(ms);
      clock.t += ms;
      return true;
    },
  };
  return clock;
}

test('the rate limit spaces requests of one channel', async () => {
  const clock = fakeClock();
  const bucket = new TokenBucket(600, 1, clock); // 10 a second, no burst
  for (let i = 0; i < 4; i++) await bucket.take(new AbortController().signal);
  assert.deepEqual(clock.waits, [100, 100, 100], 'the first request at once, each next one 100 ms after the previous');
});

test('the rate limit allows a burst, refills no further than the burst while idle, and stops when aborted', async () => {
  const clock = fakeClock();
  const bucket = new TokenBucket(600, 3, clock);
  const running = new AbortController();
  for (let i = 0; i < 4; i++) await bucket.take(running.signal);
  assert.deepEqual(clock.waits, [100], 'three at once, the fourth after 100 ms');
  clock.t += 60_000;
  clock.waits.length = 0;
  for (let i = 0; i < 4; i++) await bucket.take(running.signal);
  assert.deepEqual(clock.waits, [100], 'a minute idle refills three tokens, not six hundred');
  const stopped = new AbortController();
  stopped.abort();
  await assert.rejects(bucket.take(stopped.signal), StoppedError);
});

/** A delivery worker's options over stand-ins of kafkajs (`kafka`): no channel, no store, dead letters dropped, short timeouts. */
function workerOptions(kafka: unknown, over: Partial<ConstructorParameters<typeof DeliveryWorker>[0]> = {}): ConstructorParameters<typeof DeliveryWorker>[0] {
  return {
    kafka: kafka as never,
    groupId: 'g',
    outboxTopic: 'outbox',
    fromBeginning: true,
    channels: new Map(),
    policy: new TargetPolicy(),
    store: { recordAttempts: async () => undefined },
    dlq: { publish: async () => undefined },
    metrics: new AlertsMetrics(new Registry()),
    logger: createLogger('delivery-test', 'silent'),
    horizonMs: 1_000,
    backoff: { initialMs: 10, maxMs: 20 },
    timeoutMs: 1_000,
    sessionTimeoutMs: 10_000,
    ...over,
  };
}

test('the delivery worker reports a crash kafkajs gives up on (the service stops and is restarted), and not one kafkajs restarts itself', async () => {
  const listeners = new Map<string, (e: { payload: { error: Error; restart: boolean } }) => void>();
  const events = { GROUP_JOIN: 'consumer.group_join', DISCONNECT: 'consumer.disconnect', STOP: 'consumer.stop', CRASH: 'consumer.crash' };
  // Only the event surface of a kafkajs consumer: the worker is never started here.
  const kafka = {
    consumer: () => ({ events, on: (name: string, fn: (e: { payload: { error: Error; restart: boolean } }) => void) => void listeners.set(name, fn) }),
    producer: () => ({}),
  };
  const worker = new DeliveryWorker(workerOptions(kafka, { horizonMs: 1_000 }));
  let failed: Error | undefined;
  void worker.failed.then((err) => (failed = err));
  const failure = (): Error | undefined => failed;
  listeners.get(events.CRASH)!({ payload: { error: new Error('broker hiccup'), restart: true } });
  await new Promise((r) => setImmediate(r));
  assert.equal(failure(), undefined, 'a crash kafkajs restarts from is not a failure');
  listeners.get(events.CRASH)!({ payload: { error: new Error('not retriable'), restart: false } });
  await new Promise((r) => setImmediate(r));
  assert.equal(failure()?.message, 'not retriable');
});

test('retry holds: records of the failed channel between the failure and its retry are moved, the commit stays at the failure until they are, a re-read rebuilds it', () => {
  const holds = new RetryHolds();
  // Outbox partition 0: 10 = A (ch, fails), 11 = B (ch), 12 = D (other), 13 = C (ch), 14 = A' (A's retry).
  holds.see(0, '10');
  holds.hold(0, 'ch', '10', '14');
  assert.equal(holds.commitOffset(0, '11'), '10', 'A stays uncommitted: a restart reads it again and holds B and C again');
  holds.see(0, '11');
  assert.equal(holds.held(0, 'ch', '11'), true, 'B goes behind A');
  holds.see(0, '12');
  assert.equal(holds.held(0, 'other', '12'), false, 'another channel is not held');
  assert.equal(holds.held(1, 'ch', '12'), false, 'nor the same channel in another partition');
  holds.see(0, '13');
  assert.equal(holds.held(0, 'ch', '13'), true);
  assert.equal(holds.commitOffset(0, '14'), '10');
  holds.see(0, '14');
  assert.equal(holds.held(0, 'ch', '14'), false, "A' is A's retry, delivered when due");
  assert.equal(holds.commitOffset(0, '15'), '15', 'reached the retry: everything before it is committed');
  holds.see(0, '15');
  assert.equal(holds.held(0, 'ch', '15'), false, "B' and C' (15, 16) are delivered after A'");
  // A re-read from the failed record (rebalance) drops the hold; handling A again builds it again.
  holds.hold(0, 'ch', '20', '30');
  holds.see(0, '20');
  assert.equal(holds.held(0, 'ch', '21'), false);
  assert.equal(holds.commitOffset(0, '21'), '21');
});

test('outbox entries: what the rule stage writes is read back; records without a whole attempt or finite times are refused (a NaN backoff would retry them at once, for good)', () => {
  const written = outboxMessages(alert, 1_700_000_000_000);
  assert.ok(written.length > 0);
  for (const m of written) assert.deepEqual(parseOutboxEntry(Buffer.from(m.value)), JSON.parse(m.value));
  const good = JSON.parse(written[0]!.value) as Record<string, unknown>;
  const bad: [string, unknown][] = [
    ['no attempt', { ...good, attempt: undefined }],
    ['attempt as text', { ...good, attempt: '2' }],
    ['attempt 0', { ...good, attempt: 0 }],
    ['fractional attempt', { ...good, attempt: 1.5 }],
    ['no first_at', { ...good, first_at: undefined }],
    ['due_at as text', { ...good, due_at: 'soon' }],
    ['no channel', { ...good, channel: undefined }],
    ['no alert id', { ...good, alert: {} }],
    ['null', null],
    ['an array', [good]],
  ];
  for (const [what, value] of bad) assert.equal(parseOutboxEntry(Buffer.from(JSON.stringify(value))), undefined, what);
  assert.equal(parseOutboxEntry(Buffer.from('{not json')), undefined, 'not JSON');
  assert.equal(parseOutboxEntry(null), undefined, 'a tombstone');
});

/** A delivery worker over stand-ins of kafkajs (never started): its batch handler is driven directly; dead letters are recorded. */
function batchWorker(channels: Map<string, Channel>) {
  const dead: string[] = [];
  const kafka = { consumer: () => ({ events: {}, on: () => undefined }), producer: () => ({}) };
  const worker = new DeliveryWorker(workerOptions(kafka, { channels, horizonMs: 60_000, dlq: { publish: async (letters) => void dead.push(...letters.map((l) => l.record.offset)) } }));
  /** Hands `channel`'s outbox records at offsets 0..n-1 to the worker; the heartbeat fails from call `failFrom` on (1-based). */
  const run = async (channel: string, n: number, failFrom: number) => {
    const now = Date.now();
    const messages = Array.from({ length: n }, (_, i) => ({ offset: String(i), key: Buffer.from(channel), value: Buffer.from(outboxMessages({ ...alert, channels: [channel] }, now)[0]!.value), headers: {}, timestamp: String(now), attributes: 0 }));
    const resolved: string[] = [];
    let beats = 0;
    await (worker as unknown as { eachBatch: (p: unknown) => Promise<void> }).eachBatch({
      batch: { topic: 'outbox', partition: 0, messages },
      resolveOffset: (o: string) => void resolved.push(o),
      heartbeat: async () => {
        if (++beats >= failFrom) throw new Error('The group is rebalancing, so a rejoin is needed');
      },
      isRunning: () => true,
      isStale: () => false,
      commitOffsetsIfNecessary: async () => undefined,
      pause: () => () => undefined,
    });
    return { resolved, dead };
  };
  return run;
}

test('the delivery worker stops handling a batch once a heartbeat is refused (rebalance): the rest is left to the partition\'s owner', async () => {
  // No such channel: each record handled is dead-lettered at once (no request), which shows how far the batch went.
  const run = batchWorker(new Map());
  const { resolved, dead } = await run('gone', 3, 1);
  assert.deepEqual(dead, ['0'], 'only the record handled before the refused heartbeat');
  assert.deepEqual(resolved, ['0']);
});

test('the delivery worker does not POST a record whose rate-limit wait saw a heartbeat refused', async () => {
  // 10 a minute, a burst of 1: the second record waits about 6 s for its token, heartbeating meanwhile. The
  // target is loopback (refused by the policy, so dead-lettered without a request): a record that got as far
  // as the POST shows up as a dead letter.
  const ch: Channel = { name: 'slow', url: new URL('http://127.0.0.1:9/hook'), format: 'json', secret: Buffer.from('s'), ratePerMinute: 10 };
  const run = batchWorker(new Map([[ch.name, ch]]));
  const began = performance.now();
  const { resolved, dead } = await run('slow', 2, 2);
  assert.deepEqual(dead, ['0'], 'the second record is not tried: its partition may be another member\'s');
  assert.deepEqual(resolved, ['0']);
  assert.ok(performance.now() - began < 3_000, 'the wait ends at the refused heartbeat');
});
