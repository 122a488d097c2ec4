import type { Admin } from 'kafkajs';

/**
 * How old an unread backlog of the signal stage may be and still count as
 * read: events in flight (a fetch waits up to flushMs, offsets are committed
 * after each batch).
 */
export const BACKLOG_SLACK_MS = 10_000;

/**
 * How far the two stages have read, for the clock of the rule timers
 * (RuleStage.tick): timers compare event times, and may use the wall clock
 * only when no signal that could still stop them waits unread.
 */
export interface StageProgress {
  /**
   * The signal stage has read every event that was in its source topic
   * `slackMs` ago (its committed offsets are at or past the end offsets
   * seen then). False until such an observation exists.
   */
  sourceCaughtUp: boolean;
  /** End offsets of the signals topic by partition (the rule stage compares its own checkpoint). */
  signalsEnd: ReadonlyMap<number, bigint>;
}

export interface StageProgressOptions {
  sourceTopic: string;
  /** Consumer group of the signal stage (it commits its offsets of `sourceTopic`). */
  signalGroup: string;
  /** Where the signal stage starts without committed offsets: at the first record (true) or at the end. */
  fromBeginning: boolean;
  signalsTopic: string;
  slackMs: number;
}

type Offsets = Map<number, bigint>;

/**
 * Reads the stages' progress from the broker (offset lookups, no records)
 * and remembers the source topic's end offsets it saw, so that each reading
 * compares the signal stage's committed offsets with the end the topic had
 * `slackMs` earlier. An event already in the topic then must have been read,
 * whatever its publish time: after a restart, the backlog left by the
 * downtime counts as unread until the stage has passed it, however short
 * the downtime was.
 */
export class StageProgressReader {
  /** Source end offsets seen, oldest first. */
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
    // The newest observation at least slackMs old is the reference; older ones are no longer needed.
    let ref = -1;
    for (let i = 0; i < this.seen.length; i++) if (this.seen[i]!.at <= now - this.o.slackMs) ref = i;
    if (ref > 0) this.seen = this.seen.slice(ref);
    const then = ref >= 0 ? this.seen[0] : undefined;
    const read = new Map((committed[0]?.partitions ?? []).map((p) => [p.partition, BigInt(p.offset)]));
    const sourceCaughtUp =
      then !== undefined &&
      [...then.end].every(([partition, end]) => {
        const at = read.get(partition) ?? -1n;
        // Nothing committed yet: a group that starts at the end has nothing old to read; one that starts at the first record has all of it.
        if (at < 0n) return !this.o.fromBeginning || end <= (then.low.get(partition) ?? 0n);
        return at >= end;
      });
    return { sourceCaughtUp, signalsEnd: new Map(signals.map((p) => [p.partition, BigInt(p.high)])) };
  }
}
