import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Alert } from '../../consumers/alerts/index.js';
import { publish } from '../helpers/tokenizer-stack.js';
import { alertsSettled, finished, Receiver, startDeliveryStack } from '../helpers/alerts-fixtures.js';

// Threshold windows are sliding over event time (docs/alerts.md, "Rules"): events of one key come from every
// partition of audit.events, so a lagging partition delivers older events after newer ones.
const receiver = new Receiver();
const RULES = `
rules:
  - name: wf-failures
    kind: threshold
    severity: high
    channels: [ch]
    where: { event: ExecutionFinished, status: failed, workflow_id: WF-LATE }
    key: workflow_id
    count: 3
    window: 10m
`;
let stack: Awaited<ReturnType<typeof startDeliveryStack>>;

before(async () => {
  stack = await startDeliveryStack('alerts-late', receiver, RULES, ['ch']);
});

after(async () => {
  await stack?.down();
});

test('three failures within 10 minutes fire the threshold even when they arrive after a newer failure', async () => {
  const now = Date.now();
  const newer = finished('failed', { workflowId: 'WF-LATE', time: now, sequence: 2 });
  await publish(stack.names.events, [newer]);
  await alertsSettled(stack.names);
  // 30, 29 and 28 minutes before the newer one: within 10 minutes of each other, delivered late.
  const late = [30, 29, 28].map((m) => finished('failed', { workflowId: 'WF-LATE', time: now - m * 60_000, sequence: 2 }));
  await publish(stack.names.events, late);
  await receiver.waitFor('/ch', 1, 30_000);
  await alertsSettled(stack.names);
  const alerts = receiver.on('/ch').map((r) => JSON.parse(r.body) as Alert);
  assert.equal(alerts.length, 1);
  assert.equal(alerts[0]!.event_count, 3);
  assert.deepEqual([...alerts[0]!.evidence.event_ids].sort(), late.map((e) => e.event_id).sort(), 'the three late failures, not the newer one');
});
