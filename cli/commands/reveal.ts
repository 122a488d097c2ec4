import type { Command } from 'commander';
import { createClickHouse } from '../../core/clients/clickhouse.js';
import { loadEndpoints } from '../../core/endpoints.js';
import {
  loadMasterKey,
  loadRevealPolicy,
  loadStoredExecution,
  LocalKeyWrapper,
  MIN_REASON_LENGTH,
  reveal,
  SubjectKeyStore,
  TokenizerAuditLog,
  type RevealResult,
} from '../../consumers/tokenizer/index.js';
import { UsageError } from '../exit.js';
import { OUTPUT_FORMATS, QUERY_EXIT, renderRows, type OutputFormat } from './query.js';

/** Exit codes of `auditline reveal` beyond the common ones (docs/cli.md). */
export const REVEAL_EXIT = { unknownExecution: QUERY_EXIT.unknownExecution, refused: 6, unrecoverable: 7 } as const;

const say = (message: string) => process.stderr.write(`${message}\n`);

export function registerReveal(program: Command): void {
  program
    .command('reveal')
    .description("show the cleartext of an execution's tokenized PII (privileged: checked against the reveal policy and logged, allowed or not)")
    .argument('<execution_id>', 'execution id (UUID)')
    .requiredOption('--as <principal>', 'who is asking (your user id), recorded in the access log')
    .requiredOption('--role <role>', 'the role you act in, e.g. engineering, compliance, legal (AUDITLINE_REVEAL_POLICY)')
    .requiredOption('--reason <text>', `why, e.g. a ticket id (at least ${MIN_REASON_LENGTH} characters), recorded in the access log`)
    .option('--all', 'every PII column of the execution (outputs, errors, decisions), not only the inputs')
    .option('--format <format>', `output: ${OUTPUT_FORMATS.join(' | ')}`, 'table')
    .addHelpText(
      'after',
      `\nDefault policy: engineering may reveal FAILED executions only; compliance and legal any execution; other roles are refused.\nReads the hot store (ClickHouse) and the subject keys; needs AUDITLINE_TOKENIZER_MASTER_KEY (docs/tokenizer.md).\nExit codes: 0 revealed, 1 failure, 2 wrong usage, ${REVEAL_EXIT.unknownExecution} unknown execution, ${REVEAL_EXIT.refused} refused, ${REVEAL_EXIT.unrecoverable} nothing decryptable (keys erased or expired).`,
    )
    .action(async (rawId: string, opts: { as: string; role: string; reason: string; all?: boolean; format: string }) => {
      if (!(OUTPUT_FORMATS as readonly string[]).includes(opts.format)) throw new UsageError(`--format ${opts.format}: expected one of ${OUTPUT_FORMATS.join(', ')}`);
      const format = opts.format as OutputFormat;
      const executionId = rawId.trim();
      if (executionId === '' || executionId.length > 200) throw new UsageError('execution id: expected a non-empty id (a UUID) of at most 200 characters');
      const endpoints = loadEndpoints();
      const masterKey = loadMasterKey();
      const policy = loadRevealPolicy();
      const client = createClickHouse(endpoints.clickhouse);
      try {
        const database = endpoints.clickhouse.database;
        const stored = await loadStoredExecution(client, database, executionId, opts.all ? 'all' : 'inputs');
        const result = await reveal(
          { principal: opts.as, role: opts.role, purpose: opts.reason, executionId, status: stored.status, fields: stored.fields },
          { keys: new SubjectKeyStore(client, database, new LocalKeyWrapper(masterKey), { cacheTtlMs: 0, rotationMs: 0 }), log: new TokenizerAuditLog(client, database), policy },
        );
        print(result, executionId, stored.status, format);
        if (result.outcome === 'refused') process.exitCode = stored.status === undefined ? REVEAL_EXIT.unknownExecution : REVEAL_EXIT.refused;
        if (result.outcome === 'unrecoverable') process.exitCode = REVEAL_EXIT.unrecoverable;
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
