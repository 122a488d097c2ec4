import { randomUUID } from 'node:crypto';
import os from 'node:os';
import { SCHEMA_VERSION } from './catalog.js';
import { payloadOf, type AuditEvent, type EventKind, type EventPayloads } from './types.js';

/**
 * A complete, schema-valid execution (started, a step, a decision,
 * finished) for smoke runs and tests. PII-looking values are synthetic.
 */
export function sampleExecution(options: { workflowId?: string; status?: 'success' | 'failed'; now?: number } = {}): AuditEvent[] {
  const executionId = randomUUID();
  const workflowId = options.workflowId ?? 'WF-003';
  const t0 = options.now ?? Date.now();
  const failed = options.status === 'failed';
  let sequence = 0;
  const producer = { service: 'auditline-smoke', host: os.hostname(), client_version: '0.1.0', instance_id: randomUUID() };
  const event = <K extends EventKind>(kind: K, at: number, value: EventPayloads[K]): AuditEvent => ({
    event_id: randomUUID(),
    event_time: at,
    execution_id: executionId,
    workflow_id: workflowId,
    sequence: ++sequence,
    correlation_id: 'trace-smoke-1',
    producer,
    schema_version: SCHEMA_VERSION,
    payload: payloadOf(kind, value),
  });
  return [
    event('ExecutionStarted', t0, {
      workflow_name: 'Invoice sync',
      workflow_version: '1.4.0',
      trigger: 'webhook',
      triggered_by: { kind: 'user', id: 'u-42' },
      start_time: t0,
      input: JSON.stringify({ customer_email: 'ann@example.com', amount: 12000 }),
      input_truncation: null,
      parent_execution_id: null,
    }),
    event('StepFinished', t0 + 40, {
      step_id: 1,
      step_name: 'fetch-invoice',
      attempt: 1,
      start_time: t0 + 1,
      end_time: t0 + 40,
      duration_ms: 39,
      status: failed ? 'failed' : 'success',
      input_data: JSON.stringify({ id: 7 }),
      output_data: failed ? null : JSON.stringify({ invoice: 7, amount: 12000 }),
      data_truncation: null,
      error: failed ? { type: 'TimeoutError', message: 'upstream timed out after 30s' } : null,
    }),
    event('DecisionRecorded', t0 + 41, {
      step_id: 1,
      branch_condition: 'amount > 10000',
      branch_taken: 'manual-approval',
      branch_reason: 'amount=12000 exceeds 10000',
      condition_values: JSON.stringify({ amount: 12000 }),
    }),
    event('ExecutionFinished', t0 + 50, {
      end_time: t0 + 50,
      duration_ms: 50,
      status: failed ? 'failed' : 'success',
      output: failed ? null : JSON.stringify({ approved: false }),
      error: failed ? { type: 'TimeoutError', message: 'step fetch-invoice failed' } : null,
    }),
  ];
}
