-- Hot store: one row per DecisionRecorded event.
-- Keyed by execution, then the producer's sequence number: "decision path of
-- execution X" is one key range, already in the order the branches were taken.
CREATE TABLE IF NOT EXISTS {{database}}.decisions
(
    execution_id String,
    workflow_id LowCardinality(String),
    sequence Int64,
    step_id Nullable(Int32),
    branch_condition String,
    branch_taken LowCardinality(String),
    branch_reason String TTL toDateTime(event_time) + INTERVAL {{ttl_days_pii}} DAY,
    condition_values String CODEC(ZSTD(3)) TTL toDateTime(event_time) + INTERVAL {{ttl_days_pii}} DAY,
    event_id String,
    event_time DateTime64(3, 'UTC'),
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(event_time)
ORDER BY (execution_id, sequence, event_id)
TTL toDateTime(event_time) + INTERVAL {{ttl_days_internal}} DAY;
