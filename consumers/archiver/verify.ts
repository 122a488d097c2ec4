import type { KeyObject } from 'node:crypto';
import type { S3Client } from '@aws-sdk/client-s3';
import { readDigest, type SignedDigest } from './digest.js';
import { parseDigestKey, parseObjectKey, sha256Hex } from './keys.js';
import { listVersions, type ObjectStore, type Version } from './object-store.js';
import type { RecordedObject } from './index-store.js';

/** One problem `archive verify` found; `subject` is the object or digest key it names. */
export interface VerifyProblem {
  kind: 'missing' | 'changed' | 'not_listed' | 'digest_invalid' | 'digest_missing' | 'chain_broken' | 'overwritten' | 'index_mismatch';
  subject: string;
  detail: string;
}

export interface VerifyReport {
  ok: boolean;
  digests: number;
  objectsChecked: number;
  /** Objects of archive_index checked against the bucket and the digests (0 without `index`). */
  indexedChecked: number;
  /** Objects after the head of their chain, younger than the grace period: not listed yet, and not an error. */
  pending: string[];
  /**
   * Per chain, the leading digests the lifecycle rule lawfully removed (written more than `retentionDays` ago):
   * information, not a problem. The chain is checked from the first digest still there.
   */
  expired: ExpiredDigests[];
  problems: VerifyProblem[];
}

/** Digests `first`..`last` of a chain (`topic/partition`) are gone after their retention. */
export interface ExpiredDigests {
  chain: string;
  first: number;
  last: number;
}

export interface VerifyOptions {
  publicKey: KeyObject;
  /** Only digests written in [from, to] (and objects they list) are checked; the chain link into the range is checked too. */
  from?: Date;
  to?: Date;
  /** Objects newer than this many ms that no digest lists yet are pending, not an error. */
  pendingGraceMs: number;
  /** Download readable objects and hash them, on top of comparing S3's SHA-256 checksum and size. */
  deep: boolean;
  /**
   * The objects archive_index recorded as the archiver wrote them
   * (ArchiveIndex.allObjects). Each must still be in the bucket, and its
   * digest must list the SHA-256 and size recorded: this catches an object
   * deleted or replaced before a digest was signed, which the chains alone
   * cannot (a digest can only sign the objects that are there).
   */
  index?: ReadonlyMap<string, RecordedObject>;
  /**
   * The SOX retention in days (retentionDaysFor(retention, 'sox')): the lifecycle rule deletes digests and objects
   * after it (infra/s3/bootstrap.ts). A digest or object deleted when it was older than this is expired, not missing,
   * if it leads its chain (a digest) or its deleted version is that old (an object). Without it, every deletion is a problem.
   */
  retentionDays?: number;
  now?: Date;
}


/**
 * Checks the archive (docs/archiver.md, "Verify"): every digest chain
 * (signature, sequence without gaps, hash link to the previous digest),
 * every object a digest lists (present, same version, same SHA-256 and
 * size), that every object is listed by some digest, and (with `index`)
 * that every object archive_index recorded is there as it was written.
 * Names every object or digest that is missing, changed or not listed.
 */
export async function verifyArchive(s3: S3Client, store: ObjectStore, options: VerifyOptions): Promise<VerifyReport> {
  const now = options.now ?? new Date();
  const versions = await listVersions(s3, store.bucket);
  const latest = new Map<string, Version>();
  const count = new Map<string, number>();
  /** Distinct contents (ETag and size) among an object's versions. */
  const contents = new Map<string, Set<string>>();
  for (const v of versions) {
    if (v.isLatest) latest.set(v.key, v);
    if (v.deleteMarker) continue;
    count.set(v.key, (count.get(v.key) ?? 0) + 1);
    contents.set(v.key, (contents.get(v.key) ?? new Set()).add(`${v.etag}/${v.size}`));
  }
  /** Time of each key's newest version that is not a delete marker: when a deleted object or digest was written. */
  const written = new Map<string, number>();
  for (const v of versions) if (!v.deleteMarker) written.set(v.key, Math.max(written.get(v.key) ?? 0, v.lastModified.getTime()));
  const retentionMs = options.retentionDays === undefined ? undefined : options.retentionDays * 86_400_000;
  /** True when something written at `at` (epoch ms) is older than the retention: the lifecycle rule may have removed it. */
  const pastRetention = (at: number | undefined) => retentionMs !== undefined && at !== undefined && at + retentionMs < now.getTime();
  /** A key whose latest version is a delete marker put there after its retention. */
  const expiredKey = (key: string) => latest.get(key)?.deleteMarker === true && pastRetention(written.get(key));
  const problems: VerifyProblem[] = [];
  const inRange = (t: Date) => (!options.from || t >= options.from) && (!options.to || t <= options.to);

  // Chains, by partition.
  const chains = new Map<string, { sequence: number; key: string }[]>();
  for (const key of new Set(versions.map((v) => v.key))) {
    const d = parseDigestKey(key);
    if (!d) continue;
    const id = `${d.topic}/${d.partition}`;
    chains.set(id, [...(chains.get(id) ?? []), { sequence: d.sequence, key }]);
  }
  const listed = new Map<string, SignedDigest['objects'][number]>();
  const heads = new Map<string, bigint>();
  let digestsChecked = 0;
  let objectsChecked = 0;
  const expired: ExpiredDigests[] = [];
  for (const [id, links] of chains) {
    links.sort((a, b) => a.sequence - b.sequence);
    let previous: { key: string; sha256: string } | undefined;
    let expected = 0;
    // The chain's leading digests that are gone: expired while each was deleted after its retention (the lifecycle
    // rule works from the oldest), or, for sequence numbers without any version left, when the first digest still
    // there starts its period more than the retention ago. The first one that is not ends the run: a problem.
    let leading = true;
    let gap: { from: number; to: number; before: string } | undefined;
    const expire = (first: number, last: number) => {
      const run = expired.find((e) => e.chain === id);
      if (run) run.last = last;
      else expired.push({ chain: id, first, last });
    };
    const judgeGap = (lawful: boolean) => {
      if (gap && lawful) expire(gap.from, gap.to);
      else if (gap) problems.push({ kind: 'digest_missing', subject: gap.before, detail: `chain ${id} has no digest ${gap.from} before ${gap.to + 1}` });
      gap = undefined;
    };
    for (const link of links) {
      if (link.sequence !== expected) gap = { from: expected, to: link.sequence - 1, before: link.key };
      if (!leading) judgeGap(false);
      expected = link.sequence + 1;
      const current = latest.get(link.key);
      if (!current || current.deleteMarker) {
        if (leading && expiredKey(link.key)) {
          judgeGap(true);
          expire(link.sequence, link.sequence);
          continue;
        }
        judgeGap(false);
        leading = false;
        problems.push({ kind: 'digest_missing', subject: link.key, detail: 'digest deleted (its latest version is a delete marker)' });
        previous = undefined;
        continue;
      }
      if ((count.get(link.key) ?? 0) > 1) problems.push({ kind: 'overwritten', subject: link.key, detail: `digest has ${count.get(link.key)} versions` });
      const file = await store.get(link.key);
      const sha256 = sha256Hex(file);
      let digest: SignedDigest;
      let valid: boolean;
      try {
        ({ digest, valid } = readDigest(file, options.publicKey));
      } catch (err) {
        judgeGap(false);
        leading = false;
        problems.push({ kind: 'digest_invalid', subject: link.key, detail: `not a digest: ${(err as Error).message}` });
        previous = { key: link.key, sha256 };
        continue;
      }
      judgeGap(valid && digest.period_start !== null && pastRetention(Date.parse(digest.period_start)));
      leading = false;
      const checkThis = inRange(new Date(digest.created_at));
      if (!valid) problems.push({ kind: 'digest_invalid', subject: link.key, detail: 'signature does not verify (digest altered or signed by another key)' });
      if (previous && (digest.previous?.key !== previous.key || digest.previous?.sha256 !== previous.sha256)) {
        problems.push({ kind: 'chain_broken', subject: link.key, detail: `does not link to ${previous.key} as it is now (the previous digest was altered, or this one was)` });
      }
      if (!previous && link.sequence === 0 && digest.previous !== null) problems.push({ kind: 'chain_broken', subject: link.key, detail: 'first digest of the chain names a predecessor' });
      previous = { key: link.key, sha256 };
      if (checkThis) digestsChecked += 1;
      for (const o of digest.objects) {
        listed.set(o.key, o);
        const last = BigInt(o.last_offset);
        if (last > (heads.get(id) ?? -1n)) heads.set(id, last);
        if (!checkThis) continue;
        objectsChecked += 1;
        // A digest outlives the objects it lists by up to its period: those deleted after their retention are expired.
        if (expiredKey(o.key)) continue;
        const problem = await checkObject(store, o, latest.get(o.key), count.get(o.key) ?? 0, options.deep);
        if (problem) problems.push(problem);
      }
    }
  }

  // Objects with versions of different contents: the archiver writes an object once (two members racing for a key
  // after a rebalance write the same bytes), so another content under its key was put there by someone else.
  for (const [key, seen] of contents) {
    const current = latest.get(key);
    if (seen.size < 2 || !parseObjectKey(key) || !current || !inRange(current.lastModified)) continue;
    problems.push({ kind: 'overwritten', subject: key, detail: `${count.get(key)} versions with ${seen.size} different contents (the archiver writes an object once)` });
  }

  // Objects no digest lists.
  const pending: string[] = [];
  for (const [key, v] of latest) {
    const parsed = parseObjectKey(key);
    if (!parsed || listed.has(key)) continue;
    if (v.deleteMarker) {
      // The archiver never deletes, and the lifecycle rule only after the retention: a deleted object no digest lists yet
      // (the newest ones) is missing, with or without archive_index. One listed by a digest is named by checkObject, one
      // the index records by checkIndex.
      const at = written.get(key);
      if (at !== undefined && !options.index?.has(key) && inRange(new Date(at)) && !expiredKey(key)) problems.push({ kind: 'missing', subject: key, detail: 'deleted (its latest version is a delete marker) before any digest listed it' });
      continue;
    }
    if (!inRange(v.lastModified)) continue;
    const afterHead = parsed.firstOffset > (heads.get(`${parsed.topic}/${parsed.partition}`) ?? -1n);
    if (afterHead && now.getTime() - v.lastModified.getTime() < options.pendingGraceMs) pending.push(key);
    else problems.push({ kind: 'not_listed', subject: key, detail: afterHead ? 'no digest lists it, and it is older than the grace period' : 'no digest lists it, though later objects of its partition are listed' });
  }
  const indexedChecked = options.index ? await checkIndex(store, options.index, latest, listed, (key, t) => inRange(t) && !expiredKey(key), problems) : 0;
  return { ok: problems.length === 0, digests: digestsChecked, objectsChecked, indexedChecked, pending, expired, problems };
}

/**
 * Objects archive_index recorded: in the bucket, and with the SHA-256 and size
 * the archiver wrote, as their digest lists them or (not listed yet) as S3
 * stores them.
 */
async function checkIndex(
  store: ObjectStore,
  index: ReadonlyMap<string, RecordedObject>,
  latest: ReadonlyMap<string, Version>,
  listed: ReadonlyMap<string, SignedDigest['objects'][number]>,
  /** Whether to check the object (in the --from/--to window, not deleted after its retention). */
  inScope: (key: string, t: Date) => boolean,
  problems: VerifyProblem[],
): Promise<number> {
  const reported = new Set(problems.filter((p) => p.kind === 'missing').map((p) => p.subject));
  let checked = 0;
  for (const [key, recorded] of index) {
    const current = latest.get(key);
    const present = current !== undefined && !current.deleteMarker;
    if (!inScope(key, present ? current.lastModified : new Date(recorded.lastEventMs))) continue;
    checked += 1;
    if (!present) {
      if (!reported.has(key)) problems.push({ kind: 'missing', subject: key, detail: `recorded in archive_index when it was written; ${current ? 'deleted (its latest version is a delete marker)' : 'not in the bucket'}` });
      continue;
    }
    const entry = listed.get(key);
    const found = entry ? { sha256: entry.sha256, size: entry.size, where: 'its digest lists', when: 'before the digest was signed' } : await storedChecksum(store, key);
    if (found && (found.sha256 !== recorded.sha256 || found.size !== recorded.size)) {
      problems.push({
        kind: 'index_mismatch',
        subject: key,
        detail: `${found.where} SHA-256 ${found.sha256.slice(0, 16) || '(none)'}… (${found.size} bytes), the archiver recorded ${recorded.sha256.slice(0, 16)}… (${recorded.size} bytes) when it wrote it: replaced ${found.when}`,
      });
    }
  }
  return checked;
}

/** SHA-256 and size of an object as S3 stores them (HEAD), for an object no digest lists yet. */
async function storedChecksum(store: ObjectStore, key: string): Promise<{ sha256: string; size: number; where: string; when: string } | undefined> {
  const head = await store.head(key);
  return head ? { sha256: head.sha256 ?? '', size: head.size, where: 'the bucket holds', when: 'after it was written (no digest lists it yet)' } : undefined;
}

async function checkObject(store: ObjectStore, o: SignedDigest['objects'][number], current: Version | undefined, versions: number, deep: boolean): Promise<VerifyProblem | undefined> {
  if (!current) return { kind: 'missing', subject: o.key, detail: 'listed by a digest, not in the bucket' };
  if (current.deleteMarker) return { kind: 'missing', subject: o.key, detail: 'deleted (its latest version is a delete marker)' };
  const head = await store.head(o.key);
  if (!head) return { kind: 'missing', subject: o.key, detail: 'listed by a digest, not readable' };
  const reasons: string[] = [];
  if (o.version_id && head.versionId && head.versionId !== o.version_id) reasons.push(`current version ${head.versionId} is not the listed ${o.version_id} (${versions} versions)`);
  if (head.size !== o.size) reasons.push(`size ${head.size}, listed ${o.size}`);
  if (head.sha256 !== o.sha256) reasons.push(head.sha256 ? 'SHA-256 differs from the listed one' : 'no SHA-256 checksum stored (not written by the archiver)');
  if (deep && reasons.length === 0 && isReadable(head.storageClass, head.restore)) {
    const actual = sha256Hex(await store.get(o.key));
    if (actual !== o.sha256) reasons.push('content hashes to a different SHA-256');
  }
  return reasons.length > 0 ? { kind: 'changed', subject: o.key, detail: reasons.join('; ') } : undefined;
}

/** True when GetObject works without a restore. */
export function isReadable(storageClass: string, restore: string | undefined): boolean {
  if (storageClass !== 'GLACIER' && storageClass !== 'DEEP_ARCHIVE') return true;
  return restore !== undefined && /ongoing-request="false"/.test(restore);
}
