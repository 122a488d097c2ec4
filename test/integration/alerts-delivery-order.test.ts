import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { alertsSettled, Receiver, startDeliveryStack } from '../helpers/alerts-fixtures.js';

// The first request to channel "ch" is answered 503 (a transient failure), everything else 200.
const receiver = new Receiver((path, before) => (path === '/ch' && before === 0 ? 503 : 200));
const RULES = 'rules:\n  - { name: r, kind: match, severity: high, channels: [ch, other], where: { workflow_id: WF-NONE } }\n';
let stack: Awaited<ReturnType<typeof startDeliveryStack>>;

const summaries = (path: string) => receiver.on(path).map((r) => `${r.status} ${(JSON.parse(r.body) as { summary: string }).summary}`);

before(async () => {
  // The first retry waits 1.5-3 s (equal jitter on 3 s): long enough to see what is sent meanwhile.
  stack = await startDeliveryStack('alerts-delivery-order', receiver, RULES, ['ch', 'other'], { AUDITLINE_ALERTS_DELIVERY_BACKOFF_INITIAL_MS: '3000', AUDITLINE_ALERTS_DELIVERY_BACKOFF_MAX_MS: '6000' });
});

after(async () => {
  await stack?.down();
});

test("a failed request keeps its channel's order (A, B, C), and the retry holds back no other channel", async () => {
  // Three alerts queued on channel ch, one after the other (B and C are in the log before A's retry).
  await stack.enqueue('ch', 0, ['alert A', 'alert B', 'alert C']);
  await receiver.waitFor('/ch', 1, 20_000);
  // While A's retry waits, another channel's alert arrives: it is delivered before that retry (held
  // behind it, it would come after a second request to ch), however slow the machine.
  await stack.enqueue('other', 1, ['alert D']);
  await receiver.waitFor('/other', 1, 5_000);
  assert.equal(receiver.on('/ch').length, 1, `nothing more of ch was sent before the other channel's alert (${summaries('/ch').join(', ')})`);
  await receiver.waitFor('/ch', 4, 20_000);
  await alertsSettled(stack.names);
  assert.deepEqual(summaries('/ch'), ['503 alert A', '200 alert A', '200 alert B', '200 alert C'], 'A retried first, then B and C, each once');
  assert.deepEqual(summaries('/other'), ['200 alert D']);
});
