import type { ClickHouseClient } from '@clickhouse/client';
import { AuditlineError } from '../../core/errors.js';
import { maskPiiInText, type TokenizerAuditLog } from './audit-log.js';
import { chCall, database, selectRows, selectRowsIn } from './clickhouse.js';
import { clickhouseTime } from '../../core/clients/clickhouse-time.js';
import type { TokenKey } from './crypto.js';
import { heldSubjectsSql, type SubjectKeyStore } from './key-store.js';
import { subjectId } from './tokenize-event.js';
import { PII_KEY } from './pii-format.js';
import { producerHash } from '../../core/pii/producer-hash.js';

export interface ErasureDeps {
  client: ClickHouseClient;
  database: string;
  tokenKey: TokenKey;
  keys: Pick<SubjectKeyStore, 'keyIdsOf' | 'deleteKeys'>;
  log: Pick<TokenizerAuditLog, 'recordErasures'>;
  now?: () => number;
}

/** How a data subject is named on the command line. */
export interface SubjectSelector {
  email?: string;
  customerId?: string;
  /**
   * The producers' hash key (AUDITLINE_PRODUCER_PII_HASH_KEY): producers in
   * `hash` mode send the customer's address as an HMAC, and the tokenizer
   * names such a subject `hashed:<HMAC>`. With the key, those subjects are
   * erased too (the address as given, and trimmed and lower-cased).
   */
  producerHashKey?: string;
}

/** Subject ids (`email:…`, `id:…`, and `hashed:…` with the producers' hash key) of a selector, as the tokenizer derives them. */
export function subjectIdsOf(selector: SubjectSelector): string[] {
  const ids = [selector.email !== undefined ? subjectId('email', selector.email) : undefined, selector.customerId !== undefined ? subjectId('id', selector.customerId) : undefined];
  // An integer id beyond 2^53 that earlier tokenizers took rounded (JSON.parse): its keys hold this
  // customer's values (and those of customers whose ids round alike, which were never told apart).
  const rounded = selector.customerId !== undefined && /^-?\d+$/.test(selector.customerId.trim()) ? Number(selector.customerId.trim()) : undefined;
  if (rounded !== undefined && !Number.isSafeInteger(rounded)) ids.push(subjectId('id', rounded));
  if (selector.producerHashKey) {
    // The subject id the tokenizer takes from a producer-hashed value (subjectId of `{"$pii": <hash>}`).
    const hashed = (text: string) => subjectId('email', { [PII_KEY]: producerHash(selector.producerHashKey!, text) });
    for (const value of [selector.email, selector.customerId]) {
      if (value === undefined || value.trim() === '') continue;
      ids.push(hashed(value), hashed(value.normalize('NFC').trim().toLowerCase()), hashed(value.trim()));
    }
  }
  return [...new Set(ids.filter((id): id is string => id !== undefined))];
}

export interface ErasureResult {
  /** Subject token. */
  subject: string;
  keyIds: string[];
  at: number;
}

/**
 * Erases data subjects by destroying their keys (crypto-shredding): every
 * stored copy of their PII (audit.events, hot store, archive) stays as
 * ciphertext nobody can decrypt. Refused with SUBJECT_ON_LEGAL_HOLD when a
 * subject is under legal hold. The keys are physically deleted
 * (synchronous mutations), then one erasure record per subject is appended
 * (who, when, subject token, key ids, reason), also when the subject had no
 * keys (the request is on record). The execution → subject mappings stay:
 * they hold subject tokens only, as the events do, and they are how a
 * tokenizer that restarted finds that an event still waiting in audit.raw
 * belongs to the erased subject (and seals it under a key never stored).
 */
export async function eraseSubjects(deps: ErasureDeps, request: SubjectSelector & { principal: string; reason: string }): Promise<ErasureResult[]> {
  const subjects = subjectIdsOf(request).map((id) => deps.tokenKey.subject(id));
  if (subjects.length === 0) throw new AuditlineError('CONFIG_INVALID', 'name the data subject: --email and/or --customer-id');
  const held = await heldSubjects(deps.client, deps.database, subjects);
  if (held.size > 0) {
    throw new AuditlineError('SUBJECT_ON_LEGAL_HOLD', `the data subject is under legal hold; release the hold (\`auditline legal-hold --release\`) before erasing`, {
      details: { subjects: held.size },
    });
  }
  const results: ErasureResult[] = [];
  let heldMeanwhile = 0;
  for (const subject of subjects) {
    const keyIds = await deps.keys.keyIdsOf(subject);
    // A hold set since the check above keeps the keys (the delete reads the holds again).
    if (!(await destroyKeys(deps, subject))) heldMeanwhile += 1;
    else results.push({ subject, keyIds, at: (deps.now ?? Date.now)() });
  }
  await deps.log.recordErasures(results.map((r) => ({ at: r.at, kind: 'request', principal: request.principal, subject: r.subject, keyIds: r.keyIds, reason: request.reason })));
  // A master key rotation running at the same time may have written a subject's key again (rewrapped) after the delete:
  // once the erasure is on record, it deletes such rows itself; this second pass catches a rewrite it did before that.
  for (const r of results) if ((await deps.keys.keyIdsOf(r.subject)).length > 0) await destroyKeys(deps, r.subject);
  // After the second pass: the subject ids of the request that were erased are finished before the refusal.
  if (heldMeanwhile > 0) {
    throw new AuditlineError('SUBJECT_ON_LEGAL_HOLD', `the data subject was put under legal hold while it was being erased; its keys are kept${results.length > 0 ? ` (${results.length} other subject id(s) of the request were erased and recorded)` : ''}`, {
      details: { subjects: heldMeanwhile },
    });
  }
  return results;
}

/**
 * Deletes every key of a subject unless it is under legal hold when the delete runs, and checks that none is left:
 * false when keys are left because a hold was set meanwhile, CLICKHOUSE_UNAVAILABLE (retriable) when they are left
 * for no reason.
 */
async function destroyKeys(deps: Pick<ErasureDeps, 'keys' | 'client' | 'database'>, subject: string): Promise<boolean> {
  await deps.keys.deleteKeys({ subject }, { unlessHeld: true });
  const left = await deps.keys.keyIdsOf(subject);
  if (left.length === 0) return true;
  if ((await heldSubjects(deps.client, deps.database, [subject])).size > 0) return false;
  throw new AuditlineError('CLICKHOUSE_UNAVAILABLE', `${left.length} keys of the subject are still present after the delete mutation`, { retriable: true });
}

export interface ExpiryResult {
  /** Subjects whose keys expired. */
  subjects: number;
  keys: number;
  /** Expired keys kept because their subject is under legal hold. */
  held: number;
}

/**
 * Destroys every key created more than `retentionDays` ago (the GDPR
 * retention of retentionDaysFor(settings, 'pii')) unless its subject is
 * under legal hold, and appends one erasure record (kind `expiry`) per
 * subject. Run it daily (`npx auditline erase --expired`); running it again
 * finds nothing new.
 */
export async function expireKeys(deps: ErasureDeps, options: { retentionDays: number; principal: string }): Promise<ExpiryResult> {
  const db = database(deps.database);
  const now = (deps.now ?? Date.now)();
  const cutoff = now - options.retentionDays * 86_400_000;
  const rows = await selectRows<{ subject: string; key_id: string; held: number | string }>(
    deps.client,
    'finding expired subject keys',
    `SELECT k.subject AS subject, k.key_id AS key_id, k.subject IN (${heldSubjectsSql(db)}) AS held
     FROM ${db}.subject_keys AS k WHERE k.created_at < fromUnixTimestamp64Milli({cutoff:Int64})`,
    { cutoff },
  );
  let expired = rows.filter((r) => Number(r.held) === 0);
  if (expired.length > 0) {
    // Subjects put under legal hold since the read above keep their keys: the delete reads the holds again, and only
    // the keys it removed are recorded as expired.
    await deps.keys.deleteKeys({ keyIds: expired.map((r) => r.key_id) }, { unlessHeld: true });
    const kept = new Set(await keysStillStored(deps, [...new Set(expired.map((r) => r.subject))], expired.map((r) => r.key_id)));
    expired = expired.filter((r) => !kept.has(r.key_id));
  }
  const bySubject = new Map<string, string[]>();
  for (const r of expired) bySubject.set(r.subject, [...(bySubject.get(r.subject) ?? []), r.key_id]);
  if (expired.length > 0) {
    await deps.log.recordErasures(
      [...bySubject].map(([subject, keyIds]) => ({ at: now, kind: 'expiry' as const, principal: options.principal, subject, keyIds, reason: `older than the GDPR retention of ${options.retentionDays} days` })),
    );
  }
  return { subjects: bySubject.size, keys: expired.length, held: rows.length - expired.length };
}

/** Puts subjects under legal hold (their keys neither expire nor can be erased) or releases them; appended to `subject_legal_holds`. */
export async function setLegalHold(
  deps: Pick<ErasureDeps, 'client' | 'database' | 'tokenKey' | 'now'>,
  request: SubjectSelector & { hold: boolean; principal: string; reason: string },
): Promise<string[]> {
  const db = database(deps.database);
  const subjects = subjectIdsOf(request).map((id) => deps.tokenKey.subject(id));
  if (subjects.length === 0) throw new AuditlineError('CONFIG_INVALID', 'name the data subject: --email and/or --customer-id');
  const at = clickhouseTime((deps.now ?? Date.now)());
  await chCall('writing the legal hold', () =>
    deps.client.insert({
      table: `${db}.subject_legal_holds`,
      // The reason is free text typed by a person: masked like every access and erasure reason (it may name the customer).
      values: subjects.map((subject) => ({ subject, hold: request.hold, set_at: at, principal: request.principal, reason: maskPiiInText(request.reason) })),
      format: 'JSONEachRow',
    }),
  );
  return subjects;
}

/** Subjects among `subjects` whose latest legal-hold entry holds them. */
export async function heldSubjects(client: ClickHouseClient, databaseName: string, subjects: readonly string[]): Promise<Set<string>> {
  const db = database(databaseName);
  const rows = await selectRows<{ subject: string }>(
    client,
    'reading legal holds',
    `SELECT subject FROM ${db}.subject_legal_holds WHERE subject IN {subjects:Array(String)} GROUP BY subject HAVING argMax(hold, set_at) = 1`,
    { subjects: [...subjects] },
  );
  return new Set(rows.map((r) => r.subject));
}

/** Which of `keyIds` are still stored (looked up by their subjects, the table's key). */
async function keysStillStored(deps: Pick<ErasureDeps, 'client' | 'database'>, subjects: readonly string[], keyIds: readonly string[]): Promise<string[]> {
  const wanted = new Set(keyIds);
  const rows = await selectRowsIn<{ key_id: string }>(deps.client, 'checking expired keys are gone', `SELECT key_id FROM ${database(deps.database)}.subject_keys WHERE subject IN {subjects:Array(String)}`, 'subjects', subjects);
  return rows.map((r) => r.key_id).filter((id) => wanted.has(id));
}
