import { isAuditlineError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import { decodeOrDeadLetter, heartbeatOrAbandon, type BatchHandler, type DeadLetter, type SourceRecord } from '../../core/service/index.js';
import type { AuditEvent } from '../../schemas/index.js';
import { unwrapPayload } from '../../schemas/index.js';
import { isTokenized, TOKENIZED_HEADER } from '../tokenizer/index.js';
import type { HotstoreMetrics } from './metrics.js';
import { eventToRows, type EventRows } from './rows.js';
import type { HotstoreWriter } from './writer.js';

export interface HotstoreHandlerDeps {
  codec: { decode(message: Buffer): Promise<AuditEvent> };
  writer: Pick<HotstoreWriter, 'write'>;
  /** Logs a heartbeat refused during a write (the batch is then given up, uncommitted). */
  logger?: Logger;
  /** Dead-letter records without the tokenizer's header (AUDITLINE_HOTSTORE_REQUIRE_TOKENIZED, on by default). */
  requireTokenized?: boolean;
  metrics?: HotstoreMetrics;
  /** Called after the batch's inserts were acknowledged, before the consumer commits (test hook, see HotstoreConfig.testPauseAfterInsert). */
  afterWrite?: () => void;
}

/**
 * The hot store's batch handler: decode every record, map it to rows, write
 * the rows, and return the records that cannot be stored as dead letters.
 * A retriable failure (registry or ClickHouse unavailable) throws, so the
 * whole batch is retried and nothing is committed; writing again is
 * harmless (see HotstoreWriter).
 */
export function createHotstoreHandler(deps: HotstoreHandlerDeps): BatchHandler {
  return async (records, context) => {
    const deadLetters: DeadLetter[] = [];
    const mapped: { record: SourceRecord; rows: EventRows }[] = [];
    for (const record of records) {
      if (deps.requireTokenized && !isTokenized(record)) {
        deadLetters.push({ record, code: 'NOT_TOKENIZED', reason: `record has no ${TOKENIZED_HEADER} header: only events the tokenizer wrote are stored (never cleartext PII)` });
        continue;
      }
      const decoded = await decodeOrDeadLetter(deps.codec, record);
      if ('deadLetter' in decoded) {
        deadLetters.push(decoded.deadLetter);
        continue;
      }
      const { event } = decoded;
      try {
        mapped.push({ record, rows: eventToRows(event, record) });
        deps.metrics?.decoded(unwrapPayload(event.payload).kind);
      } catch (err) {
        if (!isAuditlineError(err, 'ROW_REJECTED')) throw err;
        deadLetters.push({ record, code: 'ROW_REJECTED', reason: err.message });
      }
    }
    // A write that isolates refused rows can take many inserts: it heartbeats between them, and a refused heartbeat
    // (a rebalance) gives the batch up uncommitted, for the partition's owner to write again.
    const beat = context?.heartbeat;
    const where = { partition: records[0]?.partition, firstOffset: records[0]?.offset, lastOffset: records[records.length - 1]?.offset };
    const heartbeat = beat && deps.logger ? () => heartbeatOrAbandon(beat, deps.logger!, where) : beat;
    const { rejected } = await deps.writer.write(
      mapped.map((m) => m.rows),
      heartbeat ? { heartbeat } : {},
    );
    deps.afterWrite?.();
    for (const r of rejected) deadLetters.push({ record: mapped[r.index]!.record, code: 'ROW_REJECTED', reason: r.reason });
    return { deadLetters };
  };
}

