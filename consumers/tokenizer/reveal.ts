import { randomUUID } from 'node:crypto';
import { AuditlineError, isAuditlineError } from '../../core/errors.js';
import { maskPiiInText, type AccessRecord } from './audit-log.js';
import { callerRefusal, type RevealCaller } from './principals.js';
import { openValues, piiAad } from './crypto.js';
import type { SubjectKeyStore } from './key-store.js';
import { BUNDLE_ID_CHARS, rewriteTokens, type PiiToken } from './pii-format.js';
import { CONFLICTING_STATUS } from '../hotstore/queries.js';
import { enumSymbols } from '../../schemas/index.js';

/** The statuses a policy can name: the execution outcomes, `running` (no outcome yet) and `conflicting` (outcomes disagree). */
function policyStatuses(): string[] {
  return [...enumSymbols('ExecutionStatus'), 'running', CONFLICTING_STATUS];
}

/** Which roles may reveal, and for executions of which status (`any` or a list such as `failed`). */
export type RevealPolicy = Readonly<Record<string, 'any' | readonly string[]>>;

/** Engineers see FAILED executions (to reproduce bugs); compliance and legal any; every other role is refused. */
export const DEFAULT_REVEAL_POLICY: RevealPolicy = { engineering: ['failed'], compliance: 'any', legal: 'any' };

/** Shortest reason accepted: a reveal must say why (a ticket id and a few words). */
export const MIN_REASON_LENGTH = 8;

/**
 * Parses `role:status|status,role:any`, e.g.
 * `engineering:failed,compliance:any,legal:any` (AUDITLINE_REVEAL_POLICY).
 */
export function parseRevealPolicy(text: string, setting = 'AUDITLINE_REVEAL_POLICY'): RevealPolicy {
  const policy: Record<string, 'any' | string[]> = {};
  const known = policyStatuses();
  for (const entry of text.split(',').map((s) => s.trim()).filter(Boolean)) {
    const m = /^([a-z][a-z0-9_-]{0,63}):(any|[a-z]+(?:\|[a-z]+)*)$/.exec(entry);
    if (!m) {
      throw new AuditlineError('CONFIG_INVALID', `invalid setting ${setting}: entry ${JSON.stringify(entry)} is not role:any or role:status|status`, { details: { setting } });
    }
    // A role named twice, or a misspelt status, would leave the policy to whichever entry came last, or to a rule
    // that never matches: both are refused.
    if (Object.prototype.hasOwnProperty.call(policy, m[1]!)) {
      throw new AuditlineError('CONFIG_INVALID', `invalid setting ${setting}: role ${m[1]} is named twice`, { details: { setting } });
    }
    const statuses = m[2] === 'any' ? [] : m[2]!.split('|');
    const unknown = statuses.find((st) => !known.includes(st));
    if (unknown !== undefined) {
      throw new AuditlineError('CONFIG_INVALID', `invalid setting ${setting}: entry ${JSON.stringify(entry)}: ${JSON.stringify(unknown)} is not an execution status (${known.join(', ')}, or any)`, { details: { setting } });
    }
    policy[m[1]!] = m[2] === 'any' ? 'any' : statuses;
  }
  if (Object.keys(policy).length === 0) throw new AuditlineError('CONFIG_INVALID', `invalid setting ${setting}: names no role`, { details: { setting } });
  return policy;
}

export interface RevealRequest {
  /** Who asks (a person's or service's stable id). */
  principal: string;
  /** The role they act in. */
  role: string;
  /**
   * Roles the caller holds per the principals file (principals.ts), when the caller was authenticated;
   * undefined when principal and role are only claimed (no principals file configured).
   */
  heldRoles?: readonly string[] | undefined;
  /** A principal named on the command line (`--as`) that is not the authenticated caller: always refused. */
  claimedPrincipal?: string | undefined;
  /** How the caller was identified (principals.ts): `token`, `os-user`, or `claimed` (no principals file); recorded with the access. */
  identifiedBy?: RevealCaller['via'] | undefined;
  /** Why (recorded; e-mail addresses and phone numbers in it are masked). */
  purpose: string;
  executionId: string;
  /** The execution's status as stored (`success`, `failed`, `partial`, `running`; `conflicting` when its outcomes disagree), or undefined when it is not known. */
  status: string | undefined;
  /** The stored (tokenized) texts to reveal, each with a name for the access record. */
  fields: readonly { name: string; text: string }[];
}

export interface RevealedField {
  name: string;
  /** The text with every decryptable token replaced by its cleartext; tokens that cannot be decrypted stay. */
  text: string;
  revealed: number;
  unrecoverable: number;
}

export interface RevealResult {
  outcome: AccessRecord['outcome'];
  /** Why it was refused, or why values could not be decrypted. */
  reason?: string;
  /** Refused because the execution is not in the hot store (every other check passed). */
  unknownExecution?: boolean;
  /** Empty when refused. */
  fields: RevealedField[];
  requestId: string;
}

export interface RevealDeps {
  keys: Pick<SubjectKeyStore, 'keysById'>;
  log: { recordAccess(record: AccessRecord): Promise<void> };
  policy?: RevealPolicy;
  now?: () => number;
}

/** Decides whether a request may see cleartext; the reason names the rule, never data. */
export function decideReveal(
  policy: RevealPolicy,
  request: Pick<RevealRequest, 'principal' | 'role' | 'purpose' | 'executionId' | 'status' | 'heldRoles' | 'claimedPrincipal'>,
): { allowed: true } | { allowed: false; reason: string; unknownExecution?: true } {
  if (request.principal.trim() === '') return { allowed: false, reason: 'no principal given (--as)' };
  const refusal = callerRefusal(request, request.role);
  if (refusal !== undefined) return { allowed: false, reason: refusal };
  if (request.purpose.trim().length < MIN_REASON_LENGTH) return { allowed: false, reason: `a reason of at least ${MIN_REASON_LENGTH} characters is required (--reason)` };
  const rule = Object.prototype.hasOwnProperty.call(policy, request.role) ? policy[request.role] : undefined;
  if (rule === undefined) return { allowed: false, reason: `role ${JSON.stringify(request.role)} may not reveal PII (allowed roles: ${Object.keys(policy).join(', ')})` };
  if (request.status === undefined) return { allowed: false, reason: `execution ${request.executionId} is not in the hot store`, unknownExecution: true };
  if (rule !== 'any' && !rule.includes(request.status)) {
    return { allowed: false, reason: `role ${request.role} may reveal only ${rule.map((s) => s.toUpperCase()).join(' or ')} executions; execution ${request.executionId} is ${request.status}` };
  }
  return { allowed: true };
}

/**
 * Reveals the cleartext of tokenized fields of one execution, if the policy
 * allows the principal's role for the execution's status. Every attempt,
 * allowed or refused, is written to the access log before anything is
 * returned; if that write fails, nothing is revealed (the error is thrown).
 * An allowed attempt whose key lookup fails (ClickHouse down) throws before
 * its record is written: nothing was revealed, and no record says it was
 * tried. Values whose subject
 * key was erased or expired stay tokenized and are counted as
 * unrecoverable; when no value at all can be decrypted the outcome is
 * `unrecoverable`.
 */
export async function reveal(request: RevealRequest, deps: RevealDeps): Promise<RevealResult> {
  const now = deps.now ?? Date.now;
  const requestId = randomUUID();
  // An id no execution has may be anything pasted by mistake (an address): the record, kept for years under Object
  // Lock, stores it with e-mail addresses and phone numbers masked. A known execution's id is stored as it is.
  const unknown = request.status === undefined;
  const recorded = (text: string) => (unknown ? maskPiiInText(text) : text);
  const record = (outcome: AccessRecord['outcome'], detail: string, revealed: number, unrecoverable: number) =>
    deps.log.recordAccess({
      at: now(),
      requestId,
      principal: request.principal,
      identifiedBy: request.identifiedBy ?? (request.heldRoles === undefined ? 'claimed' : ''),
      role: request.role,
      executionId: recorded(request.executionId),
      executionStatus: request.status ?? 'unknown',
      fields: request.fields.map((f) => f.name),
      reason: request.purpose,
      outcome,
      detail: recorded(detail),
      valuesRevealed: revealed,
      valuesUnrecoverable: unrecoverable,
    });
  const decision = decideReveal(deps.policy ?? DEFAULT_REVEAL_POLICY, request);
  if (!decision.allowed) {
    await record('refused', decision.reason, 0, 0);
    return { outcome: 'refused', reason: decision.reason, fields: [], requestId, ...(decision.unknownExecution ? { unknownExecution: true } : {}) };
  }

  const keyIds = new Set<string>();
  for (const f of request.fields) rewriteTokens(f.text, (t) => void keyIds.add(t.k));
  const foreignMasters = new Set<string>();
  const keys = await deps.keys.keysById([...keyIds], (wrapKeyId) => void foreignMasters.add(wrapKeyId));
  const fields = request.fields.map((f) => revealField(f, request.executionId, keys));
  const revealed = fields.reduce((n, f) => n + f.revealed, 0);
  const unrecoverable = fields.reduce((n, f) => n + f.unrecoverable, 0);
  const outcome = unrecoverable > 0 && revealed === 0 ? 'unrecoverable' : 'allowed';
  const detail =
    unrecoverable === 0
      ? ''
      : foreignMasters.size > 0
        ? `${unrecoverable} value(s) cannot be decrypted: their subject key is stored, wrapped by master key ${[...foreignMasters].sort().join(', ')}, which is not configured (AUDITLINE_TOKENIZER_MASTER_KEY, or _PREVIOUS_MASTER_KEY during a rotation)`
        : `${unrecoverable} value(s) cannot be decrypted: their subject key was erased or expired (or the ciphertext does not authenticate)`;
  await record(outcome, detail, revealed, unrecoverable);
  return { outcome, ...(detail ? { reason: detail } : {}), fields, requestId };
}

function revealField(field: { name: string; text: string }, executionId: string, keys: Awaited<ReturnType<RevealDeps['keys']['keysById']>>): RevealedField {
  // Bundles of this field: a token carrying `c` holds the ciphertext of every value of its bundle; the
  // others name it by `b` (its first characters). Tokens written before `b` existed use their key's first bundle.
  const bundles = new Map<string, string>();
  rewriteTokens(field.text, (t) => {
    if (t.c === undefined) return undefined;
    const id = `${t.k}|${t.c.slice(0, BUNDLE_ID_CHARS)}`;
    if (!bundles.has(id)) bundles.set(id, t.c);
    if (!bundles.has(t.k)) bundles.set(t.k, t.c);
    return undefined;
  });
  const opened = new Map<string, unknown[] | null>();
  const valuesOf = (t: PiiToken): unknown[] | null => {
    const c = t.c ?? bundles.get(t.b === undefined ? t.k : `${t.k}|${t.b}`);
    if (c === undefined) return null;
    if (!opened.has(c)) {
      const key = keys.get(t.k);
      let values: unknown[] | null = null;
      if (key) {
        try {
          values = openValues(key.key, c, piiAad(t.k, executionId));
        } catch (err) {
          if (!isAuditlineError(err, 'PII_DECRYPT_FAILED')) throw err;
        }
      }
      opened.set(c, values);
    }
    return opened.get(c)!;
  };
  let revealed = 0;
  let unrecoverable = 0;
  const text = rewriteTokens(field.text, (t) => {
    const values = valuesOf(t);
    const index = t.i ?? 0;
    if (!values || index >= values.length) {
      unrecoverable += 1;
      return undefined;
    }
    revealed += 1;
    return { replace: values[index] };
  });
  return { name: field.name, text, revealed, unrecoverable };
}
