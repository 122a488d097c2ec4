import type { ClickHouseClient } from '@clickhouse/client';
import { AuditlineError } from '../../core/errors.js';
import { classifyClickHouseError } from './clickhouse-errors.js';
import { splitListParam } from '../../core/clients/clickhouse.js';

/** An execution's status when its stored outcomes disagree (a second ExecutionFinished with another status): no status-bound reveal rule allows it. */
export const CONFLICTING_STATUS = 'conflicting';

/** SQL over an execution's rows of execution_results: its status, or CONFLICTING_STATUS when they disagree. */
export const OUTCOME_STATUS_SQL = `if(uniqExact(status) > 1, '${CONFLICTING_STATUS}', any(status))`;

/**
 * The hot store's query patterns as SQL (docs/hotstore.md prints the same
 * text for `audit`), each served by an index: see the EXPLAIN test in
 * test/integration/hotstore-explain.test.ts. FINAL collapses redelivered
 * copies of an event (same ReplacingMergeTree key, event_id included).
 * Lookups by execution_id allow skip indexes under FINAL explicitly (the
 * default differs between ClickHouse versions): the bloom filters on
 * execution_id skip the parts that do not hold the execution. That is exact
 * because the copies FINAL collapses are identical rows with the same
 * execution_id, so a skipped granule never holds a copy of a returned row.
 * Values are bound as query parameters, never spliced into the text.
 */
export const HOTSTORE_SQL = {
  /** Failed executions of a workflow that ended within the last N seconds (key: workflow_id, status, end_time). */
  failed: (db: string) => `SELECT
    execution_id,
    status,
    end_time - toIntervalMillisecond(duration_ms) AS start_time,
    end_time,
    duration_ms,
    error_type,
    error_message
FROM ${db}.execution_results FINAL
WHERE workflow_id = {workflow_id:String}
  AND status = 'failed'
  AND end_time >= now64(3) - toIntervalSecond({since_seconds:UInt32})
ORDER BY end_time DESC
LIMIT 1 BY execution_id
LIMIT {limit:UInt32}`,

  /** The execution's input and every step attempt's input, as stored (tokenized). executions, execution_results: bloom filter; steps: key prefix and bloom filter. */
  inputs: (db: string) => `WITH (
    SELECT ${OUTCOME_STATUS_SQL} FROM ${db}.execution_results FINAL WHERE execution_id = {execution_id:String}
) AS outcome
SELECT source, step_id, step_name, attempt, status, start_time, input, truncated
FROM
(
    SELECT 'execution' AS source, toInt32(0) AS step_id, '' AS step_name, toInt32(0) AS attempt,
           if(outcome = '', 'running', outcome) AS status, start_time, input, input_truncated AS truncated
    FROM ${db}.executions FINAL
    WHERE execution_id = {execution_id:String}
    UNION ALL
    SELECT 'step', step_id, step_name, attempt, status, start_time, input_data, data_truncated
    FROM ${db}.steps FINAL
    WHERE execution_id = {execution_id:String}
)
ORDER BY step_id, attempt, start_time
SETTINGS use_skip_indexes_if_final = 1`,

  /** Decisions of an execution in the order they were taken (key prefix execution_id and bloom filter, both tables), with the step name. */
  decisions: (db: string) => `SELECT
    d.step_id AS step_id,
    s.step_name AS step_name,
    d.branch_condition AS branch_condition,
    d.branch_taken AS branch_taken,
    d.branch_reason AS branch_reason,
    d.condition_values AS condition_values,
    d.sequence AS sequence,
    d.event_time AS decided_at
FROM ${db}.decisions AS d FINAL
LEFT JOIN
(
    SELECT step_id, any(step_name) AS step_name
    FROM ${db}.steps
    WHERE execution_id = {execution_id:String}
    GROUP BY step_id
) AS s ON s.step_id = d.step_id
WHERE d.execution_id = {execution_id:String}
ORDER BY d.sequence
SETTINGS use_skip_indexes_if_final = 1`,

  /** Each listed execution's outcome over all its results (bloom filter on execution_id): what `query failed` shows beside a failure. */
  outcomes: (db: string) => `SELECT execution_id, ${OUTCOME_STATUS_SQL} AS outcome
FROM ${db}.execution_results FINAL
WHERE execution_id IN {ids:Array(String)}
GROUP BY execution_id
SETTINGS use_skip_indexes_if_final = 1`,

  /** Whether the hot store holds any event of the execution (key prefix execution_id and bloom filter of `events`). */
  known: (db: string) => `SELECT count() AS events
FROM ${db}.events
WHERE execution_id = {execution_id:String}`,
} as const;

export interface FailedExecution {
  execution_id: string;
  status: string;
  /**
   * The execution's outcome over all its results: `failed`, or `conflicting`
   * when another result of it says otherwise (two ExecutionFinished events
   * that disagree; the reveal rules judge by this, docs/tokenizer.md).
   */
  outcome: string;
  start_time: string;
  end_time: string;
  duration_ms: number;
  error_type: string;
  error_message: string;
}

export interface ExecutionInput {
  source: 'execution' | 'step';
  step_id: number;
  step_name: string;
  attempt: number;
  status: string;
  start_time: string;
  input: string;
  truncated: boolean;
}

export interface DecisionStep {
  step_id: number | null;
  step_name: string;
  branch_condition: string;
  branch_taken: string;
  branch_reason: string;
  condition_values: string;
  sequence: number;
  decided_at: string;
}

/** Failed executions of `workflowId` that ended in the last `sinceSeconds`, newest first. */
export async function failedExecutions(
  client: ClickHouseClient,
  database: string,
  q: { workflowId: string; sinceSeconds: number; limit: number },
): Promise<FailedExecution[]> {
  const rows = await run<FailedExecution>(client, database, HOTSTORE_SQL.failed(database), {
    workflow_id: q.workflowId,
    since_seconds: q.sinceSeconds,
    limit: q.limit,
  });
  const outcomes = new Map<string, string>();
  // Ids travel as a query parameter in the URL: a long --limit is asked in runs below ClickHouse's field limit.
  for (const ids of splitListParam(rows.map((r) => r.execution_id))) {
    for (const o of await run<{ execution_id: string; outcome: string }>(client, database, HOTSTORE_SQL.outcomes(database), { ids })) outcomes.set(o.execution_id, o.outcome);
  }
  return rows.map((r) => ({ ...r, duration_ms: Number(r.duration_ms), outcome: outcomes.get(r.execution_id) ?? r.status }));
}

/** Inputs of one execution: the execution's own input first, then each step attempt in order. */
export async function executionInputs(client: ClickHouseClient, database: string, executionId: string): Promise<ExecutionInput[]> {
  const rows = await run<ExecutionInput>(client, database, HOTSTORE_SQL.inputs(database), { execution_id: executionId });
  return rows.map((r) => ({ ...r, step_id: Number(r.step_id), attempt: Number(r.attempt), truncated: Boolean(r.truncated) }));
}

/** The decision path of one execution, in the order the branches were taken. */
export async function decisionPath(client: ClickHouseClient, database: string, executionId: string): Promise<DecisionStep[]> {
  const rows = await run<DecisionStep>(client, database, HOTSTORE_SQL.decisions(database), { execution_id: executionId });
  return rows.map((r) => ({ ...r, step_id: r.step_id === null ? null : Number(r.step_id), sequence: Number(r.sequence) }));
}

/** True when the hot store holds at least one event of the execution. */
export async function executionKnown(client: ClickHouseClient, database: string, executionId: string): Promise<boolean> {
  const rows = await run<{ events: number | string }>(client, database, HOTSTORE_SQL.known(database), { execution_id: executionId });
  return Number(rows[0]?.events ?? 0) > 0;
}

async function run<T>(client: ClickHouseClient, database: string, query: string, params: Record<string, unknown>): Promise<T[]> {
  try {
    const rs = await client.query({ query, query_params: params, format: 'JSONEachRow' });
    return await rs.json<T>();
  } catch (err) {
    throw queryError(err, database);
  }
}

function queryError(err: unknown, database: string): AuditlineError {
  const failure = classifyClickHouseError(err);
  if (failure.type === 'UNKNOWN_TABLE' || failure.type === 'UNKNOWN_DATABASE') {
    return new AuditlineError('STORE_NOT_INITIALIZED', `the hot store tables do not exist in database ${database}; run \`npx auditline setup\``, { cause: err });
  }
  if (failure.code === '' && failure.retriable) {
    return new AuditlineError('CLICKHOUSE_UNAVAILABLE', `ClickHouse cannot be reached: ${failure.summary}`, { retriable: true, cause: err });
  }
  return new AuditlineError('QUERY_FAILED', `hot store query failed: ${failure.summary}`, { cause: err });
}

/** Rows of one execution as the hot store keeps them, for `auditline replay` (every table: bloom filter on execution_id, key prefix where keyed by it). */
export interface StoredExecutionRecord {
  started: {
    workflow_id: string;
    workflow_name: string;
    workflow_version: string;
    trigger: string;
    triggered_by_kind: string;
    triggered_by_id: string;
    start_time: string;
    parent_execution_id: string;
    correlation_id: string;
    input: string;
    input_truncated: boolean;
  } | null;
  steps: {
    step_id: number;
    step_name: string;
    attempt: number;
    status: string;
    start_time: string;
    end_time: string;
    duration_ms: number;
    input_data: string;
    output_data: string;
    data_truncated: boolean;
    error_type: string;
    error_message: string;
  }[];
  decisions: DecisionStep[];
  /** The latest outcome; `statuses`: how many different statuses its outcomes have (more than 1: they disagree). */
  result: { status: string; end_time: string; duration_ms: number; output: string; error_type: string; error_message: string; statuses: number } | null;
}

/** Everything the hot store holds about one execution: start, step attempts (input, output, error), decisions, result. */
export async function executionRecord(client: ClickHouseClient, database: string, executionId: string): Promise<StoredExecutionRecord> {
  const params = { execution_id: executionId };
  const [started] = await run<NonNullable<StoredExecutionRecord['started']>>(
    client,
    database,
    `SELECT workflow_id, workflow_name, workflow_version, trigger, triggered_by_kind, triggered_by_id, start_time, parent_execution_id, correlation_id, input, input_truncated
FROM ${database}.executions FINAL WHERE execution_id = {execution_id:String} ORDER BY event_time LIMIT 1
SETTINGS use_skip_indexes_if_final = 1`,
    params,
  );
  const steps = await run<StoredExecutionRecord['steps'][number]>(
    client,
    database,
    `SELECT step_id, step_name, attempt, status, start_time, end_time, duration_ms, input_data, output_data, data_truncated, error_type, error_message
FROM ${database}.steps FINAL WHERE execution_id = {execution_id:String} ORDER BY step_id, attempt, start_time
SETTINGS use_skip_indexes_if_final = 1`,
    params,
  );
  const [result] = await run<NonNullable<StoredExecutionRecord['result']>>(
    client,
    database,
    `SELECT status, end_time, duration_ms, output, error_type, error_message,
       toUInt32((SELECT uniqExact(status) FROM ${database}.execution_results FINAL WHERE execution_id = {execution_id:String})) AS statuses
FROM ${database}.execution_results FINAL WHERE execution_id = {execution_id:String} ORDER BY event_time DESC LIMIT 1
SETTINGS use_skip_indexes_if_final = 1`,
    params,
  );
  return {
    started: started ? { ...started, input_truncated: Boolean(started.input_truncated) } : null,
    steps: steps.map((s) => ({ ...s, step_id: Number(s.step_id), attempt: Number(s.attempt), duration_ms: Number(s.duration_ms), data_truncated: Boolean(s.data_truncated) })),
    decisions: await decisionPath(client, database, executionId),
    result: result ? { ...result, duration_ms: Number(result.duration_ms) } : null,
  };
}
