-- Tokenizer: append-only audit records (docs/tokenizer.md). The code only
-- INSERTs; kept for the SOX retention as evidence for access reviews and
-- erasure requests. Neither table holds PII: subjects are tokens, reasons
-- have e-mail addresses and phone numbers masked.

-- Every attempt to reveal cleartext, allowed or refused.
CREATE TABLE IF NOT EXISTS {{database}}.pii_access_log
(
    at DateTime64(3, 'UTC'),
    request_id String,
    principal String,
    role LowCardinality(String),
    execution_id String,
    execution_status LowCardinality(String),
    fields Array(String),
    reason String,
    outcome LowCardinality(String),
    detail String,
    values_revealed UInt32,
    values_unrecoverable UInt32
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(at)
ORDER BY (execution_id, at, request_id)
TTL toDateTime(at) + INTERVAL {{ttl_days_sox}} DAY;

-- Every destroyed subject key: erasure requests and expiry.
CREATE TABLE IF NOT EXISTS {{database}}.erasures
(
    erased_at DateTime64(3, 'UTC'),
    kind LowCardinality(String),
    principal String,
    subject String,
    key_ids Array(String),
    reason String
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(erased_at)
ORDER BY (subject, erased_at)
TTL toDateTime(erased_at) + INTERVAL {{ttl_days_sox}} DAY;
