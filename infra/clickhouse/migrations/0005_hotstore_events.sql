-- Hot store: one row per event of any kind, without payload: provenance
-- (producer, Kafka partition and offset) and the per-execution sequence, so
-- gaps are visible and "is execution X known at all" is one key lookup.
CREATE TABLE IF NOT EXISTS {{database}}.events
(
    execution_id String,
    sequence Int64,
    event_id String,
    event_time DateTime64(3, 'UTC'),
    workflow_id LowCardinality(String),
    kind LowCardinality(String),
    correlation_id String,
    schema_version Int32,
    producer_service LowCardinality(String),
    producer_host LowCardinality(String),
    producer_client_version LowCardinality(String),
    producer_instance_id String,
    source_topic LowCardinality(String),
    source_partition Int32,
    source_offset Int64,
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(event_time)
ORDER BY (execution_id, sequence, event_id)
TTL toDateTime(event_time) + INTERVAL {{ttl_days_internal}} DAY;
