import type { Message } from 'kafkajs';
import { splitBySize } from '../split-by-size.js';

/**
 * Largest record the services write, value plus key and headers: below the
 * 1 MiB a Kafka broker accepts by default (`message.max.bytes`, topic
 * `max.message.bytes` 1048588), with room for the batch framing. (A
 * tokenized event is larger than its raw form, so the tokenizer
 * dead-letters one that ends up above it.)
 */
export const MAX_RECORD_BYTES = 960 * 1024;

/**
 * Largest sum of record sizes sent in one produce request. kafkajs puts a
 * request's records for one partition into one record batch, which the
 * broker refuses as a whole above its limit, and a refused batch would be
 * retried forever: outputs are split so that no record batch can pass
 * 1 MiB, even uncompressed.
 */
export const MAX_SEND_BYTES = 512 * 1024;

/** Bytes a record occupies before compression (value, key, headers), as the send size limits count them. */
export function recordBytes(m: Message): number {
  let n = 64 + (m.value ? Buffer.byteLength(m.value) : 0) + (m.key ? Buffer.byteLength(m.key) : 0);
  for (const [k, v] of Object.entries(m.headers ?? {})) n += k.length + (v === undefined ? 0 : Array.isArray(v) ? v.reduce((s, x) => s + Buffer.byteLength(x), 0) : Buffer.byteLength(v));
  return n;
}

/** Splits records into runs of at most `maxBytes` (by recordBytes), in order; a record above it goes alone. */
export function chunkBySize(messages: readonly Message[], maxBytes = MAX_SEND_BYTES): Message[][] {
  return splitBySize(messages, recordBytes, maxBytes);
}
