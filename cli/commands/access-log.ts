import type { Command } from 'commander';
import { createClickHouse } from '../../core/clients/clickhouse.js';
import { createS3 } from '../../core/clients/s3.js';
import { loadEndpoints } from '../../core/endpoints.js';
import { ObjectStore } from '../../consumers/archiver/object-store.js';
import { verifyAccessLog } from '../../consumers/tokenizer/access-seal.js';
import { TokenizerAuditLog } from '../../consumers/tokenizer/index.js';
import { UsageError } from '../exit.js';
import { loadRetention, retentionDaysFor } from '../../infra/retention.js';
import { ARCHIVE_EXIT, parseWindow } from './archive.js';

export function registerAccessLog(program: Command): void {
  const group = program.command('access-log').description('the PII access log (every reveal attempt) and its sealed copies (docs/tokenizer.md, "Reveal")');

  group
    .command('verify')
    .description('compare pii_access_log with the sealed copies in the archive bucket: names each access record changed, deleted or added in ClickHouse, and each sealed copy overwritten or deleted')
    .option('--from <time>', 'only records written at or after this time: 2026-11-28 (midnight UTC) or 2026-11-28T10:00:00Z, a zone is required (default: the SOX retention ago)')
    .option('--to <time>', 'only records written at or before this time, as --from (default: now)')
    .option('--format <format>', 'text | json', 'text')
    .addHelpText('after', `\nReads ClickHouse (pii_access_log) and the bucket AUDITLINE_S3_BUCKET (prefix access-log/v1/).\nExit codes: 0 intact, 1 failure, 2 wrong usage, ${ARCHIVE_EXIT.verifyFailed} differences found.`)
    .action(async (opts: { from?: string; to?: string; format: string }) => {
      if (!['text', 'json'].includes(opts.format)) throw new UsageError(`--format ${opts.format}: expected text or json`);
      const soxDays = retentionDaysFor(loadRetention(process.env.AUDITLINE_RETENTION_FILE), 'sox');
      const window = parseWindow(opts);
      const from = window.from?.getTime();
      const to = window.to?.getTime() ?? Date.now();
      if (from !== undefined && from > to) throw new UsageError(`--from ${opts.from} is in the future (--to defaults to now)`);
      const floor = Date.now() - (soxDays - 1) * 86_400_000;
      const endpoints = loadEndpoints();
      const s3 = createS3(endpoints.s3);
      const clickhouse = createClickHouse(endpoints.clickhouse);
      try {
        const report = await verifyAccessLog(s3, new ObjectStore(s3, endpoints.s3.bucket), new TokenizerAuditLog(clickhouse, endpoints.clickhouse.database), { ...(from !== undefined ? { from } : {}), to, floor });
        if (opts.format === 'json') process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
        else for (const f of [...report.findings, ...report.notes]) process.stdout.write(`${f.kind.toUpperCase().padEnd(17)} ${f.requestId}  ${f.detail}  (${f.key})\n`);
        const ok = report.findings.length === 0;
        process.stderr.write(
          `access-log verify: from ${new Date(report.from).toISOString()}: ${report.sealed} sealed record(s), ${report.rows} row(s), ${report.findings.length} difference(s), ${report.notes.length} row(s) from before sealing began: ${ok ? 'INTACT' : 'DIFFERENCES FOUND'}\n`,
        );
        if (!ok) process.exitCode = ARCHIVE_EXIT.verifyFailed;
      } finally {
        s3.destroy();
        await clickhouse.close();
      }
    });
}
