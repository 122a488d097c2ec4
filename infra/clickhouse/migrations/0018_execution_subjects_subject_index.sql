-- Tokenizer: a bloom filter on `subject` of execution_subjects (docs/tokenizer.md,
-- "Tables"). The table is keyed by execution_id, for the tokenizer's lookups;
-- reports filtered by data subject (`report --subject`) and erasure ask the
-- other way round, subject -> executions, and read every granule without it.
-- ADD INDEX applies to new parts; MATERIALIZE INDEX builds it for the parts
-- already there, in the background (as migration 0014).
ALTER TABLE {{database}}.execution_subjects ADD INDEX IF NOT EXISTS idx_subject subject TYPE bloom_filter(0.01) GRANULARITY 1;
ALTER TABLE {{database}}.execution_subjects MATERIALIZE INDEX idx_subject SETTINGS mutations_sync = 0;
