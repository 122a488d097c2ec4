import { ClickHouseError } from '@clickhouse/client';
import { errorMessage } from '../../core/errors.js';

/**
 * ClickHouse error types that mean "these rows are bad", not "ClickHouse is
 * unwell": only these, and a RangeError or TypeError raised in this process
 * (below), send an event to the DLQ. Everything else (network, timeouts,
 * memory, too many parts, missing tables or columns, auth) is retriable: the
 * batch waits and nothing is dead-lettered by an outage.
 */
const ROW_ERROR_TYPES = new Set([
  'CANNOT_PARSE_TEXT',
  'CANNOT_PARSE_ESCAPE_SEQUENCE',
  'CANNOT_PARSE_QUOTED_STRING',
  'CANNOT_PARSE_INPUT_ASSERTION_FAILED',
  'CANNOT_PARSE_DATE',
  'CANNOT_PARSE_DATETIME',
  'CANNOT_PARSE_NUMBER',
  'CANNOT_PARSE_BOOL',
  'CANNOT_PARSE_UUID',
  'CANNOT_READ_ARRAY_FROM_TEXT',
  'CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN',
  'INCORRECT_DATA',
  'TYPE_MISMATCH',
  'VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE',
  'TOO_LARGE_STRING_SIZE',
  'ARGUMENT_OUT_OF_BOUND',
  'DECIMAL_OVERFLOW',
]);

export interface ClickHouseFailure {
  /** True when the same insert may succeed later. */
  retriable: boolean;
  /** ClickHouse error type (e.g. CANNOT_PARSE_DATETIME) or the network error code; never the server's message, which can quote row data. */
  type: string;
  /** Numeric ClickHouse code as text, or '' for non-server errors. */
  code: string;
  /** Safe to log: type and code, plus the message for errors that did not come from the server. */
  summary: string;
}

/** Decides whether a failed insert is retried (outage) or its rows are refused (bad data). */
export function classifyClickHouseError(err: unknown): ClickHouseFailure {
  if (err instanceof ClickHouseError) {
    // An unknown column means the table is behind the service (a migration is missing): wait for it, never dead-letter.
    const type = err.type ?? 'UNKNOWN';
    const schemaDrift = type === 'INCORRECT_DATA' && /Unknown field found/i.test(err.message);
    const retriable = !ROW_ERROR_TYPES.has(type) || schemaDrift;
    return { retriable, type, code: String(err.code), summary: `ClickHouse error ${type} (code ${err.code})` };
  }
  // Raised here, not by ClickHouse or the network (building the rows: a time no Date holds, a value JSON cannot write):
  // a programming or data error, the same insert fails the same way every time.
  if (err instanceof RangeError || err instanceof TypeError) return { retriable: false, type: err.name, code: '', summary: `${err.name}: ${err.message}` };
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return { retriable: true, type: typeof code === 'string' ? code : 'CONNECTION', code: '', summary: errorMessage(err) };
}
