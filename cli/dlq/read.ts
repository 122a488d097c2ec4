import { randomUUID } from 'node:crypto';
import type { Kafka } from 'kafkajs';
import { AuditlineError, errorMessage } from '../../core/errors.js';
import { readDeadLetter, type StoredDeadLetter } from '../../core/service/index.js';
import { DLQ_CLI_GROUP_PREFIX } from '../../infra/kafka/acls.js';

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

/** Kafka's error type of `err` or of an error it wraps (kafkajs wraps a broker's refusal in its retry errors). */
function kafkaErrorType(err: unknown): string | undefined {
  for (let e: unknown = err, depth = 0; e && depth < 6; depth++) {
    const type = (e as { type?: unknown }).type;
    if (typeof type === 'string') return type;
    e = (e as { originalError?: unknown }).originalError ?? (e as { cause?: unknown }).cause;
  }
  return undefined;
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

export interface ReadOutcome {
  /** Records read (matching or not). */
  read: number;
  /** Partitions not read to the end captured at the start, because nothing arrived for `idleMs` (an open transaction holds back a read_committed reader). */
  incomplete: number[];
}

/**
 * Reads the DLQ topic from the offsets `range` selects up to its end as it
 * was when the read began, handing every dead letter to `each`, in offset
 * order per partition. The consumer's group is a fresh one that never
 * commits (and is deleted afterwards): reading moves nothing, for no
 * service and no other reader. Committed records only (read_committed): the
 * tokenizer writes its dead letters inside its transactions.
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
  try {
    await requireTopics(kafka, [topic], 'the DLQ topic', ' (or name the DLQ topic with --topic)');
    const [meta] = (await admin.fetchTopicMetadata({ topics: [topic] })).topics;
    if (meta === undefined) throw new AuditlineError('STORE_NOT_INITIALIZED', `topic ${topic} does not exist; run \`npx auditline setup\` (or name the DLQ topic with --topic)`);
    if (range.partition !== undefined && !meta.partitions.some((p) => p.partitionId === range.partition)) {
      throw new AuditlineError('CONFIG_INVALID', `topic ${topic} has no partition ${range.partition} (it has ${meta.partitions.length})`);
    }
    const offsets = await admin.fetchTopicOffsets(topic);
    const byTime = range.sinceMs !== undefined ? new Map((await admin.fetchTopicOffsetsByTimestamp(topic, range.sinceMs)).map((o) => [o.partition, BigInt(o.offset)])) : undefined;
    for (const o of offsets) {
      if (range.partition !== undefined && o.partition !== range.partition) continue;
      let start = BigInt(o.low);
      let end = BigInt(o.high);
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
  const pending = new Set(bounds.keys());
  const next = new Map<number, bigint>();
  let read = 0;
  try {
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      let idle: NodeJS.Timeout | undefined;
      const armIdle = () => {
        clearTimeout(idle);
        idle = setTimeout(resolve, idleMs);
      };
      const done = (partition: number, lastOffset: string) => {
        const b = bounds.get(partition);
        if (b !== undefined && BigInt(lastOffset) + 1n >= b.end) pending.delete(partition);
        if (pending.size === 0) {
          clearTimeout(idle);
          resolve();
        }
      };
      // Also for batches of control records only (transaction markers), which reach no eachMessage.
      consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
        if (payload.topic !== topic) return;
        armIdle();
        done(payload.partition, payload.lastOffset);
      });
      consumer.on(consumer.events.CRASH, ({ payload }) => reject(payload.error));
      armIdle();
      consumer
        .run({
          autoCommit: false,
          eachMessage: async ({ partition, message }) => {
            armIdle();
            const b = bounds.get(partition);
            const offset = BigInt(message.offset);
            // Below the start (delivered before the seek took effect), past the end, or handed again after the seek: skipped.
            if (b === undefined || offset < b.start || offset >= b.end || offset < (next.get(partition) ?? 0n)) return;
            next.set(partition, offset + 1n);
            read++;
            if (options.progress && read % 1_000 === 0) options.progress(read, total);
            each(readDeadLetter(partition, message));
          },
        })
        .then(() => {
          for (const [partition, b] of bounds) consumer.seek({ topic, partition, offset: b.start.toString() });
        }, reject);
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
  return { read, incomplete: [...pending].sort((a, b) => a - b) };
}

/** Reads the one dead letter at `position`; undefined when the topic holds no record there (never written, expired, or a transaction marker). */
export async function readDeadLetterAt(kafka: Kafka, topic: string, position: DlqPosition): Promise<StoredDeadLetter | undefined> {
  let found: StoredDeadLetter | undefined;
  await readDeadLetters(kafka, topic, { partition: position.partition, from: position.offset, to: position.offset }, (letter) => {
    if (BigInt(letter.offset) === position.offset) found = letter;
  }, { idleMs: 5_000 });
  return found;
}
