-- Retention clocks that cannot wrap. ClickHouse's DateTime (what a TTL
-- compares) holds 1970 to 2106 and wraps outside it, while the hot store and
-- the archiver accept an event_time from 1900 to 2299 (the producer's clock):
-- with `toDateTime(event_time)` a row dated 1960 kept its PII until 2096, and
-- an archive_index row dated 2110 expired at once. Each TTL now starts from
-- the event's time held between 1970-01-02 and the moment this server stored
-- the row (ingested_at, indexed_at): a row dated before 1970 is past every
-- retention and goes at the next merge, a row dated ahead of the server's
-- clock is kept from when it arrived. archive_index rows live from the later
-- of the event and the indexing, as the archive object's Object Lock runs
-- from the later of its records and its upload (docs/archiver.md), capped so
-- that the expiry stays below the end of DateTime (2106-02-07).
--
-- ClickHouse applies a changed TTL to the parts already stored as a background
-- mutation (materialize_ttl_after_modify); `auditline setup` does not wait for
-- it (progress in system.mutations). syncTtls (infra/clickhouse/ttl.ts) reads
-- these statements: a later retention change restates these expressions.
ALTER TABLE {{database}}.executions MODIFY COLUMN input TTL toDateTime(least(greatest(event_time, toDateTime64('1970-01-02 00:00:00', 3, 'UTC')), ingested_at)) + INTERVAL {{ttl_days_pii}} DAY;
ALTER TABLE {{database}}.executions MODIFY TTL toDateTime(least(greatest(event_time, toDateTime64('1970-01-02 00:00:00', 3, 'UTC')), ingested_at)) + INTERVAL {{ttl_days_internal}} DAY;
ALTER TABLE {{database}}.execution_results MODIFY COLUMN output TTL toDateTime(least(greatest(event_time, toDateTime64('1970-01-02 00:00:00', 3, 'UTC')), ingested_at)) + INTERVAL {{ttl_days_pii}} DAY;
ALTER TABLE {{database}}.execution_results MODIFY COLUMN error_message TTL toDateTime(least(greatest(event_time, toDateTime64('1970-01-02 00:00:00', 3, 'UTC')), ingested_at)) + INTERVAL {{ttl_days_pii}} DAY;
ALTER TABLE {{database}}.execution_results MODIFY TTL toDateTime(least(greatest(event_time, toDateTime64('1970-01-02 00:00:00', 3, 'UTC')), ingested_at)) + INTERVAL {{ttl_days_internal}} DAY;
ALTER TABLE {{database}}.steps MODIFY COLUMN input_data TTL toDateTime(least(greatest(event_time, toDateTime64('1970-01-02 00:00:00', 3, 'UTC')), ingested_at)) + INTERVAL {{ttl_days_pii}} DAY;
ALTER TABLE {{database}}.steps MODIFY COLUMN output_data TTL toDateTime(least(greatest(event_time, toDateTime64('1970-01-02 00:00:00', 3, 'UTC')), ingested_at)) + INTERVAL {{ttl_days_pii}} DAY;
ALTER TABLE {{database}}.steps MODIFY COLUMN error_message TTL toDateTime(least(greatest(event_time, toDateTime64('1970-01-02 00:00:00', 3, 'UTC')), ingested_at)) + INTERVAL {{ttl_days_pii}} DAY;
ALTER TABLE {{database}}.steps MODIFY TTL toDateTime(least(greatest(event_time, toDateTime64('1970-01-02 00:00:00', 3, 'UTC')), ingested_at)) + INTERVAL {{ttl_days_internal}} DAY;
ALTER TABLE {{database}}.decisions MODIFY COLUMN branch_reason TTL toDateTime(least(greatest(event_time, toDateTime64('1970-01-02 00:00:00', 3, 'UTC')), ingested_at)) + INTERVAL {{ttl_days_pii}} DAY;
ALTER TABLE {{database}}.decisions MODIFY COLUMN condition_values TTL toDateTime(least(greatest(event_time, toDateTime64('1970-01-02 00:00:00', 3, 'UTC')), ingested_at)) + INTERVAL {{ttl_days_pii}} DAY;
ALTER TABLE {{database}}.decisions MODIFY TTL toDateTime(least(greatest(event_time, toDateTime64('1970-01-02 00:00:00', 3, 'UTC')), ingested_at)) + INTERVAL {{ttl_days_internal}} DAY;
ALTER TABLE {{database}}.events MODIFY TTL toDateTime(least(greatest(event_time, toDateTime64('1970-01-02 00:00:00', 3, 'UTC')), ingested_at)) + INTERVAL {{ttl_days_internal}} DAY;
ALTER TABLE {{database}}.archive_index MODIFY TTL toDateTime(least(greatest(last_event_time, indexed_at), toDateTime64('2106-02-07 00:00:00', 3, 'UTC') - INTERVAL {{ttl_days_sox}} DAY)) + INTERVAL {{ttl_days_sox}} DAY;
