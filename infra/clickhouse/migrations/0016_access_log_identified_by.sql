-- Tokenizer: how the caller of each reveal was identified (docs/tokenizer.md,
-- "Who is asking"): `token` or `os-user` (authenticated through the
-- principals file), or `claimed` (no principals file: principal and role are
-- what the caller said). Empty on rows written before this migration.
ALTER TABLE {{database}}.pii_access_log ADD COLUMN IF NOT EXISTS identified_by LowCardinality(String) DEFAULT '' AFTER principal;
