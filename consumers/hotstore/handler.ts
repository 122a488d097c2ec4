import { AuditlineError, isAuditlineError, type ErrorCode } from '../../core/errors.js';
import type { BatchHandler, DeadLetter, SourceRecord } from '../../core/service/index.js';
import type { AuditEvent } from '../../schemas/index.js';
import { unwrapPayload } from '../../schemas/index.js';
import type { HotstoreMetrics } from './metrics.js';
import { eventToRows, type EventRows } from './rows.js';
import type { HotstoreWriter } from './writer.js';

export interface HotstoreHandlerDeps {
  codec: { decode(message: Buffer): Promise<AuditEvent> };
  writer: Pick<HotstoreWriter, 'write'>;
  metrics?: HotstoreMetrics;
}

/**
 * The hot store's batch handler: decode every record, map it to rows, write
 * the rows, and return the records that cannot be stored as dead letters.
 * A retriable failure (registry or ClickHouse unavailable) throws, so the
 * whole batch is retried and nothing is committed; writing again is
 * harmless (see HotstoreWriter).
 */
export function createHotstoreHandler(deps: HotstoreHandlerDeps): BatchHandler {
  return async (records) => {
    const deadLetters: DeadLetter[] = [];
    const mapped: { record: SourceRecord; rows: EventRows }[] = [];
    for (const record of records) {
      if (record.value === null || record.value.length === 0) {
        deadLetters.push({ record, code: 'WIRE_FORMAT_INVALID', reason: 'record has no value (tombstone or empty)' });
        continue;
      }
      let event: AuditEvent;
      try {
        event = await deps.codec.decode(record.value);
      } catch (err) {
        if (!isAuditlineError(err) || err.retriable) throw err;
        deadLetters.push({ record, code: err.code, reason: decodeFailureReason(err) });
        continue;
      }
      try {
        mapped.push({ record, rows: eventToRows(event, record) });
        deps.metrics?.decoded(unwrapPayload(event.payload).kind);
      } catch (err) {
        if (!isAuditlineError(err, 'ROW_REJECTED')) throw err;
        deadLetters.push({ record, code: 'ROW_REJECTED', reason: err.message });
      }
    }
    const { rejected } = await deps.writer.write(mapped.map((m) => m.rows));
    for (const r of rejected) deadLetters.push({ record: mapped[r.index]!.record, code: 'ROW_REJECTED', reason: r.reason });
    return { deadLetters };
  };
}

/**
 * The dead-letter reason of a record that could not be decoded. Built from
 * the error code and ids only: library messages (Avro, registry) are not
 * copied because they might quote bytes of the payload.
 */
export function decodeFailureReason(err: AuditlineError): string {
  const schemaId = err.details.schemaId;
  const templates: Partial<Record<ErrorCode, string>> = {
    WIRE_FORMAT_INVALID: 'value is not in the Confluent wire format (magic byte 0 + 4-byte schema id + Avro body)',
    SCHEMA_NOT_FOUND: 'the writer schema id in the record header is not registered in the schema registry',
    SCHEMA_INVALID: 'the writer schema of the record is not a usable Avro schema',
    DECODE_FAILED: `the Avro body cannot be decoded${schemaId === undefined ? '' : ` with writer schema id ${schemaId}`} into the audit event schema`,
  };
  return templates[err.code] ?? `the record cannot be decoded (${err.code})`;
}
