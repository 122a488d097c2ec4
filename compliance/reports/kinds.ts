import type { ReportColumn, TotalsSpec } from './document.js';
import { OUTCOME_STATUS_SQL } from '../../consumers/hotstore/queries.js';

/** Filters of a report request; times are epoch ms, `to` exclusive. */
export interface ReportFilter {
  from: number;
  to: number;
  /** Workflow ids (any of them); empty: all. */
  workflows: readonly string[];
  /** One execution (decisions only). */
  executionId?: string;
  /** Subject tokens (as stored); empty: all. */
  subjects: readonly string[];
}

export type ReportFilterName = 'workflow' | 'execution' | 'subject';

export interface ReportKind {
  name: string;
  title: string;
  /** The documented column set, in order (docs/reports.md). */
  columns: readonly ReportColumn[];
  totals: TotalsSpec;
  /** Filters beyond the period that this kind accepts. */
  filters: readonly ReportFilterName[];
  /** Columns that may hold tokenized PII: revealed only for a role the reveal policy allows. */
  piiColumns: readonly string[];
  /** Data class whose retention bounds how long the tables it reads keep their rows (the hot store's: internal). */
  keptFor: 'internal' | 'sox';
  /** The SELECT, its values bound as query parameters (never spliced into the text). */
  sql(database: string, f: ReportFilter): string;
}

const col = (key: string, width: number): ReportColumn => ({ key, width });
const TIME = 23;

/**
 * Executions of the subjects `{subjects:Array(String)}`. No FINAL: a copy of a
 * mapping row changes nothing in an IN list, and without FINAL the bloom
 * filter on `subject` (migration 0018) skips the granules of other subjects.
 */
export const SUBJECT_EXECUTIONS_SQL = (db: string) => `SELECT execution_id FROM ${db}.execution_subjects WHERE subject IN {subjects:Array(String)}`;

/** `AND <expr> IN (executions of the subjects)` when subjects are given. */
const subjectClause = (db: string, f: ReportFilter, column = 'execution_id') =>
  f.subjects.length > 0 ? `AND ${column} IN (${SUBJECT_EXECUTIONS_SQL(db)})` : '';
const workflowClause = (f: ReportFilter, column = 'workflow_id') => (f.workflows.length > 0 ? `AND ${column} IN {workflows:Array(String)}` : '');
/**
 * Each execution's outcome over all its results (`status`: 'conflicting' when they disagree, OUTCOME_STATUS_SQL) for
 * the executions `ids` selects: what the reveal rules judge, never one row's own status.
 */
const outcomesOf = (db: string, ids: string, more: { columns?: string; where?: string } = {}) => `SELECT execution_id, ${OUTCOME_STATUS_SQL} AS status${more.columns ? `, ${more.columns}` : ''} FROM ${db}.execution_results FINAL
    WHERE execution_id IN (${ids})${more.where ? ` AND ${more.where}` : ''}
    GROUP BY execution_id`;
const period = (column: string) => `${column} >= {from:DateTime64(3, 'UTC')} AND ${column} < {to:DateTime64(3, 'UTC')}`;

export const REPORT_KINDS: Readonly<Record<string, ReportKind>> = {
  executions: {
    name: 'executions',
    title: 'Executions',
    columns: [col('execution_id', 36), col('workflow_id', 10), col('workflow_name', 18), col('trigger', 8), col('actor', 20), col('start_time', TIME), col('end_time', TIME), col('status', 8), col('duration_ms', 11)],
    totals: { countBy: ['status', 'workflow_id'], sum: ['duration_ms'] },
    filters: ['workflow', 'subject'],
    piiColumns: [],
    keptFor: 'internal',
    // Executions that started in the period, one row each, with their outcome over all their results when they finished
    // (ExecutionFinished may come later or never; two that disagree read 'conflicting', with the later end).
    sql: (db, f) => `SELECT
    e.execution_id AS execution_id, e.workflow_id AS workflow_id, e.workflow_name AS workflow_name, e.trigger AS trigger,
    concat(e.triggered_by_kind, ':', e.triggered_by_id) AS actor, e.start_time AS start_time,
    if(r.execution_id = '', '', toString(r.last_end_time)) AS end_time,
    if(r.execution_id = '', 'running', r.status) AS status,
    if(r.execution_id = '', NULL, r.last_duration_ms) AS duration_ms
FROM
(
    SELECT execution_id, workflow_id, workflow_name, trigger, triggered_by_kind, triggered_by_id, start_time
    FROM ${db}.executions FINAL
    WHERE ${period('start_time')} ${workflowClause(f)} ${subjectClause(db, f)}
) AS e
LEFT JOIN
(
    ${outcomesOf(db, `SELECT execution_id FROM ${db}.executions WHERE ${period('start_time')} ${workflowClause(f)} ${subjectClause(db, f)}`, {
      // Aliases apart from the columns: an aggregate named end_time would be read inside argMax's own end_time.
      columns: 'max(end_time) AS last_end_time, argMax(duration_ms, end_time) AS last_duration_ms',
      where: "end_time >= {from:DateTime64(3, 'UTC')}",
    })}
) AS r ON r.execution_id = e.execution_id
ORDER BY e.start_time, e.execution_id`,
  },
  decisions: {
    name: 'decisions',
    title: 'Decisions',
    columns: [col('execution_id', 36), col('workflow_id', 10), col('sequence', 8), col('step_id', 7), col('branch_condition', 24), col('branch_taken', 14), col('branch_reason', 24), col('condition_values', 24), col('decided_at', TIME), col('execution_status', 9)],
    totals: { countBy: ['branch_taken', 'workflow_id'] },
    filters: ['workflow', 'execution', 'subject'],
    piiColumns: ['branch_reason', 'condition_values'],
    keptFor: 'internal',
    sql: (db, f) => `SELECT
    d.execution_id AS execution_id, d.workflow_id AS workflow_id, d.sequence AS sequence, d.step_id AS step_id,
    d.branch_condition AS branch_condition, d.branch_taken AS branch_taken, d.branch_reason AS branch_reason,
    d.condition_values AS condition_values, d.event_time AS decided_at,
    if(r.execution_id = '', 'running', r.status) AS execution_status
FROM
(
    SELECT * FROM ${db}.decisions FINAL
    WHERE ${period('event_time')} ${workflowClause(f)} ${f.executionId !== undefined ? 'AND execution_id = {execution_id:String}' : ''} ${subjectClause(db, f)}
) AS d
LEFT JOIN
(
    ${outcomesOf(db, `SELECT execution_id FROM ${db}.decisions WHERE ${period('event_time')} ${f.executionId !== undefined ? 'AND execution_id = {execution_id:String}' : ''}`)}
) AS r ON r.execution_id = d.execution_id
ORDER BY d.execution_id, d.sequence, d.event_id`,
  },
  failures: {
    name: 'failures',
    title: 'Failed executions',
    columns: [col('execution_id', 36), col('workflow_id', 10), col('end_time', TIME), col('duration_ms', 11), col('error_type', 20), col('error_message', 60)],
    totals: { countBy: ['workflow_id', 'error_type'], sum: ['duration_ms'] },
    filters: ['workflow', 'subject'],
    piiColumns: ['error_message'],
    keptFor: 'internal',
    // One row per execution, its latest failed result in the period (two ExecutionFinished events, each its own event id,
    // would otherwise count it twice). execution_status is the execution's outcome over all its results ('conflicting' when two disagree), not this
    // row's: a reveal rule bound to failed executions must not pass for a successful one with a forged failed result.
    sql: (db, f) => `SELECT
    x.execution_id AS execution_id, x.workflow_id AS workflow_id, x.end_time AS end_time, x.duration_ms AS duration_ms,
    x.error_type AS error_type, x.error_message AS error_message, o.status AS execution_status
FROM
(
    SELECT * FROM ${db}.execution_results FINAL
    WHERE status = 'failed' AND ${period('end_time')} ${workflowClause(f)} ${subjectClause(db, f)}
    ORDER BY execution_id, end_time DESC, event_id DESC
    LIMIT 1 BY execution_id
) AS x
LEFT JOIN
(
    ${outcomesOf(db, `SELECT execution_id FROM ${db}.execution_results WHERE status = 'failed' AND ${period('end_time')}`)}
) AS o ON o.execution_id = x.execution_id
ORDER BY end_time, execution_id`,
  },
  access: {
    name: 'access',
    title: 'Access log',
    columns: [col('at', TIME), col('source', 13), col('request_id', 36), col('principal', 16), col('role', 12), col('target', 36), col('outcome', 13), col('reason', 30), col('detail', 40)],
    totals: { countBy: ['source', 'outcome', 'role'] },
    filters: ['subject'],
    piiColumns: [],
    keptFor: 'sox',
    // Reveals (pii_access_log) and report/access-review requests (report_requests); with subjects: reveals of their executions and reports that named them.
    sql: (db, f) => `SELECT at, source, request_id, principal, role, target, outcome, reason, detail
FROM
(
    SELECT at, 'reveal' AS source, request_id, principal, toString(role) AS role, execution_id AS target, toString(outcome) AS outcome, reason, detail
    FROM ${db}.pii_access_log
    WHERE ${period('at')} ${subjectClause(db, f)}
    UNION ALL
    SELECT at, toString(command), request_id, principal, toString(role), concat(toString(kind), ' ', toString(format)), toString(outcome), reason, detail
    FROM ${db}.report_requests
    WHERE ${period('at')} ${f.subjects.length > 0 ? 'AND hasAny(JSONExtract(parameters, \'subjects\', \'Array(String)\'), {subjects:Array(String)})' : ''}
)
ORDER BY at, request_id`,
  },
  erasures: {
    name: 'erasures',
    title: 'Erasures',
    columns: [col('erased_at', TIME), col('kind', 8), col('principal', 16), col('subject', 44), col('keys', 5), col('reason', 50)],
    totals: { countBy: ['kind'], sum: ['keys'] },
    filters: ['subject'],
    piiColumns: [],
    keptFor: 'sox',
    sql: (db, f) => `SELECT erased_at, kind, principal, subject, length(key_ids) AS keys, reason
FROM ${db}.erasures
WHERE ${period('erased_at')} ${f.subjects.length > 0 ? 'AND subject IN {subjects:Array(String)}' : ''}
ORDER BY erased_at, subject`,
  },
  alerts: {
    name: 'alerts',
    title: 'Alerts fired',
    columns: [col('fired_at', TIME), col('alert_id', 36), col('rule', 20), col('severity', 8), col('alert_key', 20), col('event_count', 5), col('summary', 30), col('attempts', 8), col('delivery', 13)],
    totals: { countBy: ['severity', 'rule', 'delivery'], sum: ['event_count', 'attempts'] },
    filters: [],
    piiColumns: [],
    keptFor: 'sox',
    // delivery: the outcome of the latest attempt on each channel, worst first (dead_lettered > failed > delivered), `none` without attempts.
    sql: (db) => `SELECT a.fired_at AS fired_at, a.alert_id AS alert_id, a.rule AS rule, a.severity AS severity, a.alert_key AS alert_key,
    a.event_count AS event_count, a.summary AS summary, d.attempts AS attempts,
    if(d.alert_id = '', 'none', d.worst) AS delivery
FROM
(
    SELECT * FROM ${db}.alerts_fired FINAL WHERE ${period('fired_at')}
) AS a
LEFT JOIN
(
    SELECT alert_id, sum(n) AS attempts,
           multiIf(has(groupArray(last), 'dead_lettered'), 'dead_lettered', has(groupArray(last), 'failed'), 'failed', 'delivered') AS worst
    FROM
    (
        SELECT alert_id, channel, count() AS n, argMax(outcome, (attempted_at, attempt)) AS last
        FROM ${db}.alert_deliveries
        WHERE attempted_at >= {from:DateTime64(3, 'UTC')}
        GROUP BY alert_id, channel
    )
    GROUP BY alert_id
) AS d ON d.alert_id = a.alert_id
ORDER BY a.fired_at, a.alert_id`,
  },
};

export const REPORT_KIND_NAMES = Object.keys(REPORT_KINDS);
