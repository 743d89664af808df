-- reconcile: the buckets the audit rows of each layer name (besides the configured ones: rows keep
-- the bucket they were written to, whatever the Variables say today), optionally under a key prefix.
SELECT DISTINCT 'reception' AS layer, bucket FROM reception_audit
WHERE %(key_prefix)s::text IS NULL OR starts_with(object_key, %(key_prefix)s::text)
UNION
SELECT DISTINCT 'storage', dest_bucket FROM storage_audit
WHERE %(key_prefix)s::text IS NULL OR starts_with(dest_key, %(key_prefix)s::text)
UNION
SELECT DISTINCT 'staging', output_bucket FROM staging_inventory
WHERE status = 'staged' AND (%(key_prefix)s::text IS NULL OR starts_with(output_key, %(key_prefix)s::text))
UNION
SELECT DISTINCT 'curated', bucket FROM curated_inventory
WHERE %(key_prefix)s::text IS NULL OR starts_with(prefix, %(key_prefix)s::text)
UNION
SELECT DISTINCT 'datasets', bucket FROM dataset_inventory
WHERE %(key_prefix)s::text IS NULL OR starts_with(prefix, %(key_prefix)s::text)
UNION
SELECT DISTINCT 'storage', report_bucket FROM meta.reconcile_report
WHERE %(key_prefix)s::text IS NULL OR starts_with(report_key, %(key_prefix)s::text)
ORDER BY 1, 2
