import { ClickHouseLogLevel, createClient, type ClickHouseClient } from '@clickhouse/client';
import type { Endpoints } from '../endpoints.js';
import { splitBySize } from '../split-by-size.js';

/** A ClickHouse HTTP client from validated endpoint settings (no default database: SQL names it). */
export function createClickHouse(config: Endpoints['clickhouse'], options: { requestTimeoutMs?: number } = {}): ClickHouseClient {
  return createClient({
    url: config.url,
    username: config.username,
    password: config.password,
    request_timeout: options.requestTimeoutMs ?? 30_000,
    clickhouse_settings: { date_time_input_format: 'best_effort' },
    // Failures surface as typed errors to the caller, which decides what to log.
    log: { level: ClickHouseLogLevel.OFF },
  });
}

/**
 * Query parameters travel in the request's URL, where ClickHouse caps each
 * value (`http_max_field_value_size`, 128 KiB) and the whole URI (1 MiB):
 * a list of 6 000 key ids already fails. A list parameter is split so that
 * each part's URL-encoded text stays under this many characters.
 */
export const LIST_PARAM_BUDGET = 64 * 1024;

/** `values` in parts whose URL-encoded text (as a ClickHouse array literal) stays under `budget` characters; none empty. */
export function splitListParam(values: readonly string[], budget = LIST_PARAM_BUDGET): string[][] {
  // Quotes and a comma around each value, escapes inside: encodeURIComponent of the value plus a margin.
  return splitBySize(values, (value) => encodeURIComponent(value).length + 16, budget);
}
