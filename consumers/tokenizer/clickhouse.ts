import { ClickHouseError, type ClickHouseClient } from '@clickhouse/client';
import { AuditlineError, errorMessage } from '../../core/errors.js';
import { splitListParam } from '../../core/clients/clickhouse.js';

/** Tables of the tokenizer (migrations 0006 and 0007, docs/tokenizer.md). */
export const TOKENIZER_TABLES = ['subject_keys', 'subject_legal_holds', 'execution_subjects', 'erasures', 'pii_access_log'] as const;

/**
 * Runs a ClickHouse call and maps its failure: a missing table or database
 * is STORE_NOT_INITIALIZED (run `auditline setup`), anything else
 * CLICKHOUSE_UNAVAILABLE (retriable). Messages carry the ClickHouse error
 * type and code, never the server's text (it can quote parameters).
 */
export async function chCall<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof ClickHouseError) {
      const type = err.type ?? 'UNKNOWN';
      if (type === 'UNKNOWN_TABLE' || type === 'UNKNOWN_DATABASE') {
        throw new AuditlineError('STORE_NOT_INITIALIZED', `${what}: the tokenizer tables are missing (${type}); run \`npx auditline setup\``, { cause: err });
      }
      throw new AuditlineError('CLICKHOUSE_UNAVAILABLE', `${what}: ClickHouse error ${type} (code ${err.code})`, { retriable: true, cause: err });
    }
    throw new AuditlineError('CLICKHOUSE_UNAVAILABLE', `${what}: ${errorMessage(err)}`, { retriable: true, cause: err });
  }
}

/** Rows of a SELECT in JSONEachRow. */
export async function selectRows<T>(client: ClickHouseClient, what: string, query: string, params: Record<string, unknown> = {}): Promise<T[]> {
  return chCall(what, async () => (await client.query({ query, query_params: params, format: 'JSONEachRow' })).json<T>());
}

/** {@link selectRows} with the list parameter `name` split by splitListParam (core/clients/clickhouse.ts): one query per part, their rows concatenated. */
export async function selectRowsIn<T>(client: ClickHouseClient, what: string, query: string, name: string, values: readonly string[], params: Record<string, unknown> = {}): Promise<T[]> {
  const parts = splitListParam(values);
  if (parts.length === 1) return selectRows<T>(client, what, query, { ...params, [name]: parts[0] });
  const rows = await Promise.all(parts.map((part) => selectRows<T>(client, what, query, { ...params, [name]: part })));
  return rows.flat();
}

/** Checks that every tokenizer table exists in `database`; STORE_NOT_INITIALIZED names the missing ones. */
export async function checkTokenizerTables(client: ClickHouseClient, database: string): Promise<void> {
  const rows = await selectRows<{ name: string }>(client, 'checking the tokenizer tables', 'SELECT name FROM system.tables WHERE database = {db:String}', { db: database });
  const have = new Set(rows.map((r) => r.name));
  const missing = TOKENIZER_TABLES.filter((t) => !have.has(t));
  if (missing.length > 0) {
    throw new AuditlineError('STORE_NOT_INITIALIZED', `database ${database} lacks the tokenizer tables ${missing.join(', ')}; run \`npx auditline setup\` to apply the ClickHouse migrations`, {
      details: { database },
    });
  }
}

/** A database name safe to put into SQL text. */
export function database(name: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new AuditlineError('CONFIG_INVALID', `database name ${name} is not a plain identifier`);
  return name;
}
