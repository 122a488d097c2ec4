import type { Admin } from 'kafkajs';

/**
 * How far the two stages have read, for the clock of the rule timers
 * (RuleStage.tick). Timers compare event times with a clock; the clock may
 * pass a time T only once every event that was in the source topic at T
 * has been turned into signals and every one of those signals applied,
 * or a finish still unread would be alerted as missing.
 */
export interface StageProgress {
  /**
   * The latest wall time T such that the signal stage's committed offsets
   * are at or past the end offsets the source topic had at T (of those this
   * reader saw); undefined while there is none.
   */
  sourceAsOf: number | undefined;
  /**
   * End offsets of the signals topic by partition, read after the committed
   * offsets: every signal of the events up to `sourceAsOf` lies below them.
   */
  signalsEnd: ReadonlyMap<number, bigint>;
}

export interface StageProgressOptions {
  sourceTopic: string;
  /** Consumer group of the signal stage (it commits its offsets of `sourceTopic`). */
  signalGroup: string;
  /** Where the signal stage starts without committed offsets: at the first record (true) or at the end. */
  fromBeginning: boolean;
  signalsTopic: string;
}

type Offsets = Map<number, bigint>;
/** Observations kept while the stage has not caught up with them (at one per tick, a quarter of an hour at 1 s). */
const MAX_SEEN = 1_000;

/**
 * Reads the stages' progress from the broker (offset lookups, no records)
 * and remembers the source topic's end offsets it saw, so that a reading
 * says up to which of those moments the signal stage has read everything.
 * After a restart nothing counts as read before the first observation is
 * reached, however short the downtime.
 */
export class StageProgressReader {
  /** Source end offsets seen, oldest first; none older than the last one reached. */
  private seen: { at: number; end: Offsets; low: Offsets }[] = [];

  constructor(
    private readonly admin: Pick<Admin, 'fetchTopicOffsets' | 'fetchOffsets'>,
    private readonly o: StageProgressOptions,
  ) {}

  async read(now = Date.now()): Promise<StageProgress> {
    // In this order: the signal stage writes an event's signals before it commits the event, so signals end offsets
    // read after its committed offsets count every signal of the events those offsets cover.
    const committed = await this.admin.fetchOffsets({ groupId: this.o.signalGroup, topics: [this.o.sourceTopic] });
    const [source, signals] = await Promise.all([this.admin.fetchTopicOffsets(this.o.sourceTopic), this.admin.fetchTopicOffsets(this.o.signalsTopic)]);
    this.seen.push({ at: now, end: new Map(source.map((p) => [p.partition, BigInt(p.high)])), low: new Map(source.map((p) => [p.partition, BigInt(p.low)])) });
    const read = new Map((committed[0]?.partitions ?? []).map((p) => [p.partition, BigInt(p.offset)]));
    const reached = (o: (typeof this.seen)[number]) =>
      [...o.end].every(([partition, end]) => {
        const at = read.get(partition) ?? -1n;
        // Nothing committed yet: a group that starts at the end has nothing old to read; one that starts at the first record has all of it.
        if (at < 0n) return !this.o.fromBeginning || end <= (o.low.get(partition) ?? 0n);
        return at >= end;
      });
    let sourceAsOf: number | undefined;
    for (let i = this.seen.length - 1; i >= 0; i--) {
      if (!reached(this.seen[i]!)) continue;
      sourceAsOf = this.seen[i]!.at;
      this.seen = this.seen.slice(i);
      break;
    }
    if (this.seen.length > MAX_SEEN) this.seen = this.seen.slice(-MAX_SEEN);
    return { sourceAsOf, signalsEnd: new Map(signals.map((p) => [p.partition, BigInt(p.high)])) };
  }
}
