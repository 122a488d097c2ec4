import type { ClickHouseClient } from '@clickhouse/client';
import {
  identifyRevealCaller,
  loadMasterKey,
  loadPreviousMasterKeys,
  loadRevealAuth,
  loadRevealPolicy,
  LocalKeyWrapper,
  reveal,
  SubjectKeyStore,
  TokenizerAuditLog,
  type RevealRequest,
  type RevealResult,
} from '../../consumers/tokenizer/index.js';
import { UsageError } from '../exit.js';
import { createS3 } from '../../core/clients/s3.js';
import { loadEndpoints } from '../../core/endpoints.js';
import { loadRetention, retentionDaysFor } from '../../infra/retention.js';
import { ObjectStore } from '../../consumers/archiver/object-store.js';
import { SealedAccessLog, sealLockDays } from '../../consumers/tokenizer/access-seal.js';

/** Exit codes of a reveal (`auditline reveal`, `auditline query inputs --reveal`) beyond the common ones (docs/cli.md). */
export const REVEAL_EXIT = { unknownExecution: 5, refused: 6, unrecoverable: 7 } as const;

export interface RevealClaim {
  /** `--as`: who the caller says they are; with a principals file it must match the authenticated caller (or be omitted). */
  as?: string | undefined;
  role: string;
  reason: string;
}

/**
 * The one path of the CLI to cleartext: identifies the caller (principals
 * file, token or OS account; or the claim when no file is configured), then
 * runs the tokenizer's reveal() with its policy, the subject keys and the
 * access log, sealed in the archive bucket (SealedAccessLog). Every attempt
 * is recorded by reveal() itself.
 */
export async function revealForCli(
  client: ClickHouseClient,
  database: string,
  claim: RevealClaim,
  target: { executionId: string; status: string | undefined; fields: readonly { name: string; text: string }[] },
): Promise<RevealResult> {
  const caller = identifyNamedCaller(claim.as);
  const keys = revealKeyStore(client, database, loadMasterKey());
  const policy = loadRevealPolicy();
  return withSealedAccessLog(client, database, (log) => reveal({ ...caller, role: claim.role, purpose: claim.reason, ...target }, { keys, log, policy }));
}

/**
 * The subject keys as a CLI reveal reads them: unwrapped by the master key,
 * or by a previous one (AUDITLINE_TOKENIZER_PREVIOUS_MASTER_KEY) while a
 * master key rotation is under way.
 */
export function revealKeyStore(client: ClickHouseClient, database: string, masterKey: Buffer): SubjectKeyStore {
  return new SubjectKeyStore(client, database, new LocalKeyWrapper(masterKey), { cacheTtlMs: 0, rotationMs: 0, previousWrappers: loadPreviousMasterKeys().map((k) => new LocalKeyWrapper(k)) });
}

/**
 * Runs `fn` with the access log every CLI reveal writes to: sealed in the
 * archive bucket (AUDITLINE_S3_*), then pii_access_log (SealedAccessLog).
 * Warns when the bucket has no Object Lock.
 */
export async function withSealedAccessLog<T>(client: ClickHouseClient, database: string, fn: (log: SealedAccessLog) => Promise<T>): Promise<T> {
  const seal = await openAccessSeal();
  try {
    return await fn(seal.log(client, database));
  } finally {
    seal.close();
  }
}

/** The archive bucket as the place access records are sealed, for a command that reveals over a longer run (a report). */
export async function openAccessSeal(): Promise<{ log(client: ClickHouseClient, database: string): SealedAccessLog; close(): void }> {
  const s3Config = loadEndpoints().s3;
  const s3 = createS3(s3Config);
  try {
    const lockDays = await sealLockDays(s3, s3Config.bucket, retentionDaysFor(loadRetention(process.env.AUDITLINE_RETENTION_FILE), 'sox'));
    if (lockDays === undefined) process.stderr.write(`warning: s3://${s3Config.bucket} has no Object Lock: the sealed copies of access records can be changed by whoever may write the bucket\n`);
    const store = new ObjectStore(s3, s3Config.bucket);
    return { log: (client, database) => new SealedAccessLog(new TokenizerAuditLog(client, database), store, lockDays), close: () => s3.destroy() };
  } catch (err) {
    s3.destroy();
    throw err;
  }
}

/**
 * Who is asking, for every CLI command that reveals (reveal, query inputs,
 * replay, report): from the principals file by token or OS account when
 * AUDITLINE_REVEAL_PRINCIPALS_FILE is set (`--as` may only repeat the
 * authenticated name), else the claimed `--as`. Never the bare `--as` when
 * a file is configured.
 */
export function identifyCliCaller(as: string | undefined): Pick<RevealRequest, 'principal' | 'heldRoles' | 'claimedPrincipal' | 'identifiedBy'> {
  const auth = loadRevealAuth();
  const caller = identifyRevealCaller(auth.directory, { as }, { token: auth.token });
  return { principal: caller.principal, heldRoles: caller.heldRoles, claimedPrincipal: caller.claimedPrincipal, identifiedBy: caller.via };
}

/**
 * The caller of a reveal, a report or an access review (identifyCliCaller).
 * Without a principals file `--as` is required, a usage error before
 * anything is read or recorded: a request is never recorded without a name.
 */
export function identifyNamedCaller(as: string | undefined): ReturnType<typeof identifyCliCaller> {
  const caller = identifyCliCaller(as);
  if (caller.identifiedBy === 'claimed' && (as === undefined || as.trim() === '')) {
    throw new UsageError('--as is required (who is asking), unless AUDITLINE_REVEAL_PRINCIPALS_FILE identifies the caller');
  }
  return caller;
}

/**
 * The reveal options of `query inputs` and `replay`: --as, --role and --reason
 * only with --reveal (given without it they would be dropped without a word,
 * the output tokenized), and --reveal needs --role and --reason. UsageError
 * otherwise, before anything is read.
 */
export function checkRevealOptions(opts: { reveal?: boolean; as?: string; role?: string; reason?: string }): void {
  if (!opts.reveal && (opts.as !== undefined || opts.role !== undefined || opts.reason !== undefined)) throw new UsageError('--as, --role and --reason go with --reveal');
  if (opts.reveal && (!opts.role || !opts.reason)) throw new UsageError('--reveal needs --role and --reason (and --as unless AUDITLINE_REVEAL_PRINCIPALS_FILE identifies the caller, docs/tokenizer.md)');
}

/** The documented exit code of a reveal's outcome (undefined: 0): unknown execution only when that is why it was refused. */
export function revealExitCode(result: RevealResult): number | undefined {
  if (result.outcome === 'refused') return result.unknownExecution ? REVEAL_EXIT.unknownExecution : REVEAL_EXIT.refused;
  if (result.outcome === 'unrecoverable') return REVEAL_EXIT.unrecoverable;
  return undefined;
}
