import { csvText } from '../../core/csv.js';
import { isoFromClickhouseTime } from '../../core/clients/clickhouse-time.js';
import type { Command } from 'commander';
import { createClickHouse } from '../../core/clients/clickhouse.js';
import { loadEndpoints } from '../../core/endpoints.js';
import { decisionPath, executionInputs, executionKnown, failedExecutions } from '../../consumers/hotstore/index.js';
import { UsageError } from '../exit.js';
import { intOption } from '../options.js';
import { checkRevealOptions, identifyNamedCaller, revealExitCode, revealForCli } from './reveal-access.js';
import { storedStatus } from '../../consumers/tokenizer/index.js';

/** Exit codes of `auditline query` beyond the common ones (docs/cli.md, docs/hotstore.md). */
export const QUERY_EXIT = { noMatch: 4, unknownExecution: 5 } as const;

export const OUTPUT_FORMATS = ['table', 'json', 'csv'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3_600, d: 86_400 };
/** Longer than any retention of the hot store, and small enough for the UInt32 parameter. */
const MAX_SINCE_SECONDS = 400 * 86_400;

/** `30s`, `15m`, `1h`, `7d` -> seconds; UsageError otherwise. */
export function parseSince(text: string): number {
  const m = /^(\d+)\s*([smhd])$/.exec(text.trim());
  const seconds = m ? Number(m[1]) * UNITS[m[2]!]! : NaN;
  if (!Number.isSafeInteger(seconds) || seconds <= 0 || seconds > MAX_SINCE_SECONDS) {
    throw new UsageError(`--since ${JSON.stringify(text)}: expected a positive duration like 30s, 15m, 1h or 7d (at most 400d)`);
  }
  return seconds;
}

/**
 * Renders rows for a person (table), a program (json) or a spreadsheet
 * (csv); `columns` fixes order and header. `timeColumns` hold ClickHouse
 * times (UTC): written as ISO 8601 with `Z`, so no reader takes them for
 * local time.
 */
export function renderRows(rows: readonly Record<string, unknown>[], columns: readonly string[], format: OutputFormat, timeColumns: readonly string[] = []): string {
  if (timeColumns.length > 0) rows = rows.map((r) => ({ ...r, ...Object.fromEntries(timeColumns.map((c) => [c, typeof r[c] === 'string' ? isoFromClickhouseTime(r[c]) : r[c]])) }));
  if (format === 'json') return `${JSON.stringify(rows.map((r) => Object.fromEntries(columns.map((c) => [c, r[c] ?? null]))), null, 2)}\n`;
  const cell = (v: unknown): string => (v === null || v === undefined ? '' : typeof v === 'string' ? v : String(v));
  if (format === 'csv') {
    return [columns.map(csvText).join(','), ...rows.map((r) => columns.map((c) => csvText(cell(r[c]))).join(','))].join('\r\n') + '\r\n';
  }
  const text = rows.map((r) => columns.map((c) => terminalText(cell(r[c]))));
  const widths = columns.map((c, i) => Math.max(c.length, ...text.map((t) => t[i]!.length)));
  const line = (cells: readonly string[]) => cells.map((s, i) => s.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(columns.map((c) => c.toUpperCase())), ...text.map(line)].join('\n') + '\n';
}

/**
 * Text of a table cell as a terminal shows it: line breaks as `\\n`, other control characters (C0, DEL, C1) as
 * `\\xNN` and bidirectional overrides as `\\uNNNN`. Producer text (an error message) reaches the terminal of
 * whoever runs the command: an escape sequence or a carriage return could clear the screen or rewrite a row.
 */
function terminalText(s: string): string {
  return s
    .replace(/\r?\n/g, '\\n')
    .replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`)
    .replace(/[\u202a-\u202e\u2066-\u2069]/g, (c) => `\\u${c.charCodeAt(0).toString(16)}`);
}

function parseFormat(value: string): OutputFormat {
  if (!(OUTPUT_FORMATS as readonly string[]).includes(value)) throw new UsageError(`--format ${value}: expected one of ${OUTPUT_FORMATS.join(', ')}`);
  return value as OutputFormat;
}

function requireExecutionId(value: string): string {
  const id = value.trim();
  if (id === '' || id.length > 200) throw new UsageError('execution id: expected a non-empty id (a UUID) of at most 200 characters');
  return id;
}

const say = (message: string) => process.stderr.write(`${message}\n`);

/** Runs `fn` with a ClickHouse client of the configured endpoint, closed afterwards. */
async function withClickHouse<T>(fn: (client: ReturnType<typeof createClickHouse>, database: string) => Promise<T>): Promise<T> {
  const { clickhouse } = loadEndpoints();
  const client = createClickHouse(clickhouse);
  try {
    return await fn(client, clickhouse.database);
  } finally {
    await client.close();
  }
}

/** Prints rows, or explains why there are none and sets the documented exit code. */
async function printOrExplain(
  rows: readonly Record<string, unknown>[],
  columns: readonly string[],
  format: OutputFormat,
  whenEmpty: () => Promise<{ message: string; code: number }>,
): Promise<void> {
  if (rows.length > 0) {
    process.stdout.write(renderRows(rows, columns, format, TIME_COLUMNS));
    return;
  }
  const { message, code } = await whenEmpty();
  say(message);
  if (format === 'json') process.stdout.write('[]\n');
  process.exitCode = code;
}

/** The columns of the query commands that hold times. */
const TIME_COLUMNS = ['start_time', 'end_time', 'decided_at'];

const unknownExecution = (id: string) => ({
  message: `execution ${id} is not in the hot store (never recorded, not consumed yet, or older than the retention)`,
  code: QUERY_EXIT.unknownExecution,
});

export function registerQuery(program: Command): void {
  const query = program
    .command('query')
    .description('query the hot store (ClickHouse): failed executions, inputs and decision path of an execution')
    .addHelpText(
      'after',
      `\nTimes are UTC, written as ISO 8601 (2026-12-07T19:06:46.496Z). CSV cells that a spreadsheet would run as a formula (=, +, -, @) start with '; table cells show control characters escaped (\\xNN).\nExit codes: 0 rows printed, 1 failure, 2 wrong usage, ${QUERY_EXIT.noMatch} nothing matches, ${QUERY_EXIT.unknownExecution} unknown execution id.\nSQL of every query: docs/hotstore.md.`,
    );

  query
    .command('failed')
    .description('failed executions of a workflow that ended within --since, newest first; outcome is the execution\'s over all its results (conflicting when another result disagrees)')
    .requiredOption('--workflow <id>', 'workflow id, e.g. WF-003')
    .option('--since <duration>', 'lookback on the end time: 30s, 15m, 1h, 7d', '1h')
    .option('--limit <n>', 'most rows printed', '100')
    .option('--format <format>', `output: ${OUTPUT_FORMATS.join(' | ')}`, 'table')
    .action(async (opts: { workflow: string; since: string; limit: string; format: string }) => {
      const format = parseFormat(opts.format);
      const sinceSeconds = parseSince(opts.since);
      const limit = intOption('--limit', 1, 100_000)(opts.limit);
      if (opts.workflow.trim() === '') throw new UsageError('--workflow: expected a workflow id');
      await withClickHouse(async (client, database) => {
        const rows = await failedExecutions(client, database, { workflowId: opts.workflow, sinceSeconds, limit });
        await printOrExplain(rows as unknown as Record<string, unknown>[], ['execution_id', 'outcome', 'start_time', 'end_time', 'duration_ms', 'error_type', 'error_message'], format, async () => ({
          message: `no failed executions of ${opts.workflow} ended in the last ${opts.since}`,
          code: QUERY_EXIT.noMatch,
        }));
      });
    });

  query
    .command('inputs')
    .description("the execution's input and every step attempt's input, as stored (tokenized)")
    .argument('<execution_id>', 'execution id (UUID)')
    .option('--reveal', 'show cleartext instead of tokens: checked by the tokenizer\'s reveal policy and recorded in the access log (needs --role and --reason)')
    .option('--as <principal>', 'with --reveal: who is asking, recorded (with AUDITLINE_REVEAL_PRINCIPALS_FILE the caller is authenticated instead)')
    .option('--role <role>', 'with --reveal: the role you act in, e.g. engineering (FAILED executions only), compliance, legal')
    .option('--reason <text>', 'with --reveal: why, e.g. a ticket id (at least 8 characters), recorded')
    .option('--format <format>', `output: ${OUTPUT_FORMATS.join(' | ')}`, 'table')
    .addHelpText('after', '\nWith --reveal, exit codes as for `auditline reveal`: 6 refused (the reason is printed), 7 nothing decryptable, 5 unknown execution.')
    .action(async (rawId: string, opts: { reveal?: boolean; as?: string; role?: string; reason?: string; format: string }) => {
      const format = parseFormat(opts.format);
      const id = requireExecutionId(rawId);
      checkRevealOptions(opts);
      // Who is asking, before anything is read, as for `auditline reveal`.
      if (opts.reveal) identifyNamedCaller(opts.as);
      const columns = ['source', 'step_id', 'step_name', 'attempt', 'status', 'start_time', 'truncated', 'input'];
      await withClickHouse(async (client, database) => {
        const rows = await executionInputs(client, database, id);
        if (opts.reveal) {
          // Status for the policy, as `auditline reveal` judges it: from the execution's outcomes, not from its
          // ExecutionStarted row (which can be missing, dead-lettered or expired while its steps are stored).
          const status = await storedStatus(client, database, id);
          const fieldName = (r: (typeof rows)[number]) => (r.source === 'execution' ? 'execution.input' : `step[${r.step_id}].attempt[${r.attempt}].input_data`);
          const result = await revealForCli(client, database, { as: opts.as, role: opts.role!, reason: opts.reason! }, { executionId: id, status, fields: rows.map((r) => ({ name: fieldName(r), text: r.input })) });
          if (result.outcome === 'refused') {
            say(`reveal refused: ${result.reason} (request ${result.requestId} recorded in the access log)`);
            process.exitCode = revealExitCode(result);
            return;
          }
          if (result.reason) say(`warning: ${result.reason}`);
          say(`revealed for execution ${id} (${status}); request ${result.requestId} recorded in the access log`);
          const revealed = rows.map((r, i) => ({ ...r, input: result.fields[i]!.text }));
          process.stdout.write(renderRows(revealed as unknown as Record<string, unknown>[], columns, format, TIME_COLUMNS));
          const code = revealExitCode(result);
          if (code !== undefined) process.exitCode = code;
          return;
        }
        await printOrExplain(rows as unknown as Record<string, unknown>[], columns, format, async () =>
          (await executionKnown(client, database, id)) ? { message: `execution ${id} has no recorded inputs yet`, code: QUERY_EXIT.noMatch } : unknownExecution(id),
        );
      });
    });

  query
    .command('decisions')
    .description('the decision path of an execution: step, condition, branch taken, reason, in the order taken')
    .argument('<execution_id>', 'execution id (UUID)')
    .option('--format <format>', `output: ${OUTPUT_FORMATS.join(' | ')}`, 'table')
    .action(async (rawId: string, opts: { format: string }) => {
      const format = parseFormat(opts.format);
      const id = requireExecutionId(rawId);
      await withClickHouse(async (client, database) => {
        const rows = await decisionPath(client, database, id);
        await printOrExplain(
          rows as unknown as Record<string, unknown>[],
          ['step_id', 'step_name', 'branch_condition', 'branch_taken', 'branch_reason', 'condition_values', 'sequence', 'decided_at'],
          format,
          async () => ((await executionKnown(client, database, id)) ? { message: `execution ${id} has no recorded decisions`, code: QUERY_EXIT.noMatch } : unknownExecution(id)),
        );
      });
    });
}
