-- Hot store: one row per ExecutionFinished event (docs/hotstore.md).
-- Serves "failed executions of WF-003 in the last hour" by primary key:
-- workflow_id = ? AND status = ? AND end_time >= ? is one key range.
-- The bloom filter on execution_id serves lookups of one execution's outcome.
CREATE TABLE IF NOT EXISTS {{database}}.execution_results
(
    execution_id String,
    workflow_id LowCardinality(String),
    status LowCardinality(String),
    end_time DateTime64(3, 'UTC'),
    duration_ms Int64,
    output String CODEC(ZSTD(3)) TTL toDateTime(event_time) + INTERVAL {{ttl_days_pii}} DAY,
    error_type LowCardinality(String),
    error_message String TTL toDateTime(event_time) + INTERVAL {{ttl_days_pii}} DAY,
    event_id String,
    event_time DateTime64(3, 'UTC'),
    sequence Int64,
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3),
    INDEX idx_execution_id execution_id TYPE bloom_filter(0.01) GRANULARITY 1
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(end_time)
ORDER BY (workflow_id, status, end_time, execution_id, event_id)
TTL toDateTime(event_time) + INTERVAL {{ttl_days_internal}} DAY;
