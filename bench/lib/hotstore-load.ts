/**
 * Server-side bulk load for `npm run bench -- hotstore`: fills the hot store
 * tables with `executions` synthetic executions through INSERT … SELECT …
 * FROM numbers(N), so that ten million events load in minutes instead of
 * being pushed through a client. The shape follows real data: 200
 * workflows, start times spread over `spanDays` (newest first), 1-5 steps
 * and 1-2 decisions per execution, 10% failed (the last step fails), 2%
 * partial, the 20 newest still running. Ids are deterministic UUIDs
 * (MD5 of the number) so that a reload gives the same rows.
 */
import type { ClickHouseClient } from '@clickhouse/client';

export interface LoadShape {
  executions: number;
  spanDays: number;
  workflows: number;
}

const uuid = (seed: string) => `toString(reinterpretAsUUID(MD5(${seed})))`;

/** The per-execution columns every statement starts from. */
function base(shape: LoadShape): string {
  const spanMs = shape.spanDays * 86_400_000;
  return `SELECT
        number AS n,
        ${uuid(`concat('bench-exec-', toString(number))`)} AS execution_id,
        concat('WF-', leftPad(toString(number % ${shape.workflows}), 3, '0')) AS workflow_id,
        now64(3) - toIntervalMillisecond(intDiv(number * ${spanMs}, ${shape.executions}) + 10000) AS t0,
        toInt32(1 + number % 5) AS steps,
        toInt32(1 + number % 2) AS decisions,
        multiIf(number < 20, 'running', number % 10 = 3, 'failed', number % 50 = 7, 'partial', 'success') AS outcome
    FROM numbers(${shape.executions})`;
}

const eventId = (seq: string) => uuid(`concat('bench-ev-', toString(n), '-', toString(${seq}))`);

/** The statements, one per table (and one per kind for `events`), in the order they run. */
export function loadStatements(db: string, shape: LoadShape): { table: string; sql: string }[] {
  const b = base(shape);
  const stepRows = `SELECT *, i AS step_id, t0 + toIntervalMillisecond((i - 1) * 1000 + 1) AS step_start, t0 + toIntervalMillisecond(i * 1000) AS step_end,
        if(outcome = 'failed' AND i = steps, 'failed', 'success') AS step_status
      FROM (${b}) ARRAY JOIN range(1, steps + 1) AS i`;
  const decisionRows = `SELECT *, j, toInt32(least(j, steps)) AS decision_step, t0 + toIntervalMillisecond(least(j, steps) * 1000 + 10) AS decided_at
      FROM (${b}) ARRAY JOIN range(1, decisions + 1) AS j`;
  const finishedAt = `t0 + toIntervalMillisecond(steps * 1000 + 500)`;
  const eventsCols = `(execution_id, sequence, event_id, event_time, workflow_id, kind, correlation_id, schema_version, producer_service, producer_host, producer_client_version, producer_instance_id, source_topic, source_partition, source_offset)`;
  const provenance = (kind: string) =>
    `'${kind}', concat('trace-', substring(execution_id, 1, 8)), 1, 'bench-load', concat('host-', toString(n % 7)), '0.1.0', 'bench-instance', 'audit.events', toInt32(n % 6), toInt64(n)`;
  return [
    {
      table: 'executions',
      sql: `INSERT INTO ${db}.executions (execution_id, workflow_id, workflow_name, workflow_version, trigger, triggered_by_kind, triggered_by_id, start_time, parent_execution_id, correlation_id, input, input_truncated, input_original_size_bytes, input_sha256, event_id, event_time, sequence)
      SELECT execution_id, workflow_id, concat('workflow ', workflow_id), '2.1.0', ['webhook', 'schedule', 'manual', 'api'][1 + n % 4], 'service', concat('svc-', toString(n % 13)), t0, '', concat('trace-', substring(execution_id, 1, 8)),
        concat('{"customer_email":{"token":"tok_', hex(MD5(toString(n % 50000))), '","masked":"c***@example.com"},"order_id":"ORD-', toString(n), '","amount":', toString(n % 100000), ',"currency":"EUR"}'),
        false, 0, '', ${eventId('1')}, t0, 1
      FROM (${b})`,
    },
    {
      table: 'steps',
      sql: `INSERT INTO ${db}.steps (execution_id, workflow_id, step_id, step_name, attempt, status, start_time, end_time, duration_ms, input_data, output_data, data_truncated, data_original_size_bytes, data_sha256, error_type, error_message, event_id, event_time, sequence)
      SELECT execution_id, workflow_id, step_id, ['fetch-invoice', 'validate', 'charge-card', 'notify', 'archive'][step_id], 1, step_status, step_start, step_end, 999,
        concat('{"step":', toString(step_id), ',"order_id":"ORD-', toString(n), '","recipient":{"token":"tok_', hex(MD5(toString(n % 50000))), '"}}'),
        if(step_status = 'failed', '', '{"ok":true}'), false, 0, '', if(step_status = 'failed', 'TimeoutError', ''), if(step_status = 'failed', 'upstream timed out after 30 s', ''),
        ${eventId('1 + step_id')}, step_end, 1 + step_id
      FROM (${stepRows})`,
    },
    {
      table: 'decisions',
      sql: `INSERT INTO ${db}.decisions (execution_id, workflow_id, sequence, step_id, branch_condition, branch_taken, branch_reason, condition_values, event_id, event_time)
      SELECT execution_id, workflow_id, 1 + steps + j, decision_step, 'amount > 10000', if(n % 100000 > 10000, 'manual-approval', 'auto-approve'),
        concat('amount=', toString(n % 100000), ' compared with 10000'), concat('{"amount":', toString(n % 100000), '}'), ${eventId('1 + steps + j')}, decided_at
      FROM (${decisionRows})`,
    },
    {
      table: 'execution_results',
      sql: `INSERT INTO ${db}.execution_results (execution_id, workflow_id, status, end_time, duration_ms, output, error_type, error_message, event_id, event_time, sequence)
      SELECT execution_id, workflow_id, outcome, ${finishedAt}, steps * 1000 + 500, if(outcome = 'failed', '', '{"done":true}'),
        if(outcome = 'failed', 'TimeoutError', ''), if(outcome = 'failed', 'a step failed', ''), ${eventId('2 + steps + decisions')}, ${finishedAt}, 2 + steps + decisions
      FROM (${b}) WHERE outcome != 'running'`,
    },
    {
      table: 'events (ExecutionStarted)',
      sql: `INSERT INTO ${db}.events ${eventsCols} SELECT execution_id, 1, ${eventId('1')}, t0, workflow_id, ${provenance('ExecutionStarted')} FROM (${b})`,
    },
    {
      table: 'events (StepFinished)',
      sql: `INSERT INTO ${db}.events ${eventsCols} SELECT execution_id, 1 + step_id, ${eventId('1 + step_id')}, step_end, workflow_id, ${provenance('StepFinished')} FROM (${stepRows})`,
    },
    {
      table: 'events (DecisionRecorded)',
      sql: `INSERT INTO ${db}.events ${eventsCols} SELECT execution_id, 1 + steps + j, ${eventId('1 + steps + j')}, decided_at, workflow_id, ${provenance('DecisionRecorded')} FROM (${decisionRows})`,
    },
    {
      table: 'events (ExecutionFinished)',
      sql: `INSERT INTO ${db}.events ${eventsCols} SELECT execution_id, 2 + steps + decisions, ${eventId('2 + steps + decisions')}, ${finishedAt}, workflow_id, ${provenance('ExecutionFinished')}
      FROM (${b}) WHERE outcome != 'running'`,
    },
  ];
}

/** Runs the load; returns the number of events (rows of `events`) and the seconds it took. */
export async function bulkLoad(client: ClickHouseClient, db: string, shape: LoadShape, say: (m: string) => void): Promise<{ events: number; seconds: number }> {
  const t0 = performance.now();
  for (const { table, sql } of loadStatements(db, shape)) {
    const began = performance.now();
    // A long INSERT … SELECT: no HTTP timeout shorter than the work.
    await client.command({ query: sql, clickhouse_settings: { max_execution_time: 0, send_progress_in_http_headers: 0 } });
    say(`  loaded ${table} in ${((performance.now() - began) / 1000).toFixed(1)} s`);
  }
  const rs = await client.query({ query: `SELECT count() AS n FROM ${db}.events`, format: 'JSONEachRow' });
  const events = Number((await rs.json<{ n: string }>())[0]!.n);
  return { events, seconds: (performance.now() - t0) / 1000 };
}
