import { randomUUID } from 'node:crypto';
import type { Kafka } from 'kafkajs';
import { AuditlineError, errorMessage } from '../../core/errors.js';
import { readDeadLetter, type StoredDeadLetter } from '../../core/service/index.js';
import { DLQ_CLI_GROUP_PREFIX } from '../../infra/kafka/acls.js';
import { kafkaErrorType } from '../../core/clients/kafka.js';

/** A position on the DLQ topic, as `dlq show` and `redrive --from/--to` take it: `<partition>:<offset>`. */
export interface DlqPosition {
  partition: number;
  offset: bigint;
}

/** Which part of the DLQ topic to read: everything, one partition from/to an offset (inclusive), or what was written since a time. */
export interface DlqRange {
  partition?: number;
  from?: bigint;
  to?: bigint;
  sinceMs?: number;
}

/** Which dead letters to keep once read (every field optional: all match). */
export interface DlqFilter {
  service?: string;
  code?: string;
  sourceTopic?: string;
  sinceMs?: number;
}

export function matchesFilter(letter: StoredDeadLetter, filter: DlqFilter): boolean {
  if (filter.service !== undefined && letter.service !== filter.service) return false;
  if (filter.code !== undefined && letter.code !== filter.code) return false;
  if (filter.sourceTopic !== undefined && letter.sourceTopic !== filter.sourceTopic) return false;
  if (filter.sinceMs !== undefined) {
    const at = Date.parse(letter.time);
    if ((Number.isFinite(at) ? at : letter.timestamp) < filter.sinceMs) return false;
  }
  return true;
}

/**
 * Fails unless every one of `topics` exists and the caller may describe it,
 * telling the two apart. A topic the caller may not describe is left out of
 * the topic list as if it did not exist; a metadata request on the topic
 * itself says which: UNKNOWN_TOPIC_OR_PARTITION, or TOPIC_AUTHORIZATION_FAILED
 * (which Kafka also answers for a missing topic the caller may not describe:
 * it does not tell who may not see a topic whether it exists).
 */
export async function requireTopics(kafka: Kafka, topics: readonly string[], what: string, hint = ''): Promise<void> {
  // No retries: a missing topic is an answer, not a failure to wait out.
  const admin = kafka.admin({ retry: { retries: 0 } });
  await admin.connect();
  const missing: string[] = [];
  const unauthorized: string[] = [];
  try {
    const listed = new Set(await admin.listTopics());
    for (const topic of topics.filter((t) => !listed.has(t))) {
      try {
        await admin.fetchTopicMetadata({ topics: [topic] });
      } catch (err) {
        const type = kafkaErrorType(err);
        if (type === 'TOPIC_AUTHORIZATION_FAILED') unauthorized.push(topic);
        else if (type === 'UNKNOWN_TOPIC_OR_PARTITION') missing.push(topic);
        else throw new AuditlineError('KAFKA_UNAVAILABLE', `cannot read the metadata of ${what} ${topic}: ${errorMessage(err)}`, { retriable: true, cause: err });
      }
    }
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
  const problems = [
    ...(unauthorized.length > 0 ? [`${unauthorized.join(', ')}: not authorized (this Kafka principal may not describe ${unauthorized.length === 1 ? 'it' : 'them'}, and Kafka does not tell it whether ${unauthorized.length === 1 ? 'it exists' : 'they exist'}: the ACLs of the operator role, \`npx auditline acls\`, or another principal in AUDITLINE_KAFKA_SASL_*)`] : []),
    ...(missing.length > 0 ? [`${missing.join(', ')}: ${missing.length === 1 ? 'does' : 'do'} not exist (run \`npx auditline setup\`)`] : []),
  ];
  if (unauthorized.length > 0) throw new AuditlineError('KAFKA_UNAVAILABLE', `${what} ${problems.join('; ')}${hint}`, { retriable: false, details: { unauthorized: unauthorized.join(','), missing: missing.join(',') } });
  if (missing.length > 0) throw new AuditlineError('STORE_NOT_INITIALIZED', `${what} ${problems.join('; ')}${hint}`, { details: { missing: missing.join(',') } });
}

/** Why a partition was not read to its end. */
export type IncompleteCause = 'held back by an open transaction' | 'read timed out';

export interface ReadOutcome {
  /** Records read (matching or not). */
  read: number;
  /**
   * Partitions not read to the end captured at the start, because nothing arrived for `idleMs`: an open transaction
   * holds back a read_committed reader at its first record (the last stable offset is below that end), or the
   * broker did not deliver in time.
   */
  incomplete: { partition: number; cause: IncompleteCause }[];
}

/** kafkajs' own factory of its cluster objects (kafkajs 2.x, src/index.js), the one way to a ListOffsets request with another isolation level. */
const CREATE_CLUSTER = 'private:Kafka:createCluster';

interface ListOffsetsCluster {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  addTargetTopic(topic: string): Promise<void>;
  findTopicPartitionMetadata(topic: string): { partitionId: number }[];
  fetchTopicsOffset(topics: { topic: string; fromBeginning: boolean; partitions: { partition: number }[] }[]): Promise<{ topic: string; partitions: { partition: number; offset: string }[] }[]>;
}

/** Whether this kafkajs has the cluster factory `highWatermarks` needs (test/unit/dlq-cli.test.ts checks it). */
export function clusterFactory(kafka: Kafka): ((options: { allowAutoTopicCreation: boolean; isolationLevel: number }) => ListOffsetsCluster) | undefined {
  const symbol = Object.getOwnPropertySymbols(kafka).find((s) => s.description === CREATE_CLUSTER);
  const factory = symbol === undefined ? undefined : (kafka as unknown as Record<symbol, unknown>)[symbol];
  return typeof factory === 'function' ? (factory as (options: { allowAutoTopicCreation: boolean; isolationLevel: number }) => ListOffsetsCluster) : undefined;
}

/**
 * The high watermark of each partition of `topic`: the offset after its last
 * record, committed or not. kafkajs' admin asks for offsets read_committed
 * only, which gives the last stable offset: the first record of a
 * transaction still open, so a read up to it would stop there and call that
 * the end, silently leaving out dead letters committed after it.
 */
export async function highWatermarks(kafka: Kafka, topic: string): Promise<Map<number, bigint>> {
  const factory = clusterFactory(kafka);
  if (factory === undefined) throw new AuditlineError('KAFKA_UNAVAILABLE', 'this kafkajs has no cluster factory to ask for high watermarks read_uncommitted (kafkajs 2.x expected)');
  // Isolation level 0: READ_UNCOMMITTED (kafkajs src/protocol/isolationLevel.js).
  const cluster = factory({ allowAutoTopicCreation: false, isolationLevel: 0 });
  await cluster.connect();
  try {
    await cluster.addTargetTopic(topic);
    const partitions = cluster.findTopicPartitionMetadata(topic).map((p) => ({ partition: p.partitionId }));
    const [offsets] = await cluster.fetchTopicsOffset([{ topic, fromBeginning: false, partitions }]);
    return new Map((offsets?.partitions ?? []).map((p) => [p.partition, BigInt(p.offset)]));
  } finally {
    await cluster.disconnect().catch(() => undefined);
  }
}

/**
 * Reads the DLQ topic from the offsets `range` selects up to its end as it
 * was when the read began, handing every dead letter to `each`, in offset
 * order per partition. The consumer's group is a fresh one, its offsets
 * set to the read's start before it joins, that commits nothing while it
 * reads (and is deleted afterwards): reading moves nothing, for no service
 * and no other reader. Committed records only (read_committed): the
 * tokenizer writes its dead letters inside its transactions; the end is the
 * high watermark, so a partition an open transaction holds back is reported
 * incomplete instead of ending early.
 */
export async function readDeadLetters(
  kafka: Kafka,
  topic: string,
  range: DlqRange,
  each: (letter: StoredDeadLetter) => void,
  options: { idleMs?: number; progress?: (read: number, total: number) => void } = {},
): Promise<ReadOutcome> {
  const idleMs = options.idleMs ?? 10_000;
  const admin = kafka.admin();
  await admin.connect();
  const bounds = new Map<number, { start: bigint; end: bigint }>();
  const partitionIds: number[] = [];
  const ends = new Map<number, bigint>();
  try {
    await requireTopics(kafka, [topic], 'the DLQ topic', ' (or name the DLQ topic with --topic)');
    const [meta] = (await admin.fetchTopicMetadata({ topics: [topic] })).topics;
    if (meta === undefined) throw new AuditlineError('STORE_NOT_INITIALIZED', `topic ${topic} does not exist; run \`npx auditline setup\` (or name the DLQ topic with --topic)`);
    if (range.partition !== undefined && !meta.partitions.some((p) => p.partitionId === range.partition)) {
      throw new AuditlineError('CONFIG_INVALID', `topic ${topic} has no partition ${range.partition} (it has ${meta.partitions.length})`);
    }
    const offsets = await admin.fetchTopicOffsets(topic);
    const high = await highWatermarks(kafka, topic);
    const byTime = range.sinceMs !== undefined ? new Map((await admin.fetchTopicOffsetsByTimestamp(topic, range.sinceMs)).map((o) => [o.partition, BigInt(o.offset)])) : undefined;
    for (const o of offsets) {
      partitionIds.push(o.partition);
      ends.set(o.partition, high.get(o.partition) ?? BigInt(o.high));
      if (range.partition !== undefined && o.partition !== range.partition) continue;
      let start = BigInt(o.low);
      // To the high watermark, not the last stable offset: records committed behind an open transaction count too.
      let end = high.get(o.partition) ?? BigInt(o.high);
      const since = byTime?.get(o.partition);
      if (since !== undefined && since >= 0n && since > start) start = since;
      if (range.from !== undefined && range.from > start) start = range.from;
      if (range.to !== undefined && range.to + 1n < end) end = range.to + 1n;
      if (start < end) bounds.set(o.partition, { start, end });
    }
  } finally {
    await admin.disconnect();
  }
  if (bounds.size === 0) return { read: 0, incomplete: [] };

  const total = Number([...bounds.values()].reduce((n, b) => n + (b.end - b.start), 0n));
  // The operator role's ACLs grant groups of this prefix (infra/kafka/acls.ts).
  const groupId = `${DLQ_CLI_GROUP_PREFIX}${randomUUID()}`;
  const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 200, allowAutoTopicCreation: false, readUncommitted: false });
  const progress = new ReadProgress(bounds);
  let read = 0;
  try {
    // The fresh group starts where the read starts: its offsets are set before it has a member, so its first fetch is
    // from `start`. (A seek after consumer.run() raced the fetch from the group's default offset, and kafkajs could
    // then report a batch it had not delivered.) Partitions outside the range start at their end.
    const setter = kafka.admin();
    await setter.connect();
    try {
      await setter.setOffsets({ groupId, topic, partitions: partitionIds.map((partition) => ({ partition, offset: (bounds.get(partition)?.start ?? ends.get(partition) ?? 0n).toString() })) });
    } finally {
      await setter.disconnect().catch(() => undefined);
    }
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      let idle: NodeJS.Timeout | undefined;
      const armIdle = () => {
        clearTimeout(idle);
        idle = setTimeout(resolve, idleMs);
      };
      const finishedYet = () => {
        if (!progress.done()) return;
        clearTimeout(idle);
        resolve();
      };
      // Also for batches of control records only (transaction markers) and of aborted records, which reach no eachMessage.
      consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
        if (payload.topic !== topic) return;
        armIdle();
        progress.batch(payload.partition, payload.firstOffset, payload.lastOffset, payload.batchSize);
        finishedYet();
      });
      consumer.on(consumer.events.CRASH, ({ payload }) => reject(payload.error));
      armIdle();
      consumer
        .run({
          autoCommit: false,
          eachMessage: async ({ partition, message }) => {
            armIdle();
            if (!progress.message(partition, BigInt(message.offset))) return;
            read++;
            if (options.progress && read % 1_000 === 0) options.progress(read, total);
            each(readDeadLetter(partition, message));
          },
        })
        .catch(reject);
    });
  } finally {
    await consumer.disconnect().catch(() => undefined);
    const admin2 = kafka.admin();
    await admin2
      .connect()
      .then(() => admin2.deleteGroups([groupId]))
      .catch(() => undefined)
      .finally(() => admin2.disconnect());
  }
  return { read, incomplete: await incompleteCauses(kafka, topic, bounds, progress.pending()) };
}

/**
 * How far a read of the DLQ got, per partition, from what the consumer
 * actually delivered: a partition is read once the offsets delivered or
 * passed reach its end. Records below the start, past the end, or handed
 * again are not handed on; a batch that begins below the start (fetched from
 * another offset than the read's) does not count.
 */
export class ReadProgress {
  /** The first offset not yet delivered or passed, per partition of the read. */
  private readonly next = new Map<number, bigint>();

  constructor(private readonly bounds: ReadonlyMap<number, { start: bigint; end: bigint }>) {
    for (const [partition, b] of bounds) this.next.set(partition, b.start);
  }

  /** The last offset eachMessage delivered, handed on or not, per partition. */
  private readonly delivered = new Map<number, bigint>();

  /** A record delivered (eachMessage): true when it is one to hand on. */
  message(partition: number, offset: bigint): boolean {
    this.delivered.set(partition, offset);
    const b = this.bounds.get(partition);
    const next = this.next.get(partition);
    if (b === undefined || next === undefined || offset < next || offset >= b.end) return false;
    this.next.set(partition, offset + 1n);
    return true;
  }

  /**
   * A batch processed (kafkajs END_BATCH_PROCESS): its first and last offsets
   * count its control records (transaction markers) and aborted records too,
   * which reach no eachMessage. It counts only when it begins within the
   * range, at or before the first offset not yet seen, and, when it holds
   * records (`size`), once eachMessage delivered one of them.
   */
  batch(partition: number, firstOffset: string | null, lastOffset: string, size: number): void {
    const b = this.bounds.get(partition);
    const next = this.next.get(partition);
    if (b === undefined || next === undefined || firstOffset === null) return;
    const first = BigInt(firstOffset);
    const last = BigInt(lastOffset);
    if (first < b.start || first > next || last < next) return;
    if (size > 0 && (this.delivered.get(partition) ?? -1n) < first) return;
    this.next.set(partition, last + 1n);
  }

  /** Partitions not read to their end yet. */
  pending(): Set<number> {
    return new Set([...this.bounds].filter(([partition, b]) => this.next.get(partition)! < b.end).map(([partition]) => partition));
  }

  done(): boolean {
    return this.pending().size === 0;
  }
}

/** Why the partitions in `pending` were not read to their end: the last stable offset below it is an open transaction. */
async function incompleteCauses(kafka: Kafka, topic: string, bounds: ReadonlyMap<number, { end: bigint }>, pending: ReadonlySet<number>): Promise<ReadOutcome['incomplete']> {
  if (pending.size === 0) return [];
  const stable = new Map<number, bigint>();
  const admin = kafka.admin();
  try {
    await admin.connect();
    for (const o of await admin.fetchTopicOffsets(topic)) stable.set(o.partition, BigInt(o.high));
  } catch {
    // Unknown: reported as timed out.
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
  return [...pending]
    .sort((a, b) => a - b)
    .map((partition) => {
      const lso = stable.get(partition);
      return { partition, cause: lso !== undefined && lso < bounds.get(partition)!.end ? 'held back by an open transaction' : 'read timed out' };
    });
}

/**
 * Reads the one dead letter at `position`: `letter` undefined and no `incomplete` when the topic holds no dead letter
 * there (never written, expired, a record of an aborted transaction, or a transaction marker); `incomplete` when the
 * read did not reach it (an open transaction before it, or a timeout), so nothing is known.
 */
export async function readDeadLetterAt(kafka: Kafka, topic: string, position: DlqPosition): Promise<{ letter?: StoredDeadLetter; incomplete?: IncompleteCause }> {
  let found: StoredDeadLetter | undefined;
  const outcome = await readDeadLetters(kafka, topic, { partition: position.partition, from: position.offset, to: position.offset }, (letter) => {
    if (BigInt(letter.offset) === position.offset) found = letter;
  }, { idleMs: 5_000 });
  if (found !== undefined) return { letter: found };
  const incomplete = outcome.incomplete.find((i) => i.partition === position.partition);
  return incomplete ? { incomplete: incomplete.cause } : {};
}
