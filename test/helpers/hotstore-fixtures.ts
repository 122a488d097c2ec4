import { randomUUID } from 'node:crypto';
import { payloadOf, SCHEMA_VERSION, type AuditEvent, type EventKind, type EventPayloads } from '../../schemas/index.js';

export interface StepSpec {
  name: string;
  status: 'success' | 'failed';
  /** Attempts of the step; every attempt before the last fails. @default 1 */
  attempts?: number;
}

export interface DecisionSpec {
  /** 1-based position of the step the decision follows. */
  step: number;
  condition: string;
  taken: string;
  reason: string;
}

export interface ExecutionSpec {
  workflowId: string;
  /** 'running' records no ExecutionFinished. */
  status: 'success' | 'failed' | 'running';
  /** When the execution started, in ms before `now`. */
  startedAgoMs: number;
  steps?: StepSpec[];
  decisions?: DecisionSpec[];
  now?: number;
}

/**
 * The events of one synthetic execution with controlled times and outcome,
 * schema-valid and in sequence order: started, then per step its attempts,
 * each step's decisions right after it, then finished (unless running).
 * Inputs carry token-like values, as the tokenizer would leave them.
 */
export function buildExecution(spec: ExecutionSpec): AuditEvent[] {
  const executionId = randomUUID();
  const now = spec.now ?? Date.now();
  const t0 = now - spec.startedAgoMs;
  let sequence = 0;
  let clock = t0;
  const producer = { service: 'hotstore-test', host: 'test-host', client_version: '0.1.0', instance_id: randomUUID() };
  const events: AuditEvent[] = [];
  const add = <K extends EventKind>(kind: K, at: number, value: EventPayloads[K]): void => {
    events.push({
      event_id: randomUUID(),
      event_time: at,
      execution_id: executionId,
      workflow_id: spec.workflowId,
      sequence: ++sequence,
      correlation_id: `trace-${executionId.slice(0, 8)}`,
      producer,
      schema_version: SCHEMA_VERSION,
      payload: payloadOf(kind, value),
    });
  };
  add('ExecutionStarted', t0, {
    workflow_name: `workflow ${spec.workflowId}`,
    workflow_version: '2.0.0',
    trigger: 'api',
    triggered_by: { kind: 'service', id: 'svc-test' },
    start_time: t0,
    input: JSON.stringify({ customer_email: { token: `tok_${executionId.slice(0, 6)}` }, amount: 12000 }),
    input_truncation: null,
    parent_execution_id: null,
  });
  (spec.steps ?? []).forEach((step, i) => {
    const attempts = step.attempts ?? 1;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      const last = attempt === attempts;
      const failed = !last || step.status === 'failed';
      const start = ++clock;
      clock += 10;
      add('StepFinished', clock, {
        step_id: i + 1,
        step_name: step.name,
        attempt,
        start_time: start,
        end_time: clock,
        duration_ms: clock - start,
        status: failed ? 'failed' : 'success',
        input_data: JSON.stringify({ step: step.name, attempt }),
        output_data: failed ? null : JSON.stringify({ ok: true }),
        data_truncation: null,
        error: failed ? { type: 'TimeoutError', message: `${step.name} timed out` } : null,
      });
    }
    for (const d of (spec.decisions ?? []).filter((x) => x.step === i + 1)) {
      add('DecisionRecorded', ++clock, {
        step_id: d.step,
        branch_condition: d.condition,
        branch_taken: d.taken,
        branch_reason: d.reason,
        condition_values: JSON.stringify({ amount: 12000 }),
      });
    }
  });
  if (spec.status !== 'running') {
    // The end lies `clock - t0` ms after the start; pick startedAgoMs so that end times land where a test needs them.
    const end = ++clock;
    const failed = spec.status === 'failed';
    add('ExecutionFinished', end, {
      end_time: end,
      duration_ms: end - t0,
      status: spec.status,
      output: failed ? null : JSON.stringify({ done: true }),
      error: failed ? { type: 'TimeoutError', message: 'a step failed' } : null,
    });
  }
  return events;
}

/** Execution id of a built execution. */
export const idOf = (events: readonly AuditEvent[]): string => events[0]!.execution_id;
