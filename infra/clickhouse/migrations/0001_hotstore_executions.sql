-- Hot store: one row per ExecutionStarted event (docs/hotstore.md).
-- Serves "inputs of execution X" through the bloom filter on execution_id;
-- the key (workflow_id, start_time) keeps a workflow's executions together
-- in time order. event_id closes the key so that a redelivered event
-- collapses into its first copy (ReplacingMergeTree; queries read FINAL)
-- while two distinct events never do.
CREATE TABLE IF NOT EXISTS {{database}}.executions
(
    execution_id String,
    workflow_id LowCardinality(String),
    workflow_name LowCardinality(String),
    workflow_version LowCardinality(String),
    trigger LowCardinality(String),
    triggered_by_kind LowCardinality(String),
    triggered_by_id String,
    start_time DateTime64(3, 'UTC'),
    parent_execution_id String,
    correlation_id String,
    input String CODEC(ZSTD(3)) TTL toDateTime(event_time) + INTERVAL {{ttl_days_pii}} DAY,
    input_truncated Bool,
    input_original_size_bytes UInt64,
    input_sha256 String,
    event_id String,
    event_time DateTime64(3, 'UTC'),
    sequence Int64,
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3),
    INDEX idx_execution_id execution_id TYPE bloom_filter(0.01) GRANULARITY 1
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(start_time)
ORDER BY (workflow_id, start_time, execution_id, event_id)
TTL toDateTime(event_time) + INTERVAL {{ttl_days_internal}} DAY;
