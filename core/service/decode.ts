import { isAuditlineError, type AuditlineError, type ErrorCode } from '../errors.js';
import type { AuditEvent } from '../../schemas/types.js';
import type { DeadLetter, SourceRecord } from './types.js';

/**
 * Decodes one consumed record, or says why it must be dead-lettered.
 * Retriable failures (registry unreachable, a schema id it does not know
 * yet within the unknown-id window) are thrown: the batch is retried, never
 * dead-lettered for an outage.
 */
export async function decodeOrDeadLetter(codec: { decode(message: Buffer): Promise<AuditEvent> }, record: SourceRecord): Promise<{ event: AuditEvent } | { deadLetter: DeadLetter }> {
  if (record.value === null || record.value.length === 0) {
    return { deadLetter: { record, code: 'WIRE_FORMAT_INVALID', reason: 'record has no value (tombstone or empty)' } };
  }
  try {
    return { event: await codec.decode(record.value) };
  } catch (err) {
    if (!isAuditlineError(err) || err.retriable) throw err;
    return { deadLetter: { record, code: err.code, reason: decodeFailureReason(err) } };
  }
}

/**
 * The dead-letter reason of a record that could not be decoded, built from
 * the error code and ids only: library messages (Avro, registry) may quote
 * payload bytes, and audit.raw payloads hold cleartext PII.
 */
export function decodeFailureReason(err: AuditlineError): string {
  const schemaId = err.details.schemaId;
  const unknownForMs = Number(err.details.unknownForMs ?? 0);
  const templates: Partial<Record<ErrorCode, string>> = {
    WIRE_FORMAT_INVALID: 'value is not in the Confluent wire format (magic byte 0 + 4-byte schema id + Avro body)',
    SCHEMA_NOT_FOUND: `the writer schema id${schemaId === undefined ? '' : ` ${schemaId}`} in the record header is not registered in the schema registry${unknownForMs > 0 ? ` (still unknown ${unknownForMs} ms after its first lookup)` : ''}`,
    SCHEMA_INVALID: 'the writer schema of the record is not a usable Avro schema',
    DECODE_FAILED: `the Avro body cannot be decoded${schemaId === undefined ? '' : ` with writer schema id ${schemaId}`} into the audit event schema`,
  };
  return templates[err.code] ?? `the record cannot be decoded (${err.code})`;
}
