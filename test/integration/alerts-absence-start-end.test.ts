import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Alert } from '../../consumers/alerts/index.js';
import { publish } from '../helpers/tokenizer-stack.js';
import { alertsSettled, execution, finished, Receiver, started, startDeliveryStack, step } from '../helpers/alerts-fixtures.js';

// A start condition on the workflow alone (every event of WF-SE matches it, the finish too): "an execution of WF-SE
// not finished within 3 s" (docs/alerts.md, absence per execution).
const receiver = new Receiver();
const RULES = `
rules:
  - name: not-finished
    kind: absence
    severity: high
    channels: [ch]
    start: { workflow_id: WF-SE }
    end: { event: ExecutionFinished }
    within: 3s
`;
let stack: Awaited<ReturnType<typeof startDeliveryStack>>;

before(async () => {
  stack = await startDeliveryStack('alerts-absence-se', receiver, RULES, ['ch']);
});

after(async () => {
  await stack?.down();
});

test('absence: a finish that also matches start closes the execution; only the unfinished one alerts', async () => {
  const done = execution([(o) => started({}, o), (o) => step('success', o), (o) => finished('success', o)], { workflowId: 'WF-SE' });
  const open = execution([(o) => started({}, o), (o) => step('success', o)], { workflowId: 'WF-SE' });
  await publish(stack.names.events, [...done, ...open]);
  await receiver.waitFor('/ch', 1, 30_000);
  // Past the finished execution's deadline counted from its last event, and everything delivered.
  await new Promise((r) => setTimeout(r, 5_000));
  await alertsSettled(stack.names);
  const alerts = receiver.on('/ch').map((r) => JSON.parse(r.body) as Alert);
  assert.deepEqual(alerts.map((a) => a.key), [open[0]!.execution_id], 'the finished execution is not alerted as unfinished');
  assert.equal(alerts[0]!.evidence.first_event_time, open[0]!.event_time, "the deadline counts from the execution's first start event");
});
