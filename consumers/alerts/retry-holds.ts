/** A channel's retry pending in one outbox partition: the failed record's offset and that of its next attempt. */
interface Hold {
  from: bigint;
  until: bigint;
}

/**
 * Keeps each channel's outbox queue in order across a failed request
 * (docs/alerts.md, "Outbox, retries, dead letters"). When the record at
 * offset `from` fails, its next attempt is appended at `until`; the records
 * of the same channel between the two are already behind the failed one in
 * the queue, so they are appended again behind the retry (in their order)
 * instead of being delivered first. Records of other channels are not held.
 *
 * Held in memory only, and rebuilt by reading: the partition's committed
 * offset never passes `from` while the hold is open (`commitOffset`), so a
 * restart or rebalance reads the failed record again, and a record read at or
 * before `from` drops the hold (`see`) so that reading builds it again.
 */
export class RetryHolds {
  private readonly partitions = new Map<number, Map<string, Hold>>();

  /** Before a record of `partition` is handled: drops the holds it reached (their retry) or precedes (a re-read). */
  see(partition: number, offset: string): void {
    const holds = this.partitions.get(partition);
    if (!holds) return;
    const o = BigInt(offset);
    for (const [channel, h] of holds) if (o <= h.from || o >= h.until) holds.delete(channel);
    if (holds.size === 0) this.partitions.delete(partition);
  }

  /** True when a record of `channel` at `offset` waits behind a retry of its channel: it must be appended behind it. */
  held(partition: number, channel: string, offset: string): boolean {
    const h = this.partitions.get(partition)?.get(channel);
    const o = BigInt(offset);
    return h !== undefined && o > h.from && o < h.until;
  }

  /** The record at `from` failed and its next attempt was appended at `until`. */
  hold(partition: number, channel: string, from: string, until: string): void {
    let holds = this.partitions.get(partition);
    if (!holds) this.partitions.set(partition, (holds = new Map()));
    holds.set(channel, { from: BigInt(from), until: BigInt(until) });
  }

  /** The offset to commit once everything before `next` was handled: not past a failed record whose channel still has records to move. */
  commitOffset(partition: number, next: string): string {
    let offset = BigInt(next);
    for (const h of this.partitions.get(partition)?.values() ?? []) if (h.from < offset) offset = h.from;
    return offset.toString();
  }
}
