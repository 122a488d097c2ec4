-- Redrives (`auditline dlq redrive`, docs/topics.md): the SHA-256 of the
-- dead letter's value, as `dlq show` prints it. A redrive matches earlier
-- redrives of a dead letter by its DLQ position AND this hash: a DLQ topic
-- deleted and created again reuses offsets, and a new dead letter at an
-- offset an old one had must not be skipped as "already redriven". Empty on
-- rows written before this migration (those match by position alone).
ALTER TABLE {{database}}.dlq_redrives ADD COLUMN IF NOT EXISTS value_sha256 String DEFAULT '' AFTER dlq_offset;
