import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import os from 'node:os';
import { Registry } from 'prom-client';
import { createAuditProducer, type AuditProducer } from '../../producers/index.js';
import { CLIENT_VERSION } from '../../producers/identity.js';
import { unwrapPayload, type AuditEvent } from '../../schemas/index.js';
import { connection, createTopic, deleteTopic, readEvents, recordCount } from '../helpers/producer-kafka.js';
import { uniqueName } from '../helpers/names.js';
import { tempDir } from '../helpers/temp-dir.js';

/** avsc decodes records as class instances; compare their plain JSON form. */
const value = (e: AuditEvent): Record<string, unknown> => JSON.parse(JSON.stringify(unwrapPayload(e.payload).value)) as Record<string, unknown>;
const kind = (e: AuditEvent): string => unwrapPayload(e.payload).kind;

function producer(topic: string, extra: Record<string, unknown> = {}): AuditProducer {
  return createAuditProducer({
    ...connection,
    service: 'billing-worker',
    topic,
    spoolDir: tempDir('auditline-it-roundtrip'),
    ...extra,
  });
}

test('a full execution reaches Kafka complete, keyed by execution id, in sequence order', { timeout: 20_000 }, async () => {
  const topic = uniqueName('it-producer');
  await createTopic(topic);
  const metrics = new Registry();
  const audit = producer(topic, { metrics });
  const before = Date.now();
  const input = { customer_email: 'ann@example.com', amount: 12000 };
  const run = await audit.startExecution({
    workflowId: 'WF-003',
    workflowName: 'Invoice sync',
    workflowVersion: '1.4.0',
    trigger: 'webhook',
    triggeredBy: { kind: 'user', id: 'u-42' },
    input,
    correlationId: 'trace-7',
  });
  assert.equal(run.started.outcome, 'delivered', "ack 'broker': acknowledged by Kafka");
  const invoice = await run.step('fetch-invoice', async () => ({ invoice: 7, amount: 12000 }), { input: { id: 7 } });
  const failure = new RangeError('approval service timed out');
  await assert.rejects(
    run.step('request-approval', async () => {
      await new Promise((r) => setTimeout(r, 15));
      throw failure;
    }, { input: { invoice: 7 } }),
    (e) => e === failure,
  );
  const decision = await run.decision({ condition: 'amount > 10000', taken: 'manual-approval', reason: 'amount=12000 exceeds 10000', values: { amount: 12000 } });
  const finished = await run.finish('failed', { output: { invoice }, error: failure });
  assert.equal(decision.outcome, 'delivered');
  assert.equal(finished.sequence, 5);
  assert.deepEqual(await audit.flush(), { spooledEvents: 0 });
  await audit.close();

  const records = await readEvents(topic, 5);
  assert.equal(await recordCount(topic), 5, 'exactly five records');
  assert.equal(new Set(records.map((r) => r.partition)).size, 1, 'one partition per execution');
  assert.deepEqual(records.map((r) => r.key), Array(5).fill(run.executionId));
  const events = records.map((r) => r.event);
  assert.deepEqual(events.map((e) => e.sequence), [1, 2, 3, 4, 5]);
  assert.deepEqual(events.map(kind), ['ExecutionStarted', 'StepFinished', 'StepFinished', 'DecisionRecorded', 'ExecutionFinished']);
  assert.deepEqual(events.map((e) => e.event_id), [run.started.eventId, events[1]!.event_id, events[2]!.event_id, decision.eventId, finished.eventId]);
  assert.equal(new Set(events.map((e) => e.event_id)).size, 5);
  for (const e of events) {
    assert.equal(e.execution_id, run.executionId);
    assert.equal(e.workflow_id, 'WF-003');
    assert.equal(e.correlation_id, 'trace-7');
    assert.equal(e.schema_version, 1);
    assert.deepEqual(JSON.parse(JSON.stringify(e.producer)), { service: 'billing-worker', host: os.hostname(), client_version: CLIENT_VERSION, instance_id: audit.identity.instance_id });
    assert.ok(e.event_time >= before && e.event_time <= Date.now());
  }
  // Default values are left out: found only where PII was written, no mode header for cleartext.
  assert.deepEqual(records.map((r) => r.headers['auditline-pii-found']), ['true', undefined, undefined, undefined, undefined]);
  assert.ok(records.every((r) => !('auditline-pii-mode' in r.headers)));

  const started = value(events[0]!);
  assert.deepEqual(
    { ...started, start_time: typeof started.start_time },
    {
      workflow_name: 'Invoice sync',
      workflow_version: '1.4.0',
      trigger: 'webhook',
      triggered_by: { kind: 'user', id: 'u-42' },
      start_time: 'number',
      input: JSON.stringify(input),
      input_truncation: null,
      parent_execution_id: null,
    },
  );
  const ok = value(events[1]!);
  assert.equal(ok.step_id, 1);
  assert.equal(ok.step_name, 'fetch-invoice');
  assert.equal(ok.attempt, 1);
  assert.equal(ok.status, 'success');
  assert.equal(ok.input_data, '{"id":7}');
  assert.equal(ok.output_data, '{"invoice":7,"amount":12000}');
  assert.equal(ok.error, null);
  const failed = value(events[2]!);
  assert.equal(failed.step_id, 2);
  assert.equal(failed.status, 'failed');
  assert.equal(failed.output_data, null);
  assert.deepEqual(failed.error, { type: 'RangeError', message: 'approval service timed out' });
  assert.ok((failed.duration_ms as number) >= 10, 'timed');
  assert.equal((failed.end_time as number) - (failed.start_time as number), failed.duration_ms);
  const decided = value(events[3]!);
  assert.deepEqual(decided, {
    step_id: 2,
    branch_condition: 'amount > 10000',
    branch_taken: 'manual-approval',
    branch_reason: 'amount=12000 exceeds 10000',
    condition_values: '{"amount":12000}',
  });
  const end = value(events[4]!);
  assert.equal(end.status, 'failed');
  assert.equal(end.output, JSON.stringify({ invoice }));
  assert.deepEqual(end.error, { type: 'RangeError', message: 'approval service timed out' });
  assert.equal((end.end_time as number) - (started.start_time as number), end.duration_ms);

  const text = await metrics.metrics();
  assert.match(text, /auditline_producer_events_total\{kind="StepFinished"\} 2/);
  assert.match(text, /auditline_producer_delivered_events_total\{path="direct"\} 5/);
  assert.match(text, /auditline_producer_send_duration_seconds_count \d+/);
  assert.match(text, /auditline_producer_spooled_events 0/);
  await assert.rejects(audit.startExecution({ workflowId: 'WF-003', trigger: 'api', triggeredBy: { kind: 'user', id: 'u' } }), (e) => (e as { code?: string }).code === 'PRODUCER_CLOSED');
  assert.deepEqual(readdirSync(audit.options.spoolDir as string), [], 'Kafka was up: nothing ever spooled');
  await deleteTopic(topic);
});

test('many concurrent executions each keep their order, batched into few sends', { timeout: 20_000 }, async () => {
  const topic = uniqueName('it-producer-many');
  await createTopic(topic, 6);
  const metrics = new Registry();
  const audit = producer(topic, { lingerMs: 10, metrics });
  const executions = 40;
  const ids = await Promise.all(
    Array.from({ length: executions }, async (_, n) => {
      const run = await audit.startExecution({ workflowId: `WF-${n % 5}`, trigger: 'schedule', triggeredBy: { kind: 'system', id: 'cron' }, input: { n } });
      for (let s = 1; s <= 3; s++) {
        await run.step(`step-${s}`, async () => {
          await new Promise((r) => setTimeout(r, Math.random() * 10));
          return { n, s };
        });
      }
      void run.decision({ condition: 'n % 2 == 0', taken: n % 2 === 0 ? 'even' : 'odd', values: { n } });
      await run.finish('success', { output: { n } });
      return run.executionId;
    }),
  );
  await audit.close();

  const total = executions * 6;
  const sends = Number(/auditline_producer_send_duration_seconds_count (\d+)/.exec(await metrics.metrics())?.[1]);
  assert.ok(sends > 0 && sends <= total / 3, `${total} events in ${sends} sends`);
  const records = await readEvents(topic, total);
  assert.equal(await recordCount(topic), total);
  assert.equal(new Set(records.map((r) => r.event.event_id)).size, total, 'every event once');
  for (const id of ids) {
    const own = records.filter((r) => r.key === id);
    assert.equal(new Set(own.map((r) => r.partition)).size, 1, `${id} on one partition`);
    assert.deepEqual(own.map((r) => r.event.sequence), [1, 2, 3, 4, 5, 6], `${id} in order without gaps`);
    assert.deepEqual(own.map((r) => kind(r.event)), ['ExecutionStarted', 'StepFinished', 'StepFinished', 'StepFinished', 'DecisionRecorded', 'ExecutionFinished']);
  }
  await deleteTopic(topic);
});
