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
  type RevealResult,
} from '../../consumers/tokenizer/index.js';

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
 * access log. Every attempt is recorded by reveal() itself.
 */
export async function revealForCli(
  client: ClickHouseClient,
  database: string,
  claim: RevealClaim,
  target: { executionId: string; status: string | undefined; fields: readonly { name: string; text: string }[] },
): Promise<RevealResult> {
  const masterKey = loadMasterKey();
  const policy = loadRevealPolicy();
  const auth = loadRevealAuth();
  const caller = identifyRevealCaller(auth.directory, { as: claim.as }, { token: auth.token });
  return reveal(
    { principal: caller.principal, role: claim.role, purpose: claim.reason, heldRoles: caller.heldRoles, claimedPrincipal: caller.claimedPrincipal, ...target },
    { keys: new SubjectKeyStore(client, database, new LocalKeyWrapper(masterKey), { cacheTtlMs: 0, rotationMs: 0, previousWrappers: loadPreviousMasterKeys().map((k) => new LocalKeyWrapper(k)) }), log: new TokenizerAuditLog(client, database), policy },
  );
}

/** The documented exit code of a reveal's outcome (undefined: 0). */
export function revealExitCode(result: RevealResult, status: string | undefined): number | undefined {
  if (result.outcome === 'refused') return status === undefined ? REVEAL_EXIT.unknownExecution : REVEAL_EXIT.refused;
  if (result.outcome === 'unrecoverable') return REVEAL_EXIT.unrecoverable;
  return undefined;
}
