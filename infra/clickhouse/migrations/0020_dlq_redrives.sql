-- Redrives of dead letters (`auditline dlq redrive`, docs/topics.md): one
-- row per dead letter and state. `sending` is written BEFORE the record is
-- re-published to its source topic, `sent` once the broker acknowledged it;
-- a dead letter with a `sent` row is never sent again (unless --force), one
-- with only `sending` is in doubt (the redrive stopped between the two) and
-- is reported instead of being sent twice. Who redrove (identified as for
-- reveal), why, and which DLQ and source offsets: no payload, no PII
-- (reasons have e-mail addresses and phone numbers masked). Kept for the
-- SOX retention: it is part of the record of how a SOX record reached the
-- store.

CREATE TABLE IF NOT EXISTS {{database}}.dlq_redrives
(
    at DateTime64(3, 'UTC'),
    redrive_id String,
    state LowCardinality(String),
    principal String,
    identified_by LowCardinality(String),
    reason String,
    dlq_topic String,
    dlq_partition UInt32,
    dlq_offset UInt64,
    service LowCardinality(String),
    error_code LowCardinality(String),
    source_topic String,
    source_partition Int32,
    source_offset String
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(at)
ORDER BY (dlq_topic, dlq_partition, dlq_offset, at)
TTL toDateTime(at) + INTERVAL {{ttl_days_sox}} DAY;
