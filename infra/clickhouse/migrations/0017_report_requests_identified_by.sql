-- Compliance: how the requester of each report or access review was
-- identified (docs/reports.md, "Who may request"): `token` or `os-user`
-- (authenticated through the principals file, the same one reveal uses), or
-- `claimed` (no principals file: principal and role are what the caller
-- said). Empty on rows written before this migration.
ALTER TABLE {{database}}.report_requests ADD COLUMN IF NOT EXISTS identified_by LowCardinality(String) DEFAULT '' AFTER principal;
