import { ClickHouseError, type ClickHouseClient } from '@clickhouse/client';
import { AuditlineError, errorMessage } from '../core/errors.js';

/** ClickHouse error types of a server that is overloaded or interrupted, not refusing the request: worth a retry. */
const TRANSIENT_TYPES = new Set(['TIMEOUT_EXCEEDED', 'SOCKET_TIMEOUT', 'NETWORK_ERROR', 'MEMORY_LIMIT_EXCEEDED', 'TOO_MANY_SIMULTANEOUS_QUERIES', 'TOO_MANY_PARTS', 'QUERY_WAS_CANCELLED', 'ABORTED']);

/**
 * Maps a ClickHouse failure of the compliance commands: a missing table is
 * STORE_NOT_INITIALIZED (migrations not applied); a server that answered
 * and refused (credentials, grants, a parameter) QUERY_FAILED, as for the
 * hot store queries; no answer, or an overloaded server,
 * CLICKHOUSE_UNAVAILABLE (retriable). Messages name the step and the
 * ClickHouse error type, never the server's text (it may quote parameters).
 */
export function complianceStoreError(what: string, err: unknown): AuditlineError {
  if (err instanceof AuditlineError) return err;
  if (err instanceof ClickHouseError) {
    const type = err.type ?? 'UNKNOWN';
    if (type === 'UNKNOWN_TABLE' || type === 'UNKNOWN_DATABASE') {
      return new AuditlineError('STORE_NOT_INITIALIZED', `${what}: a table is missing (${type}); run \`npx auditline setup\` to apply the ClickHouse migrations`, { cause: err });
    }
    if (TRANSIENT_TYPES.has(type)) return new AuditlineError('CLICKHOUSE_UNAVAILABLE', `${what}: ClickHouse error ${type} (code ${err.code})`, { retriable: true, cause: err });
    return new AuditlineError('QUERY_FAILED', `${what}: ClickHouse error ${type} (code ${err.code})`, { cause: err });
  }
  return new AuditlineError('CLICKHOUSE_UNAVAILABLE', `${what}: ${errorMessage(err)}`, { retriable: true, cause: err });
}

/** All rows of a small SELECT (JSONEachRow). */
export async function queryRows<T>(client: ClickHouseClient, what: string, query: string, params: Record<string, unknown> = {}): Promise<T[]> {
  try {
    return await (await client.query({ query, query_params: params, format: 'JSONEachRow' })).json<T>();
  } catch (err) {
    throw complianceStoreError(what, err);
  }
}

/**
 * Rows of a SELECT in batches, as ClickHouse sends them
 * (ResultSet.stream()): memory stays flat however many rows there are.
 */
export async function* streamRows<T>(client: ClickHouseClient, what: string, query: string, params: Record<string, unknown> = {}): AsyncGenerator<T[]> {
  let rs;
  try {
    // Numbers stay JSON numbers (durations, counts): 64-bit values are quoted by default.
    rs = await client.query({ query, query_params: params, format: 'JSONEachRow', clickhouse_settings: { output_format_json_quote_64bit_integers: 0 } });
  } catch (err) {
    throw complianceStoreError(what, err);
  }
  try {
    for await (const batch of rs.stream<T>()) {
      yield batch.map((row) => row.json());
    }
  } catch (err) {
    throw complianceStoreError(what, err);
  } finally {
    rs.close();
  }
}

/** Inserts rows (JSONEachRow). */
export async function insertRows(client: ClickHouseClient, what: string, table: string, values: readonly Record<string, unknown>[]): Promise<void> {
  try {
    await client.insert({ table, values: [...values], format: 'JSONEachRow' });
  } catch (err) {
    throw complianceStoreError(what, err);
  }
}
