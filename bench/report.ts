/**
 * `npm run bench -- report`: a one-quarter executions report over at least
 * 10 million hot store events, in CSV, JSON and PDF, through the same path
 * as `auditline report` (request recorded, rows streamed from ClickHouse,
 * file hashed and its SHA-256 recorded), against the baseline of the same
 * rows exported by one `SELECT ... FORMAT CSV` in the same run.
 *
 * Load: BENCH_EVENTS events (default 10,000,000) generated server-side
 * (INSERT ... SELECT FROM numbers(N)) into a fresh database: 4 events per
 * execution (events table) and one executions + one execution_results row
 * per execution, spread over the last 89 days (inside every TTL). The PDF
 * holds at most AUDITLINE_REPORT_PDF_MAX_ROWS table rows (default 20,000):
 * a PDF of millions of rows is tens of thousands of pages that nobody
 * reads; its totals still cover every row, so the PDF run still streams
 * them all. The database is dropped afterwards. Last line: one JSON object.
 */
import { createWriteStream } from 'node:fs';
import { rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createClickHouse } from '../core/clients/clickhouse.js';
import { loadEndpoints } from '../core/endpoints.js';
import { migrate } from '../infra/clickhouse/migrate.js';
import { loadRetention } from '../infra/retention.js';
import { migrationVariables } from '../infra/setup.js';
import { reportDocument, reportParameters, reportQueryParams, REPORT_KINDS, type ReportFilter, type ReportFormat } from '../compliance/index.js';
import { runProduce } from '../cli/commands/report-output.js';
import { round, rssSampler } from './stats.js';

const EVENTS = Number(process.env.BENCH_EVENTS ?? 10_000_000);
const EVENTS_PER_EXECUTION = 4;
const EXECUTIONS = Math.floor(EVENTS / EVENTS_PER_EXECUTION);
const DAY_MS = 86_400_000;
const say = (m: string) => process.stderr.write(`${m}\n`);

const endpoints = loadEndpoints();
const database = `bench_report_${Date.now().toString(36)}`;
const client = createClickHouse(endpoints.clickhouse, { requestTimeoutMs: 3_600_000 });
const to = Date.now();
const from = to - 89 * DAY_MS;
const stepMs = Math.floor((to - from) / EXECUTIONS);
const kind = REPORT_KINDS.executions!;
const filter: ReportFilter = { from, to, workflows: [], subjects: [] };
const outDir = path.join(os.tmpdir(), `auditline-bench-report-${Date.now().toString(36)}`);

async function timed<T>(what: string, fn: () => Promise<T>): Promise<{ seconds: number; value: T }> {
  const t0 = performance.now();
  const value = await fn();
  const seconds = (performance.now() - t0) / 1_000;
  say(`bench: ${what}: ${seconds.toFixed(1)} s`);
  return { seconds, value };
}

async function load(): Promise<number> {
  await migrate(client, { database, variables: migrationVariables(loadRetention()) });
  const params = { n: EXECUTIONS, start: from, step: stepMs };
  // Deterministic UUID-shaped ids from the row number, shared by the tables of one execution.
  const id = (n: string) => `UUIDNumToString(MD5(toString(${n})))`;
  const start = (n: string) => `fromUnixTimestamp64Milli(toInt64({start:Int64} + ${n} * {step:Int64}), 'UTC')`;
  const { seconds } = await timed(`load ${EVENTS} events (${EXECUTIONS} executions) server-side`, async () => {
    await client.command({
      query: `INSERT INTO ${database}.executions (execution_id, workflow_id, workflow_name, workflow_version, trigger, triggered_by_kind, triggered_by_id, start_time, input, event_id, event_time, sequence)
              SELECT ${id('number')}, concat('WF-', leftPad(toString(number % 20), 3, '0')), concat('Workflow ', toString(number % 20)), '1',
                     ['webhook', 'schedule', 'manual', 'api'][number % 4 + 1], 'user', concat('u-', toString(number % 1000)), ${start('number')}, '{}',
                     concat(${id('number')}, '-1'), ${start('number')}, 1
              FROM numbers({n:UInt64})`,
      query_params: params,
    });
    await client.command({
      query: `INSERT INTO ${database}.execution_results (execution_id, workflow_id, status, end_time, duration_ms, output, error_type, error_message, event_id, event_time, sequence)
              SELECT ${id('number')}, concat('WF-', leftPad(toString(number % 20), 3, '0')), multiIf(number % 50 = 0, 'partial', number % 12 = 0, 'failed', 'success'),
                     ${start('number')} + toIntervalMillisecond(100 + number % 5000), 100 + number % 5000, '{}', if(number % 12 = 0, 'Timeout', ''), '',
                     concat(${id('number')}, '-4'), ${start('number')} + toIntervalMillisecond(100 + number % 5000), 4
              FROM numbers({n:UInt64})`,
      query_params: params,
    });
    await client.command({
      query: `INSERT INTO ${database}.events (execution_id, sequence, event_id, event_time, workflow_id, kind, correlation_id, schema_version, producer_service, producer_host, producer_client_version, producer_instance_id, source_topic, source_partition, source_offset)
              SELECT ${id('intDiv(number, 4)')}, number % 4 + 1, concat(${id('intDiv(number, 4)')}, '-', toString(number % 4 + 1)), ${start('intDiv(number, 4)')} + toIntervalMillisecond(number % 4),
                     concat('WF-', leftPad(toString(intDiv(number, 4) % 20), 3, '0')), ['ExecutionStarted', 'StepFinished', 'DecisionRecorded', 'ExecutionFinished'][number % 4 + 1],
                     '', 1, 'bench', 'bench-host', '0.1.0', 'bench', 'audit.events', toInt32(number % 6), toInt64(intDiv(number, 6))
              FROM numbers({n4:UInt64})`,
      query_params: { ...params, n4: EXECUTIONS * EVENTS_PER_EXECUTION },
    });
  });
  return seconds;
}

/** The same rows in one `SELECT ... FORMAT CSV`, streamed to a file. */
async function baseline(): Promise<{ seconds: number; bytes: number }> {
  const file = path.join(outDir, 'baseline.csv');
  const { seconds } = await timed('baseline SELECT ... FORMAT CSV', async () => {
    const rs = await client.exec({ query: `${kind.sql(database, filter)}\nFORMAT CSV`, query_params: reportQueryParams(filter) });
    await pipeline(rs.stream, createWriteStream(file));
  });
  return { seconds, bytes: (await stat(file)).size };
}

async function report(format: ReportFormat): Promise<{ seconds: number; rssMb: number; bytes: number; rows: number; shownRows: number }> {
  const file = path.join(outDir, `executions.${format}`);
  const rss = rssSampler(50);
  const { seconds, value } = await timed(`report --format ${format}`, () =>
    runProduce(
      { principal: 'bench', role: 'compliance', reason: 'benchmark of the report path', command: 'report', kind: kind.name, format, parameters: reportParameters(kind, filter, false) },
      file,
      async ({ client: c, database: db, header }) => reportDocument(kind, filter, { client: c, database: db, header }),
    ),
  );
  const rssMb = rss.stop();
  if (value.outcome !== 'produced') throw new Error(`report ${format} was refused: ${value.reason}`);
  return { seconds, rssMb, bytes: value.written.bytes, rows: value.written.rows, shownRows: value.written.shownRows };
}

await rm(outDir, { recursive: true, force: true });
await import('node:fs/promises').then((fs) => fs.mkdir(outDir, { recursive: true }));
process.env.AUDITLINE_CLICKHOUSE_DATABASE = database;
try {
  const loadSeconds = await load();
  // Warm the parts into the page cache equally for both sides.
  await client.command({ query: `OPTIMIZE TABLE ${database}.executions FINAL` }).catch(() => undefined);
  await client.command({ query: `OPTIMIZE TABLE ${database}.execution_results FINAL` }).catch(() => undefined);
  const base = await baseline();
  const csv = await report('csv');
  const json = await report('json');
  const pdf = await report('pdf');
  const baseAgain = await baseline();
  if (csv.rows !== json.rows || csv.rows !== pdf.rows) throw new Error(`row counts differ: csv ${csv.rows}, json ${json.rows}, pdf ${pdf.rows}`);
  const baselineSeconds = Math.min(base.seconds, baseAgain.seconds);
  const result = {
    bench: 'report',
    kind: 'executions',
    events: EVENTS,
    executions: EXECUTIONS,
    report_rows: csv.rows,
    period_days: 89,
    load_seconds: round(loadSeconds, 1),
    seconds_csv: round(csv.seconds),
    seconds_json: round(json.seconds),
    seconds_pdf: round(pdf.seconds),
    pdf_rows_shown: pdf.shownRows,
    baseline_seconds: round(baselineSeconds),
    baseline_runs_seconds: [round(base.seconds), round(baseAgain.seconds)],
    csv_vs_baseline: round(csv.seconds / baselineSeconds),
    rows_per_second_csv: Math.round(csv.rows / csv.seconds),
    bytes_csv: csv.bytes,
    bytes_baseline_csv: base.bytes,
    bytes_json: json.bytes,
    bytes_pdf: pdf.bytes,
    rss_mb: round(Math.max(csv.rssMb, json.rssMb, pdf.rssMb), 1),
    rss_mb_csv: round(csv.rssMb, 1),
    rss_mb_json: round(json.rssMb, 1),
    rss_mb_pdf: round(pdf.rssMb, 1),
    machine: `${os.cpus().length} CPUs shared with other jobs`,
  };
  console.log(JSON.stringify(result));
} finally {
  await client.command({ query: `DROP DATABASE IF EXISTS ${database}` }).catch(() => undefined);
  await client.close();
  await rm(outDir, { recursive: true, force: true });
}
