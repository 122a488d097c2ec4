import { createHash } from 'node:crypto';
import { ARCHIVE_PREFIXES } from '../../infra/s3/bootstrap.js';

/**
 * Object keys of the archive (docs/archiver.md, "Layout"). Every part comes
 * from data that is the same on a retry: topic, partition, the offset range
 * and the date of the file's first record (its Kafka timestamp), so a file
 * built again after a crash lands on the same key.
 */
const pad20 = (offset: string | bigint) => offset.toString().padStart(20, '0');
const pad4 = (partition: number) => String(partition).padStart(4, '0');

/** `events/<topic>/p=0003/` : everything archived from one partition. */
export function partitionPrefix(topic: string, partition: number): string {
  return `${ARCHIVE_PREFIXES.events}${topic}/p=${pad4(partition)}/`;
}

/** UTC day of an epoch-ms timestamp, `YYYY-MM-DD`. */
export function utcDay(epochMs: number): string {
  return new Date(epochMs).toISOString().slice(0, 10);
}

/** `events/<topic>/p=0003/dt=2026-11-28/<first>-<last>.avro`, offsets zero-padded to 20 digits (lexical order = offset order). */
export function objectKey(topic: string, partition: number, firstTimestampMs: number, firstOffset: string, lastOffset: string): string {
  return `${objectKeyStart(topic, partition, firstTimestampMs, firstOffset)}${pad20(lastOffset)}.avro`;
}

/** The key up to the last offset: what a file starting at `firstOffset` is listed under. */
export function objectKeyStart(topic: string, partition: number, firstTimestampMs: number, firstOffset: string): string {
  return `${partitionPrefix(topic, partition)}dt=${utcDay(firstTimestampMs)}/${pad20(firstOffset)}-`;
}

export interface ParsedObjectKey {
  topic: string;
  partition: number;
  day: string;
  firstOffset: bigint;
  lastOffset: bigint;
}

/** Reads topic, partition, day and offset range back from an object key; undefined for any other key. */
export function parseObjectKey(key: string): ParsedObjectKey | undefined {
  const m = /^events\/(.+)\/p=(\d{4,})\/dt=(\d{4}-\d{2}-\d{2})\/(\d{20})-(\d{20})\.avro$/.exec(key);
  if (!m) return undefined;
  return { topic: m[1]!, partition: Number(m[2]), day: m[3]!, firstOffset: BigInt(m[4]!), lastOffset: BigInt(m[5]!) };
}

/** `digests/<topic>/p=0003/`: one signed chain per source partition. */
export function digestPrefix(topic: string, partition: number): string {
  return `${ARCHIVE_PREFIXES.digests}${topic}/p=${pad4(partition)}/`;
}

/** `digests/<topic>/p=0003/0000000042.json`: the chain's sequence number makes the key. */
export function digestKey(topic: string, partition: number, sequence: number): string {
  return `${digestPrefix(topic, partition)}${String(sequence).padStart(10, '0')}.json`;
}

/** Reads topic, partition and sequence back from a digest key. */
export function parseDigestKey(key: string): { topic: string; partition: number; sequence: number } | undefined {
  const m = /^digests\/(.+)\/p=(\d{4,})\/(\d{10})\.json$/.exec(key);
  return m ? { topic: m[1]!, partition: Number(m[2]), sequence: Number(m[3]) } : undefined;
}

/** The 16-byte Avro sync marker of a file: derived from its key, so the same key always gets the same bytes. */
export function syncMarkerFor(key: string): Buffer {
  return createHash('sha256').update(`auditline-sync:${key}`).digest().subarray(0, 16);
}

export function sha256Hex(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}
