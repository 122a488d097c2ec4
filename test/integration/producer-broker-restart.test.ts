import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createAuditProducer, type AuditReceipt, type DeliveryOutcome } from '../../producers/index.js';
import { connection, topicTools } from '../helpers/producer-kafka.js';
import { PrivateKafka } from '../helpers/producer-private-kafka.js';
import { uniqueName } from '../helpers/names.js';
import { tempDir } from '../helpers/temp-dir.js';

// A broker of its own (the shared one must never stop); the shared registry is fine: it does not depend on this broker.
const kafka = new PrivateKafka({ kafka: 29510, controller: 29511, registry: 29512 });
const tools = topicTools(kafka.brokers);

before(() => kafka.up(), { timeout: 60_000 });
after(() => kafka.down(), { timeout: 60_000 });

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `done` until it holds; fails naming `what` after `timeoutMs`. */
async function until(what: string, done: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

test('broker stopped mid-run and restarted: calls resolve spooled meanwhile, and every acknowledged event reaches Kafka, by event_id exactly the acknowledged set, in sequence per execution', { timeout: 90_000 }, async (t) => {
  const topic = uniqueName('it-producer-restart');
  await tools.createTopic(topic, 3);
  const audit = createAuditProducer({
    ...connection,
    brokers: kafka.brokers,
    service: 'billing-worker',
    topic,
    spoolDir: tempDir('auditline-it-restart-spool'),
    sendTimeoutMs: 1_500,
    replayBackoffMs: 200,
    replayBackoffMaxMs: 1_000,
    flushTimeoutMs: 15_000,
  });
  // Also when an assertion fails midway: open kafkajs sockets would keep the test process alive.
  t.after(() => audit.close());
  const receipts: AuditReceipt[] = [];
  const failures: unknown[] = [];
  let running = true;
  const since = (from: number, outcome: DeliveryOutcome) => receipts.slice(from).filter((r) => r.outcome === outcome).length;

  // Workflows recording executions all along (ack 'broker', fail-closed default policy); every call yields a receipt.
  const worker = async (w: number): Promise<void> => {
    for (let n = 0; running; n++) {
      try {
        const run = await audit.startExecution({ workflowId: 'WF-003', trigger: 'api', triggeredBy: { kind: 'service', id: `worker-${w}` }, input: { n } });
        receipts.push(run.started);
        const startTime = Date.now();
        receipts.push(await run.recordStep({ name: 'charge', status: 'success', startTime, endTime: startTime + 1, input: { n } }));
        receipts.push(await run.decision({ condition: 'n even', taken: n % 2 === 0 ? 'yes' : 'no' }));
        receipts.push(await run.finish('success', { output: { n } }));
      } catch (err) {
        failures.push(err);
        return;
      }
      await sleep(10);
    }
  };
  const workers = Array.from({ length: 8 }, (_, w) => worker(w));
  try {
    await until('events delivered while the broker is up', () => since(0, 'delivered') >= 100 || failures.length > 0, 20_000);

    const stoppedAt = receipts.length;
    await kafka.stop();
    t.diagnostic(`broker stopped after ${stoppedAt} acknowledged events`);
    await until('events spooled during the outage', () => since(stoppedAt, 'spooled') >= 100 || failures.length > 0, 20_000);
    assert.deepEqual(failures, [], 'no call failed while Kafka was away: the spool took the events');

    await kafka.up();
    const restartedAt = receipts.length;
    t.diagnostic(`broker restarted; ${since(stoppedAt, 'spooled')} events were spooled meanwhile`);
    await until('direct delivery after the restart', () => since(restartedAt, 'delivered') >= 100 || failures.length > 0, 30_000);
  } finally {
    running = false;
    await Promise.all(workers);
  }
  assert.deepEqual(failures, []);
  assert.deepEqual(await audit.close(), { spooledEvents: 0 }, 'the spool was replayed completely');

  const total = await tools.recordCount(topic);
  const records = await tools.readEvents(topic, total, 30_000);
  const arrived = new Set(records.map((r) => r.event.event_id));
  t.diagnostic(`${receipts.length} acknowledged events; ${records.length} records, ${records.length - arrived.size} duplicate(s) identifiable by event_id`);
  assert.deepEqual([...arrived].sort(), receipts.map((r) => r.eventId).sort(), 'Kafka holds exactly the acknowledged events: none lost, none unknown');

  const expected = new Map<string, string[]>();
  for (const r of receipts) {
    const ids = expected.get(r.executionId) ?? [];
    ids[r.sequence - 1] = r.eventId;
    expected.set(r.executionId, ids);
  }
  for (const [executionId, eventIds] of expected) {
    const own = records.filter((r) => r.key === executionId);
    assert.equal(new Set(own.map((r) => r.partition)).size, 1, `execution ${executionId} stays on one partition`);
    // Duplicates may follow later; the first appearance of each event is what a consumer keeps.
    const firstSeen = [...new Map(own.map((r) => [r.event.event_id, r.event.sequence])).entries()];
    assert.deepEqual(firstSeen.map(([, sequence]) => sequence), eventIds.map((_, i) => i + 1), `execution ${executionId}: sequences 1..n in order`);
    assert.deepEqual(firstSeen.map(([eventId]) => eventId), eventIds, `execution ${executionId}: the acknowledged events`);
  }
  await tools.deleteTopic(topic);
});
