import { AuditlineError } from '../../core/errors.js';
import { clickhouseTime, isStorableTime, STORABLE_TIME_RANGE } from '../../core/clients/clickhouse-time.js';
import {
  unwrapPayload,
  type AuditEvent,
  type DecisionRecorded,
  type EventKind,
  type ExecutionFinished,
  type ExecutionStarted,
  type StepFinished,
} from '../../schemas/index.js';

/**
 * Pure mapping of one decoded audit event to the rows it adds to the hot
 * store: one row in the table of its kind plus one provenance row in
 * `events`. Payload JSON is stored as the text it arrived in (tokenized by
 * the tokenizer); nothing here opens a socket.
 */

/** Tables the hot store writes; a batch inserts them in the phases of INSERT_PHASES (writer.ts), `events` last. */
export const HOTSTORE_TABLES = ['executions', 'execution_results', 'steps', 'decisions', 'events'] as const;
export type HotstoreTable = (typeof HOTSTORE_TABLES)[number];
/** The tables holding an event's payload (all but the provenance table). */
export type DetailTable = Exclude<HotstoreTable, 'events'>;

/** Where a record came from in Kafka. */
export interface SourcePosition {
  topic: string;
  partition: number;
  offset: string;
}

/** `YYYY-MM-DD hh:mm:ss.sss` in UTC: what ClickHouse parses into DateTime64(3, 'UTC') under any input format setting. */
export type ClickHouseTime = string;

interface Identity {
  execution_id: string;
  workflow_id: string;
  event_id: string;
  event_time: ClickHouseTime;
}

export interface ExecutionRow extends Identity {
  workflow_name: string;
  workflow_version: string;
  trigger: string;
  triggered_by_kind: string;
  triggered_by_id: string;
  start_time: ClickHouseTime;
  parent_execution_id: string;
  correlation_id: string;
  input: string;
  input_truncated: boolean;
  input_original_size_bytes: number;
  input_sha256: string;
  sequence: number;
}

export interface ExecutionResultRow extends Identity {
  status: string;
  end_time: ClickHouseTime;
  duration_ms: number;
  output: string;
  error_type: string;
  error_message: string;
  sequence: number;
}

export interface StepRow extends Identity {
  step_id: number;
  step_name: string;
  attempt: number;
  status: string;
  start_time: ClickHouseTime;
  end_time: ClickHouseTime;
  duration_ms: number;
  input_data: string;
  output_data: string;
  data_truncated: boolean;
  data_original_size_bytes: number;
  data_sha256: string;
  error_type: string;
  error_message: string;
  sequence: number;
}

export interface DecisionRow extends Identity {
  sequence: number;
  step_id: number | null;
  branch_condition: string;
  branch_taken: string;
  branch_reason: string;
  condition_values: string;
}

export interface EventRow extends Identity {
  sequence: number;
  kind: EventKind;
  correlation_id: string;
  schema_version: number;
  producer_service: string;
  producer_host: string;
  producer_client_version: string;
  producer_instance_id: string;
  source_topic: string;
  source_partition: number;
  source_offset: number;
}

export interface RowsByTable {
  executions: ExecutionRow;
  execution_results: ExecutionResultRow;
  steps: StepRow;
  decisions: DecisionRow;
  events: EventRow;
}

/** The detail row of an event, tagged with its table. */
export type DetailRow = { [T in DetailTable]: { table: T; row: RowsByTable[T] } }[DetailTable];

/** Everything one event writes. */
export interface EventRows {
  eventId: string;
  detail: DetailRow;
  event: EventRow;
}

/**
 * Columns the service writes per table (ingested_at is filled by
 * ClickHouse). The writer checks at start that the tables have them.
 */
export const TABLE_COLUMNS: { readonly [T in HotstoreTable]: readonly (keyof RowsByTable[T])[] } = {
  executions: [
    'execution_id', 'workflow_id', 'workflow_name', 'workflow_version', 'trigger', 'triggered_by_kind', 'triggered_by_id', 'start_time',
    'parent_execution_id', 'correlation_id', 'input', 'input_truncated', 'input_original_size_bytes', 'input_sha256', 'event_id', 'event_time', 'sequence',
  ],
  execution_results: ['execution_id', 'workflow_id', 'status', 'end_time', 'duration_ms', 'output', 'error_type', 'error_message', 'event_id', 'event_time', 'sequence'],
  steps: [
    'execution_id', 'workflow_id', 'step_id', 'step_name', 'attempt', 'status', 'start_time', 'end_time', 'duration_ms', 'input_data', 'output_data',
    'data_truncated', 'data_original_size_bytes', 'data_sha256', 'error_type', 'error_message', 'event_id', 'event_time', 'sequence',
  ],
  decisions: ['execution_id', 'workflow_id', 'sequence', 'step_id', 'branch_condition', 'branch_taken', 'branch_reason', 'condition_values', 'event_id', 'event_time'],
  events: [
    'execution_id', 'sequence', 'event_id', 'event_time', 'workflow_id', 'kind', 'correlation_id', 'schema_version', 'producer_service', 'producer_host',
    'producer_client_version', 'producer_instance_id', 'source_topic', 'source_partition', 'source_offset',
  ],
};

/** How far ahead of the hot store's clock an event's time may be (clock skew); the PII TTLs run from event_time. */
export const MAX_FUTURE_MS = 24 * 3_600_000;

/**
 * Maps one event. Throws ROW_REJECTED (not retriable) naming the field when
 * the event cannot be stored as is (empty ids, a time outside what
 * DateTime64 holds); the message never contains the field's value.
 */
export function eventToRows(event: AuditEvent, source: SourcePosition, now: number = Date.now()): EventRows {
  const id = event.event_id;
  requireText(event.event_id, 'event_id', id);
  requireText(event.execution_id, 'execution_id', id);
  const base: Identity = {
    execution_id: event.execution_id,
    workflow_id: event.workflow_id,
    event_id: event.event_id,
    event_time: chTime(event.event_time, 'event_time', id),
  };
  // The PII columns expire a fixed time after event_time: one set far ahead (a producer's clock) would keep them longer.
  if (event.event_time > now + MAX_FUTURE_MS) {
    throw new AuditlineError('ROW_REJECTED', `event ${id}: event_time is ${Math.round((event.event_time - now) / 3_600_000)} hours ahead of this service's clock (more than ${MAX_FUTURE_MS / 3_600_000}); its PII would outlive the retention (is the producer's clock wrong?)`, {
      details: { eventId: id, field: 'event_time' },
    });
  }
  const { kind, value } = unwrapPayload(event.payload);
  const detail = detailRow(kind, value, base, event, id);
  return {
    eventId: id,
    detail,
    event: {
      execution_id: base.execution_id,
      workflow_id: base.workflow_id,
      event_id: base.event_id,
      event_time: base.event_time,
      sequence: event.sequence,
      kind,
      correlation_id: event.correlation_id ?? '',
      schema_version: event.schema_version,
      producer_service: event.producer.service,
      producer_host: event.producer.host,
      producer_client_version: event.producer.client_version,
      producer_instance_id: event.producer.instance_id,
      source_topic: source.topic,
      source_partition: source.partition,
      source_offset: Number(source.offset),
    },
  };
}

function detailRow(kind: EventKind, value: unknown, base: Identity, event: AuditEvent, id: string): DetailRow {
  // Row objects are written as plain literals (no spreads): one allocation each, which halves the cost of a batch.
  const at = (field: string) => `payload.${kind}.${field}`;
  switch (kind) {
    case 'ExecutionStarted': {
      const v = value as ExecutionStarted;
      return {
        table: 'executions',
        row: {
          execution_id: base.execution_id,
          workflow_id: base.workflow_id,
          event_id: base.event_id,
          event_time: base.event_time,
          workflow_name: v.workflow_name,
          workflow_version: v.workflow_version,
          trigger: v.trigger,
          triggered_by_kind: v.triggered_by.kind,
          triggered_by_id: v.triggered_by.id,
          start_time: chTime(v.start_time, at('start_time'), id),
          parent_execution_id: v.parent_execution_id ?? '',
          correlation_id: event.correlation_id ?? '',
          input: v.input,
          input_truncated: v.input_truncation !== null,
          input_original_size_bytes: v.input_truncation?.original_size_bytes ?? 0,
          input_sha256: v.input_truncation?.sha256 ?? '',
          sequence: event.sequence,
        },
      };
    }
    case 'ExecutionFinished': {
      const v = value as ExecutionFinished;
      return {
        table: 'execution_results',
        row: {
          execution_id: base.execution_id,
          workflow_id: base.workflow_id,
          event_id: base.event_id,
          event_time: base.event_time,
          status: v.status,
          end_time: chTime(v.end_time, at('end_time'), id),
          duration_ms: v.duration_ms,
          output: v.output ?? '',
          error_type: v.error?.type ?? '',
          error_message: v.error?.message ?? '',
          sequence: event.sequence,
        },
      };
    }
    case 'StepFinished': {
      const v = value as StepFinished;
      return {
        table: 'steps',
        row: {
          execution_id: base.execution_id,
          workflow_id: base.workflow_id,
          event_id: base.event_id,
          event_time: base.event_time,
          step_id: v.step_id,
          step_name: v.step_name,
          attempt: v.attempt,
          status: v.status,
          start_time: chTime(v.start_time, at('start_time'), id),
          end_time: chTime(v.end_time, at('end_time'), id),
          duration_ms: v.duration_ms,
          input_data: v.input_data,
          output_data: v.output_data ?? '',
          data_truncated: v.data_truncation !== null,
          data_original_size_bytes: v.data_truncation?.original_size_bytes ?? 0,
          data_sha256: v.data_truncation?.sha256 ?? '',
          error_type: v.error?.type ?? '',
          error_message: v.error?.message ?? '',
          sequence: event.sequence,
        },
      };
    }
    case 'DecisionRecorded': {
      const v = value as DecisionRecorded;
      return {
        table: 'decisions',
        row: {
          execution_id: base.execution_id,
          workflow_id: base.workflow_id,
          event_id: base.event_id,
          event_time: base.event_time,
          sequence: event.sequence,
          step_id: v.step_id,
          branch_condition: v.branch_condition,
          branch_taken: v.branch_taken,
          branch_reason: v.branch_reason,
          condition_values: v.condition_values,
        },
      };
    }
    default:
      throw new AuditlineError('ROW_REJECTED', `event ${id} has payload kind ${String(kind)}, which the hot store does not know`, { details: { event_id: id } });
  }
}

/** Epoch ms to ClickHouse's DateTime64(3) text; ROW_REJECTED outside 1900-2299. */
export function chTime(ms: number, field: string, eventId: string): ClickHouseTime {
  if (!isStorableTime(ms)) {
    throw new AuditlineError('ROW_REJECTED', `event ${eventId}: ${field} is outside the storable time range ${STORABLE_TIME_RANGE.text}`, {
      details: { event_id: eventId, field },
    });
  }
  return clickhouseTime(ms);
}

function requireText(value: string, field: string, eventId: string): void {
  if (typeof value !== 'string' || value.trim() === '') {
    throw new AuditlineError('ROW_REJECTED', `event ${eventId || '(no event_id)'}: ${field} is empty; the hot store keys rows by it`, {
      details: { field },
    });
  }
}
