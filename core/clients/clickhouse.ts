import { ClickHouseLogLevel, createClient, type ClickHouseClient } from '@clickhouse/client';
import type { Endpoints } from '../endpoints.js';

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
