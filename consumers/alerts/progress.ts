import type { Admin } from 'kafkajs';

/**
 * A backlog of the signal stage younger than this counts as read: events in
 * flight (a fetch waits up to flushMs, offsets are committed after each batch).
 */
export const BACKLOG_SLACK_MS = 10_000;

/**
 * How far the two stages have read, for the clock of the rule timers
 * (RuleStage.tick): timers compare event times, and may use the wall clock
 * only when no signal that could still stop them waits unread.
 */
export interface StageProgress {
  /**
   * The signal stage has read every event of its source topic published
   * more than `slackMs` ago (its committed offsets are at or past them).
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
  /** A backlog younger than this counts as read (records in flight through the signal stage). */
  slackMs: number;
}

/** Reads the stages' progress from the broker: three offset lookups, no records. */
export async function stageProgress(admin: Pick<Admin, 'fetchTopicOffsets' | 'fetchTopicOffsetsByTimestamp' | 'fetchOffsets'>, o: StageProgressOptions, now = Date.now()): Promise<StageProgress> {
  const [source, older, committed, signals] = await Promise.all([
    admin.fetchTopicOffsets(o.sourceTopic),
    // Per partition, the first record published at or after now - slack (the end when there is none).
    admin.fetchTopicOffsetsByTimestamp(o.sourceTopic, now - o.slackMs),
    admin.fetchOffsets({ groupId: o.signalGroup, topics: [o.sourceTopic] }),
    admin.fetchTopicOffsets(o.signalsTopic),
  ]);
  const read = new Map((committed[0]?.partitions ?? []).map((p) => [p.partition, BigInt(p.offset)]));
  const due = new Map(older.map((p) => [p.partition, BigInt(p.offset)]));
  const sourceCaughtUp = source.every(({ partition, low, high }) => {
    const at = read.get(partition) ?? -1n;
    // Nothing committed yet: a group that starts at the end has nothing old to read; one that starts at the first record has it all.
    if (at < 0n) return !o.fromBeginning || BigInt(high) <= BigInt(low);
    return at >= (due.get(partition) ?? BigInt(high));
  });
  return { sourceCaughtUp, signalsEnd: new Map(signals.map((p) => [p.partition, BigInt(p.high)])) };
}
