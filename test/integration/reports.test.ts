import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { clickhouseTime } from '../../core/clients/clickhouse-time.js';
import { reportDocument, reportKind, reportParameters, resolvePeriod, type Period } from '../../compliance/index.js';
import { runProduce } from '../../cli/commands/report-output.js';
import { parseCsv, REPORT_SUBJECT, seed, seedReportData, type SeededData } from '../helpers/report-fixtures.js';
import { DEFAULT_REVEAL_POLICY, LocalKeyWrapper, SubjectKeyStore, TokenizerAuditLog } from '../../consumers/tokenizer/index.js';
import { pdfPages } from '../helpers/pdf-text.js';
import { tempDir } from '../helpers/temp-dir.js';
import { testKeys } from '../helpers/tokenizer-fixtures.js';
import { clickhouse, createTokenizerDatabase, runCli } from '../helpers/tokenizer-stack.js';

const client = clickhouse();
const keys = testKeys();
const HOUR = 3_600_000;
const dir = tempDir('reports');
let database: string;
let env: Record<string, string>;
let data: SeededData;
let period: string[];

before(async () => {
  database = await createTokenizerDatabase(client);
  env = { AUDITLINE_CLICKHOUSE_DATABASE: database, AUDITLINE_TOKENIZER_MASTER_KEY: keys.masterKey, AUDITLINE_TOKENIZER_TOKEN_KEY: keys.tokenKey, AUDITLINE_REPORT_PROGRESS_SECONDS: '0' };
  // Two days back, on a whole second: inside every retention, and the period below excludes "now" (when the tests' own requests are recorded).
  const base = Math.floor((Date.now() - 2 * 24 * HOUR) / 1_000) * 1_000;
  data = await seedReportData(client, database, keys, base);
  period = ['--from', new Date(base - HOUR).toISOString(), '--to', new Date(base + 24 * HOUR).toISOString()];
  // The kind x format matrix runs in this process through the CLI's own output path (a process per report is slow on a loaded machine).
  Object.assign(process.env, env);
});

after(async () => {
  await client.command({ query: `DROP DATABASE IF EXISTS ${database}` });
  await client.close();
});

const T = (offset: number) => clickhouseTime(data.base + offset);
const asCompliance = ['--as', 'carol', '--role', 'compliance', '--reason', 'SOX-2026 Q4 audit'];

/** Expected rows of every kind over the seeded period, as CSV text cells, and the totals. */
function expected(kind: string): { rows: string[][]; totals: unknown; totalLines: string[] } {
  const { x1, x2, x3 } = data.ids;
  switch (kind) {
    case 'executions':
      return {
        rows: [
          [x1, 'WF-A', 'Invoice approval', 'manual', 'user:u-1', T(0), T(1_500), 'success', '1500'],
          [x2, 'WF-A', 'Invoice approval', 'api', 'service:billing', T(HOUR), T(HOUR + 2_500), 'failed', '2500'],
          [x3, 'WF-B', 'Payout', 'schedule', 'system:cron', T(2 * HOUR), '', 'running', ''],
        ],
        totals: { rows: 3, by: { status: { success: 1, failed: 1, running: 1 }, workflow_id: { 'WF-A': 2, 'WF-B': 1 } }, sum: { duration_ms: 4000 } },
        totalLines: ['rows: 3', 'status failed: 1', 'status running: 1', 'status success: 1', 'workflow_id WF-A: 2', 'workflow_id WF-B: 1', 'sum of duration_ms: 4000'],
      };
    case 'decisions':
      return {
        rows: [
          [x1, 'WF-A', '2', '1', 'amount > 1000', 'auto', 'small amount', '{"amount":10}', T(500), 'success'],
          [x2, 'WF-A', '3', '2', 'amount > 1000', 'manual_review', '<tokenized>', '{"amount":1200}', T(HOUR + 500), 'failed'],
        ],
        totals: { rows: 2, by: { branch_taken: { auto: 1, manual_review: 1 }, workflow_id: { 'WF-A': 2 } }, sum: {} },
        totalLines: ['rows: 2', 'branch_taken auto: 1', 'branch_taken manual_review: 1', 'workflow_id WF-A: 2'],
      };
    case 'failures':
      return {
        rows: [[x2, 'WF-A', T(HOUR + 2_500), '2500', 'Timeout', 'upstream took too long']],
        totals: { rows: 1, by: { workflow_id: { 'WF-A': 1 }, error_type: { Timeout: 1 } }, sum: { duration_ms: 2500 } },
        totalLines: ['rows: 1', 'workflow_id WF-A: 1', 'error_type Timeout: 1', 'sum of duration_ms: 2500'],
      };
    case 'access':
      return {
        rows: [
          [T(3 * HOUR), 'reveal', 'rv-1', 'eve', 'engineering', x2, 'allowed', 'INC-4711 debugging', ''],
          [T(4 * HOUR), 'reveal', 'rv-2', 'mallory', 'marketing', x1, 'refused', 'INC-4711 debugging', 'role "marketing" may not reveal PII'],
        ],
        totals: { rows: 2, by: { source: { reveal: 2 }, outcome: { allowed: 1, refused: 1 }, role: { engineering: 1, marketing: 1 } }, sum: {} },
        totalLines: ['rows: 2', 'source reveal: 2', 'outcome allowed: 1', 'outcome refused: 1', 'role engineering: 1', 'role marketing: 1'],
      };
    case 'erasures':
      return {
        rows: [
          [T(5 * HOUR), 'request', 'dpo-1', 'subject-token-1', '2', 'GDPR art. 17 request 88'],
          [T(6 * HOUR), 'expiry', 'cron', 'subject-token-2', '1', 'older than the GDPR retention of 30 days'],
        ],
        totals: { rows: 2, by: { kind: { request: 1, expiry: 1 } }, sum: { keys: 3 } },
        totalLines: ['rows: 2', 'kind expiry: 1', 'kind request: 1', 'sum of keys: 3'],
      };
    case 'alerts':
      return {
        rows: [
          [T(HOUR + 10_000), 'al-1', 'failed-with-pii', 'high', 'WF-A', '1', 'failed execution touched PII', '3', 'delivered'],
          [T(7 * HOUR), 'al-2', 'silent-producer', 'low', 'billing', '0', 'producer silent for 15 minutes', '0', 'none'],
        ],
        totals: {
          rows: 2,
          by: { severity: { high: 1, low: 1 }, rule: { 'failed-with-pii': 1, 'silent-producer': 1 }, delivery: { delivered: 1, none: 1 } },
          sum: { event_count: 1, attempts: 3 },
        },
        totalLines: ['rows: 2', 'severity high: 1', 'severity low: 1', 'rule failed-with-pii: 1', 'rule silent-producer: 1', 'delivery delivered: 1', 'delivery none: 1', 'sum of event_count: 1', 'sum of attempts: 3'],
      };
    default:
      throw new Error(kind);
  }
}

/** The tokenized cell is compared by shape: tokenized, without the cleartext. */
function assertRows(actual: string[][], want: string[][], what: string): void {
  assert.equal(actual.length, want.length, `${what}: row count`);
  want.forEach((row, i) => {
    row.forEach((cell, j) => {
      if (cell === '<tokenized>') {
        assert.match(actual[i]![j]!, /\[\[pii:/, `${what}: row ${i} column ${j} is tokenized`);
        assert.doesNotMatch(actual[i]![j]!, /ann\.pii@example\.com/);
      } else assert.equal(actual[i]![j], cell, `${what}: row ${i} column ${j}`);
    });
  });
}

/** One report produced in this process, as `auditline report` does. */
async function produceHere(kind: string, format: 'csv' | 'json' | 'pdf', workflows: string[] = [], subjects: string[] = []): Promise<{ file: string; requestId: string }> {
  const file = path.join(dir, `${kind}-${format}-${Math.random().toString(36).slice(2)}.${format}`);
  const k = reportKind(kind)!;
  const p = resolvePeriod({ from: period[1], to: period[3] }) as Period;
  const filter = { from: p.from, to: p.to, workflows, subjects };
  const result = await runProduce(
    { principal: 'carol', role: 'compliance', reason: 'SOX-2026 Q4 audit', command: 'report', kind, format, parameters: reportParameters(k, filter, false) },
    file,
    async ({ client: c, database: db, header }) => reportDocument(k, filter, { client: c, database: db, header }),
  );
  assert.equal(result.outcome, 'produced');
  return { file, requestId: result.requestId };
}

async function report(kind: string, format: string, extra: string[] = []): Promise<{ file: string; stderr: string }> {
  const file = path.join(dir, `${kind}-${format}-${Math.random().toString(36).slice(2)}.${format}`);
  const r = await runCli(['report', '--kind', kind, ...period, '--format', format, ...asCompliance, '--output', file, ...extra], env);
  assert.equal(r.code, 0, `${kind} ${format}: ${r.stderr}`);
  return { file, stderr: r.stderr };
}

for (const kind of ['executions', 'decisions', 'failures', 'access', 'erasures', 'alerts']) {
  test(`report --kind ${kind}: CSV, JSON and PDF hold exactly the seeded rows and totals`, { timeout: 60_000 }, async () => {
    const want = expected(kind);
    const [csv, json, pdf] = await Promise.all([produceHere(kind, 'csv'), produceHere(kind, 'json'), produceHere(kind, 'pdf')]);

    const csvRows = parseCsv(readFileSync(csv.file, 'utf8'));
    const columns = csvRows[0]!;
    assertRows(csvRows.slice(1), want.rows, `${kind} csv`);

    const doc = JSON.parse(readFileSync(json.file, 'utf8')) as { report: { columns: string[]; parameters: Record<string, string> }; rows: Record<string, unknown>[]; totals: unknown };
    assert.deepEqual(doc.report.columns, columns, 'JSON and CSV share the column set');
    assert.equal(doc.report.parameters.kind, kind);
    assertRows(doc.rows.map((r) => columns.map((c) => (r[c] === null ? '' : String(r[c])))), want.rows, `${kind} json`);
    assert.deepEqual(doc.totals, want.totals);

    const pages = await pdfPages(pdf.file);
    const lines = pages.flat();
    assert.equal(lines[0], `Auditline report: ${doc.report.parameters.kind === 'failures' ? 'Failed executions' : kind === 'alerts' ? 'Alerts fired' : kind === 'access' ? 'Access log' : kind[0]!.toUpperCase() + kind.slice(1)}`);
    assert.ok(lines.includes(`kind: ${kind}`) && lines.includes('requested by: carol (role compliance)') && lines.some((l) => l.startsWith('generated at: ')), 'parameters and generated time');
    assert.ok(pages.every((p, i) => p.at(-1)!.endsWith(`page ${i + 1} of ${pages.length}`)), 'page numbers');
    for (const row of want.rows) {
      const cells = row.filter((c) => c !== '');
      const tokenAt = cells.indexOf('<tokenized>');
      const prefix = (tokenAt < 0 ? cells : cells.slice(0, tokenAt)).join(' ');
      assert.ok(lines.some((l) => (tokenAt < 0 ? l === prefix : l.startsWith(`${prefix} flagged for [[pii:`))), `${kind} pdf: a line for ${prefix}\n${lines.join('\n')}`);
    }
    const totalsAt = lines.indexOf('Totals');
    assert.ok(totalsAt > 0, 'a totals section');
    assert.deepEqual(lines.slice(totalsAt + 1, totalsAt + 1 + want.totalLines.length), want.totalLines);
    assert.doesNotMatch(lines.join('\n'), /ann\.pii@example\.com/, 'no cleartext PII in the PDF');
  });
}

test('report --workflow filters, and a capped PDF still totals every row', { timeout: 60_000 }, async () => {
  const { file } = await produceHere('executions', 'csv', ['WF-B']);
  assert.deepEqual(parseCsv(readFileSync(file, 'utf8')).slice(1).map((r) => r[0]), [data.ids.x3]);
  process.env.AUDITLINE_REPORT_PDF_MAX_ROWS = '1';
  const capped = await produceHere('executions', 'pdf').finally(() => delete process.env.AUDITLINE_REPORT_PDF_MAX_ROWS);
  const lines = (await pdfPages(capped.file)).flat();
  assert.equal(lines.filter((l) => l.startsWith('rpt-x')).length, 1, 'one table row');
  assert.ok(lines.some((l) => l.startsWith('The PDF shows the first 1 of 3 rows')), lines.join('\n'));
  assert.ok(lines.includes('Totals (all 3 rows)') && lines.includes('rows: 3') && lines.includes('sum of duration_ms: 4000'));
});

test('report --subject takes an e-mail address, tokenizes it like the tokenizer, and keeps only that subject\'s executions and accesses', { timeout: 60_000 }, async () => {
  const r = await runCli(['report', '--kind', 'executions', ...period, '--format', 'json', ...asCompliance, '--subject', REPORT_SUBJECT.toUpperCase()], env);
  assert.equal(r.code, 0, r.stderr);
  const doc = JSON.parse(r.stdout) as { report: { parameters: Record<string, string> }; rows: { execution_id: string }[] };
  assert.deepEqual(doc.rows.map((x) => x.execution_id), [data.ids.x2]);
  assert.doesNotMatch(r.stdout, /report-subject@/i, 'the subject appears as its token only');
  const token = doc.report.parameters['subjects (tokens)']!;
  const access = await produceHere('access', 'csv', [], [token]);
  assert.deepEqual(parseCsv(readFileSync(access.file, 'utf8')).slice(1).map((x) => x[2]), ['rv-1'], 'the reveal of x2 only');
});

test('PII is revealed only with --reveal for a role the reveal policy allows, and each reveal is recorded', { timeout: 60_000 }, async () => {
  const revealed = await report('decisions', 'json', ['--reveal']);
  assert.equal(statSync(revealed.file).mode & 0o777, 0o600, 'a report file (here with revealed PII) is readable by its owner only');
  const rows = (JSON.parse(readFileSync(revealed.file, 'utf8')) as { rows: Record<string, unknown>[] }).rows;
  assert.equal(rows.find((r) => r.execution_id === data.ids.x2)!.branch_reason, data.piiReason);
  const records = await (
    await client.query({ query: `SELECT principal, role, outcome, values_revealed FROM ${database}.pii_access_log WHERE execution_id = {id:String} AND principal = 'carol'`, query_params: { id: data.ids.x2 }, format: 'JSONEachRow' })
  ).json<Record<string, unknown>>();
  assert.deepEqual(records, [{ principal: 'carol', role: 'compliance', outcome: 'allowed', values_revealed: 1 }]);

  const security = await runCli(['report', '--kind', 'decisions', ...period, '--format', 'csv', '--as', 'sam', '--role', 'security', '--reason', 'SEC-7 review', '--reveal'], env);
  assert.equal(security.code, 0, security.stderr);
  assert.doesNotMatch(security.stdout, /ann\.pii@example\.com/, 'security may request reports but not reveal PII');
  assert.match(security.stdout, /\[\[pii:/);
});

test('a role that may not request reports is refused, the refusal recorded, and no file left behind', { timeout: 30_000 }, async () => {
  const file = path.join(dir, 'refused.csv');
  const r = await runCli(['report', '--kind', 'executions', ...period, '--format', 'csv', '--as', 'mallory', '--role', 'marketing', '--reason', 'curious about sales', '--output', file], env);
  assert.equal(r.code, 6, r.stderr);
  assert.match(r.stderr, /role "marketing" may not request reports/);
  assert.equal(existsSync(file), false);
  assert.deepEqual(readdirSync(dir).filter((f) => f.includes('.partial-')), [], 'no partial file either');
  // A file already at --output (an earlier report) is left as it was by a refused request.
  writeFileSync(file, 'an earlier report\n');
  const again = await runCli(['report', '--kind', 'executions', ...period, '--format', 'csv', '--as', 'mallory', '--role', 'marketing', '--reason', 'curious about sales', '--output', file], env);
  assert.equal(again.code, 6, again.stderr);
  assert.equal(readFileSync(file, 'utf8'), 'an earlier report\n');
  const rows = await (
    await client.query({ query: `SELECT principal, identified_by, role, command, kind, outcome, detail FROM ${database}.report_requests WHERE principal = 'mallory'`, format: 'JSONEachRow' })
  ).json<Record<string, string>>();
  assert.equal(rows.length, 2);
  assert.deepEqual({ ...rows[0], detail: undefined }, { principal: 'mallory', identified_by: 'claimed', role: 'marketing', command: 'report', kind: 'executions', outcome: 'refused', detail: undefined });
  assert.match(rows[0]!.detail!, /may not request reports/);
});

test('a report file matches its recorded SHA-256; a changed copy does not', { timeout: 30_000 }, async () => {
  const { file, requestId } = await produceHere('failures', 'pdf');
  const ok = await runCli(['report', 'verify', file, '--request', requestId], env);
  assert.equal(ok.code, 0, ok.stderr);
  const record = JSON.parse(ok.stdout) as { sha256: string; records: { request_id: string; kind: string; format: string; parameters: { from: string } }[] };
  assert.equal(record.records[0]!.request_id, requestId);
  assert.equal(record.records[0]!.parameters.from, period[1]);
  const hash = await client.query({ query: `SELECT sha256, bytes FROM ${database}.report_digests WHERE request_id = {id:String}`, query_params: { id: requestId }, format: 'JSONEachRow' });
  const [digest] = await hash.json<{ sha256: string; bytes: number | string }>();
  assert.equal(digest!.sha256, record.sha256);
  assert.equal(Number(digest!.bytes), readFileSync(file).length);

  appendFileSync(file, ' ');
  const changed = await runCli(['report', 'verify', file], env);
  assert.equal(changed.code, 4);
  assert.match(changed.stderr, /NO MATCH/);
});

test('with a principals file the requester is authenticated: the role must be held, --as cannot name someone else, refusals and grants are recorded with how the caller was identified', { timeout: 60_000 }, async () => {
  const file = path.join(dir, 'principals.yaml');
  writeFileSync(file, `principals:\n  rita:\n    roles: [security]\n    os_users: [${JSON.stringify(os.userInfo().username)}]\n`, { mode: 0o600 });
  const authEnv = { ...env, AUDITLINE_REVEAL_PRINCIPALS_FILE: file };
  const reason = ['--reason', 'SEC-9 quarterly check'];

  const claimsCompliance = await runCli(['report', '--kind', 'executions', ...period, '--format', 'csv', '--role', 'compliance', ...reason], authEnv);
  assert.equal(claimsCompliance.code, 6, claimsCompliance.stderr);
  assert.match(claimsCompliance.stderr, /rita does not hold role "compliance" in the principals file \(holds: security\)/);

  const impersonates = await runCli(['access-review', '--format', 'json', '--as', 'carol', '--role', 'security', ...reason], authEnv);
  assert.equal(impersonates.code, 6, impersonates.stderr);
  assert.match(impersonates.stderr, /--as carol is not the caller: authenticated as rita/);

  const review = await runCli(['access-review', '--format', 'json', '--role', 'security', ...reason], authEnv);
  assert.equal(review.code, 0, review.stderr);

  const rows = await (
    await client.query({ query: `SELECT principal, identified_by, role, command, outcome FROM ${database}.report_requests WHERE reason = 'SEC-9 quarterly check' ORDER BY at`, format: 'JSONEachRow' })
  ).json<Record<string, string>>();
  assert.deepEqual(rows, [
    { principal: 'rita', identified_by: 'os-user', role: 'compliance', command: 'report', outcome: 'refused' },
    { principal: 'rita', identified_by: 'os-user', role: 'security', command: 'access-review', outcome: 'refused' },
    { principal: 'rita', identified_by: 'os-user', role: 'security', command: 'access-review', outcome: 'allowed' },
  ]);

  // Without the file a name is still required, and the request says it was only claimed.
  const anonymous = await runCli(['report', '--kind', 'executions', ...period, '--format', 'csv', '--role', 'security', ...reason], env);
  assert.equal(anonymous.code, 2, anonymous.stderr);
  assert.match(anonymous.stderr, /--as is required/);
});

test('a report reveals by the execution outcome over all its results: engineering may not reveal an execution whose results conflict; a previous master key still unwraps during a rotation', { timeout: 60_000 }, async () => {
  const { x2 } = data.ids;
  // The previous master key (AUDITLINE_TOKENIZER_PREVIOUS_MASTER_KEY) unwraps the subject keys while a rotation runs.
  const rotating = { ...env, AUDITLINE_TOKENIZER_MASTER_KEY: randomBytes(32).toString('base64'), AUDITLINE_TOKENIZER_PREVIOUS_MASTER_KEY: keys.masterKey };
  const file = path.join(dir, 'rotating.json');
  const r = await runCli(['report', '--kind', 'decisions', ...period, '--format', 'json', ...asCompliance, '--output', file, '--reveal'], rotating);
  assert.equal(r.code, 0, r.stderr);
  const rows = (JSON.parse(readFileSync(file, 'utf8')) as { rows: Record<string, unknown>[] }).rows;
  assert.equal(rows.find((row) => row.execution_id === x2)!.branch_reason, data.piiReason, 'revealed with the previous master key');

  // A second, successful result of the failed execution x2 (forged, or a producer bug): its outcome is 'conflicting'.
  await seed(client, database, 'execution_results', [
    { execution_id: x2, workflow_id: 'WF-A', status: 'success', end_time: T(HOUR + 2_600), duration_ms: 2_600, output: '{}', error_type: '', error_message: '', event_id: `${x2}-forged`, event_time: T(HOUR + 2_600), sequence: 10 },
  ]);
  try {
    const k = reportKind('failures')!;
    const p = resolvePeriod({ from: period[1], to: period[3] }) as Period;
    const filter = { from: p.from, to: p.to, workflows: [], subjects: [] };
    const failures: Record<string, unknown>[] = [];
    for await (const batch of reportDocument(k, filter, { client, database, header: [] }).rows) failures.push(...batch);
    assert.deepEqual(failures.map((f) => [f.execution_id, f.execution_status]), [[x2, 'conflicting']], 'the failures report carries the execution outcome');
    // The executions report lists an execution once, whatever number of results it has.
    const executions: Record<string, unknown>[] = [];
    for await (const batch of reportDocument(reportKind('executions')!, filter, { client, database, header: [] }).rows) executions.push(...batch);
    assert.deepEqual(
      executions.filter((e) => e.execution_id === x2).map((e) => [e.status, e.duration_ms]),
      [['conflicting', 2600]],
      'one row for x2: its outcome over both results, with the later one\'s end',
    );
    assert.equal(executions.length, 3, 'three executions, three rows');

    const log = new TokenizerAuditLog(client, database);
    const wrapper = new LocalKeyWrapper(Buffer.from(keys.masterKey, 'base64'));
    const doc = reportDocument(reportKind('decisions')!, filter, {
      client,
      database,
      header: [['request id', 'rq-conflict']],
      revealWith: {
        caller: { principal: 'eve', identifiedBy: 'claimed' },
        role: 'engineering',
        reason: 'INC-4712 debugging',
        policy: DEFAULT_REVEAL_POLICY,
        deps: { keys: new SubjectKeyStore(client, database, wrapper, { cacheTtlMs: 0, rotationMs: 0 }), log },
      },
    });
    const decisions: Record<string, unknown>[] = [];
    for await (const batch of doc.rows) decisions.push(...batch);
    const row = decisions.find((d) => d.execution_id === x2)!;
    assert.equal(row.execution_status, 'conflicting');
    assert.match(String(row.branch_reason), /\[\[pii:/, 'engineering gets no cleartext of a conflicting execution');
    assert.doesNotMatch(String(row.branch_reason), /ann\.pii@example\.com/);
    const records = await (
      await client.query({ query: `SELECT outcome, execution_status FROM ${database}.pii_access_log WHERE principal = 'eve' AND reason LIKE 'INC-4712%'`, format: 'JSONEachRow' })
    ).json<Record<string, string>>();
    assert.deepEqual(records, [{ outcome: 'refused', execution_status: 'conflicting' }], 'the refusal is recorded');
  } finally {
    await client.command({ query: `ALTER TABLE ${database}.execution_results DELETE WHERE event_id = {id:String}`, query_params: { id: `${x2}-forged` }, clickhouse_settings: { mutations_sync: '2' } });
  }
});

// Two failed results of one execution (a producer that sent ExecutionFinished twice, each its own event) were two rows
// of the failures report: the execution counted twice in the rows, per workflow and per error type, its duration summed twice.
test('the failures report lists an execution once, with its latest failed result in the period', { timeout: 60_000 }, async () => {
  const { x2 } = data.ids;
  await seed(client, database, 'execution_results', [
    { execution_id: x2, workflow_id: 'WF-A', status: 'failed', end_time: T(HOUR + 2_700), duration_ms: 2_700, output: '{}', error_type: 'Timeout', error_message: 'upstream took too long again', event_id: `${x2}-again`, event_time: T(HOUR + 2_700), sequence: 11 },
  ]);
  try {
    const p = resolvePeriod({ from: period[1], to: period[3] }) as Period;
    const failures: Record<string, unknown>[] = [];
    for await (const batch of reportDocument(reportKind('failures')!, { from: p.from, to: p.to, workflows: [], subjects: [] }, { client, database, header: [] }).rows) failures.push(...batch);
    assert.deepEqual(
      failures.map((f) => [f.execution_id, f.duration_ms, f.error_message, f.execution_status]),
      [[x2, 2_700, 'upstream took too long again', 'failed']],
      'one row for x2, its later failed result',
    );
  } finally {
    await client.command({ query: `ALTER TABLE ${database}.execution_results DELETE WHERE event_id = {id:String}`, query_params: { id: `${x2}-again` }, clickhouse_settings: { mutations_sync: '2' } });
  }
});
