import type { ClickHouseClient } from '@clickhouse/client';
import { database, selectRows } from './clickhouse.js';
import { OUTCOME_STATUS_SQL } from '../hotstore/queries.js';
import { TOKEN_MARKS } from './pii-format.js';

/** Which stored fields a reveal asks for: the inputs (what reproduces a run), or every PII column of the execution. */
export type RevealScope = 'inputs' | 'all';

/** A stored execution as the reveal reads it from the hot store. */
export interface StoredExecution {
  /** `success`, `failed`, `partial`, `running` (started, not finished), or undefined when the hot store has no trace of it. */
  status: string | undefined;
  fields: { name: string; text: string }[];
}

/**
 * Reads an execution's tokenized PII columns from the hot store tables
 * (docs/hotstore.md): the execution input and step inputs, and with scope
 * `all` also step outputs and errors, decision reasons and values, the
 * execution's output and error, and the free-text fields (workflow and step
 * names, error types, branch conditions) that hold a token. FINAL collapses
 * redelivered copies.
 */
export async function loadStoredExecution(client: ClickHouseClient, databaseName: string, executionId: string, scope: RevealScope = 'inputs'): Promise<StoredExecution> {
  const db = database(databaseName);
  const all = scope === 'all';
  const parts = [
    `SELECT 0 AS o, 0 AS s, 0 AS a, 'execution.input' AS name, input AS text FROM ${db}.executions FINAL WHERE execution_id = {id:String}`,
    `SELECT 1, step_id, attempt, concat('step[', toString(step_id), '].attempt[', toString(attempt), '].input_data'), input_data FROM ${db}.steps FINAL WHERE execution_id = {id:String}`,
  ];
  if (all) {
    parts.push(
      `SELECT 1, step_id, attempt, concat('step[', toString(step_id), '].attempt[', toString(attempt), '].output_data'), output_data FROM ${db}.steps FINAL WHERE execution_id = {id:String} AND output_data != ''`,
      `SELECT 1, step_id, attempt, concat('step[', toString(step_id), '].attempt[', toString(attempt), '].error_message'), error_message FROM ${db}.steps FINAL WHERE execution_id = {id:String} AND error_message != ''`,
      `SELECT 2, toInt32(sequence), 0, concat('decision[', toString(sequence), '].branch_reason'), branch_reason FROM ${db}.decisions FINAL WHERE execution_id = {id:String}`,
      `SELECT 2, toInt32(sequence), 0, concat('decision[', toString(sequence), '].condition_values'), condition_values FROM ${db}.decisions FINAL WHERE execution_id = {id:String}`,
      `SELECT 3, 0, 0, 'execution.output', output FROM ${db}.execution_results FINAL WHERE execution_id = {id:String} AND output != ''`,
      `SELECT 3, 0, 0, 'execution.error_message', error_message FROM ${db}.execution_results FINAL WHERE execution_id = {id:String} AND error_message != ''`,
      // Free-text fields (core/pii/scanned-fields.ts) only where the tokenizer found PII in them.
      `SELECT 0, 0, 0, 'execution.workflow_name', workflow_name FROM ${db}.executions FINAL WHERE execution_id = {id:String} AND ${holdsToken('workflow_name')}`,
      `SELECT 1, step_id, attempt, concat('step[', toString(step_id), '].attempt[', toString(attempt), '].step_name'), step_name FROM ${db}.steps FINAL WHERE execution_id = {id:String} AND ${holdsToken('step_name')}`,
      `SELECT 1, step_id, attempt, concat('step[', toString(step_id), '].attempt[', toString(attempt), '].error_type'), error_type FROM ${db}.steps FINAL WHERE execution_id = {id:String} AND ${holdsToken('error_type')}`,
      `SELECT 2, toInt32(sequence), 0, concat('decision[', toString(sequence), '].branch_condition'), branch_condition FROM ${db}.decisions FINAL WHERE execution_id = {id:String} AND ${holdsToken('branch_condition')}`,
      `SELECT 2, toInt32(sequence), 0, concat('decision[', toString(sequence), '].branch_taken'), branch_taken FROM ${db}.decisions FINAL WHERE execution_id = {id:String} AND ${holdsToken('branch_taken')}`,
      `SELECT 3, 0, 0, 'execution.error_type', error_type FROM ${db}.execution_results FINAL WHERE execution_id = {id:String} AND ${holdsToken('error_type')}`,
    );
  }
  const fields = await selectRows<{ name: string; text: string }>(
    client,
    'reading the execution from the hot store',
    `SELECT name, text FROM (${parts.join(' UNION ALL ')}) ORDER BY o, s, a, name SETTINGS use_skip_indexes_if_final = 1`,
    { id: executionId },
  );
  return { status: await storedStatus(client, databaseName, executionId), fields };
}

/**
 * An execution's status as reveal policies judge it, from its outcomes in
 * execution_results: `success`, `failed`, `partial`, `conflicting` (outcomes
 * disagree), `running` (events but no outcome), or undefined when the hot
 * store has no event of it.
 */
export async function storedStatus(client: ClickHouseClient, databaseName: string, executionId: string): Promise<string | undefined> {
  const db = database(databaseName);
  const [status] = await selectRows<{ status: string; known: number | string }>(
    client,
    'reading the execution status',
    // Two outcomes with different statuses (a second ExecutionFinished, e.g. one forged to pass a "failed only" rule)
    // make the status 'conflicting', which no status rule allows: only roles allowed for any status may reveal it.
    `SELECT (SELECT ${OUTCOME_STATUS_SQL} FROM ${db}.execution_results FINAL WHERE execution_id = {id:String}) AS status,
            (SELECT count() FROM ${db}.events WHERE execution_id = {id:String}) AS known`,
    { id: executionId },
  );
  const known = Number(status?.known ?? 0) > 0;
  return !known ? undefined : status?.status ? status.status : 'running';
}

/** SQL: the column holds a token mark (TOKEN_MARKS: a `{"$pii": …}` object in JSON text, or an inline marker). */
function holdsToken(column: string): string {
  return `(${TOKEN_MARKS.map((m) => `position(${column}, '${m}') > 0`).join(' OR ')})`;
}
