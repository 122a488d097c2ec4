import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isAuditlineError } from '../../core/errors.js';
import { chTime, eventToRows, HOTSTORE_TABLES, MAX_FUTURE_MS, TABLE_COLUMNS } from '../../consumers/hotstore/rows.js';
import { INSERT_PHASES } from '../../consumers/hotstore/writer.js';
import { payloadOf, sampleExecution, type AuditEvent } from '../../schemas/index.js';

const source = { topic: 'audit.events', partition: 2, offset: '41' };
const T0 = Date.UTC(2026, 10, 28, 9, 30, 0, 123);

test('each event kind maps to its table plus one provenance row, with exactly the columns the writer declares', () => {
  const events = sampleExecution({ status: 'failed', now: T0 });
  const mapped = events.map((e) => eventToRows(e, source));
  assert.deepEqual(mapped.map((m) => m.detail.table), ['executions', 'steps', 'decisions', 'execution_results']);
  for (const m of mapped) {
    assert.deepEqual(Object.keys(m.detail.row).sort(), [...TABLE_COLUMNS[m.detail.table]].sort(), `${m.detail.table} columns`);
    assert.deepEqual(Object.keys(m.event).sort(), [...TABLE_COLUMNS.events].sort(), 'events columns');
  }
  assert.deepEqual([...HOTSTORE_TABLES], ['executions', 'execution_results', 'steps', 'decisions', 'events'], 'events is written last');
});

test('ExecutionStarted: actor, times and the input JSON as stored text', () => {
  const [started] = sampleExecution({ now: T0 });
  const { detail, event, eventId } = eventToRows(started!, source);
  assert.equal(eventId, started!.event_id);
  assert.equal(detail.table, 'executions');
  if (detail.table !== 'executions') return;
  assert.deepEqual(detail.row, {
    execution_id: started!.execution_id,
    workflow_id: 'WF-003',
    event_id: started!.event_id,
    event_time: '2026-11-28 09:30:00.123',
    workflow_name: 'Invoice sync',
    workflow_version: '1.4.0',
    trigger: 'webhook',
    triggered_by_kind: 'user',
    triggered_by_id: 'u-42',
    start_time: '2026-11-28 09:30:00.123',
    parent_execution_id: '',
    correlation_id: 'trace-smoke-1',
    input: '{"customer_email":"ann@example.com","amount":12000}',
    input_truncated: false,
    input_original_size_bytes: 0,
    input_sha256: '',
    sequence: 1,
  });
  assert.deepEqual(event, {
    execution_id: started!.execution_id,
    workflow_id: 'WF-003',
    event_id: started!.event_id,
    event_time: '2026-11-28 09:30:00.123',
    sequence: 1,
    kind: 'ExecutionStarted',
    correlation_id: 'trace-smoke-1',
    schema_version: 1,
    producer_service: 'auditline-smoke',
    producer_host: started!.producer.host,
    producer_client_version: '0.1.0',
    producer_instance_id: started!.producer.instance_id,
    source_topic: 'audit.events',
    source_partition: 2,
    source_offset: 41,
  });
});

test('StepFinished, DecisionRecorded, ExecutionFinished: nulls become empty text, errors split into type and message, truncation kept', () => {
  const events = sampleExecution({ status: 'failed', now: T0 });
  const step = eventToRows(events[1]!, source).detail;
  assert.equal(step.table, 'steps');
  if (step.table === 'steps') {
    assert.equal(step.row.status, 'failed');
    assert.equal(step.row.output_data, '');
    assert.equal(step.row.error_type, 'TimeoutError');
    assert.equal(step.row.error_message, 'upstream timed out after 30s');
    assert.equal(step.row.start_time, '2026-11-28 09:30:00.124');
    assert.equal(step.row.duration_ms, 39);
  }
  const decision = eventToRows(events[2]!, source).detail;
  assert.equal(decision.table, 'decisions');
  if (decision.table === 'decisions') {
    assert.deepEqual([decision.row.step_id, decision.row.branch_condition, decision.row.branch_taken, decision.row.condition_values], [1, 'amount > 10000', 'manual-approval', '{"amount":12000}']);
  }
  const finished = eventToRows(events[3]!, source).detail;
  assert.equal(finished.table, 'execution_results');
  if (finished.table === 'execution_results') {
    assert.deepEqual([finished.row.status, finished.row.output, finished.row.error_type, finished.row.end_time], ['failed', '', 'TimeoutError', '2026-11-28 09:30:00.173']);
  }

  const truncated: AuditEvent = {
    ...events[1]!,
    payload: payloadOf('StepFinished', {
      step_id: 3, step_name: 'big', attempt: 2, start_time: T0, end_time: T0, duration_ms: 0, status: 'success',
      input_data: '{"cut":true}', output_data: '{}', data_truncation: { original_size_bytes: 2_000_000, sha256: 'ab'.repeat(32) }, error: null,
    }),
  };
  const t = eventToRows(truncated, source).detail;
  if (t.table !== 'steps') throw new Error('expected a step');
  assert.deepEqual([t.row.data_truncated, t.row.data_original_size_bytes, t.row.data_sha256, t.row.attempt], [true, 2_000_000, 'ab'.repeat(32), 2]);
  const decisionWithoutStep: AuditEvent = { ...events[2]!, payload: payloadOf('DecisionRecorded', { step_id: null, branch_condition: 'c', branch_taken: 'b', branch_reason: 'r', condition_values: '{}' }) };
  const d = eventToRows(decisionWithoutStep, source).detail;
  assert.equal(d.table === 'decisions' && d.row.step_id, null);
});

test('an event that cannot be stored is ROW_REJECTED naming the field, never its value', () => {
  const [started] = sampleExecution({ now: T0 });
  const farFuture = { ...started!, event_time: Date.UTC(2400, 0, 1) };
  assert.throws(() => eventToRows(farFuture, source), (e) => isAuditlineError(e, 'ROW_REJECTED') && !e.retriable && /event_time is outside the storable time range/.test(e.message) && !/2400/.test(e.message));
  const badStart = { ...started!, payload: payloadOf('ExecutionStarted', { ...(Object.values(started!.payload)[0] as object), start_time: -1e15 } as never) };
  assert.throws(() => eventToRows(badStart, source), (e) => isAuditlineError(e, 'ROW_REJECTED') && /payload\.ExecutionStarted\.start_time/.test(e.message));
  assert.throws(() => eventToRows({ ...started!, event_id: '' }, source), (e) => isAuditlineError(e, 'ROW_REJECTED') && /event_id is empty/.test(e.message));
  // A producer clock a year ahead would keep the event's PII columns 13 months: refused, with the reason.
  const ahead = { ...started!, event_time: T0 + 365 * 86_400_000 };
  assert.throws(() => eventToRows(ahead, source, T0), (e) => isAuditlineError(e, 'ROW_REJECTED') && !e.retriable && /event_time is 8760 hours ahead of this service's clock .*PII would outlive the retention/.test(e.message));
  assert.doesNotThrow(() => eventToRows({ ...started!, event_time: T0 + MAX_FUTURE_MS - 1 }, source, T0), 'clock skew within a day is kept');
  assert.throws(() => eventToRows({ ...started!, execution_id: ' ' }, source), (e) => isAuditlineError(e, 'ROW_REJECTED') && /execution_id is empty/.test(e.message));
});

test('times are written as UTC text with milliseconds, inside 1900..2299 only', () => {
  assert.equal(chTime(0, 'f', 'e'), '1970-01-01 00:00:00.000');
  assert.equal(chTime(Date.UTC(2299, 11, 31, 23, 59, 59, 999), 'f', 'e'), '2299-12-31 23:59:59.999');
  assert.equal(chTime(Date.UTC(1900, 0, 1), 'f', 'e'), '1900-01-01 00:00:00.000');
  assert.throws(() => chTime(Date.UTC(1899, 11, 31), 'f', 'e'), /outside/);
  assert.throws(() => chTime(Number.NaN, 'f', 'e'), /outside/);
});

test('the write phases cover every table once: steps before decisions and outcomes, events alone and last', () => {
  assert.deepEqual(INSERT_PHASES.flat().sort(), [...HOTSTORE_TABLES].sort());
  const phaseOf = (t: string) => INSERT_PHASES.findIndex((p) => p.includes(t as never));
  assert.ok(phaseOf('steps') < phaseOf('decisions') && phaseOf('steps') < phaseOf('execution_results'));
  assert.ok(phaseOf('executions') < phaseOf('execution_results'));
  assert.deepEqual(INSERT_PHASES.at(-1), ['events']);
});
