/**
 * Binary layout of spool files: a plain sequence of self-checking records.
 *
 *   record  = version:u8 (1) | bodyLength:u32be | crc32(body):u32be | body
 *   body    = keyLength:u16be | key | headerCount:u8
 *             | (nameLength:u8 | name | valueLength:u16be | value)*
 *             | value (the rest: the Avro event in the Confluent wire format)
 *
 * The CRC makes a record torn by a crash (power loss, SIGKILL during a
 * write) detectable: it was never acknowledged, so readers stop there.
 */

/** One Kafka record as the spool keeps it. */
export interface SpoolRecord {
  key: Buffer;
  value: Buffer;
  headers: Record<string, string>;
}

export const RECORD_VERSION = 1;
export const RECORD_HEADER_BYTES = 9;

/** Serializes records back to back. */
export function encodeRecords(records: readonly SpoolRecord[]): Buffer {
  return Buffer.concat(records.map(encodeRecord));
}

export function encodeRecord(record: SpoolRecord): Buffer {
  const headers = Object.entries(record.headers).map(([name, value]) => [Buffer.from(name, 'utf8'), Buffer.from(value, 'utf8')] as const);
  if (record.key.length > 0xffff) throw new Error('spool record key longer than 65535 bytes');
  if (headers.length > 0xff) throw new Error('spool record has more than 255 headers');
  const parts: Buffer[] = [u16(record.key.length), record.key, Buffer.from([headers.length])];
  for (const [name, value] of headers) {
    if (name.length > 0xff || value.length > 0xffff) throw new Error('spool record header too long');
    parts.push(Buffer.from([name.length]), name, u16(value.length), value);
  }
  parts.push(record.value);
  const body = Buffer.concat(parts);
  const head = Buffer.alloc(RECORD_HEADER_BYTES);
  head.writeUInt8(RECORD_VERSION, 0);
  head.writeUInt32BE(body.length, 1);
  head.writeUInt32BE(crc32(body), 5);
  return Buffer.concat([head, body]);
}

/** Outcome of parsing a buffer that starts at a record boundary. */
export interface ParsedRecords {
  /** Each record with its size and its CRC (which tells one record from another at the same offset). */
  records: { record: SpoolRecord; bytes: number; crc: number }[];
  /** Bytes consumed by the complete records. */
  consumed: number;
  /**
   * Why parsing stopped before the end of the buffer: `incomplete` (the next
   * record needs `needed` bytes in all), `corrupt` (bad version or checksum).
   */
  stop?: { reason: 'incomplete'; needed: number } | { reason: 'corrupt' };
}

/** Parses complete records from `buf`, at most `maxRecords` and `maxBytes` (at least one record if complete). */
export function parseRecords(buf: Buffer, maxRecords = Infinity, maxBytes = Infinity): ParsedRecords {
  const records: ParsedRecords['records'] = [];
  let offset = 0;
  while (offset < buf.length && records.length < maxRecords) {
    if (buf.length - offset < RECORD_HEADER_BYTES) return { records, consumed: offset, stop: { reason: 'incomplete', needed: RECORD_HEADER_BYTES } };
    if (buf.readUInt8(offset) !== RECORD_VERSION) return { records, consumed: offset, stop: { reason: 'corrupt' } };
    const bodyLength = buf.readUInt32BE(offset + 1);
    const total = RECORD_HEADER_BYTES + bodyLength;
    if (records.length > 0 && offset + total > maxBytes) break;
    if (buf.length - offset < total) return { records, consumed: offset, stop: { reason: 'incomplete', needed: total } };
    const body = buf.subarray(offset + RECORD_HEADER_BYTES, offset + total);
    const crc = buf.readUInt32BE(offset + 5);
    if (crc32(body) !== crc) return { records, consumed: offset, stop: { reason: 'corrupt' } };
    const record = decodeBody(body);
    if (!record) return { records, consumed: offset, stop: { reason: 'corrupt' } };
    records.push({ record, bytes: total, crc });
    offset += total;
  }
  return { records, consumed: offset };
}

function decodeBody(body: Buffer): SpoolRecord | undefined {
  try {
    let at = 0;
    const keyLength = body.readUInt16BE(at);
    at += 2;
    const key = body.subarray(at, at + keyLength);
    at += keyLength;
    const count = body.readUInt8(at);
    at += 1;
    const headers: Record<string, string> = {};
    for (let i = 0; i < count; i++) {
      const nameLength = body.readUInt8(at);
      at += 1;
      const name = body.subarray(at, at + nameLength).toString('utf8');
      at += nameLength;
      const valueLength = body.readUInt16BE(at);
      at += 2;
      headers[name] = body.subarray(at, at + valueLength).toString('utf8');
      at += valueLength;
    }
    if (at > body.length) return undefined;
    return { key: Buffer.from(key), value: Buffer.from(body.subarray(at)), headers };
  } catch {
    return undefined;
  }
}

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n, 0);
  return b;
}

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** CRC-32 (IEEE), as zlib computes it. */
export function crc32(buf: Buffer): number {
  let c = 0xffffffff;
  for (let i = 0; i < buf.length; i++) c = CRC_TABLE[(c ^ buf[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
