import type { BlockCompression } from './codecs.js';
import { ContainerFileBuilder } from './container-file.js';
import type { IndexRow } from './index-store.js';
import type { IndexFields, WriterSchema } from './writer-schemas.js';

/**
 * The records of one partition waiting to become one archive object: one
 * writer schema, a contiguous offset range (dead-lettered records inside
 * the range count towards it), and what the index needs per execution.
 */
export class OpenFile {
  /** The container file being built from the Avro bodies (writer schema encoding) as they came from Kafka. */
  readonly builder: ContainerFileBuilder;
  records = 0;
  bytes = 0;
  lastOffset: string;
  maxTimestamp: number;
  /**
   * Set when its roll began: the file takes no more records, and until the
   * roll succeeded every attempt on the partition rolls it first (same key,
   * same bytes), so a failed roll is retried, never extended past.
   */
  sealed = false;
  private readonly executions = new Map<string, { workflowId: string; first: number; last: number; events: number }>();

  constructor(
    readonly topic: string,
    readonly partition: number,
    readonly writer: WriterSchema,
    readonly firstOffset: string,
    /** Kafka timestamp of the first record: the date in the key. */
    readonly firstTimestamp: number,
    /** When the first record arrived here (local clock): the time-based roll. */
    readonly openedAt: number,
    /** Last offset of an object that already starts at `firstOffset` (a retry): roll exactly there. */
    readonly adoptedLastOffset: bigint | undefined,
    compression: BlockCompression,
  ) {
    this.builder = new ContainerFileBuilder(compression);
    this.lastOffset = firstOffset;
    this.maxTimestamp = firstTimestamp;
  }

  add(offset: string, timestamp: number, body: Buffer, event: IndexFields): void {
    this.builder.add(body);
    this.records += 1;
    this.bytes += body.length;
    this.lastOffset = offset;
    if (timestamp > this.maxTimestamp) this.maxTimestamp = timestamp;
    const e = this.executions.get(event.execution_id);
    if (e) {
      e.events += 1;
      e.first = Math.min(e.first, event.event_time);
      e.last = Math.max(e.last, event.event_time);
    } else {
      this.executions.set(event.execution_id, { workflowId: event.workflow_id, first: event.event_time, last: event.event_time, events: 1 });
    }
  }

  /** A dead-lettered record inside the file's range. */
  skip(offset: string): void {
    this.lastOffset = offset;
  }

  /** True once the file reached the offset an earlier attempt ended at. */
  get atAdoptedEnd(): boolean {
    return this.adoptedLastOffset !== undefined && BigInt(this.lastOffset) >= this.adoptedLastOffset;
  }

  indexRows(object: { key: string; sha256: string; size: number; storageClass: string }): IndexRow[] {
    return [...this.executions].map(([executionId, e]) => ({
      execution_id: executionId,
      object_key: object.key,
      workflow_id: e.workflowId,
      first_event_time: e.first,
      last_event_time: e.last,
      events: e.events,
      source_topic: this.topic,
      source_partition: this.partition,
      first_offset: this.firstOffset,
      last_offset: this.lastOffset,
      storage_class: object.storageClass,
      object_sha256: object.sha256,
      object_size: object.size,
    }));
  }
}
