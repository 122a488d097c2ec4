-- Alerts service: what fired and every delivery attempt (docs/alerts.md), so
-- "what did we alert on last week" is a query. Written by the alerts
-- service, read by `auditline report --kind alerts`. Neither table holds
-- cleartext PII: keys and evidence carry ids, counts and tokens only.
-- The columns below are a contract between the alerts service and the
-- reports; add columns in a later migration, never rename or drop them.

-- One row per fired alert; alert_id is the idempotency id sent to receivers.
CREATE TABLE IF NOT EXISTS {{database}}.alerts_fired
(
    fired_at DateTime64(3, 'UTC'),
    alert_id String,
    rule String,
    rule_kind LowCardinality(String),
    severity LowCardinality(String),
    alert_key String,
    channels Array(LowCardinality(String)),
    summary String,
    execution_ids Array(String),
    event_count UInt32,
    evidence String
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(fired_at)
ORDER BY (rule, alert_key, alert_id)
TTL toDateTime(fired_at) + INTERVAL {{ttl_days_sox}} DAY;

-- One row per delivery attempt of an alert to a channel.
CREATE TABLE IF NOT EXISTS {{database}}.alert_deliveries
(
    attempted_at DateTime64(3, 'UTC'),
    alert_id String,
    channel LowCardinality(String),
    attempt UInt32,
    outcome LowCardinality(String), -- delivered | failed (will retry) | dead_lettered (horizon passed)
    http_status UInt16,
    error String,
    latency_ms UInt32
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(attempted_at)
ORDER BY (alert_id, channel, attempt, attempted_at)
TTL toDateTime(attempted_at) + INTERVAL {{ttl_days_sox}} DAY;
