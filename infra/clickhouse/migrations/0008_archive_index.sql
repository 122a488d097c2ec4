-- Archive index (docs/archiver.md, "Index"): which archive objects hold the
-- events of an execution, for the whole SOX retention of the archive, so
-- that `auditline replay` reads a handful of objects instead of the bucket.
-- Written by the archiver before it commits the offsets of an object;
-- rebuilt from the bucket by `auditline archive reindex`. Redelivered or
-- reindexed rows collapse on the key (ReplacingMergeTree).
CREATE TABLE IF NOT EXISTS {{database}}.archive_index
(
    execution_id String,
    object_key String,
    workflow_id LowCardinality(String),
    first_event_time DateTime64(3, 'UTC'),
    last_event_time DateTime64(3, 'UTC'),
    events UInt32,
    source_topic LowCardinality(String),
    source_partition Int32,
    first_offset Int64,
    last_offset Int64,
    storage_class LowCardinality(String),
    object_sha256 String,
    object_size UInt64,
    indexed_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(indexed_at)
PARTITION BY toYYYYMM(first_event_time)
ORDER BY (execution_id, object_key)
TTL toDateTime(last_event_time) + INTERVAL {{ttl_days_sox}} DAY;
