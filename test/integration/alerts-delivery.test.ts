import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { alertsSettled, Receiver, startDeliveryStack } from '../helpers/alerts-fixtures.js';

// The first request to /hang is answered after 8 s: longer than the session timeout (6 s), within the delivery timeout.
const receiver = new Receiver(async (path, before) => {
  if (path === '/hang' && before === 0) await new Promise((r) => setTimeout(r, 8_000));
  return 200;
});
const RULES = 'rules:\n  - { name: to-both, kind: match, severity: high, channels: [slow, fast, hang], where: { workflow_id: WF-NONE } }\n';
let stack: Awaited<ReturnType<typeof startDeliveryStack>>;

before(async () => {
  // Backoff ceiling well above the test's waits: a due time is honoured as written.
  stack = await startDeliveryStack('alerts-delivery', receiver, RULES, ['slow', 'fast', 'hang'], { AUDITLINE_ALERTS_DELIVERY_BACKOFF_MAX_MS: '60000', AUDITLINE_ALERTS_DELIVERY_TIMEOUT_MS: '10000' });
});

after(async () => {
  await stack?.down();
});

test('a channel waiting out a retry backoff does not hold back the deliveries of another channel', async () => {
  const slowDue = Date.now() + 8_000;
  await stack.enqueue('slow', 0, ['test alert for slow'], { attempt: 2, due_at: slowDue });
  // Let the worker fetch the slow channel's record and start waiting for it.
  await new Promise((r) => setTimeout(r, 1_500));
  const fastAt = Date.now();
  await stack.enqueue('fast', 1, ['test alert for fast'], { attempt: 2, due_at: fastAt });
  const [fast] = await receiver.waitFor('/fast', 1, 4_000);
  assert.ok(fast!.at < slowDue, 'the other channel was delivered before the waiting one was due');
  assert.equal(receiver.on('/slow').length, 0, 'the waiting delivery is not sent early');
  const [slow] = await receiver.waitFor('/slow', 1, 15_000);
  assert.ok(slow!.at >= slowDue, `delivered at its due time, not before (${slow!.at - slowDue} ms)`);
  assert.equal(receiver.on('/slow').length, 1, 'once');
});

test('a request slower than the session timeout is sent once: the worker heartbeats while it waits for the answer', async () => {
  await stack.enqueue('hang', 1, ['test alert for hang']);
  const [first] = await receiver.waitFor('/hang', 1, 10_000);
  while (first!.status === 0) await new Promise((r) => setTimeout(r, 100));
  await alertsSettled(stack.names);
  // Give a rebalance (had the member missed its session) time to hand the record out again.
  await new Promise((r) => setTimeout(r, 3_000));
  assert.deepEqual(receiver.on('/hang').map((r) => r.status), [200], 'one request, answered 200, not repeated after a rebalance');
});
