-- Tokenizer: the per-data-subject key store (docs/tokenizer.md).
-- One row per data encryption key (DEK), wrapped by the master key
-- (envelope encryption); `subject` is the subject token (HMAC), never the
-- customer's identifier. Erasure and expiry delete rows physically with a
-- synchronous mutation (ALTER TABLE ... DELETE, mutations_sync = 2); the
-- replaced parts leave the disk after old_parts_lifetime (30 s here instead
-- of 8 min). No TTL: expiry must spare subjects under legal hold, so it is
-- done by `npx auditline erase --expired`.
CREATE TABLE IF NOT EXISTS {{database}}.subject_keys
(
    subject String,
    key_id String,
    wrapped_key String,
    wrap_key_id LowCardinality(String),
    created_at DateTime64(3, 'UTC'),
    INDEX idx_key_id key_id TYPE bloom_filter(0.01) GRANULARITY 1
)
ENGINE = MergeTree
ORDER BY (subject, created_at, key_id)
SETTINGS old_parts_lifetime = 30;

-- Legal holds, append-only: the latest entry of a subject (argMax(hold, set_at)) decides.
CREATE TABLE IF NOT EXISTS {{database}}.subject_legal_holds
(
    subject String,
    hold Bool,
    set_at DateTime64(3, 'UTC'),
    principal String,
    reason String
)
ENGINE = MergeTree
ORDER BY (subject, set_at);

-- Which subject each execution belongs to, learned from its ExecutionStarted
-- event, for the execution's later events on any tokenizer instance.
CREATE TABLE IF NOT EXISTS {{database}}.execution_subjects
(
    execution_id String,
    subject String,
    created_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree
ORDER BY execution_id
TTL toDateTime(created_at) + INTERVAL {{ttl_days_pii}} DAY
SETTINGS old_parts_lifetime = 30;
