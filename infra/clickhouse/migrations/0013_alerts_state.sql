-- Alerts service: rule state (threshold windows, absence and silence timers,
-- gap trackers, throttles) per partition of the signals topic, and the
-- partition's checkpoint (entry '': next offset to read and the version).
-- One INSERT per batch writes the changed entries and the checkpoint: an
-- INSERT into this unpartitioned table is one part, so state and position
-- are stored together or not at all (docs/alerts.md, "State"). Values hold
-- ids, counts and times only, never payload values.
CREATE TABLE IF NOT EXISTS {{database}}.alerts_state
(
    consumer_group String,
    topic String,
    partition UInt32,
    entry String,
    version UInt64,
    value String,
    deleted UInt8,
    updated_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (consumer_group, topic, partition, entry);
