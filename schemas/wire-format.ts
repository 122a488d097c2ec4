import { AuditlineError } from '../core/errors.js';

/** Confluent wire format: magic byte 0, 4-byte big-endian schema id, Avro body. */
export const MAGIC_BYTE = 0;
export const HEADER_SIZE = 5;

/** Writes the Confluent header into the first 5 bytes of `target`. */
export function writeHeader(target: Buffer, schemaId: number): void {
  target.writeUInt8(MAGIC_BYTE, 0);
  target.writeInt32BE(schemaId, 1);
}

/** Prefixes an Avro body with the Confluent header. */
export function frame(schemaId: number, body: Buffer): Buffer {
  const out = Buffer.allocUnsafe(HEADER_SIZE + body.length);
  writeHeader(out, schemaId);
  body.copy(out, HEADER_SIZE);
  return out;
}

/** Splits a framed message; throws WIRE_FORMAT_INVALID (not retriable) on anything else. */
export function unframe(message: Buffer): { schemaId: number; body: Buffer } {
  if (message.length < HEADER_SIZE) {
    throw new AuditlineError('WIRE_FORMAT_INVALID', `message of ${message.length} bytes is shorter than the 5-byte header`);
  }
  const magic = message.readUInt8(0);
  if (magic !== MAGIC_BYTE) {
    throw new AuditlineError('WIRE_FORMAT_INVALID', `magic byte is ${magic}, expected ${MAGIC_BYTE}`);
  }
  return { schemaId: message.readInt32BE(1), body: message.subarray(HEADER_SIZE) };
}
