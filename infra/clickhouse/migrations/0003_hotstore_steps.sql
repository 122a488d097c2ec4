-- Hot store: one row per StepFinished event (one attempt of one step).
-- Keyed by execution first: "inputs of execution X" reads one key range.
CREATE TABLE IF NOT EXISTS {{database}}.steps
(
    execution_id String,
    workflow_id LowCardinality(String),
    step_id Int32,
    step_name LowCardinality(String),
    attempt Int32,
    status LowCardinality(String),
    start_time DateTime64(3, 'UTC'),
    end_time DateTime64(3, 'UTC'),
    duration_ms Int64,
    input_data String CODEC(ZSTD(3)) TTL toDateTime(event_time) + INTERVAL {{ttl_days_pii}} DAY,
    output_data String CODEC(ZSTD(3)) TTL toDateTime(event_time) + INTERVAL {{ttl_days_pii}} DAY,
    data_truncated Bool,
    data_original_size_bytes UInt64,
    data_sha256 String,
    error_type LowCardinality(String),
    error_message String TTL toDateTime(event_time) + INTERVAL {{ttl_days_pii}} DAY,
    event_id String,
    event_time DateTime64(3, 'UTC'),
    sequence Int64,
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(event_time)
ORDER BY (execution_id, step_id, attempt, event_id)
TTL toDateTime(event_time) + INTERVAL {{ttl_days_internal}} DAY;
