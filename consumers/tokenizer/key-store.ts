import { createSecretKey, type KeyObject } from 'node:crypto';
import type { ClickHouseClient } from '@clickhouse/client';
import { AuditlineError } from '../../core/errors.js';
import { chCall, database, selectRows, selectRowsIn } from './clickhouse.js';
import { splitListParam } from '../../core/clients/clickhouse.js';
import { clickhouseTime } from '../../core/clients/clickhouse-time.js';
import { newDataKey, newKeyId } from './crypto.js';
import type { KeyWrapper } from './key-wrapper.js';

/** An unwrapped data encryption key of one data subject. */
export interface SubjectKey {
  /** Subject token (HMAC of the subject id), never the subject's identifier. */
  subject: string;
  keyId: string;
  key: KeyObject;
  /** Epoch ms. */
  createdAt: number;
  /**
   * When the subject was last erased on request (epoch ms), if it was before
   * this key was made: values published before that moment and tokenized
   * only now (they waited in audit.raw) must not be readable under it.
   */
  erasedAt?: number;
}

export interface SubjectKeyStoreOptions {
  /** How long a key looked up or created stays in memory before the store is asked again. */
  cacheTtlMs: number;
  /** A key encrypts new values only while younger than this; then a new key is made (see docs/tokenizer.md, "Expiry"). */
  rotationMs: number;
  now?: () => number;
  /**
   * Master keys being rotated out (docs/tokenizer.md, "Master key rotation"): rows wrapped by one of them still
   * unwrap (by their `wrap_key_id`) until `rewrapAll()` moved them under the current KeyWrapper.
   */
  previousWrappers?: readonly KeyWrapper[];
  /** Told about cache hits and misses and created keys (metrics). */
  onLookup?: (hits: number, misses: number, created: number) => void;
}

/** A subject's erasures on request as last read: how many (what tells a new one, whatever its host's clock) and the latest time. */
interface Erasures {
  count: number;
  /** Epoch ms, the latest `erased_at`. */
  at: number;
}

interface CacheEntry {
  key: SubjectKey;
  fetchedAt: number;
  /** Erasures on request of the subject read before the key was (0 if none): a different count means it was erased since. */
  erasures: number;
}

interface KeyRow {
  subject: string;
  key_id: string;
  wrapped_key: string;
  wrap_key_id: string;
  created_ms: string | number;
}

/**
 * The per-data-subject keys in ClickHouse (`subject_keys`): each row a DEK
 * wrapped by the master key (KeyWrapper), keyed by the subject token. Keys
 * in use are cached in memory for `cacheTtlMs`, and dropped as soon as a
 * batch finds that their subject was erased since. A subject may have several
 * keys (rotation, or two instances creating one at the same time); every
 * ciphertext names the key it used. Deleting a subject's rows makes all of
 * its ciphertexts unreadable (crypto-shredding).
 */
export class SubjectKeyStore {
  private readonly db: string;
  private readonly cache = new Map<string, CacheEntry>();
  private readonly now: () => number;

  constructor(
    private readonly client: ClickHouseClient,
    databaseName: string,
    /** Needed to create and unwrap keys; erasure and expiry work without it. */
    private readonly wrapperOrNone: KeyWrapper | undefined,
    private readonly options: SubjectKeyStoreOptions,
  ) {
    this.db = database(databaseName);
    this.now = options.now ?? Date.now;
  }

  private get wrapper(): KeyWrapper {
    if (!this.wrapperOrNone) throw new Error('this SubjectKeyStore has no KeyWrapper: it can delete keys but not create or unwrap them');
    return this.wrapperOrNone;
  }

  /**
   * The key each subject's new values are encrypted with: a cached one, the
   * oldest stored key still within the rotation window (so that instances
   * converge on one), or a new one, stored before it is returned (a
   * ciphertext never exists without its key having been written).
   *
   * Each call first reads the erasures on request of its subjects (one
   * query, by the table's key): a cached key whose subject was erased since
   * it was read is destroyed, so it is dropped and the subject looked up
   * again (a new key, carrying the erasure). A ClickHouse failure rejects
   * (retriable), also when every key is cached.
   */
  async activeKeys(subjects: Iterable<string>): Promise<Map<string, SubjectKey>> {
    const wanted = [...new Set(subjects)];
    this.sweep(this.now());
    // Read before any key is: an erasure this read misses deletes the keys after it, so a key read later either is
    // not found, or is found and cached with this count, which the erasure's record then changes.
    const erasures = await this.requestErasures(wanted);
    const now = this.now();
    if (wanted.every((subject) => this.cached(subject, now, erasures))) return this.lookUp(wanted, erasures);
    // Misses are looked up (and keys created) one call at a time in this process: two batches in flight
    // (partitions handled concurrently) that ask for the same new subject get one key, not one each.
    const turn = this.missTurn.then(() => this.lookUp(wanted, erasures));
    this.missTurn = turn.then(
      () => undefined,
      () => undefined,
    );
    return turn;
  }

  private missTurn: Promise<void> = Promise.resolve();

  /** Keys in memory now (unwrapped: the sweep keeps this to the subjects of the last cache TTL). */
  get cachedKeyCount(): number {
    return this.cache.size;
  }

  private lastSweep = 0;

  /**
   * Drops the keys no batch may take any more (past the cache TTL or the
   * rotation window), at most once per half TTL: without it a long-running
   * tokenizer kept the unwrapped key of every subject it had ever seen, in
   * memory without bound, until that subject came back.
   */
  private sweep(now: number): void {
    if (now - this.lastSweep < this.options.cacheTtlMs / 2) return;
    this.lastSweep = now;
    for (const [subject, entry] of this.cache) {
      if (entry.fetchedAt + this.options.cacheTtlMs <= now || entry.key.createdAt + this.options.rotationMs <= now) this.cache.delete(subject);
    }
  }

  /**
   * The cached key of a subject while it may still be used (cache TTL and rotation window, and read when the subject
   * had as many erasures as `erasures` says), else undefined: a key cached before the latest erasure is destroyed.
   */
  private cached(subject: string, now: number, erasures: ReadonlyMap<string, Erasures>): SubjectKey | undefined {
    const hit = this.cache.get(subject);
    if (hit && hit.erasures !== (erasures.get(subject)?.count ?? 0)) {
      this.cache.delete(subject);
      return undefined;
    }
    return hit && hit.fetchedAt + this.options.cacheTtlMs > now && hit.key.createdAt + this.options.rotationMs > now ? hit.key : undefined;
  }

  /** `erasures`: those of the subjects, read before this lookup was asked for (see activeKeys). */
  private async lookUp(subjects: Iterable<string>, erasures: ReadonlyMap<string, Erasures>): Promise<Map<string, SubjectKey>> {
    const now = this.now();
    const out = new Map<string, SubjectKey>();
    const missing: string[] = [];
    for (const subject of new Set(subjects)) {
      const hit = this.cached(subject, now, erasures);
      if (hit) out.set(subject, hit);
      else missing.push(subject);
    }
    let created = 0;
    if (missing.length > 0) {
      // The cache remembers the count read before the keys (a later erasure then changes it); the erasure time a key
      // carries is read together with the keys, as the earlier read may be old by now (this lookup may have waited its
      // turn) and miss an erasure after which another batch or instance already made the key read below.
      const seen = new Map(missing.map((s) => [s, erasures.get(s)?.count ?? 0]));
      // Both lookups at once, awaited together: a failure of either rejects here (and is retried by the caller).
      const [rows, erased] = await Promise.all([
        selectRowsIn<KeyRow>(
          this.client,
          'looking up subject keys',
          `SELECT subject, key_id, wrapped_key, wrap_key_id, toUnixTimestamp64Milli(created_at) AS created_ms
           FROM ${this.db}.subject_keys
           WHERE subject IN {subjects:Array(String)} AND wrap_key_id = {wrap:String} AND created_at > fromUnixTimestamp64Milli({since:Int64})
           ORDER BY subject, created_at, key_id`,
          'subjects',
          missing,
          { wrap: this.wrapper.keyId, since: now - this.options.rotationMs },
        ),
        this.requestErasures(missing),
      ]);
      for (const row of rows) {
        if (out.has(row.subject)) continue;
        const key = await this.unwrapRow(row).catch(() => undefined);
        const erasedAt = erased.get(row.subject)?.at;
        if (key) out.set(row.subject, erasedAt !== undefined ? { ...key, erasedAt } : key);
      }
      const fresh = missing.filter((s) => !out.has(s));
      if (fresh.length > 0) {
        const made = await Promise.all(fresh.map((subject) => this.newKey(subject, now, erased.get(subject)?.at)));
        await chCall('storing new subject keys', () =>
          this.client.insert({ table: `${this.db}.subject_keys`, values: made.map((m) => m.row), format: 'JSONEachRow' }),
        );
        // An erasure recorded between the lookup above and this insert deleted the subject's keys before this one
        // existed. Erasures are read again now that it is stored: `erase` looks for keys again after recording the
        // erasure, so either it deletes this key or this read sees the erasure (and values published before it are
        // sealed under a key never stored).
        const erasedSince = await this.requestErasures(made.map((m) => m.key.subject));
        for (const m of made) {
          const since = erasedSince.get(m.key.subject);
          out.set(m.key.subject, since !== undefined && since.at !== m.key.erasedAt ? { ...m.key, erasedAt: since.at } : m.key);
          // Read after this key was stored: an erasure it does not count comes later and changes the count.
          seen.set(m.key.subject, since?.count ?? 0);
        }
        created = made.length;
      }
      for (const subject of missing) this.cache.set(subject, { key: out.get(subject)!, fetchedAt: now, erasures: seen.get(subject)! });
    }
    this.options.onLookup?.(out.size - missing.length, missing.length, created);
    return out;
  }

  /** The erasures on request of each subject that has one; expiries do not count (they end a key's age, not a subject's data). */
  private async requestErasures(subjects: readonly string[]): Promise<Map<string, Erasures>> {
    const rows = await selectRowsIn<{ subject: string; n: string | number; at: string | number }>(
      this.client,
      'looking up erasures',
      `SELECT subject, count() AS n, max(toUnixTimestamp64Milli(erased_at)) AS at FROM ${this.db}.erasures WHERE subject IN {subjects:Array(String)} AND kind = 'request' GROUP BY subject`,
      'subjects',
      subjects,
    );
    return new Map(rows.map((r) => [r.subject, { count: Number(r.n), at: Number(r.at) }]));
  }

  /**
   * Keys by id, unwrapped, for decryption. Ids that are absent (erased,
   * expired, never written) or do not unwrap are missing from the result;
   * `notConfigured` is told the master key id of each stored key whose
   * master key is not configured (not erased: the wrong or a missing key).
   */
  async keysById(keyIds: readonly string[], notConfigured?: (wrapKeyId: string) => void): Promise<Map<string, SubjectKey>> {
    const out = new Map<string, SubjectKey>();
    if (keyIds.length === 0) return out;
    const rows = await selectRowsIn<KeyRow>(
      this.client,
      'looking up subject keys by id',
      `SELECT subject, key_id, wrapped_key, wrap_key_id, toUnixTimestamp64Milli(created_at) AS created_ms
       FROM ${this.db}.subject_keys WHERE key_id IN {ids:Array(String)}`,
      'ids',
      [...new Set(keyIds)],
    );
    for (const row of rows) {
      if (!this.wrapperFor(row.wrap_key_id)) notConfigured?.(row.wrap_key_id);
      const key = await this.unwrapRow(row).catch(() => undefined);
      if (key) out.set(row.key_id, key);
    }
    return out;
  }

  /** Ids of every stored key of a subject. */
  async keyIdsOf(subject: string): Promise<string[]> {
    const rows = await selectRows<{ key_id: string }>(this.client, 'listing subject keys', `SELECT key_id FROM ${this.db}.subject_keys WHERE subject = {subject:String} ORDER BY created_at`, {
      subject,
    });
    return rows.map((r) => r.key_id);
  }

  /**
   * Physically deletes keys: an ALTER TABLE … DELETE mutation that waits
   * until the rewritten parts replaced the old ones (mutations_sync = 2),
   * so the rows are gone from every replica, not flagged. Old parts are
   * removed from disk after the table's old_parts_lifetime (30 s).
   */
  async deleteKeys(where: { subject: string } | { keyIds: readonly string[] }, options: { unlessHeld?: boolean } = {}): Promise<void> {
    if ('keyIds' in where && where.keyIds.length === 0) return;
    // Many ids (an expiry run) are deleted by one mutation per part of the list (query parameters have a size limit).
    const deletes: [string, Record<string, unknown>][] =
      'subject' in where ? [['subject = {subject:String}', { subject: where.subject }]] : splitListParam(where.keyIds).map((ids) => ['key_id IN {ids:Array(String)}', { ids }]);
    // Erasure and expiry read the legal holds before they delete; a hold set since then is honoured by the delete
    // itself, which reads the holds again when it runs (the caller then finds the held keys still there).
    const held = options.unlessHeld ? ` AND subject NOT IN (${heldSubjectsSql(this.db)})` : '';
    for (const [condition, params] of deletes) {
      await chCall('deleting subject keys', () =>
        this.client.command({
          query: `ALTER TABLE ${this.db}.subject_keys DELETE WHERE ${condition}${held}`,
          query_params: params,
          // A subquery makes a mutation non-deterministic for ClickHouse: allowed explicitly (replicated tables refuse it otherwise).
          clickhouse_settings: { mutations_sync: '2', ...(held ? { allow_nondeterministic_mutations: 1 } : {}) },
        }),
      );
    }
    if ('subject' in where) this.cache.delete(where.subject);
    else for (const [subject, entry] of this.cache) if (where.keyIds.includes(entry.key.keyId)) this.cache.delete(subject);
  }

  /** Drops a subject from the in-memory cache. */
  forget(subject: string): void {
    this.cache.delete(subject);
  }

  private async newKey(subject: string, now: number, erasedAt?: number): Promise<{ key: SubjectKey; row: Record<string, string> }> {
    const dek = newDataKey();
    const keyId = newKeyId();
    const wrapped = await this.wrapper.wrap(dek, `${subject}/${keyId}`);
    return {
      key: { subject, keyId, key: createSecretKey(dek), createdAt: now, ...(erasedAt !== undefined ? { erasedAt } : {}) },
      row: { subject, key_id: keyId, wrapped_key: wrapped.toString('base64'), wrap_key_id: this.wrapper.keyId, created_at: clickhouseTime(now) },
    };
  }

  /**
   * Master key rotation: every row not wrapped by the current KeyWrapper is unwrapped by the previous wrapper
   * that wrapped it, wrapped again by the current one and written as a new row (same subject, key id and
   * creation time) before the old row is deleted, so that a crash at any point leaves each key readable.
   * Rows whose wrapper is not configured are left alone and counted as `unreadable`.
   */
  async rewrapAll(batchSize = 1_000, onBatch?: (done: { rewrapped: number; unreadable: number }) => void): Promise<{ rewrapped: number; unreadable: number; from: string[] }> {
    const current = this.wrapper.keyId;
    const from = new Set<string>();
    let rewrapped = 0;
    let unreadable = 0;
    // Rows are taken in key id order after the last one seen: unreadable rows stay behind, rewrapped ones leave the set.
    let after = '';
    for (;;) {
      const rows = await selectRows<KeyRow & { created_text: string }>(
        this.client,
        'listing keys to rewrap',
        `SELECT subject, key_id, wrapped_key, wrap_key_id, toUnixTimestamp64Milli(created_at) AS created_ms, toString(created_at) AS created_text
         FROM ${this.db}.subject_keys WHERE wrap_key_id != {current:String} AND key_id > {after:String} ORDER BY key_id LIMIT {n:UInt32}`,
        { current, after, n: batchSize },
      );
      if (rows.length === 0) break;
      after = rows[rows.length - 1]!.key_id;
      const out: Record<string, string>[] = [];
      const done: { keyId: string; subject: string; createdMs: number }[] = [];
      for (const row of rows) {
        from.add(row.wrap_key_id);
        const key = await this.unwrapRow(row).catch(() => undefined);
        if (!key) {
          unreadable += 1;
          continue;
        }
        const wrapped = await this.wrapper.wrap(Buffer.from(key.key.export()), `${row.subject}/${row.key_id}`);
        out.push({ subject: row.subject, key_id: row.key_id, wrapped_key: wrapped.toString('base64'), wrap_key_id: current, created_at: row.created_text });
        done.push({ keyId: row.key_id, subject: row.subject, createdMs: Number(row.created_ms) });
      }
      if (out.length > 0) {
        await chCall('storing rewrapped subject keys', () => this.client.insert({ table: `${this.db}.subject_keys`, values: out, format: 'JSONEachRow' }));
        await chCall('deleting the old wrapping of subject keys', () =>
          this.client.command({
            query: `ALTER TABLE ${this.db}.subject_keys DELETE WHERE wrap_key_id != {current:String} AND key_id IN {ids:Array(String)}`,
            query_params: { current, ids: done.map((d) => d.keyId) }, // at most batchSize ids of 17 characters
            clickhouse_settings: { mutations_sync: '2' },
          }),
        );
        rewrapped += out.length;
        // An erasure that ran between this batch's read and its insert deleted the old rows and would see its subject's
        // key come back: a rewrapped key created before its subject's latest erasure must not exist, so it is deleted
        // (`erase` checks again after recording the erasure, so one of the two always sees the other). Judged by the
        // key's own creation time, not by when this rotation began on this host's clock: an erasure recorded by a host
        // whose clock is behind would otherwise pass for an older one and leave the key.
        const erased = await this.requestErasures([...new Set(done.map((d) => d.subject))]);
        const stale = done.filter((d) => (erased.get(d.subject)?.at ?? -Infinity) >= d.createdMs).map((d) => d.keyId);
        await this.deleteKeys({ keyIds: stale });
      }
      onBatch?.({ rewrapped, unreadable });
    }
    this.cache.clear();
    return { rewrapped, unreadable, from: [...from].sort() };
  }

  /** The configured master key (current or previous) with this id, if any. */
  private wrapperFor(wrapKeyId: string): KeyWrapper | undefined {
    return [this.wrapper, ...(this.options.previousWrappers ?? [])].find((w) => w.keyId === wrapKeyId);
  }

  private async unwrapRow(row: KeyRow): Promise<SubjectKey> {
    const wrapper = this.wrapperFor(row.wrap_key_id);
    if (!wrapper) throw new AuditlineError('PII_DECRYPT_FAILED', `subject key ${row.key_id} is wrapped by master key ${row.wrap_key_id}, which is not configured`);
    const dek = await wrapper.unwrap(Buffer.from(row.wrapped_key, 'base64'), `${row.subject}/${row.key_id}`);
    return { subject: row.subject, keyId: row.key_id, key: createSecretKey(dek), createdAt: Number(row.created_ms) };
  }
}

/** SQL: the subjects whose latest legal-hold entry holds them (docs/tokenizer.md, table subject_legal_holds). */
export function heldSubjectsSql(db: string): string {
  return `SELECT subject FROM ${db}.subject_legal_holds GROUP BY subject HAVING argMax(hold, set_at) = 1`;
}
