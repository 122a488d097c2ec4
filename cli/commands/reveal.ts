import type { Command } from 'commander';
import { createClickHouse } from '../../core/clients/clickhouse.js';
import { loadEndpoints } from '../../core/endpoints.js';
import { loadStoredExecution, MIN_REASON_LENGTH, type RevealResult } from '../../consumers/tokenizer/index.js';
import { UsageError } from '../exit.js';
import { OUTPUT_FORMATS, renderRows, type OutputFormat } from './query.js';
import { identifyNamedCaller, REVEAL_EXIT, revealExitCode, revealForCli } from './reveal-access.js';

export { REVEAL_EXIT } from './reveal-access.js';

const say = (message: string) => process.stderr.write(`${message}\n`);

export function registerReveal(program: Command): void {
  program
    .command('reveal')
    .description("show the cleartext of an execution's tokenized PII (privileged: checked against the reveal policy and logged, allowed or not)")
    .argument('<execution_id>', 'execution id (UUID)')
    .option('--as <principal>', 'who is asking (your user id), recorded in the access log; with AUDITLINE_REVEAL_PRINCIPALS_FILE the caller is authenticated instead and --as may be omitted')
    .requiredOption('--role <role>', 'the role you act in, e.g. engineering, compliance, legal (AUDITLINE_REVEAL_POLICY)')
    .requiredOption('--reason <text>', `why, e.g. a ticket id (at least ${MIN_REASON_LENGTH} characters), recorded in the access log`)
    .option('--all', 'every PII column of the execution (outputs, errors, decisions), not only the inputs')
    .option('--format <format>', `output: ${OUTPUT_FORMATS.join(' | ')}`, 'table')
    .addHelpText(
      'after',
      `\nDefault policy: engineering may reveal FAILED executions only; compliance and legal any execution; other roles are refused.\nReads the hot store (ClickHouse) and the subject keys; needs AUDITLINE_TOKENIZER_MASTER_KEY (docs/tokenizer.md).\nEvery attempt is sealed in the archive bucket (AUDITLINE_S3_BUCKET, write-once) and logged in pii_access_log before anything is shown; "auditline access-log verify" checks the two agree.\nExit codes: 0 revealed, 1 failure, 2 wrong usage, ${REVEAL_EXIT.unknownExecution} unknown execution, ${REVEAL_EXIT.refused} refused, ${REVEAL_EXIT.unrecoverable} nothing decryptable (keys erased or expired, or wrapped by a master key that is not configured: the message says which).`,
    )
    .action(async (rawId: string, opts: { as?: string; role: string; reason: string; all?: boolean; format: string }) => {
      if (!(OUTPUT_FORMATS as readonly string[]).includes(opts.format)) throw new UsageError(`--format ${opts.format}: expected one of ${OUTPUT_FORMATS.join(', ')}`);
      const format = opts.format as OutputFormat;
      const executionId = rawId.trim();
      if (executionId === '' || executionId.length > 200) throw new UsageError('execution id: expected a non-empty id (a UUID) of at most 200 characters');
      // Who is asking, before anything is read (docs/cli.md: without a principals file, no --as is exit 2 at once).
      identifyNamedCaller(opts.as);
      const endpoints = loadEndpoints();
      const client = createClickHouse(endpoints.clickhouse);
      try {
        const database = endpoints.clickhouse.database;
        const stored = await loadStoredExecution(client, database, executionId, opts.all ? 'all' : 'inputs');
        const result = await revealForCli(client, database, opts, { executionId, status: stored.status, fields: stored.fields });
        print(result, executionId, stored.status, format);
        const code = revealExitCode(result);
        if (code !== undefined) process.exitCode = code;
      } finally {
        await client.close();
      }
    });
}

function print(result: RevealResult, executionId: string, status: string | undefined, format: OutputFormat): void {
  if (result.outcome === 'refused') {
    say(`reveal refused: ${result.reason} (request ${result.requestId} recorded in the access log)`);
    if (format === 'json') process.stdout.write(`${JSON.stringify({ execution_id: executionId, outcome: result.outcome, reason: result.reason, request_id: result.requestId }, null, 2)}\n`);
    return;
  }
  if (result.reason) say(`warning: ${result.reason}`);
  say(`execution ${executionId} (${status}): ${result.fields.length} field(s); request ${result.requestId} recorded in the access log`);
  if (format === 'json') {
    process.stdout.write(
      `${JSON.stringify({ execution_id: executionId, status, outcome: result.outcome, request_id: result.requestId, fields: result.fields }, null, 2)}\n`,
    );
    return;
  }
  const rows = result.fields.map((f) => ({ field: f.name, revealed: f.revealed, unrecoverable: f.unrecoverable, value: f.text }));
  process.stdout.write(renderRows(rows, ['field', 'revealed', 'unrecoverable', 'value'], format));
}
