import type { KeyObject } from 'node:crypto';
import { retentionDate } from './archiver.js';
import { DIGEST_FORMAT, readDigest, signDigest, type DigestEntry, type SignedDigest } from './digest.js';
import { digestKey, digestPrefix, parseObjectKey, partitionPrefix, sha256Hex, utcDay } from './keys.js';
import type { ObjectStore } from './object-store.js';
import { createPublicKey } from 'node:crypto';

/** The newest digest of a partition's chain. */
export interface ChainHead {
  key: string;
  sha256: string;
  digest: SignedDigest;
  /** Highest last offset the chain lists so far. */
  lastOffset: bigint;
}

/** How far before the head's last object a listing starts: producer clocks may disagree on the day by this much. */
const DAY_SLACK_MS = 2 * 86_400_000;

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

  constructor(
    private readonly store: ObjectStore,
    private readonly options: { topic: string; signingKey: KeyObject; retentionDays: number; objectLock: boolean },
  ) {
    this.publicKey = createPublicKey(options.signingKey);
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
   */
  async unlisted(partition: number, head: ChainHead | undefined, below: bigint): Promise<DigestEntry[]> {
    const prefix = partitionPrefix(this.options.topic, partition);
    let startAfter: string | undefined;
    const lastListed = head?.digest.objects[head.digest.objects.length - 1];
    if (lastListed) {
      const day = parseObjectKey(lastListed.key)?.day;
      if (day) startAfter = `${prefix}dt=${utcDay(Date.parse(`${day}T00:00:00Z`) - DAY_SLACK_MS)}`;
    }
    const floor = head?.lastOffset ?? -1n;
    const fresh = (await this.store.list(prefix, startAfter))
      .map((o) => ({ o, parsed: parseObjectKey(o.key) }))
      .filter((x) => x.parsed !== undefined && x.parsed.firstOffset > floor && x.parsed.lastOffset < below)
      .sort((a, b) => (a.parsed!.firstOffset < b.parsed!.firstOffset ? -1 : 1));
    const entries: DigestEntry[] = [];
    for (const { o, parsed } of fresh) {
      const stored = await this.store.head(o.key);
      if (!stored) continue;
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

  /**
   * Writes the partition's next digest when objects ending below `below` (its
   * committed offset, see unlisted) are waiting to be listed; returns it, or
   * undefined when there was nothing to list or another writer took the
   * sequence number first (the next call continues from its digest).
   */
  async extend(partition: number, below: bigint, now: Date = new Date()): Promise<SignedDigest | undefined> {
    const head = await this.head(partition);
    const objects = await this.unlisted(partition, head, below);
    if (objects.length === 0) return undefined;
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
    return put.outcome === 'uploaded' ? (JSON.parse(file.toString('utf8')) as SignedDigest) : undefined;
  }
}
