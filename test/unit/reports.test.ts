import { test } from 'node:test';
import assert from 'node:assert/strict';
import { callerRefusal, loadPrincipalDirectory } from '../../consumers/tokenizer/principals.js';
import { chmodSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { tempDir } from '../helpers/temp-dir.js';
import { isAuditlineError } from '../../core/errors.js';
import { csvField, declaredTtls, decideReportRequest, judgeUse, REPORT_KINDS, reportCoverage, loadComplianceSettings, pdfRowLine, quarterOf, resolvePeriod, serverTtls, TotalsAccumulator } from '../../compliance/index.js';
import { DEFAULT_MIGRATIONS_DIR } from '../../infra/clickhouse/migrate.js';
import { loadRetention } from '../../infra/retention.js';
import { DEFAULT_REVEAL_POLICY } from '../../consumers/tokenizer/index.js';

test('periods: a date-only --to includes its day, a date-time --to is exclusive, quarters are whole', () => {
  assert.deepEqual(resolvePeriod({ from: '2026-07-01', to: '2026-09-30' }), { from: Date.UTC(2026, 6, 1), to: Date.UTC(2026, 9, 1) });
  assert.deepEqual(resolvePeriod({ from: '2026-07-01T08:00:00Z', to: '2026-07-01T09:30:00+01:00' }), { from: Date.UTC(2026, 6, 1, 8), to: Date.UTC(2026, 6, 1, 8, 30) });
  assert.deepEqual(resolvePeriod({ quarter: '2026Q4' }), { from: Date.UTC(2026, 9, 1), to: Date.UTC(2027, 0, 1) });
  assert.equal(quarterOf(Date.UTC(2026, 10, 28)), '2026Q4');
  assert.match(resolvePeriod({ from: '2026-02-30', to: '2026-03-01' }) as string, /--from/);
  // A date-time's calendar fields are checked too: Date.parse takes 31 February for 3 March.
  assert.match(resolvePeriod({ from: '2026-02-01', to: '2026-02-31T10:00:00Z' }) as string, /^--to "2026-02-31T10:00:00Z": expected/);
  assert.match(resolvePeriod({ from: '2026-07-01T08:00:00', to: '2026-07-02' }) as string, /with zone/);
  assert.match(resolvePeriod({ from: '2026-07-02', to: '2026-07-01' }) as string, /after/);
  assert.match(resolvePeriod({ quarter: '2026Q5' }) as string, /YYYYQn/);
  assert.match(resolvePeriod({ quarter: '2026Q1', from: '2026-01-01' }) as string, /not both/);
  // The period ends at the latest at the end of 2299-12-31, the last day ClickHouse stores.
  assert.deepEqual(resolvePeriod({ from: '2299-12-01', to: '2299-12-31' }), { from: Date.UTC(2299, 11, 1), to: Date.UTC(2300, 0, 1) });
  assert.deepEqual(resolvePeriod({ quarter: '1900Q1' }), { from: Date.UTC(1900, 0, 1), to: Date.UTC(1900, 3, 1) });
  assert.match(resolvePeriod({ from: '2026-01-01', to: '2300-01-01' }) as string, /^--to "2300-01-01": periods lie within 1900-01-01\.\.2299-12-31/);
  assert.match(resolvePeriod({ quarter: '2300Q1' }) as string, /YYYYQn.*1900-01-01\.\.2299-12-31/);
});

test('report requests: only the configured roles, with a principal and a reason', () => {
  const roles = loadComplianceSettings({}).reportRoles;
  assert.deepEqual(roles, ['compliance', 'legal', 'security']);
  assert.deepEqual(decideReportRequest(roles, { principal: 'carol', role: 'legal', reason: 'case 2026-17' }), { allowed: true });
  assert.match((decideReportRequest(roles, { principal: 'bob', role: 'engineering', reason: 'case 2026-17' }) as { reason: string }).reason, /may not request reports/);
  assert.match((decideReportRequest(roles, { principal: 'carol', role: 'legal', reason: 'short' }) as { reason: string }).reason, /at least 8/);
  // Authenticated through the principals file: the role must be held there, and --as cannot name someone else.
  const authed = { principal: 'carol', role: 'legal', reason: 'case 2026-17', heldRoles: ['compliance'] };
  assert.match((decideReportRequest(roles, authed) as { reason: string }).reason, /carol does not hold role "legal" in the principals file \(holds: compliance\)/);
  assert.deepEqual(decideReportRequest(roles, { ...authed, role: 'compliance' }), { allowed: true });
  assert.match((decideReportRequest(roles, { ...authed, role: 'compliance', claimedPrincipal: 'dpo-1' }) as { reason: string }).reason, /--as dpo-1 is not the caller: authenticated as carol/);
  assert.throws(() => loadComplianceSettings({ AUDITLINE_REPORT_ROLES: 'Compliance!' }), /AUDITLINE_REPORT_ROLES/);
  assert.throws(() => loadComplianceSettings({ AUDITLINE_REPORT_PDF_MAX_ROWS: '0' }), /AUDITLINE_REPORT_PDF_MAX_ROWS/);
});

test('erase roles: compliance and legal by default; an authenticated caller needs one of them, a claimed one cannot be checked', () => {
  const { eraseRoles } = loadComplianceSettings({});
  assert.deepEqual(eraseRoles, ['compliance', 'legal']);
  assert.deepEqual(loadComplianceSettings({ AUDITLINE_ERASE_ROLES: 'dpo, legal' }).eraseRoles, ['dpo', 'legal']);
  assert.throws(() => loadComplianceSettings({ AUDITLINE_ERASE_ROLES: ' , ' }), /AUDITLINE_ERASE_ROLES/);
  const rule = { anyOf: eraseRoles, setting: 'AUDITLINE_ERASE_ROLES' };
  assert.equal(callerRefusal({ principal: 'dpo-1', heldRoles: ['security', 'legal'] }, rule), undefined);
  assert.equal(callerRefusal({ principal: 'u-17', heldRoles: ['engineering'] }, rule), 'u-17 holds none of the roles AUDITLINE_ERASE_ROLES allows (compliance, legal) in the principals file (holds: engineering)');
  assert.match(callerRefusal({ principal: 'os-user:eve', heldRoles: [] }, rule)!, /os-user:eve is not in the principals file/);
  assert.equal(callerRefusal({ principal: 'anyone', heldRoles: undefined }, rule), undefined);
});

test('TTLs: the migrations declare one per table and per PII column, as the latest migration left it; the server form is read back in days', () => {
  const declared = declaredTtls(DEFAULT_MIGRATIONS_DIR);
  // 0001 creates them; 0019 bounds the clock they start from (the CREATE's column definition is kept for MODIFY COLUMN).
  const bounded = "toDateTime(least(greatest(event_time, toDateTime64('1970-01-02 00:00:00', 3, 'UTC')), ingested_at))";
  assert.deepEqual(declared.filter((d) => d.table === 'executions'), [
    { table: 'executions', column: 'input', variable: 'ttl_days_pii', definition: 'String CODEC(ZSTD(3))', expression: `${bounded} + INTERVAL {{ttl_days_pii}} DAY` },
    { table: 'executions', variable: 'ttl_days_internal', expression: `${bounded} + INTERVAL {{ttl_days_internal}} DAY` },
  ]);
  assert.equal(declared.filter((d) => d.expression.startsWith('toDateTime(event_time)') || d.expression.startsWith('toDateTime(last_event_time)')).length, 0, 'no TTL starts from an unbounded event clock');
  assert.ok(declared.some((d) => d.table === 'report_digests' && d.column === undefined && d.variable === 'ttl_days_sox'));
  assert.equal(declared.filter((d) => d.table === 'subject_keys').length, 0, 'the key store expires by `erase --expired`, not a TTL');
  const server =
    "CREATE TABLE db.executions (`execution_id` String, `start_time` DateTime64(3, 'UTC'), `input` String CODEC(ZSTD(3)) TTL toDateTime(event_time) + toIntervalDay(30), `event_time` DateTime64(3, 'UTC'), INDEX idx execution_id TYPE bloom_filter(0.01) GRANULARITY 1) ENGINE = ReplacingMergeTree PARTITION BY toYYYYMM(start_time) ORDER BY (execution_id) TTL toDateTime(event_time) + toIntervalHour(12) SETTINGS index_granularity = 8192";
  assert.deepEqual(serverTtls('executions', server), [
    { table: 'executions', column: 'input', days: 30 },
    { table: 'executions', days: 0.5 },
  ]);
  // A table TTL that keeps some rows (WHERE) or moves them (TO DISK, a second rule) says so; the interval inside our own expression does not.
  const engine = (ttl: string) => `CREATE TABLE db.t (\`d\` DateTime) ENGINE = MergeTree ORDER BY d TTL ${ttl} SETTINGS index_granularity = 8192`;
  assert.deepEqual(serverTtls('t', engine("d + toIntervalDay(90) WHERE w = 'none'")), [{ table: 't', days: 90, beyond: "WHERE w = 'none'" }]);
  assert.deepEqual(serverTtls('t', engine("d + toIntervalDay(90), d + toIntervalDay(1) TO DISK 'cold'")), [{ table: 't', days: 90, beyond: "TO DISK 'cold'" }]);
  assert.deepEqual(serverTtls('t', engine("toDateTime(least(greatest(d, indexed_at), toDateTime64('2106-02-07 00:00:00', 3, 'UTC') - toIntervalDay(2557))) + toIntervalDay(2557)")), [{ table: 't', days: 2557 }]);
});

test('access review: uses outside the role are named, refusals within it are not', () => {
  const use = (role: string, object: string, outcome = 'refused') => ({ principal: 'p', role, access: 'reveal PII', object, outcome, uses: 1, last_used: '', detail: 'no reason' });
  assert.deepEqual(judgeUse(use('marketing', 'executions: success'), DEFAULT_REVEAL_POLICY, []), { flag: 'OUTSIDE_ROLE', finding: 'role marketing holds no reveal permission' });
  assert.equal(judgeUse(use('engineering', 'executions: success'), DEFAULT_REVEAL_POLICY, []).flag, 'OUTSIDE_ROLE');
  assert.equal(judgeUse(use('engineering', 'executions: failed'), DEFAULT_REVEAL_POLICY, []).flag, 'REFUSED');
  assert.equal(judgeUse(use('engineering', 'executions: failed', 'allowed'), DEFAULT_REVEAL_POLICY, []).flag, '');
  assert.equal(judgeUse({ ...use('marketing', 'report executions'), access: 'request reports' }, DEFAULT_REVEAL_POLICY, ['compliance']).flag, 'OUTSIDE_ROLE');
});

test('writers: CSV quoting, PDF row cells padded and cut, totals per value and sums', () => {
  assert.equal(csvField('a,b'), '"a,b"');
  assert.equal(csvField('say "hi"'), '"say ""hi"""');
  assert.equal(csvField(null), '');
  assert.equal(csvField(['x', 'y']), 'x;y');
  // Producer text a spreadsheet would run as a formula is shown as text; numbers, negative ones included, stay numbers.
  assert.equal(csvField('=HYPERLINK("https://evil.example")'), `"'=HYPERLINK(""https://evil.example"")"`);
  assert.equal(csvField('@cmd'), "'@cmd");
  assert.equal(csvField(-2500), '-2500');
  assert.equal(pdfRowLine([{ key: 'a', width: 4 }, { key: 'b', width: 3 }], { a: 'abcdef', b: 'x\ny' }), 'abc… x y');
  const t = new TotalsAccumulator({ countBy: ['status'], sum: ['ms'] });
  for (const row of [{ status: 'ok', ms: 5 }, { status: 'failed', ms: '7' }, { status: 'ok', ms: null }]) t.add(row);
  assert.deepEqual(t.totals, { rows: 3, by: { status: { ok: 2, failed: 1 } }, sum: { ms: 12 } });
  assert.deepEqual(t.lines(), ['rows: 3', 'status failed: 1', 'status ok: 2', 'sum of ms: 12']);
});

test('a principals file others may write is refused (whoever can edit it can give themselves any role); owner-writable only loads', () => {
  const file = path.join(tempDir('principals-mode'), 'principals.yaml');
  writeFileSync(file, 'principals:\n  dpo-1:\n    roles: [compliance]\n');
  chmodSync(file, 0o664);
  assert.throws(() => loadPrincipalDirectory(file), (e) => isAuditlineError(e, 'CONFIG_INVALID') && /may be written by its group or by anyone \(mode 664\)/.test(e.message));
  chmodSync(file, 0o646);
  assert.throws(() => loadPrincipalDirectory(file), (e) => isAuditlineError(e, 'CONFIG_INVALID'));
  chmodSync(file, 0o644);
  assert.deepEqual([...loadPrincipalDirectory(file).principals.keys()], ['dpo-1']);
});

test('a report over a period older than its tables keep says so: expired hot-store rows, and the 30-day subject mapping', () => {
  const retention = loadRetention();
  const now = Date.UTC(2026, 11, 7);
  const day = 86_400_000;
  const filter = (fromDaysAgo: number, subjects: string[] = []) => ({ from: now - fromDaysAgo * day, to: now, workflows: [], subjects });
  assert.deepEqual(reportCoverage(REPORT_KINDS.executions!, filter(60), retention, now), [], 'inside the 90 days of the hot store');
  const [expired, piiEmpty] = reportCoverage(REPORT_KINDS.failures!, filter(92), retention, now);
  assert.match(expired ?? '', /rows before 2026-09-08T00:00:00.000Z have expired: the tables of this kind keep 90 days .*archive keeps every event 2557 days \(auditline replay/);
  assert.match(piiEmpty ?? '', /^error_message of rows before 2026-11-07T00:00:00.000Z are empty: PII columns are kept 30 days/);
  assert.deepEqual(reportCoverage(REPORT_KINDS.access!, filter(400), retention, now), [], 'the access log is kept for SOX');
  assert.match(reportCoverage(REPORT_KINDS.access!, filter(400, ['tok']), retention, now).join('\n'), /subject filter finds executions from 2026-11-07/, 'reveals of a subject are found through the same mapping');
  const bySubject = reportCoverage(REPORT_KINDS.executions!, filter(60, ['tok']), retention, now);
  assert.equal(bySubject.length, 1);
  assert.match(bySubject[0]!, /subject filter finds executions from 2026-11-07T00:00:00.000Z on: .* kept 30 days/);
});

test('report --subject: an e-mail address, id:<customer id> or a subject token; a value of no such shape is wrong usage, not a filter matching nothing', async () => {
  const { subjectTokens } = await import('../../cli/commands/report.js');
  const { UsageError } = await import('../../cli/exit.js');
  const token = 'Yx1y5C0Lf7s3LHVrp79u98LT2u_LAmEuhoNuTKkmC3Q';
  assert.deepEqual(subjectTokens([token]), [token], 'a subject token is used as stored');
  // The message is fixed: it names the value's place, never the value (a mistyped address is personal data).
  for (const bad of ['alice.example.com', '12345', 'tok', `${token}x`, `${token.slice(0, 42)}=`]) {
    assert.throws(
      () => subjectTokens([token, bad]),
      (e) => e instanceof UsageError && e.message === '--subject (the 2nd given): expected an e-mail address, id:<customer id>, or a subject token (43 characters of A-Z a-z 0-9 _ -)',
      bad,
    );
  }
});
