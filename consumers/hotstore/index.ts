/** Public entry of the hot store: the service, its configuration, and the query API the CLI uses. */
export { runHotstore } from './main.js';
export { HotstoreService } from './service.js';
export { loadHotstoreConfig, HOTSTORE_DEFAULTS, type HotstoreConfig } from './config.js';
export { HotstoreWriter } from './writer.js';
export { eventToRows, HOTSTORE_TABLES, TABLE_COLUMNS, type EventRows } from './rows.js';
export * from './queries.js';
export { classifyClickHouseError, type ClickHouseFailure } from './clickhouse-errors.js';
