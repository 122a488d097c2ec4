import type { Command } from 'commander';
import { createClickHouse } from '../../core/clients/clickhouse.js';
import { loadEndpoints } from '../../core/endpoints.js';
import { isAuditlineError } from '../../core/errors.js';
import { loadRetention, retentionDaysFor } from '../../infra/retention.js';
import { loadComplianceSettings } from '../../compliance/index.js';
import {
  callerRefusal,
  eraseSubjects,
  expireKeys,
  loadTokenKey,
  setLegalHold,
  SubjectKeyStore,
  TokenizerAuditLog,
  TokenKey,
  type ErasureDeps,
} from '../../consumers/tokenizer/index.js';
import { loadProducerHashKey } from '../../producers/env-options.js';
import { UsageError } from '../exit.js';
import { identifyCliCaller } from './reveal-access.js';

/** Exit code of `auditline erase` and `legal-hold` when refused: the subject is under legal hold, or the caller is not who it claims or holds no erase role (docs/cli.md). */
export const ERASE_EXIT = { refused: 6 } as const;

const say = (message: string) => process.stderr.write(`${message}\n`);

async function withErasureDeps<T>(fn: (deps: ErasureDeps) => Promise<T>): Promise<T> {
  const endpoints = loadEndpoints();
  const tokenKey = loadTokenKey();
  const client = createClickHouse(endpoints.clickhouse);
  const database = endpoints.clickhouse.database;
  try {
    return await fn({
      client,
      database,
      tokenKey: new TokenKey(tokenKey),
      keys: new SubjectKeyStore(client, database, undefined, { cacheTtlMs: 0, rotationMs: 0 }),
      log: new TokenizerAuditLog(client, database),
    });
  } finally {
    await client.close();
  }
}

function requireText(value: string | undefined, option: string): string {
  if (value === undefined || value.trim() === '') throw new UsageError(`${option} is required`);
  return value.trim();
}

/**
 * The subject options, with `-` read from standard input (first line): an
 * e-mail address or customer id on the command line shows in `ps` and in
 * the shell history.
 */
export async function subjectSelector(
  opts: { email?: string; customerId?: string },
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ email?: string; customerId?: string; producerHashKey?: string }> {
  if (opts.email === '-' && opts.customerId === '-') throw new UsageError('only one of --email and --customer-id can be read from standard input (-)');
  const value = async (given: string | undefined, option: string) => (given === '-' ? requireText(await firstStdinLine(), `${option} (from standard input)`) : requireText(given, option));
  return {
    ...(opts.email !== undefined ? { email: await value(opts.email, '--email') } : {}),
    ...(opts.customerId !== undefined ? { customerId: await value(opts.customerId, '--customer-id') } : {}),
    // Producers in hash mode send addresses as HMACs: with their key, those subjects are named too.
    ...withHashKey(loadProducerHashKey(env)),
  };
}

const withHashKey = (key: string | undefined) => (key === undefined ? {} : { producerHashKey: key });

async function firstStdinLine(): Promise<string> {
  let text = '';
  for await (const chunk of process.stdin) {
    text += String(chunk);
    if (text.includes('\n')) break;
  }
  return text.split(/\r?\n/, 1)[0] ?? '';
}

/**
 * Who erases or holds, as recorded: with AUDITLINE_REVEAL_PRINCIPALS_FILE the
 * authenticated caller (token or OS account, as for reveal), who must hold
 * one of AUDITLINE_ERASE_ROLES there (an unknown caller, a caller without
 * such a role, or `--as` naming someone else is refused), else `--as`
 * (required; nothing can be checked without the file).
 */
function actingPrincipal(as: string | undefined, command: string): string | undefined {
  const { eraseRoles } = loadComplianceSettings();
  const caller = identifyCliCaller(as);
  if (caller.identifiedBy === 'claimed') return requireText(as, '--as');
  const refusal = callerRefusal(caller, { anyOf: eraseRoles, setting: 'AUDITLINE_ERASE_ROLES' });
  if (refusal === undefined) return caller.principal;
  say(`${command} refused: ${refusal}`);
  process.exitCode = ERASE_EXIT.refused;
  return undefined;
}

export function registerErase(program: Command): void {
  program
    .command('erase')
    .description("erase a data subject's PII everywhere by destroying its keys (crypto-shredding), or expire keys older than the GDPR retention")
    .option('--email <address>', "the subject's e-mail address (as in customer_email); - reads it from standard input (kept out of ps and shell history)")
    .option('--customer-id <id>', "the subject's customer id (AUDITLINE_TOKENIZER_SUBJECT_ID_FIELD); - reads it from standard input")
    .option('--expired', 'destroy every key older than the GDPR retention, except subjects under legal hold')
    .option('--retention <file>', 'retention settings file for --expired (default: AUDITLINE_RETENTION_FILE or infra/retention.yaml)')
    .option('--as <principal>', 'who erases (your user id), recorded in the erasure record; with AUDITLINE_REVEAL_PRINCIPALS_FILE the caller is authenticated instead and --as may be omitted')
    .option('--reason <text>', 'why, e.g. the erasure request id, recorded in the erasure record')
    .addHelpText(
      'after',
      `\nEvery erasure is recorded (who, when, subject token, key ids, reason) in the erasures table.\nRunning tokenizers drop an erased subject's cached key at its next batch.\nExit codes: 0 done, 1 failure, 2 wrong usage, ${ERASE_EXIT.refused} refused: the subject is under legal hold, or the caller is not in the principals file, holds none of AUDITLINE_ERASE_ROLES (default compliance, legal) there, or --as names someone else.`,
    )
    .action(async (opts: { email?: string; customerId?: string; expired?: boolean; retention?: string; as?: string; reason?: string }) => {
      const bySubject = opts.email !== undefined || opts.customerId !== undefined;
      if (bySubject === Boolean(opts.expired)) throw new UsageError('give either --email/--customer-id (one subject) or --expired');
      const reason = opts.expired ? '' : requireText(opts.reason, '--reason');
      const principal = actingPrincipal(opts.as, 'erase');
      if (principal === undefined) return;
      if (opts.expired) {
        const retention = loadRetention(opts.retention ?? process.env.AUDITLINE_RETENTION_FILE);
        const retentionDays = retentionDaysFor(retention, 'pii');
        const result = await withErasureDeps((deps) => expireKeys(deps, { retentionDays, principal }));
        process.stdout.write(`expired ${result.keys} key(s) of ${result.subjects} subject(s) older than ${retentionDays} days; ${result.held} expired key(s) kept under legal hold\n`);
        return;
      }
      const selector = await subjectSelector(opts);
      try {
        const results = await withErasureDeps((deps) => eraseSubjects(deps, { ...selector, principal, reason }));
        for (const r of results) {
          process.stdout.write(`erased subject ${r.subject}: ${r.keyIds.length} key(s) destroyed${r.keyIds.length > 0 ? ` (${r.keyIds.join(', ')})` : ''}\n`);
        }
        say('every stored copy of these subjects\' PII is now undecryptable; the erasure is recorded in the erasures table');
        if (results.every((r) => r.keyIds.length === 0)) {
          say(
            `warning: no key was found for ${selector.email !== undefined ? 'this address' : 'this customer id'}: nothing was encrypted under it${selector.producerHashKey ? '' : ' (if producers hash addresses, piiMode hash, set AUDITLINE_PRODUCER_PII_HASH_KEY so that their hashed subjects are erased too)'}; with AUDITLINE_TOKENIZER_SUBJECT_ID_FIELD set, a subject may be known by its customer id only`,
          );
        }
      } catch (err) {
        if (!isAuditlineError(err, 'SUBJECT_ON_LEGAL_HOLD')) throw err;
        say(`erasure refused: ${err.message}`);
        process.exitCode = ERASE_EXIT.refused;
      }
    });

  program
    .command('legal-hold')
    .description("put a data subject under legal hold (its keys neither expire nor can be erased), or release it")
    .option('--email <address>', "the subject's e-mail address; - reads it from standard input (kept out of ps and shell history)")
    .option('--customer-id <id>', "the subject's customer id; - reads it from standard input")
    .option('--release', 'release the hold instead of setting it')
    .option('--as <principal>', 'who sets the hold, recorded; with AUDITLINE_REVEAL_PRINCIPALS_FILE the caller is authenticated instead and --as may be omitted')
    .option('--reason <text>', 'why, e.g. the case number, recorded')
    .addHelpText(
      'after',
      `\nEvery hold and release is recorded (who, when, subject token, reason).\nExit codes: 0 done, 1 failure, 2 wrong usage, ${ERASE_EXIT.refused} refused: the caller is not in the principals file, holds none of AUDITLINE_ERASE_ROLES (default compliance, legal) there, or --as names someone else.`,
    )
    .action(async (opts: { email?: string; customerId?: string; release?: boolean; as?: string; reason?: string }) => {
      if (opts.email === undefined && opts.customerId === undefined) throw new UsageError('name the subject with --email and/or --customer-id');
      const reason = requireText(opts.reason, '--reason');
      const principal = actingPrincipal(opts.as, 'legal-hold');
      if (principal === undefined) return;
      const selector = await subjectSelector(opts);
      const subjects = await withErasureDeps((deps) => setLegalHold(deps, { ...selector, hold: !opts.release, principal, reason }));
      process.stdout.write(`${opts.release ? 'released' : 'set'} legal hold on subject(s) ${subjects.join(', ')}\n`);
    });
}
