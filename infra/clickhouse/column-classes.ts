import { auditEventSchema, dataClassIndex, type DataClass } from '../../schemas/index.js';

/**
 * Where each hot store column's value comes from, so that its data class
 * (pii / sox / internal) is the one the Avro schema tags the field with,
 * never a second opinion kept here. A column the hot store fills itself
 * (Kafka provenance, ingest time, the event's kind) declares its class.
 *
 * Access grants (access.ts) are derived from these classes: a column whose
 * field is tagged `pii` is never granted to the open operational role.
 */
export type ColumnSource = { field: string } | { own: DataClass; why: string };

const field = (path: string): ColumnSource => ({ field: path });
const own = (why: string): ColumnSource => ({ own: 'internal', why });

const STARTED = 'payload.ExecutionStarted';
const FINISHED = 'payload.ExecutionFinished';
const STEP = 'payload.StepFinished';
const DECISION = 'payload.DecisionRecorded';
const INGESTED = own('time the hot store inserted the row');

/** Every column of the hot store tables (migrations 0001-0005), in table order, with its source. */
export const HOTSTORE_COLUMN_SOURCES = {
  executions: {
    execution_id: field('execution_id'),
    workflow_id: field('workflow_id'),
    workflow_name: field(`${STARTED}.workflow_name`),
    workflow_version: field(`${STARTED}.workflow_version`),
    trigger: field(`${STARTED}.trigger`),
    triggered_by_kind: field(`${STARTED}.triggered_by.kind`),
    triggered_by_id: field(`${STARTED}.triggered_by.id`),
    start_time: field(`${STARTED}.start_time`),
    parent_execution_id: field(`${STARTED}.parent_execution_id`),
    correlation_id: field('correlation_id'),
    input: field(`${STARTED}.input`),
    input_truncated: field(`${STARTED}.input_truncation`),
    input_original_size_bytes: field(`${STARTED}.input_truncation.original_size_bytes`),
    input_sha256: field(`${STARTED}.input_truncation.sha256`),
    event_id: field('event_id'),
    event_time: field('event_time'),
    sequence: field('sequence'),
    ingested_at: INGESTED,
  },
  execution_results: {
    execution_id: field('execution_id'),
    workflow_id: field('workflow_id'),
    status: field(`${FINISHED}.status`),
    end_time: field(`${FINISHED}.end_time`),
    duration_ms: field(`${FINISHED}.duration_ms`),
    output: field(`${FINISHED}.output`),
    error_type: field(`${FINISHED}.error.type`),
    error_message: field(`${FINISHED}.error.message`),
    event_id: field('event_id'),
    event_time: field('event_time'),
    sequence: field('sequence'),
    ingested_at: INGESTED,
  },
  steps: {
    execution_id: field('execution_id'),
    workflow_id: field('workflow_id'),
    step_id: field(`${STEP}.step_id`),
    step_name: field(`${STEP}.step_name`),
    attempt: field(`${STEP}.attempt`),
    status: field(`${STEP}.status`),
    start_time: field(`${STEP}.start_time`),
    end_time: field(`${STEP}.end_time`),
    duration_ms: field(`${STEP}.duration_ms`),
    input_data: field(`${STEP}.input_data`),
    output_data: field(`${STEP}.output_data`),
    data_truncated: field(`${STEP}.data_truncation`),
    data_original_size_bytes: field(`${STEP}.data_truncation.original_size_bytes`),
    data_sha256: field(`${STEP}.data_truncation.sha256`),
    error_type: field(`${STEP}.error.type`),
    error_message: field(`${STEP}.error.message`),
    event_id: field('event_id'),
    event_time: field('event_time'),
    sequence: field('sequence'),
    ingested_at: INGESTED,
  },
  decisions: {
    execution_id: field('execution_id'),
    workflow_id: field('workflow_id'),
    sequence: field('sequence'),
    step_id: field(`${DECISION}.step_id`),
    branch_condition: field(`${DECISION}.branch_condition`),
    branch_taken: field(`${DECISION}.branch_taken`),
    branch_reason: field(`${DECISION}.branch_reason`),
    condition_values: field(`${DECISION}.condition_values`),
    event_id: field('event_id'),
    event_time: field('event_time'),
    ingested_at: INGESTED,
  },
  events: {
    execution_id: field('execution_id'),
    sequence: field('sequence'),
    event_id: field('event_id'),
    event_time: field('event_time'),
    workflow_id: field('workflow_id'),
    kind: own('which payload branch the event carries'),
    correlation_id: field('correlation_id'),
    schema_version: field('schema_version'),
    producer_service: field('producer.service'),
    producer_host: field('producer.host'),
    producer_client_version: field('producer.client_version'),
    producer_instance_id: field('producer.instance_id'),
    source_topic: own('Kafka topic the record was read from'),
    source_partition: own('Kafka partition of the record'),
    source_offset: own('Kafka offset of the record'),
    ingested_at: INGESTED,
  },
} as const satisfies Record<string, Record<string, ColumnSource>>;

/** A table whose access is defined. */
export type AccessTable = keyof typeof HOTSTORE_COLUMN_SOURCES;
export const ACCESS_TABLES = Object.keys(HOTSTORE_COLUMN_SOURCES) as AccessTable[];

/** Data class of every column, per table, in column order. Throws when a column names a field the schema lacks. */
export function columnClasses(schema = auditEventSchema().raw): Record<AccessTable, [column: string, dataClass: DataClass][]> {
  const tags = dataClassIndex(schema);
  const result = {} as Record<AccessTable, [string, DataClass][]>;
  for (const table of ACCESS_TABLES) {
    const sources: Record<string, ColumnSource> = HOTSTORE_COLUMN_SOURCES[table];
    result[table] = Object.entries(sources).map(([column, source]) => {
      if ('own' in source) return [column, source.own];
      const tag = tags.get(source.field);
      if (!tag) throw new Error(`column ${table}.${column} names schema field ${source.field}, which the audit event schema does not have`);
      return [column, tag];
    });
  }
  return result;
}

/** Columns holding a `pii`-class field, per table (empty for tables without any). */
export function piiColumns(schema = auditEventSchema().raw): Record<AccessTable, string[]> {
  const classes = columnClasses(schema);
  return Object.fromEntries(ACCESS_TABLES.map((t) => [t, classes[t].filter(([, c]) => c === 'pii').map(([col]) => col)])) as Record<AccessTable, string[]>;
}
