import type { Command } from 'commander';
import { createClickHouse } from '../../core/clients/clickhouse.js';
import { createS3 } from '../../core/clients/s3.js';
import { loadEndpoints } from '../../core/endpoints.js';
import { ArchiveIndex, loadVerifyKey, ObjectStore, reindexArchive, verifyArchive, type RestoreOptions } from '../../consumers/archiver/index.js';
import { loadRetention, retentionDaysFor } from '../../infra/retention.js';
import { parseIsoInstant } from '../../core/iso-time.js';
import { UsageError } from '../exit.js';

/** Exit codes of `auditline archive` and `auditline replay` beyond the common ones (docs/cli.md). */
export const ARCHIVE_EXIT = { verifyFailed: 8, restorePending: 9 } as const;

const say = (message: string) => process.stderr.write(`${message}\n`);

/** `2026-11-28` (midnight UTC), `2026-11-28T10:00:00Z` -> Date; UsageError otherwise (`5`, `2026-02-30`, `Dec 1`, a date-time without zone). */
export function parseTime(option: string, text: string | undefined): Date | undefined {
  if (text === undefined) return undefined;
  const t = parseIsoInstant(text);
  if (t === undefined) throw new UsageError(`${option} ${JSON.stringify(text)}: expected an ISO date (midnight UTC) or date-time with zone, e.g. 2026-11-28 or 2026-11-28T10:00:00Z`);
  return new Date(t.ms);
}

/** --from and --to of a window, `--to` not before `--from`; UsageError otherwise. */
export function parseWindow(opts: { from?: string | undefined; to?: string | undefined }): { from: Date | undefined; to: Date | undefined } {
  const from = parseTime('--from', opts.from);
  const to = parseTime('--to', opts.to);
  if (from && to && to.getTime() < from.getTime()) throw new UsageError(`--to ${opts.to} is before --from ${opts.from}`);
  return { from, to };
}

/** Parses a positive integer option; UsageError naming it otherwise. */
export function positiveInt(option: string, text: string): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n <= 0) throw new UsageError(`${option} ${JSON.stringify(text)}: expected a positive integer`);
  return n;
}

/** Restore settings shared by `replay` and `archive reindex`. */
export function restoreOptions(opts: { wait?: boolean; waitTimeout: string; restoreDays: string; tier: string }): RestoreOptions {
  if (!['Expedited', 'Standard', 'Bulk'].includes(opts.tier)) throw new UsageError(`--tier ${opts.tier}: expected Expedited, Standard or Bulk`);
  return {
    wait: Boolean(opts.wait),
    waitTimeoutMs: positiveInt('--wait-timeout', opts.waitTimeout) * 1000,
    pollMs: 5_000,
    restoreDays: positiveInt('--restore-days', opts.restoreDays),
    tier: opts.tier as RestoreOptions['tier'],
    onWaiting: waitingProgress(),
  };
}

/** Progress while --wait waits for Glacier restores (hours): a line when the count changes, else once a minute. */
function waitingProgress(): RestoreOptions['onWaiting'] {
  let said = { pending: -1, at: 0 };
  return (pending, total, waitedMs) => {
    if (pending === said.pending && waitedMs - said.at < 60_000) return;
    said = { pending, at: waitedMs };
    process.stderr.write(`waiting for Glacier restores: ${pending} of ${total} object(s) still being restored after ${Math.round(waitedMs / 1000)} s\n`);
  };
}

export function registerArchive(program: Command): void {
  const archive = program.command('archive').description('check and maintain the S3 archive (docs/archiver.md)');

  archive
    .command('verify')
    .description('check the signed digest chains and every archived object: names each object that is missing, changed or not listed')
    .option('--from <time>', 'only digests (and the objects they list) written at or after this time: 2026-11-28 (midnight UTC) or 2026-11-28T10:00:00Z (a zone is required)')
    .option('--to <time>', 'only digests written at or before this time (as --from)')
    .option('--deep', 'also download readable objects and hash their bytes (Glacier objects are checked by their stored SHA-256 checksum)')
    .option('--grace <seconds>', 'objects newer than this that no digest lists yet are pending, not an error', '7200')
    .option('--no-index', 'skip the check against archive_index in ClickHouse (for a verifier with access to the bucket only)')
    .option('--format <format>', 'text | json', 'text')
    .addHelpText('after', `\nThe public key: AUDITLINE_ARCHIVER_PUBLIC_KEY(_FILE), else derived from AUDITLINE_ARCHIVER_SIGNING_KEY(_FILE).\nExit codes: 0 intact, 1 failure, 2 wrong usage, ${ARCHIVE_EXIT.verifyFailed} problems found.`)
    .action(async (opts: { from?: string; to?: string; deep?: boolean; grace: string; format: string; index: boolean }) => {
      if (!['text', 'json'].includes(opts.format)) throw new UsageError(`--format ${opts.format}: expected text or json`);
      const { from, to } = parseWindow(opts);
      const pendingGraceMs = positiveInt('--grace', opts.grace) * 1000;
      const publicKey = loadVerifyKey();
      const endpoints = loadEndpoints();
      const s3 = createS3(endpoints.s3);
      const clickhouse = opts.index ? createClickHouse(endpoints.clickhouse) : undefined;
      try {
        // What the archiver recorded as it wrote each object: catches an object deleted or replaced before its digest.
        const index = clickhouse ? await new ArchiveIndex(clickhouse, endpoints.clickhouse.database).allObjects() : undefined;
        const report = await verifyArchive(s3, new ObjectStore(s3, endpoints.s3.bucket), {
          publicKey,
          ...(index ? { index } : {}),
          ...(from ? { from } : {}),
          ...(to ? { to } : {}),
          pendingGraceMs,
          deep: Boolean(opts.deep),
          // What the lifecycle rule deletes after it is expired, not missing (infra/s3/bootstrap.ts takes it from the same file).
          retentionDays: retentionDaysFor(loadRetention(process.env.AUDITLINE_RETENTION_FILE?.trim() || undefined), 'sox'),
        });
        if (opts.format === 'json') process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
        else {
          for (const p of report.problems) process.stdout.write(`${p.kind.toUpperCase().padEnd(15)} ${p.subject}  ${p.detail}\n`);
          for (const key of report.pending) process.stdout.write(`${'PENDING'.padEnd(15)} ${key}  not listed by a digest yet (newer than the grace period)\n`);
          for (const e of report.expired) process.stdout.write(`${'EXPIRED'.padEnd(15)} ${e.chain}  digests ${e.first}-${e.last} (and the objects they list) deleted after the retention: not checked\n`);
        }
        const indexed = index ? `, ${report.indexedChecked} indexed object(s) checked` : ' (archive_index not checked: --no-index)';
        say(`archive verify: ${report.digests} digest(s), ${report.objectsChecked} object(s) checked${indexed}, ${report.problems.length} problem(s), ${report.pending.length} pending${report.expired.length > 0 ? `, expired digests in ${report.expired.length} chain(s)` : ''}: ${report.ok ? 'INTACT' : 'PROBLEMS FOUND'}`);
        if (!report.ok) process.exitCode = ARCHIVE_EXIT.verifyFailed;
      } finally {
        s3.destroy();
        await clickhouse?.close();
      }
    });

  archive
    .command('reindex')
    .description('rebuild the execution -> objects index (ClickHouse archive_index) from the archive itself')
    .option('--topic <topic>', 'only objects of this source topic')
    .option('--from <day>', 'only objects whose key date is on or after this day (YYYY-MM-DD)')
    .option('--to <day>', 'only objects whose key date is on or before this day')
    .option('--tier <tier>', 'Glacier restore tier: Expedited | Standard | Bulk', 'Bulk')
    .option('--restore-days <days>', 'days a restored copy stays readable', '2')
    .addHelpText('after', `\nGlacier objects get a restore request and are reported as pending; run the command again once they are restored.\nExit codes: 0 done, 1 failure, 2 wrong usage, ${ARCHIVE_EXIT.restorePending} some objects still being restored.`)
    .action(async (opts: { topic?: string; from?: string; to?: string; tier: string; restoreDays: string }) => {
      for (const [name, day] of [['--from', opts.from], ['--to', opts.to]] as const) {
        if (day !== undefined && !(/^\d{4}-\d{2}-\d{2}$/.test(day) && parseIsoInstant(day)?.dateOnly)) throw new UsageError(`${name} ${JSON.stringify(day)}: expected a day, YYYY-MM-DD`);
      }
      if (opts.from !== undefined && opts.to !== undefined && opts.to < opts.from) throw new UsageError(`--to ${opts.to} is before --from ${opts.from}`);
      const restore = restoreOptions({ waitTimeout: '1', restoreDays: opts.restoreDays, tier: opts.tier });
      const endpoints = loadEndpoints();
      const s3 = createS3(endpoints.s3);
      const clickhouse = createClickHouse(endpoints.clickhouse);
      try {
        const result = await reindexArchive(
          { s3, store: new ObjectStore(s3, endpoints.s3.bucket), index: new ArchiveIndex(clickhouse, endpoints.clickhouse.database) },
          {
            ...(opts.topic ? { topic: opts.topic } : {}),
            ...(opts.from ? { fromDay: opts.from } : {}),
            ...(opts.to ? { toDay: opts.to } : {}),
            restore,
            onProgress: (done, total) => say(`reindex: ${done}/${total} objects`),
          },
        );
        process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
        say(`archive reindex: ${result.objects} object(s) read, ${result.rows} index row(s) written, ${result.pending.length} pending restore`);
        if (result.pending.length > 0) process.exitCode = ARCHIVE_EXIT.restorePending;
      } finally {
        s3.destroy();
        await clickhouse.close();
      }
    });
}
