import type { Command } from 'commander';
import { createClickHouse } from '../../core/clients/clickhouse.js';
import { loadEndpoints } from '../../core/endpoints.js';
import {
  loadMasterKey,
  loadRevealPolicy,
  loadTokenKey,
  LocalKeyWrapper,
  MIN_REASON_LENGTH,
  SubjectKeyStore,
  subjectId,
  TokenKey,
} from '../../consumers/tokenizer/index.js';
import { fileSha256, REPORT_FORMATS, REPORT_KIND_NAMES, reportCoverage, reportDocument, reportKind, reportParameters, ReportRecords, resolvePeriod, type ReportFilter } from '../../compliance/index.js';
import { UsageError } from '../exit.js';
import { loadRetention } from '../../infra/retention.js';
import { COMPLIANCE_EXIT, parseReportFormat, runProduce } from './report-output.js';
import { identifyNamedCaller, openAccessSeal, revealKeyStore } from './reveal-access.js';

const collect = (value: string, previous: string[] = []) => [...previous, value];

interface ReportOptions {
  kind?: string;
  from?: string;
  to?: string;
  quarter?: string;
  format: string;
  as?: string;
  role?: string;
  reason?: string;
  workflow?: string[];
  execution?: string;
  subject?: string[];
  reveal?: boolean;
  output?: string;
}

/** 1st, 2nd, 3rd, 4th, … 11th, 12th, 13th, 21st. */
function ordinal(n: number): string {
  const tens = n % 100;
  const suffix = tens >= 11 && tens <= 13 ? 'th' : ({ 1: 'st', 2: 'nd', 3: 'rd' } as Record<number, string>)[n % 10] ?? 'th';
  return `${n}${suffix}`;
}

/**
 * `--subject` values as subject tokens: an e-mail address or `id:<customer
 * id>` is tokenized with the tokenization key (AUDITLINE_TOKENIZER_TOKEN_KEY),
 * anything else is taken as a subject token as stored, which has the shape
 * of one (43 characters of base64url, an HMAC-SHA256): a mistyped address
 * or a customer id without `id:` is wrong usage, not a filter that matches
 * nothing.
 */
export function subjectTokens(values: readonly string[]): string[] {
  if (values.length === 0) return [];
  for (const [i, v] of values.entries()) {
    if (!(v.includes('@') || v.startsWith('id:') || SUBJECT_TOKEN.test(v))) {
      // Named by its place, not its value: a mistyped address or customer id is personal data.
      throw new UsageError(`--subject (the ${ordinal(i + 1)} given): expected an e-mail address, id:<customer id>, or a subject token (43 characters of A-Z a-z 0-9 _ -)`);
    }
  }
  const needsKey = values.some((v) => v.includes('@') || v.startsWith('id:'));
  const key = needsKey ? new TokenKey(loadTokenKey()) : undefined;
  return values.map((v) => {
    if (!key || !(v.includes('@') || v.startsWith('id:'))) return v;
    const id = v.startsWith('id:') ? subjectId('id', v.slice(3)) : subjectId('email', v);
    if (id === undefined) throw new UsageError(`--subject: empty subject`);
    return key.subject(id);
  });
}

/** A subject token as the tokenizer stores it: base64url of an HMAC-SHA256 (TokenKey.subject). */
const SUBJECT_TOKEN = /^[A-Za-z0-9_-]{43}$/;

export function registerReport(program: Command): void {
  const report = program
    .command('report')
    .description('compliance report (executions, decisions, failures, access, erasures, alerts) as CSV, JSON or PDF; the request is recorded, the file\'s SHA-256 too')
    .option('--kind <kind>', `one of ${REPORT_KIND_NAMES.join(', ')}`)
    .option('--from <date>', 'start of the period: 2026-07-01 or an ISO date-time with zone')
    .option('--to <date>', 'end of the period: a date includes that whole day; a date-time is exclusive')
    .option('--quarter <YYYYQn>', 'the period as a quarter, e.g. 2026Q3 (instead of --from/--to)')
    .option('--format <format>', `output: ${REPORT_FORMATS.join(' | ')}`, 'csv')
    .option('--as <principal>', 'who is asking (your user id), recorded with the request; with AUDITLINE_REVEAL_PRINCIPALS_FILE the caller is authenticated instead and --as may be omitted')
    .option('--role <role>', 'the role you act in; AUDITLINE_REPORT_ROLES may request reports (default compliance, legal, security)')
    .option('--reason <text>', `why, e.g. a ticket id (at least ${MIN_REASON_LENGTH} characters), recorded with the request`)
    .option('--workflow <id>', 'only this workflow (repeat for several); executions, decisions, failures', collect)
    .option('--execution <id>', 'only this execution; decisions')
    .option('--subject <subject>', 'only this data subject: e-mail address, id:<customer id>, or a subject token (repeat for several); executions, decisions, failures, access, erasures', collect)
    .option('--reveal', 'show PII in cleartext where the reveal policy allows your role (each reveal is recorded in pii_access_log); default: tokenized')
    .option('--output <file>', 'write the report to a file instead of stdout')
    .addHelpText(
      'after',
      `\nColumns of every kind: docs/reports.md. Check a report file later with \`auditline report verify <file>\`.\nExit codes: 0 produced, 1 failure, 2 wrong usage, ${COMPLIANCE_EXIT.refused} refused (the role may not request reports; the refusal is recorded).`,
    )
    .action(async (opts: ReportOptions) => {
      const kind = reportKind(opts.kind ?? '');
      if (!kind) throw new UsageError(`--kind: expected one of ${REPORT_KIND_NAMES.join(', ')}`);
      const format = parseReportFormat(opts.format);
      const period = resolvePeriod(opts);
      if (typeof period === 'string') throw new UsageError(period);
      for (const [flag, given, filter] of [
        ['--workflow', (opts.workflow ?? []).length > 0, 'workflow'],
        ['--execution', opts.execution !== undefined, 'execution'],
        ['--subject', (opts.subject ?? []).length > 0, 'subject'],
      ] as const) {
        if (given && !kind.filters.includes(filter)) throw new UsageError(`${flag} does not apply to report kind ${kind.name}`);
      }
      if (opts.role === undefined || opts.reason === undefined) throw new UsageError('--role and --reason are required');
      const requester = identifyNamedCaller(opts.as);
      const filter: ReportFilter = {
        from: period.from,
        to: period.to,
        workflows: opts.workflow ?? [],
        ...(opts.execution !== undefined ? { executionId: opts.execution.trim() } : {}),
        subjects: subjectTokens(opts.subject ?? []),
      };
      const policy = loadRevealPolicy();
      const masterKey = opts.reveal ? loadMasterKey() : undefined;
      const coverage = reportCoverage(kind, filter, loadRetention(process.env.AUDITLINE_RETENTION_FILE), Date.now());
      for (const note of coverage) process.stderr.write(`warning: ${note}\n`);
      // Each reveal of the report is sealed and recorded like any CLI reveal.
      const seal = masterKey ? await openAccessSeal() : undefined;
      try {
        await runProduce(
          { ...requester, role: opts.role, reason: opts.reason, command: 'report', kind: kind.name, format, parameters: reportParameters(kind, filter, Boolean(opts.reveal)) },
          opts.output,
          async ({ client, database, header }) =>
            reportDocument(kind, filter, {
              client,
              database,
              header,
              coverage,
              ...(masterKey && seal
                ? {
                    revealWith: {
                      caller: requester,
                      role: opts.role!,
                      reason: opts.reason!,
                      policy,
                      deps: { keys: revealKeyStore(client, database, masterKey), log: seal.log(client, database) },
                    },
                  }
                : {}),
            }),
        );
      } finally {
        seal?.close();
      }
    });

  report
    .command('verify')
    .description('check a report file against the SHA-256 recorded when it was produced')
    .argument('<file>', 'the report file (CSV, JSON or PDF)')
    .option('--request <id>', 'also require that it is the report of this request id')
    .addHelpText('after', `\nExit codes: 0 the file is a report this system produced (its record is printed), 1 failure, 2 wrong usage, ${COMPLIANCE_EXIT.noMatch} no recorded report has this SHA-256 (changed, or not produced here).`)
    .action(async (file: string, opts: { request?: string }) => {
      const sha256 = await fileSha256(file).catch((err: NodeJS.ErrnoException) => {
        throw new UsageError(`cannot read ${file} (${err.code ?? err.message})`);
      });
      const { clickhouse } = loadEndpoints();
      const client = createClickHouse(clickhouse);
      try {
        const records = new ReportRecords(client, clickhouse.database);
        const matches = (await records.digestsBySha256(sha256)).filter((d) => opts.request === undefined || d.request_id === opts.request);
        if (matches.length === 0) {
          const expected = opts.request !== undefined ? await records.digestOfRequest(opts.request) : undefined;
          process.stderr.write(
            `report verify: NO MATCH: no report with sha256 ${sha256} was recorded${opts.request !== undefined ? ` for request ${opts.request}` : ''}${expected ? ` (that request's report has sha256 ${expected.sha256})` : ''}\n`,
          );
          process.exitCode = COMPLIANCE_EXIT.noMatch;
          return;
        }
        process.stdout.write(`${JSON.stringify({ file, sha256, match: true, records: matches.map((m) => ({ ...m, parameters: JSON.parse(m.parameters) as unknown })) }, null, 2)}\n`);
        process.stderr.write(`report verify: OK: ${file} is the ${matches[0]!.format} ${matches[0]!.command} ${matches[0]!.kind} of request ${matches[0]!.request_id}, produced ${matches[0]!.generated_at} UTC for ${matches[0]!.principal}\n`);
      } finally {
        await client.close();
      }
    });
}
