/**
 * TypeScript view of schemas/avro/audit-event.avsc (schema_version 1).
 * Timestamps are epoch milliseconds (UTC); JSON-bearing fields are JSON text.
 * The payload is an Avro union, written in avsc's wrapped form: an object
 * with exactly one key, the full name of the event record.
 */
export type Trigger = 'webhook' | 'schedule' | 'manual' | 'api' | 'unknown';
export type ActorKind = 'user' | 'system' | 'service' | 'unknown';
export type StepStatus = 'success' | 'failed' | 'skipped' | 'unknown';
export type ExecutionStatus = 'success' | 'failed' | 'partial' | 'unknown';

export interface ErrorInfo {
  type: string;
  message: string;
}

export interface Truncation {
  original_size_bytes: number;
  sha256: string;
}

export interface ExecutionStarted {
  workflow_name: string;
  workflow_version: string;
  trigger: Trigger;
  triggered_by: { kind: ActorKind; id: string };
  start_time: number;
  input: string;
  input_truncation: Truncation | null;
  parent_execution_id: string | null;
}

export interface StepFinished {
  step_id: number;
  step_name: string;
  attempt: number;
  start_time: number;
  end_time: number;
  duration_ms: number;
  status: StepStatus;
  input_data: string;
  output_data: string | null;
  data_truncation: Truncation | null;
  error: ErrorInfo | null;
}

export interface DecisionRecorded {
  step_id: number | null;
  branch_condition: string;
  branch_taken: string;
  branch_reason: string;
  condition_values: string;
}

export interface ExecutionFinished {
  end_time: number;
  duration_ms: number;
  status: ExecutionStatus;
  output: string | null;
  error: ErrorInfo | null;
}

export const EVENT_NAMESPACE = 'io.auditline.events';

/** Event kinds by their short record name. */
export interface EventPayloads {
  ExecutionStarted: ExecutionStarted;
  StepFinished: StepFinished;
  DecisionRecorded: DecisionRecorded;
  ExecutionFinished: ExecutionFinished;
}
export type EventKind = keyof EventPayloads;
export const EVENT_KINDS: readonly EventKind[] = ['ExecutionStarted', 'StepFinished', 'DecisionRecorded', 'ExecutionFinished'];

/** The wrapped union value of `payload`. */
export type Payload = {
  [K in EventKind]: { [P in `${typeof EVENT_NAMESPACE}.${K}`]: EventPayloads[K] };
}[EventKind];

export interface ProducerIdentity {
  service: string;
  host: string;
  client_version: string;
  instance_id: string;
}

export interface AuditEvent {
  event_id: string;
  event_time: number;
  execution_id: string;
  workflow_id: string;
  sequence: number;
  correlation_id: string | null;
  producer: ProducerIdentity;
  schema_version: number;
  payload: Payload;
}

/** Builds the wrapped payload of one event kind. */
export function payloadOf<K extends EventKind>(kind: K, value: EventPayloads[K]): Payload {
  return { [`${EVENT_NAMESPACE}.${kind}`]: value } as unknown as Payload;
}

/** Unwraps a payload into its kind and value. */
export function unwrapPayload(payload: Payload): { kind: EventKind; value: EventPayloads[EventKind] } {
  const [fullName, value] = Object.entries(payload)[0] as [string, EventPayloads[EventKind]];
  return { kind: fullName.slice(EVENT_NAMESPACE.length + 1) as EventKind, value };
}
