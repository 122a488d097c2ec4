import type { KeyObject } from 'node:crypto';
import { retentionDate } from './archiver.js';
import { DIGEST_FORMAT, readDigest, signDigest, type DigestEntry, type SignedDigest } from './digest.js';
import { digestKey, digestPrefix, parseObjectKey, partitionPrefix, sha256Hex, utcDay } from './keys.js';
import type { ArchiveIndex } from './index-store.js';
import type { ObjectStore } from './object-store.js';
import type { Logger } from '../../core/logger.js';
import { createPublicKey } from 'node:crypto';

/** The newest digest of a partition's chain. */
export interface ChainHead {
  key: string;
  sha256: string;
  digest: SignedDigest;
  /** Highest last offset the chain lists so far. */
  lastOffset: bigint;
}

/** How far before the head's last object a listing starts at the latest: producer clocks may disagree on the day by this much. */
const DAY_SLACK_MS = 2 * 86_400_000;

/** Objects of a partition stored since its chain last listed them (`known`: every such object is in `keys`). */
interface Stored {
  known: boolean;
  keys: Map<string, bigint>;
}

/**
 * One signed digest chain per source partition (docs/archiver.md, "Digests").
 * Whoever owns the partition extends its chain; the chain is read back from
 * the bucket, never kept only in memory, so a new owner continues where the
 * previous one stopped, and objects uploaded by a member that crashed before
 * writing its digest are listed by the next digest. Two writers racing to the
 * same sequence number cannot both win: the write is conditional (If-None-Match).
 */
export class DigestChain {
  private readonly publicKey: KeyObject;
  private readonly recent = new Map<number, Stored>();

  constructor(
    private readonly store: ObjectStore,
    private readonly options: {
      topic: string;
      signingKey: KeyObject;
      retentionDays: number;
      objectLock: boolean;
      /**
       * What the archiver recorded as it wrote each object: where the objects stored before this process knew the
       * partition start (see unlisted), and which objects a digest may sign (only those recorded, with the SHA-256 and
       * size S3 holds). Without it the whole partition is listed then, and every object found is signed (a script, a tool).
       */
      index?: Pick<ArchiveIndex, 'lowestObjectKey' | 'recordedObjects'>;
      /** Told of each object found in the bucket that the index does not record as it is stored: not signed. */
      logger?: Pick<Logger, 'error'>;
    },
  ) {
    this.publicKey = createPublicKey(options.signingKey);
  }

  /** The caller stored (or found stored) the object at `key` of the partition: the next digests list from its day at the latest. */
  stored(partition: number, key: string): void {
    const parsed = parseObjectKey(key);
    if (!parsed) return;
    const entry = this.recent.get(partition) ?? { known: false, keys: new Map() };
    entry.keys.set(key, parsed.lastOffset);
    this.recent.set(partition, entry);
  }

  /** The partition was (re)assigned: objects others stored meanwhile are not known here, the next digest finds them in archive_index. */
  forget(partition: number): void {
    this.recent.delete(partition);
  }

  /** The newest digest of the partition, or undefined for an empty chain. */
  async head(partition: number): Promise<ChainHead | undefined> {
    const keys = await this.store.list(digestPrefix(this.options.topic, partition));
    const last = keys[keys.length - 1];
    if (!last) return undefined;
    const file = await this.store.get(last.key);
    const { digest } = readDigest(file, this.publicKey);
    const lastOffset = digest.objects.reduce((max, o) => (BigInt(o.last_offset) > max ? BigInt(o.last_offset) : max), -1n);
    return { key: last.key, sha256: sha256Hex(file), digest, lastOffset };
  }

  /**
   * Objects of the partition not yet listed by the chain and ending below
   * offset `below`, in offset order. `below` is the partition's committed
   * offset: the archiver commits an object's offsets only once it stored,
   * checked and indexed it, so an object someone else put at a key it has
   * not reached (ARCHIVE_KEY_CONFLICT stops it there) is never listed.
   *
   * An object's day (in its key, which orders the listing) is its first
   * record's Kafka timestamp, the producer's clock: it need not follow the
   * offsets, and an object days behind the chain's last one must still be
   * listed before a later one lifts the chain's highest offset past it. So
   * the listing starts at the day of the lowest object not listed yet, and
   * 2 days before the head's last object at the latest: the lowest of the
   * objects `stored` since the last digest (this process's own), or, when
   * the partition came from elsewhere (a restart, a rebalance: objects
   * stored by others, or a caller that never calls `stored`), the lowest
   * that archive_index recorded between the chain's highest offset and
   * `below`; the whole partition without an index.
   */
  async unlisted(partition: number, head: ChainHead | undefined, below: bigint): Promise<DigestEntry[]> {
    const prefix = partitionPrefix(this.options.topic, partition);
    const floor = head?.lastOffset ?? -1n;
    const startAfter = head ? await this.listingStart(partition, head, below) : undefined;
    const fresh = (await this.store.list(prefix, startAfter))
      .map((o) => ({ o, parsed: parseObjectKey(o.key) }))
      .filter((x) => x.parsed !== undefined && x.parsed.firstOffset > floor && x.parsed.lastOffset < below)
      .sort((a, b) => (a.parsed!.firstOffset < b.parsed!.firstOffset ? -1 : 1));
    // Read after the listing: an object the archiver indexed meanwhile is signed now or by the next digest, never skipped for good.
    const recorded = this.options.index && fresh.length > 0 ? await this.options.index.recordedObjects(this.options.topic, partition, floor, below) : undefined;
    const entries: DigestEntry[] = [];
    for (const { o, parsed } of fresh) {
      const stored = await this.store.head(o.key);
      if (!stored) continue;
      // Someone else's object at a key of its own inside the committed range (not at one of the archiver's keys, which
      // ARCHIVE_KEY_CONFLICT guards), or one replaced since the archiver wrote it: a digest would vouch for it.
      if (recorded && !recorded.get(o.key)?.some((r) => r.sha256 === stored.sha256 && r.size === stored.size)) {
        this.options.logger?.error(
          { partition, key: o.key, recorded: recorded.has(o.key) },
          'an object in the archive is not what the archiver recorded in archive_index (not written by it, or replaced since): not signed by the digest; `archive verify` reports it (docs/archiver.md)',
        );
        continue;
      }
      entries.push({
        key: o.key,
        version_id: stored.versionId ?? null,
        sha256: stored.sha256 ?? '',
        size: stored.size,
        first_offset: parsed!.firstOffset.toString(),
        last_offset: parsed!.lastOffset.toString(),
      });
    }
    return entries;
  }

  /** The key the listing of `unlisted` starts after (undefined: the whole partition). */
  private async listingStart(partition: number, head: ChainHead, below: bigint): Promise<string | undefined> {
    const prefix = partitionPrefix(this.options.topic, partition);
    const mine = this.recent.get(partition);
    let lowest: string | undefined;
    if (mine?.known) lowest = [...mine.keys.keys()].sort()[0];
    else if (this.options.index) lowest = await this.options.index.lowestObjectKey(this.options.topic, partition, head.lastOffset, below);
    else return undefined;
    const days = [lowest, head.digest.objects[head.digest.objects.length - 1]?.key].map((k) => (k ? parseObjectKey(k)?.day : undefined));
    const starts: string[] = [];
    if (days[0]) starts.push(`${prefix}dt=${days[0]}`);
    if (days[1]) starts.push(`${prefix}dt=${utcDay(Date.parse(`${days[1]}T00:00:00Z`) - DAY_SLACK_MS)}`);
    return starts.sort()[0];
  }

  /**
   * Writes the partition's next digest when objects ending below `below` (its
   * committed offset, see unlisted) are waiting to be listed; returns it, or
   * undefined when there was nothing to list or another writer took the
   * sequence number first (the next call continues from its digest).
   */
  async extend(partition: number, below: bigint, now: Date = new Date()): Promise<SignedDigest | undefined> {
    const head = await this.head(partition);
    const objects = await this.unlisted(partition, head, below);
    if (objects.length === 0) {
      this.listedBelow(partition, below);
      return undefined;
    }
    const sequence = head ? head.digest.sequence + 1 : 0;
    const key = digestKey(this.options.topic, partition, sequence);
    const file = signDigest(
      {
        format: DIGEST_FORMAT,
        topic: this.options.topic,
        partition,
        sequence,
        created_at: now.toISOString(),
        period_start: head?.digest.created_at ?? null,
        previous: head ? { key: head.key, sha256: head.sha256 } : null,
        objects,
      },
      this.options.signingKey,
    );
    const sha256 = sha256Hex(file);
    const retainUntil = this.options.objectLock ? retentionDate(now.getTime(), this.options.retentionDays) : undefined;
    const put = await this.store.putOnce({
      key,
      body: file,
      sha256,
      storageClass: 'STANDARD',
      retainUntil,
      metadata: { 'auditline-kind': 'digest' },
      contentType: 'application/json',
    });
    if (put.outcome !== 'uploaded') {
      // Another writer's digest took the sequence: what it lists is not known here, so the next one asks the index.
      const mine = this.recent.get(partition);
      if (mine) mine.known = false;
      return undefined;
    }
    this.listedBelow(partition, below);
    return JSON.parse(file.toString('utf8')) as SignedDigest;
  }

  /**
   * Every object ending below `below` is listed now: the stored ones still to list are those at or after it, and they
   * are all known, if the caller tells the chain what it stores (it called `stored` since the partition's `forget`).
   */
  private listedBelow(partition: number, below: bigint): void {
    const mine = this.recent.get(partition);
    if (!mine) return;
    for (const [key, last] of mine.keys) if (last < below) mine.keys.delete(key);
    mine.known = true;
    this.recent.set(partition, mine);
  }
}
