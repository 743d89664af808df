-- 008: field-level quality control (issue 16).
--
-- Staging no longer quarantines a whole hour for one implausible measurement: each measurement is
-- flagged ok / suspect / bad by the rules of its dataset's contract (bad values nulled, the rest of
-- the hour kept). The inventory row of a staged file counts the flags per rule and column,
-- {"<rule>": {"<column>": n}}: {} for a file QC found nothing in, NULL for files staged before QC or
-- whose dataset declares no rules, and for refused files.
ALTER TABLE staging_inventory ADD COLUMN qc_counts JSONB;
