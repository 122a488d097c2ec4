import { isStorableTime, STORABLE_TIME_RANGE } from '../../core/clients/clickhouse-time.js';
import { AuditlineError, errorMessage, isAuditlineError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import { BatchAbandonedError, decodeFailureReason, SerialByKey, heartbeatOrAbandon, retryRetriable, type BackoffOptions, type BatchHandler, type DeadLetter, type DlqPublisher, type SourceRecord } from '../../core/service/index.js';
import { unframe } from '../../schemas/index.js';
import { isTokenized, TOKENIZED_HEADER } from '../tokenizer/index.js';
import type { BlockCompression } from './codecs.js';
import type { StorageClass } from './config.js';
import type { DigestChain } from './digest-chain.js';
import type { ArchiveIndex } from './index-store.js';
import { objectKey, objectKeyStart, parseObjectKey, sha256Hex, syncMarkerFor } from './keys.js';
import type { ArchiverMetrics } from './metrics.js';
import type { ObjectStore } from './object-store.js';
import { OpenFile } from './open-file.js';
import { decodeContainerFile } from './container-file.js';
import type { IndexFields, WriterSchema, WriterSchemas } from './writer-schemas.js';

export interface ArchiverSettings {
  storageClass: StorageClass;
  rollBytes: number;
  rollMs: number;
  digestIntervalMs: number;
  retentionDays: number;
  objectLock: boolean;
  requireTokenized: boolean;
  /** Codec, level and block size of the files: the same settings must be used on a retry (same key, same bytes). */
  compression: BlockCompression;
  retry: BackoffOptions;
}

export interface ArchiverDeps {
  schemas: Pick<WriterSchemas, 'get' | 'cached'>;
  store: Pick<ObjectStore, 'putOnce' | 'list' | 'get'>;
  index: Pick<ArchiveIndex, 'insert'>;
  /** `stored` after every object stored, `forget` when its partition is (re)assigned: the chain's digests list from the lowest day of those. */
  chain: Pick<DigestChain, 'extend' | 'stored' | 'forget'>;
  dlq: Pick<DlqPublisher, 'publish'>;
  /** Commits `offset` (the next to read) of a partition; only called after the object and its index rows are stored. */
  commit: (topic: string, partition: number, offset: string) => Promise<void>;
  /** The partition's committed offset in the group (undefined: none): digests list only objects below it. */
  committed: (partition: number) => Promise<bigint | undefined>;
  logger: Logger;
  metrics?: ArchiverMetrics;
  now?: () => number;
}

/** Content type of archive objects (Avro object container files). */
export const ARCHIVE_CONTENT_TYPE = 'application/avro';

type Decoded = { deadLetter: DeadLetter } | { writer: WriterSchema; body: Buffer; fields: IndexFields };

/**
 * Rolls each partition's records into Avro container files and uploads
 * them; owns its offset commits (the batch consumer runs in `handler`
 * mode), because a file spans several fetched batches: a partition's
 * offsets are committed only after S3 acknowledged the object holding them
 * and its index rows were written. Work on one partition is serialized
 * (batches, the time-based roll and shutdown share a lock).
 */
export class Archiver {
  private readonly files = new Map<number, OpenFile>();
  /** The heartbeat of the consumer that handed over each partition's latest batch (BatchContext.heartbeat). */
  private readonly heartbeats = new Map<number, () => Promise<void>>();
  /** Highest offset of each partition taken into a file (or dead-lettered) since the partition was assigned (offsets stay far below 2^53). */
  private readonly position = new Map<number, number>();
  private readonly locks = new SerialByKey<number>();
  private readonly lastDigest = new Map<number, number>();
  /** Partitions of the source topic in this member's latest assignment. */
  private owned = new Set<number>();
  /** A tick is running: during an outage a roll waits long, and the next ticks must not queue up behind it. */
  private ticking = false;
  private readonly stopping = new AbortController();
  private timer: NodeJS.Timeout | undefined;
  private readonly now: () => number;

  constructor(
    private readonly settings: ArchiverSettings,
    private readonly deps: ArchiverDeps,
  ) {
    this.now = deps.now ?? Date.now;
  }

  /** The batch handler to run under a BatchConsumer in `handler` commit mode. */
  readonly handler: BatchHandler = (records, context) => {
    if (records.length === 0) return Promise.resolve({ deadLetters: [] });
    const partition = records[0]!.partition;
    if (context?.heartbeat) this.heartbeats.set(partition, context.heartbeat);
    return this.locks.run(partition, () => this.take(records));
  };

  /** Starts the time-based roll and the digest schedule. */
  startTimer(): void {
    const every = Math.max(50, Math.min(1_000, Math.floor(this.settings.rollMs / 4)));
    this.timer = setInterval(() => void this.tick().catch((err: unknown) => this.deps.logger.warn({ err: errorMessage(err) }, 'archiver tick failed')), every);
  }

  /**
   * After every rebalance (the partitions of the source topic this member
   * owns now): forgets the open file, position and digest time of every
   * partition, also of those it kept. A revoked partition's records are
   * archived by its new owner; a kept one may have been lost meanwhile
   * (evicted after a missed session timeout, then rejoined) while another
   * member archived and committed past this member's open file, and Kafka
   * hands a kept partition's records again from its committed offset, so
   * its file starts again there. Each reset runs under the partition's lock,
   * after the work already queued on it.
   */
  assigned(partitions: readonly number[]): void {
    this.owned = new Set(partitions);
    for (const p of new Set([...this.position.keys(), ...this.files.keys(), ...partitions])) {
      void this.locks.run(p, () => {
        const dropped = this.files.get(p)?.records ?? 0;
        const kept = this.owned.has(p);
        this.files.delete(p);
        this.lastDigest.delete(p);
        this.deps.chain.forget(p);
        if (kept) {
          this.position.set(p, -1);
        } else {
          this.position.delete(p);
          this.heartbeats.delete(p);
        }
        if (dropped > 0) {
          this.deps.logger.info({ partition: p, records: dropped }, kept ? 'partition assigned again: its open file is dropped (archived again from the committed offset)' : 'partition revoked: its open file is dropped (the new owner archives it)');
        }
      });
    }
  }

  /**
   * Uploads and commits every open file, then extends the digest chain of
   * every partition it owns (objects rolled since the last digest are listed
   * too, not only the ones just flushed), and stops taking batches.
   */
  async flushAndStop(): Promise<void> {
    clearInterval(this.timer);
    const open = [...this.files.keys()];
    // One partition that cannot roll (a foreign object at its key) must not keep the others' digests from being written.
    await Promise.all(
      open.map((p) =>
        this.locks.run(p, () => this.rollIfOpen(p)).catch((err: unknown) => this.deps.logger.warn({ partition: p, err: errorMessage(err) }, 'open file not archived at the stop; its records are read again after the restart')),
      ),
    );
    this.stopping.abort();
    const owned = [...new Set([...this.owned, ...this.position.keys(), ...open])];
    await Promise.all(owned.map((p) => this.locks.run(p, () => this.digest(p, true))));
  }

  /** Number of records waiting in open files (for tests and the gauge). */
  get pendingRecords(): number {
    let n = 0;
    for (const f of this.files.values()) n += f.records;
    return n;
  }

  private async take(records: readonly SourceRecord[]): Promise<{ deadLetters: DeadLetter[] }> {
    if (this.stopping.signal.aborted) throw new BatchAbandonedError('archiver stopping');
    const partition = records[0]!.partition;
    const deadLetters: DeadLetter[] = [];
    // A roll that failed (a foreign object at its key, a refused index row, the group moving on) is what a retry does first:
    // the records up to `position` are in that file, and nothing may join it (another key would be written).
    const unfinished = this.files.get(partition);
    if (unfinished?.sealed) await this.roll(unfinished);
    let position = this.position.get(partition) ?? -1;
    for (const record of records) {
      const offset = Number(record.offset);
      if (offset <= position) continue;
      // Synchronous once the writer schema is cached: no promise per record on the hot path.
      const pending = this.decode(record);
      const decoded = pending instanceof Promise ? await pending : pending;
      let file = this.files.get(partition);
      if ('deadLetter' in decoded) {
        await this.retry('dead letter', partition, () => this.deps.dlq.publish([decoded.deadLetter]));
        deadLetters.push(decoded.deadLetter);
        this.position.set(partition, (position = offset));
        if (file) file.skip(record.offset);
        else await this.commit(record.topic, partition, String(offset + 1));
        if (file?.atAdoptedEnd) await this.roll(file);
        continue;
      }
      if (file && file.writer.id !== decoded.writer.id) {
        await this.roll(file);
        file = undefined;
      }
      if (!file) file = await this.open(record, decoded.writer);
      file.add(record.offset, Number(record.timestamp), decoded.body, decoded.fields);
      this.position.set(partition, (position = offset));
      if (file.atAdoptedEnd || (file.adoptedLastOffset === undefined && file.bytes >= this.settings.rollBytes)) await this.roll(file);
    }
    return { deadLetters };
  }

  private decode(record: SourceRecord): Decoded | Promise<Decoded> {
    if (record.value === null || record.value.length === 0) return refuse(record, 'WIRE_FORMAT_INVALID', 'record has no value (tombstone or empty)');
    if (this.settings.requireTokenized && !isTokenized(record)) {
      return refuse(record, 'ARCHIVE_RECORD_REFUSED', `record has no ${TOKENIZED_HEADER} header: only events the tokenizer wrote are archived (never cleartext PII)`);
    }
    let framed: { schemaId: number; body: Buffer };
    try {
      framed = unframe(record.value);
    } catch (err) {
      return refused(record, err);
    }
    const { schemaId, body } = framed;
    const writer = this.deps.schemas.cached(schemaId);
    if (writer) return checked(record, writer, body);
    return this.deps.schemas.get(schemaId).then(
      (w) => checked(record, w, body),
      (err: unknown) => refused(record, err),
    );
  }

  /** Opens a file at `record`; when an earlier attempt already stored an object starting there, the new file ends where that one did. */
  private async open(record: SourceRecord, writer: WriterSchema): Promise<OpenFile> {
    const timestamp = Number(record.timestamp);
    const start = objectKeyStart(record.topic, record.partition, timestamp, record.offset);
    const earlier = await this.retry('listing earlier objects', record.partition, () => this.deps.store.list(start));
    const adopted = earlier.map((o) => parseObjectKey(o.key)?.lastOffset).find((v) => v !== undefined);
    if (adopted !== undefined) this.deps.logger.info({ partition: record.partition, firstOffset: record.offset, lastOffset: adopted.toString() }, 'an object already starts here (a retry): rebuilding it to the same end');
    const file = new OpenFile(record.topic, record.partition, writer, record.offset, timestamp, this.now(), adopted, this.settings.compression);
    this.files.set(record.partition, file);
    return file;
  }

  private async rollIfOpen(partition: number): Promise<void> {
    const file = this.files.get(partition);
    if (file) await this.roll(file);
  }

  /** Builds, uploads and indexes the file, then commits its offsets; until that succeeded the file stays open, sealed. */
  private async roll(file: OpenFile): Promise<void> {
    const { topic, partition } = file;
    file.sealed = true;
    const began = performance.now();
    const key = objectKey(topic, partition, file.firstTimestamp, file.firstOffset, file.lastOffset);
    const body = await file.builder.finish({
      schema: file.writer.schema,
      syncMarker: syncMarkerFor(key),
      metadata: {
        'auditline.format': 'auditline-archive/1',
        'auditline.topic': topic,
        'auditline.partition': String(partition),
        'auditline.first_offset': file.firstOffset,
        'auditline.last_offset': file.lastOffset,
        'auditline.schema_id': String(file.writer.id),
      },
    });
    const sha256 = sha256Hex(body);
    // Never counted from before now: the Kafka timestamp is the producer's clock (CreateTime), and one that runs years
    // behind would ask for a date already past (an object deletable at once; S3 refuses a past date). The date is not
    // part of the key or the bytes: a retry finds the object there (HEAD) and leaves it as it is. Taken at each attempt:
    // an upload that waited out an S3 outage is locked from when it is stored, not from when the roll began.
    const put = await this.retry('upload', partition, () =>
      this.deps.store.putOnce({
        key,
        body,
        sha256,
        storageClass: this.settings.storageClass,
        retainUntil: this.settings.objectLock ? retentionDate(Math.max(file.maxTimestamp, this.now()), this.settings.retentionDays) : undefined,
        contentType: ARCHIVE_CONTENT_TYPE,
        metadata: { records: String(file.records), 'schema-id': String(file.writer.id) },
      }),
    );
    let stored = { sha256, size: body.length };
    if (put.outcome === 'conflict') stored = await this.acceptConflict(key, partition, body);
    this.deps.chain.stored(partition, key);
    await this.retry('index', partition, () => this.deps.index.insert(file.indexRows({ key, sha256: stored.sha256, size: stored.size, storageClass: this.settings.storageClass })));
    this.files.delete(partition);
    await this.commit(topic, partition, (BigInt(file.lastOffset) + 1n).toString());
    this.deps.metrics?.objectWritten(put.outcome, file.records, file.bytes, body.length, (performance.now() - began) / 1000);
    this.deps.logger.info({ key, partition, records: file.records, bytes: body.length, outcome: put.outcome }, 'archive object stored and committed');
    await this.digest(partition, false);
  }

  private async commit(topic: string, partition: number, offset: string): Promise<void> {
    try {
      await this.deps.commit(topic, partition, offset);
    } catch (err) {
      // The object is stored; the records come again after a rebalance and rebuild the same key.
      this.deps.logger.warn({ partition, offset, err: errorMessage(err) }, 'offset commit failed; the records will be delivered again (idempotent)');
    }
  }

  /**
   * Extends the partition's digest chain when its last digest is older than
   * the interval (or `force`), with the objects below the committed offset:
   * a foreign object at a key the archiver stopped at (ARCHIVE_KEY_CONFLICT)
   * is never committed past, so never signed, in this process or after a
   * restart. Never throws.
   */
  private async digest(partition: number, force: boolean): Promise<void> {
    const last = this.lastDigest.get(partition);
    if (!force && last !== undefined && this.now() - last < this.settings.digestIntervalMs) return;
    this.lastDigest.set(partition, this.now());
    try {
      const written = await this.deps.chain.extend(partition, (await this.deps.committed(partition)) ?? 0n, new Date(this.now()));
      if (written) {
        this.deps.metrics?.digestWritten();
        this.deps.logger.info({ partition, sequence: written.sequence, objects: written.objects.length }, 'digest written');
      }
    } catch (err) {
      this.lastDigest.delete(partition);
      this.deps.logger.warn({ partition, err: errorMessage(err) }, 'digest not written; retried at the next roll or tick');
    }
  }

  /**
   * The key already holds other bytes. Legitimately that is this archiver's
   * own earlier upload of the same records, built by another codec or
   * library version before a crash: then it holds exactly these records,
   * and it is indexed with its own hash and committed. Anything else is an
   * object someone else put at the key (the file would adopt its range and
   * the records would never be archived): nothing is indexed or committed,
   * the batch is retried (and logged) until an operator looks at it.
   */
  private async acceptConflict(key: string, partition: number, body: Buffer): Promise<{ sha256: string; size: number }> {
    const existing = await this.retry('reading the conflicting object', partition, () => this.deps.store.get(key));
    let same = false;
    try {
      const [ours, theirs] = await Promise.all([decodeContainerFile(body), decodeContainerFile(existing)]);
      same = JSON.stringify(ours.records) === JSON.stringify(theirs.records);
    } catch {
      same = false;
    }
    if (!same) {
      this.deps.metrics?.foreignObject();
      this.deps.logger.error({ key, partition }, 'the key already holds an object with other records: not archived by this archiver; the partition stops here until it is examined (docs/archiver.md)');
      throw new AuditlineError('ARCHIVE_KEY_CONFLICT', `archive key ${key} holds an object with other records than the ones archived there; nothing is committed past it`, { retriable: true, details: { key } });
    }
    this.deps.logger.warn({ key, partition }, 'the key already holds the same records in other bytes (an earlier upload by another codec or library version); indexed as it is');
    return { sha256: sha256Hex(existing), size: existing.length };
  }

  private async tick(): Promise<void> {
    if (this.ticking) return;
    this.ticking = true;
    try {
      const now = this.now();
      for (const [p, file] of this.files) {
        if (file.adoptedLastOffset === undefined && now - file.openedAt >= this.settings.rollMs) {
          await this.locks.run(p, () => (this.files.get(p) === file ? this.roll(file) : undefined));
        }
      }
      for (const p of this.position.keys()) {
        const last = this.lastDigest.get(p);
        if (last !== undefined && now - last >= this.settings.digestIntervalMs) await this.locks.run(p, () => this.digest(p, false));
      }
    } finally {
      this.ticking = false;
    }
  }

  /**
   * Retries a dependency of `partition`'s work with backoff, sending the
   * group a heartbeat between attempts (an outage longer than the session
   * timeout would otherwise get this member evicted while it still builds a
   * file, and the partition's new owner would store an overlapping object
   * under the lock). A failed heartbeat means the group has moved on: the
   * work is given up (BatchAbandonedError) and nothing is committed.
   */
  private retry<T>(what: string, partition: number, fn: () => Promise<T>): Promise<T> {
    return retryRetriable(fn, {
      backoff: this.settings.retry,
      signal: this.stopping.signal,
      isRetriable: (err) => isAuditlineError(err) && err.retriable,
      onRetry: async (err, attempt, delayMs) => {
        this.deps.metrics?.retried(what);
        this.deps.logger.warn({ what, partition, attempt, delayMs, err: errorMessage(err) }, 'retriable failure; retrying');
        const heartbeat = this.heartbeats.get(partition);
        if (heartbeat) await heartbeatOrAbandon(heartbeat, this.deps.logger, { what, partition }, `partition ${partition}: the group moved on while ${what} was retried`);
      },
    });
  }
}

function refuse(record: SourceRecord, code: DeadLetter['code'], reason: string): Decoded {
  return { deadLetter: { record, code, reason } };
}

/** A non-retriable failure dead-letters the record; a retriable one (registry down) is thrown and the batch retried. */
function refused(record: SourceRecord, err: unknown): Decoded {
  if (!isAuditlineError(err) || err.retriable) throw err;
  return refuse(record, err.code, decodeFailureReason(err));
}

/**
 * Reads the index fields, which decodes the whole body with its writer
 * schema: a record that does not decode never reaches a file. Its
 * `event_time` goes into the index (DateTime64): one outside the range the
 * hot store also accepts could never be indexed, the file never rolled and
 * the partition would stop there, so the record is refused.
 */
function checked(record: SourceRecord, writer: WriterSchema, body: Buffer): Decoded {
  let fields: IndexFields;
  try {
    fields = writer.readIndexFields(body);
  } catch (err) {
    return refused(record, new AuditlineError('DECODE_FAILED', `cannot decode with schema id ${writer.id}`, { cause: err, details: { schemaId: writer.id } }));
  }
  if (!isStorableTime(fields.event_time)) {
    return refuse(record, 'ARCHIVE_RECORD_REFUSED', `event_time is outside the storable time range ${STORABLE_TIME_RANGE.text}: archive_index cannot hold it`);
  }
  // The Kafka timestamp (CreateTime: the producer's) names the object's day and sets its retention date: one no Date
  // can hold would stop the partition in the same way.
  if (!isStorableTime(Number(record.timestamp))) {
    return refuse(record, 'ARCHIVE_RECORD_REFUSED', `the record's Kafka timestamp is outside the storable time range ${STORABLE_TIME_RANGE.text}: no object key or retention date can be made from it`);
  }
  return { writer, body, fields };
}

/**
 * Retention date of an object: `fromMs` (the later of its newest record's time and the time it is written) plus the
 * retention, rounded up to a whole second (S3 keeps seconds).
 */
export function retentionDate(fromMs: number, days: number): Date {
  return new Date(Math.ceil((fromMs + days * 86_400_000) / 1000) * 1000);
}
