import type { Command } from 'commander';
import { loadRevealPolicy, MIN_REASON_LENGTH } from '../../consumers/tokenizer/index.js';
import { accessReview, accessReviewDocument, loadComplianceSettings, quarterOf, quarterPeriod, REPORT_FORMATS } from '../../compliance/index.js';
import { UsageError } from '../exit.js';
import { COMPLIANCE_EXIT, parseReportFormat, runProduce } from './report-output.js';
import { identifyNamedCaller } from './reveal-access.js';

export function registerAccessReview(program: Command): void {
  program
    .command('access-review')
    .description('quarterly access review: who holds which access (ClickHouse grants, reveal policy, report roles) and who used it; flags unused grants and use outside a role')
    .option('--quarter <YYYYQn>', 'the quarter to review, e.g. 2026Q4 (default: the current quarter)')
    .option('--format <format>', `output: ${REPORT_FORMATS.join(' | ')}`, 'csv')
    .option('--as <principal>', 'who is asking (your user id), recorded with the request; with AUDITLINE_REVEAL_PRINCIPALS_FILE the caller is authenticated instead and --as may be omitted')
    .requiredOption('--role <role>', 'the role you act in (AUDITLINE_REPORT_ROLES)')
    .requiredOption('--reason <text>', `why (at least ${MIN_REASON_LENGTH} characters), recorded with the request`)
    .option('--output <file>', 'write the review to a file instead of stdout')
    .option('--grants-from-definition', "review the ClickHouse grants of the definition (infra/clickhouse/access.ts) instead of the server's (system.grants); without it, a server whose grants cannot be read makes the review say so (flag GRANTS_UNREAD) and exit 8")
    .addHelpText(
      'after',
      `\nFlags: UNUSED (held, not used in the quarter), OUTSIDE_ROLE (an access the role does not hold), UNKNOWN_USE (no query log to count ClickHouse reads), REFUSED, GRANTS_UNREAD (the server's grants could not be read; the definition stands in).\nColumns: docs/reports.md. Exit codes: 0 produced, 1 failure, 2 wrong usage, ${COMPLIANCE_EXIT.refused} refused (recorded), ${COMPLIANCE_EXIT.grantsUnread} produced with GRANTS_UNREAD.`,
    )
    .action(async (opts: { quarter?: string; format: string; as?: string; role: string; reason: string; output?: string; grantsFromDefinition?: boolean }) => {
      const format = parseReportFormat(opts.format);
      const label = opts.quarter ?? quarterOf(Date.now());
      const period = quarterPeriod(label);
      if (!period) throw new UsageError(`--quarter ${JSON.stringify(opts.quarter)}: expected YYYYQn from 1900Q1 to 2299Q4, e.g. 2026Q4`);
      const requester = identifyNamedCaller(opts.as);
      const policy = loadRevealPolicy();
      const { reportRoles } = loadComplianceSettings();
      const grantsFromDefinition = opts.grantsFromDefinition === true;
      let grantsUnread: string | undefined;
      const result = await runProduce(
        {
          ...requester,
          role: opts.role,
          reason: opts.reason,
          command: 'access-review',
          kind: 'quarter',
          format,
          parameters: { quarter: label.toUpperCase(), subjects: [], ...(grantsFromDefinition ? { grantsFrom: 'definition' } : {}) },
        },
        opts.output,
        async ({ client, database, header }) => {
          const review = await accessReview({ client, database, period, policy, reportRoles, grantsFromDefinition });
          grantsUnread = review.grantsUnread;
          return accessReviewDocument(review, label.toUpperCase(), period, header);
        },
      );
      // The review is written and recorded, but it does not show the server's grants: a review that passes for one must not exit 0.
      if (result.outcome !== 'refused' && grantsUnread !== undefined) {
        process.stderr.write(
          `access-review: the server's ClickHouse grants could not be read (${grantsUnread}); the review shows the definition (infra/clickhouse/access.ts) instead, flagged GRANTS_UNREAD. Give the reviewing user SELECT on system.grants and system.role_grants, or pass --grants-from-definition to review the definition on purpose\n`,
        );
        process.exitCode = COMPLIANCE_EXIT.grantsUnread;
      }
    });
}
