import type { EventRows } from './rows.js';
import type { HotstoreWriter, RejectedEvent, WriteOptions } from './writer.js';

/**
 * Lets small batches of partitions handled at the same time share their
 * INSERTs. At a trickle every fetch hands over a few events per partition,
 * and each partition's batch wrote one part per table: 46 INSERTs per second
 * at 100 events/s on 6 partitions (docs/hotstore.md, "Parts at low
 * traffic"). The batches one fetch hands over reach `write` within the same
 * turn of the event loop; those below `coalesceBelow` events are written
 * together in one call of the writer at the end of that turn, so nothing
 * waits longer than it took the last of them to decode. Larger batches (a
 * backlog) are written on their own, as before, in parallel.
 *
 * Each caller gets the rejected events of its own batch (indexes into its
 * own list); a failure of the shared write fails every batch in it, and each
 * is retried on its own (writing again is harmless, see HotstoreWriter).
 * A shared write heartbeats with the first batch's heartbeat: all batches
 * belong to this one group member, so a failed heartbeat (a rebalance)
 * ends each of them.
 */
export class CoalescingWriter {
  private pending: { events: readonly EventRows[]; options: WriteOptions; resolve: (r: { rejected: RejectedEvent[] }) => void; reject: (err: unknown) => void }[] = [];

  constructor(
    private readonly writer: Pick<HotstoreWriter, 'write'>,
    private readonly coalesceBelow: number,
  ) {}

  write(events: readonly EventRows[], options: WriteOptions = {}): Promise<{ rejected: RejectedEvent[] }> {
    if (events.length >= this.coalesceBelow) return this.writer.write(events, options);
    return new Promise((resolve, reject) => {
      if (this.pending.push({ events, options, resolve, reject }) === 1) setImmediate(() => void this.flush());
    });
  }

  private async flush(): Promise<void> {
    const group = this.pending;
    this.pending = [];
    try {
      const heartbeat = group.find((g) => g.options.heartbeat)?.options.heartbeat;
      const { rejected } = await this.writer.write(
        group.flatMap((g) => g.events),
        heartbeat ? { heartbeat } : {},
      );
      let start = 0;
      for (const g of group) {
        const end = start + g.events.length;
        g.resolve({ rejected: rejected.filter((r) => r.index >= start && r.index < end).map((r) => ({ ...r, index: r.index - start })) });
        start = end;
      }
    } catch (err) {
      for (const g of group) g.reject(err);
    }
  }
}
