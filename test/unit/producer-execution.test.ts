import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AuditlineError, isAuditlineError, type ErrorCode } from '../../core/errors.js';
import type { Execution } from '../../producers/index.js';
import type { StartExecutionInput } from '../../producers/types.js';
import { kindOf, MemoryHost, payload } from '../helpers/producer-host.js';

const START: StartExecutionInput = {
  workflowId: 'WF-003',
  workflowName: 'Invoice sync',
  trigger: 'webhook',
  triggeredBy: { kind: 'user', id: 'u-42' },
  input: { customer_email: 'ann@example.com', amount: 12000 },
  correlationId: 'trace-1',
};

const code = (expected: ErrorCode, text?: RegExp) => (e: unknown) => {
  assert.ok(isAuditlineError(e, expected), `expected ${expected}, got ${String(e)}`);
  if (text) assert.match(e.message, text);
  return true;
};

test('a full execution: sequence 1..n without gaps, step ids by position, monotonic durations', async () => {
  const host = new MemoryHost();
  const run = await host.startExecution(START);
  host.clock.advance(5);
  const invoice = await run.step(
    'fetch-invoice',
    async () => {
      host.clock.advance(40);
      return { id: 7, amount: 12000 };
    },
    { input: { id: 7 } },
  );
  assert.deepEqual(invoice, { id: 7, amount: 12000 });
  const decided = await run.decision({ condition: 'amount > 10000', taken: 'manual-approval', reason: 'amount=12000 exceeds 10000', values: { amount: 12000 } });
  await run.step('approve', () => 'ok');
  host.clock.advance(10);
  const finished = await run.finish('success', { output: { approved: true } });

  assert.deepEqual(host.events.map(kindOf), ['ExecutionStarted', 'StepFinished', 'DecisionRecorded', 'StepFinished', 'ExecutionFinished']);
  assert.deepEqual(host.events.map((e) => e.sequence), [1, 2, 3, 4, 5]);
  assert.equal(new Set(host.events.map((e) => e.event_id)).size, 5);
  for (const e of host.events) {
    assert.equal(e.execution_id, run.executionId);
    assert.equal(e.workflow_id, 'WF-003');
    assert.equal(e.correlation_id, 'trace-1');
    assert.equal(e.schema_version, 1);
    assert.equal(e.producer, host.identity);
  }
  assert.equal(run.started.sequence, 1);
  assert.equal(decided.sequence, 3);
  assert.equal(finished.sequence, 5);

  const started = payload(host.events[0]!);
  assert.equal(started.workflow_version, '0', 'default workflow version');
  assert.equal(started.input, JSON.stringify(START.input));
  assert.equal(started.parent_execution_id, null);
  const step1 = payload(host.events[1]!);
  assert.equal(step1.step_id, 1);
  assert.equal(step1.duration_ms, 40);
  assert.equal((step1.end_time as number) - (step1.start_time as number), 40);
  assert.equal(step1.input_data, '{"id":7}');
  assert.equal(step1.output_data, '{"id":7,"amount":12000}');
  assert.equal(payload(host.events[2]!).step_id, 1, 'decision belongs to the step started last');
  assert.equal(payload(host.events[3]!).step_id, 2);
  assert.equal(payload(host.events[3]!).input_data, 'null');
  const end = payload(host.events[4]!);
  assert.equal(end.duration_ms, 55);
  assert.equal(end.status, 'success');
  assert.equal(end.output, '{"approved":true}');
  assert.deepEqual(host.metas.map((m) => m.piiFound), [true, false, false, false, false]);
});

test('a failing step records its error and rethrows the very same error', async () => {
  const host = new MemoryHost();
  const run = await host.startExecution(START);
  const boom = new TypeError('upstream returned 502');
  await assert.rejects(
    run.step('charge', async () => {
      throw boom;
    }),
    (e) => e === boom,
  );
  const step = payload(host.events[1]!);
  assert.equal(step.status, 'failed');
  assert.equal(step.output_data, null);
  assert.deepEqual(step.error, { type: 'TypeError', message: 'upstream returned 502' });
});

test('retries keep the step id of their step; explicit ids and recordStep work', async () => {
  const host = new MemoryHost();
  const run = await host.startExecution(START);
  await run.step('fetch', () => 1);
  await assert.rejects(run.step('charge', () => Promise.reject(new Error('timeout')), { attempt: 1 }));
  await run.step('charge', () => 2, { attempt: 2 });
  await run.step('notify', () => 3);
  await run.recordStep({ name: 'charge', attempt: 3, status: 'skipped', startTime: new Date(1000), endTime: 1250 });
  await run.recordStep({ name: 'archive', stepId: 9, status: 'success', startTime: 2000, endTime: 2000, output: { ok: true } });
  await run.step('after', () => 4);
  const steps = host.events.filter((e) => kindOf(e) === 'StepFinished').map(payload);
  assert.deepEqual(
    steps.map((s) => [s.step_name, s.step_id, s.attempt, s.status]),
    [
      ['fetch', 1, 1, 'success'],
      ['charge', 2, 1, 'failed'],
      ['charge', 2, 2, 'success'],
      ['notify', 3, 1, 'success'],
      ['charge', 2, 3, 'skipped'],
      ['archive', 9, 1, 'success'],
      ['after', 10, 1, 'success'],
    ],
  );
  assert.equal(steps[4]!.duration_ms, 250);
  assert.equal(steps[4]!.output_data, null);
});

test('bad input fails with PRODUCER_INVALID_INPUT before anything is recorded, and loses nothing recorded before', async () => {
  const host = new MemoryHost();
  await assert.rejects(host.startExecution({ ...START, workflowId: undefined } as never), code('PRODUCER_INVALID_INPUT', /startExecution\.workflowId: required/));
  await assert.rejects(host.startExecution({ ...START, trigger: 'carrier-pigeon' } as never), (e) => code('PRODUCER_INVALID_INPUT', /startExecution\.trigger: must be one of webhook/)(e) && !(e as Error).message.includes('carrier'));
  await assert.rejects(host.startExecution({ ...START, executionId: 'not-a-uuid' }), code('PRODUCER_INVALID_INPUT', /executionId: must be a UUID/));
  await assert.rejects(host.startExecution({ ...START, extra: 1 } as never), code('PRODUCER_INVALID_INPUT', /startExecution\.extra: unknown property/));
  // A key that is data (a map keyed by e-mail addresses spread into the call) is not named in the message.
  await assert.rejects(host.startExecution({ ...START, 'ann@example.com': 1 } as never), (e) => code('PRODUCER_INVALID_INPUT', /startExecution\[\*\]: unknown property/)(e) && !(e as Error).message.includes('ann@'));
  await assert.rejects(
    host.startExecution({ ...START, triggeredBy: { kind: 'user', id: 'u1', 'ann@example.com': true } } as never),
    (e) => code('PRODUCER_INVALID_INPUT', /startExecution\.triggeredBy\[\*\]: unknown property/)(e) && !(e as Error).message.includes('ann@') && !JSON.stringify((e as AuditlineError).details).includes('ann@'),
  );
  const circular: Record<string, unknown> = {};
  circular.self = circular;
  await assert.rejects(host.startExecution({ ...START, input: circular }), code('PRODUCER_INVALID_INPUT', /circular reference at startExecution\.input\.self/));
  assert.equal(host.events.length, 0);

  const run = await host.startExecution(START);
  let ran = false;
  await assert.rejects(
    run.step('s', () => {
      ran = true;
    }, { input: { n: 10n } }),
    code('PRODUCER_INVALID_INPUT', /BigInt/),
  );
  assert.equal(ran, false, 'the step does not run when its input cannot be recorded');
  await assert.rejects(run.step('', () => 1), code('PRODUCER_INVALID_INPUT', /step name: must not be empty/));
  await assert.rejects(run.step('s', () => 1, { attempt: 0 }), code('PRODUCER_INVALID_INPUT', /step options\.attempt: must be at least 1/));
  await assert.rejects(run.step('s', () => ({ big: 1n })), code('PRODUCER_INVALID_INPUT', /invalid step output: a BigInt cannot be serialized to JSON at step output\.big/));
  assert.throws(() => run.decision({ condition: 'x', taken: 'y', values: { n: 1n } }), code('PRODUCER_INVALID_INPUT', /decision\.values/));
  assert.throws(() => run.decision({ condition: '', taken: 'y' }), code('PRODUCER_INVALID_INPUT', /decision\.condition: must not be empty/));
  await assert.rejects(
    run.recordStep({ name: 's', status: 'success', startTime: 2000, endTime: 1000 }),
    code('PRODUCER_INVALID_INPUT', /recordStep\.endTime: must not be before startTime/),
  );
  await assert.rejects(run.recordStep({ name: 's', status: 'done' as never, startTime: 0, endTime: 0 }), code('PRODUCER_INVALID_INPUT', /recordStep\.status/));
  await assert.rejects(run.finish('done' as never), code('PRODUCER_INVALID_INPUT', /finish status: must be one of success, failed, partial/));

  // Everything above was refused without spending a sequence number.
  await run.step('s', () => 1);
  await run.finish('partial');
  assert.deepEqual(host.events.map((e) => e.sequence), [1, 2, 3]);
  assert.equal(payload(host.events[2]!).status, 'partial');
});

test('after finish nothing more can be recorded on the execution', async () => {
  const host = new MemoryHost();
  const run = await host.startExecution(START);
  await run.finish('failed', { error: new Error('card declined') });
  assert.equal(run.isFinished, true);
  await assert.rejects(run.finish('success'), code('EXECUTION_FINISHED', new RegExp(`execution ${run.executionId} already finished`)));
  await assert.rejects(run.step('late', () => 1), code('EXECUTION_FINISHED'));
  await assert.rejects(run.recordStep({ name: 'late', status: 'success', startTime: 0, endTime: 0 }), code('EXECUTION_FINISHED'));
  assert.throws(() => run.decision({ condition: 'a', taken: 'b' }), code('EXECUTION_FINISHED'));
  await assert.rejects(run.startChild({ workflowId: 'WF-9', trigger: 'api', triggeredBy: { kind: 'system', id: 'x' } }), code('EXECUTION_FINISHED'));
  assert.deepEqual(payload(host.events[1]!).error, { type: 'Error', message: 'card declined' });
  assert.equal(host.events.length, 2);

  // A step still running when finish() is called cannot belong to the execution any more.
  const other = await host.startExecution(START);
  const slow = other.step('slow', async () => 'done');
  await other.finish('success');
  await assert.rejects(slow, code('EXECUTION_FINISHED'));
});

test('fail closed: a lost event rejects its call, and finish() reports it even if nobody awaited it', async () => {
  const host = new MemoryHost('throw');
  const run = await host.startExecution(START);
  const outage = new AuditlineError('AUDIT_UNAVAILABLE', 'audit event not recorded: test outage', { retriable: true });
  host.failWith = outage;
  const decision = run.decision({ condition: 'a', taken: 'b' }); // not awaited on purpose
  await assert.rejects(run.step('s', () => 1), (e) => e === outage);
  host.failWith = undefined;
  await assert.rejects(run.finish('success'), (e) => {
    code('AUDIT_UNAVAILABLE', /execution .* incomplete: 2 earlier event\(s\) were lost .*do not call finish\(\) again/)(e);
    assert.equal((e as AuditlineError).retriable, false, 'a retry could not record anything');
    assert.deepEqual((e as AuditlineError).details, { executionId: run.executionId, lostEvents: 2, finishOutcome: 'delivered' });
    return true;
  });
  await assert.rejects(run.finish('success'), code('EXECUTION_FINISHED'), 'what a retry gets');
  await assert.rejects(decision, (e) => e === outage);
  assert.equal(host.events.filter((e) => kindOf(e) === 'ExecutionFinished').length, 1);
});

test('fail closed: finish() whose own event is lost is not retriable either (the execution counts as finished)', async () => {
  const host = new MemoryHost('throw');
  const run = await host.startExecution(START);
  const outage = new AuditlineError('AUDIT_UNAVAILABLE', 'audit event not recorded: test outage', { retriable: true });
  host.failWith = outage;
  await assert.rejects(run.finish('success'), (e) => {
    code('AUDIT_UNAVAILABLE', /ExecutionFinished event was not recorded \(audit event not recorded: test outage\); the execution is finished/)(e);
    assert.equal((e as AuditlineError).retriable, false);
    assert.equal((e as AuditlineError).cause, outage);
    return true;
  });
  host.failWith = undefined;
  await assert.rejects(run.finish('success'), code('EXECUTION_FINISHED'));
});

test("onAuditFailure 'continue': lost events resolve as dropped and the workflow goes on", async () => {
  const host = new MemoryHost('continue');
  const run = await host.startExecution(START);
  host.failWith = new Error('outage');
  assert.equal((await run.decision({ condition: 'a', taken: 'b' })).outcome, 'dropped');
  assert.equal(await run.step('s', () => 42), 42);
  host.failWith = undefined;
  assert.equal((await run.finish('success')).outcome, 'delivered');
});

test('child executions link to their parent and inherit its correlation id', async () => {
  const host = new MemoryHost();
  const parent = await host.startExecution({ ...START, workflowVersion: '1.4.0' });
  const child: Execution = await parent.startChild({ workflowId: 'WF-007', trigger: 'api', triggeredBy: { kind: 'service', id: 'billing-worker' } });
  await child.finish('success');
  await parent.finish('success');
  const childStart = host.events.find((e) => e.execution_id === child.executionId && e.sequence === 1)!;
  assert.equal(payload(childStart).parent_execution_id, parent.executionId);
  assert.equal(payload(childStart).workflow_name, 'WF-007', 'name defaults to the id');
  assert.equal(childStart.correlation_id, 'trace-1');
  assert.equal(payload(host.events[0]!).workflow_version, '1.4.0');
  assert.deepEqual(host.events.filter((e) => e.execution_id === child.executionId).map((e) => e.sequence), [1, 2]);
  assert.deepEqual(host.events.filter((e) => e.execution_id === parent.executionId).map((e) => e.sequence), [1, 2]);
});

test('a closed producer refuses every call with PRODUCER_CLOSED', async () => {
  const host = new MemoryHost();
  const run = await host.startExecution(START);
  host.closed = true;
  await assert.rejects(run.step('s', () => 1), code('PRODUCER_CLOSED'));
  assert.throws(() => run.decision({ condition: 'a', taken: 'b' }), code('PRODUCER_CLOSED'));
  await assert.rejects(run.finish('success'), code('PRODUCER_CLOSED'));
});

test('hash mode: no cleartext in any field of any event, including error messages and reasons', async () => {
  const host = new MemoryHost('throw', { mode: 'hash', key: 'unit-test-hmac-key-0123456789' });
  const run = await host.startExecution(START);
  await assert.rejects(run.step('lookup', () => Promise.reject(new Error('no account for ann@example.com')), { input: { customer_email: 'ann@example.com' } }));
  await run.decision({ condition: 'vip', taken: 'fast-lane', reason: 'ann@example.com is a VIP', values: { customer_email: 'ann@example.com' } });
  await run.finish('failed', { error: new Error('failed for ann@example.com') });
  const all = JSON.stringify(host.events);
  assert.ok(!all.includes('ann@example.com'), 'no cleartext e-mail anywhere');
  assert.match(all, /hmac-sha256:[0-9a-f]{64}/);
});
