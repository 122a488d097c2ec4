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
  /** First offsets of the signals topic by partition: signals below them are gone (retention), nothing is left to apply. */
  signalsLow: ReadonlyMap<number, bigint>;
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
/** Observations kept while the stage has not caught up with them; beyond, the list is thinned evenly over its span. */
export const MAX_KEPT = 1_000;

/**
 * Keeps a time-ordered list within MAX_KEPT entries: past it, the entries
 * are thinned to about half as many, evenly spaced in time over the whole
 * span (the first and the last kept). Thinning by time, not by position,
 * keeps every part of the span covered however often it runs.
 */
export function thinned<T>(list: T[], time: (entry: T) => number): T[] {
  if (list.length <= MAX_KEPT) return list;
  const spacing = (time(list[list.length - 1]!) - time(list[0]!)) / (MAX_KEPT / 2);
  const kept = [list[0]!];
  for (let i = 1; i < list.length - 1; i++) if (time(list[i]!) - time(kept[kept.length - 1]!) >= spacing) kept.push(list[i]!);
  kept.push(list[list.length - 1]!);
  return kept;
}

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
  /** End offsets of the source partitions the group had not committed when first seen so (where a group starting at the end starts). */
  private readonly startEnd: Offsets = new Map();

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
    for (const p of source) if ((read.get(p.partition) ?? -1n) < 0n && !this.startEnd.has(p.partition)) this.startEnd.set(p.partition, BigInt(p.high));
    const reached = (o: (typeof this.seen)[number]) =>
      [...o.end].every(([partition, end]) => {
        const at = read.get(partition) ?? -1n;
        if (at >= 0n) return at >= end;
        // Nothing committed yet: a group that starts at the first record has everything to read; one that starts at
        // the end has read everything as long as nothing came after where it started (the end when first seen so).
        return this.o.fromBeginning ? end <= (o.low.get(partition) ?? 0n) : end <= (this.startEnd.get(partition) ?? 0n);
      });
    let sourceAsOf: number | undefined;
    for (let i = this.seen.length - 1; i >= 0; i--) {
      if (!reached(this.seen[i]!)) continue;
      sourceAsOf = this.seen[i]!.at;
      this.seen = this.seen.slice(i);
      break;
    }
    this.seen = thinned(this.seen, (o) => o.at);
    return { sourceAsOf, signalsEnd: new Map(signals.map((p) => [p.partition, BigInt(p.high)])), signalsLow: new Map(signals.map((p) => [p.partition, BigInt(p.low)])) };
  }
}
