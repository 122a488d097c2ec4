import type { Command } from 'commander';
import { createClickHouse } from '../../core/clients/clickhouse.js';
import { createS3 } from '../../core/clients/s3.js';
import { loadEndpoints } from '../../core/endpoints.js';
import { isAuditlineError } from '../../core/errors.js';
import { applyRevealed, ArchiveIndex, ObjectStore, piiFields, renderReplay, replayExecution, type ReplaySource } from '../../consumers/archiver/index.js';
import { loadMasterKey, MIN_REASON_LENGTH } from '../../consumers/tokenizer/index.js';
import { loadRetention, retentionDaysFor } from '../../infra/retention.js';
import { UsageError } from '../exit.js';
import { ARCHIVE_EXIT, restoreOptions } from './archive.js';
import { QUERY_EXIT } from './query.js';
import { REVEAL_EXIT } from './reveal.js';
import { checkRevealOptions, identifyNamedCaller, revealForCli } from './reveal-access.js';

const say = (message: string) => process.stderr.write(`${message}\n`);

export function registerReplay(program: Command): void {
  program
    .command('replay')
    .description('rebuild an execution (inputs, steps with input/output/error, decisions, result) as one JSON document a workflow can re-run from')
    .argument('<execution_id>', 'execution id (UUID)')
    .option('--source <source>', 'auto (hot store, else archive) | hotstore | archive', 'auto')
    .option('--wait', 'when Glacier objects must be restored first, wait until they are readable')
    .option('--wait-timeout <seconds>', 'longest --wait waits', '43200')
    .option('--tier <tier>', 'Glacier restore tier: Expedited | Standard | Bulk', 'Standard')
    .option('--restore-days <days>', 'days a restored copy stays readable', '2')
    .option('--reveal', 'cleartext PII, if the reveal policy grants it (needs --role, --reason; logged either way)')
    .option('--as <principal>', 'who is asking, for --reveal; with AUDITLINE_REVEAL_PRINCIPALS_FILE the caller is authenticated instead and --as may be omitted')
    .option('--role <role>', 'the role you act in, for --reveal')
    .option('--reason <text>', `why, for --reveal (at least ${MIN_REASON_LENGTH} characters)`)
    .addHelpText(
      'after',
      `\nPII stays tokenized unless --reveal is granted (docs/tokenizer.md, reveal rules).\nExit codes: 0 document printed, 1 failure, 2 wrong usage, ${QUERY_EXIT.unknownExecution} unknown execution, ${REVEAL_EXIT.refused} reveal refused, ${REVEAL_EXIT.unrecoverable} nothing decryptable, ${ARCHIVE_EXIT.restorePending} Glacier restore pending (run again, or use --wait).`,
    )
    .action(async (rawId: string, opts: { source: string; wait?: boolean; waitTimeout: string; tier: string; restoreDays: string; reveal?: boolean; as?: string; role?: string; reason?: string }) => {
      const executionId = rawId.trim();
      if (executionId === '' || executionId.length > 200) throw new UsageError('execution id: expected a non-empty id (a UUID) of at most 200 characters');
      if (!['auto', 'hotstore', 'archive'].includes(opts.source)) throw new UsageError(`--source ${opts.source}: expected auto, hotstore or archive`);
      checkRevealOptions(opts);
      const restore = restoreOptions(opts);
      const endpoints = loadEndpoints();
      // Fails early (before any S3 restore) when --reveal cannot work at all.
      if (opts.reveal) {
        loadMasterKey();
        identifyNamedCaller(opts.as);
      }
      const s3 = createS3(endpoints.s3);
      const clickhouse = createClickHouse(endpoints.clickhouse);
      const database = endpoints.clickhouse.database;
      try {
        let outcome;
        try {
          // Past the hot store's PII column TTLs, `auto` reads the archive, which still holds the input and step data.
          const piiRetentionDays = retentionDaysFor(loadRetention(process.env.AUDITLINE_RETENTION_FILE?.trim() || undefined), 'pii');
          outcome = await replayExecution({ clickhouse, database, s3, store: new ObjectStore(s3, endpoints.s3.bucket), index: new ArchiveIndex(clickhouse, database), piiRetentionDays }, executionId, opts.source as ReplaySource, restore);
        } catch (err) {
          if (!isAuditlineError(err, 'EXECUTION_NOT_FOUND')) throw err;
          say(`auditline: ${err.message}`);
          // A reveal asked for an unknown execution is on record too, as with `auditline reveal`.
          if (opts.reveal) {
            const refused = await revealForCli(clickhouse, database, { as: opts.as, role: opts.role!, reason: opts.reason! }, { executionId, status: undefined, fields: [] });
            say(`reveal refused: ${refused.reason} (request ${refused.requestId} recorded in the access log)`);
          }
          process.exitCode = QUERY_EXIT.unknownExecution;
          return;
        }
        if ('pending' in outcome) {
          say(`restore pending: ${outcome.pending.length} of ${outcome.objects.length} archive object(s) are being restored from Glacier; run the command again later (or with --wait)`);
          for (const key of outcome.pending) say(`  ${key}`);
          process.exitCode = ARCHIVE_EXIT.restorePending;
          return;
        }
        let document = outcome.document;
        if (opts.reveal) {
          // The CLI's one path to cleartext: the caller authenticated as for `auditline reveal`, the same policy and keys.
          const result = await revealForCli(clickhouse, database, { as: opts.as, role: opts.role!, reason: opts.reason! }, { executionId, status: document.status, fields: piiFields(document) });
          if (result.outcome === 'refused') {
            say(`reveal refused: ${result.reason} (request ${result.requestId} recorded in the access log); PII stays tokenized`);
            process.exitCode = REVEAL_EXIT.refused;
            return;
          }
          if (result.reason) say(`warning: ${result.reason}`);
          document = applyRevealed(document, new Map(result.fields.map((f) => [f.name, f.text])));
          if (result.outcome === 'unrecoverable') process.exitCode = REVEAL_EXIT.unrecoverable;
        }
        say(`execution ${executionId} (${document.status}) rebuilt from the ${document.source === 'archive' ? `archive (${document.archive_objects?.length ?? 0} object(s))` : 'hot store'}; PII ${document.pii}`);
        process.stdout.write(`${JSON.stringify(renderReplay(document), null, 2)}\n`);
      } finally {
        s3.destroy();
        await clickhouse.close();
      }
    });
}
