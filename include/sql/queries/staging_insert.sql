INSERT INTO staging_inventory (
    project_id, storage_audit_id, source_bucket, source_key, source_sha256, code_version, dataset, layout,
    status, reason, rows_in, rows_ok, rows_rejected, schema_json, output_bucket, output_key, output_sha256,
    quarantine_key, quarantine_sha256, run_id, qc_counts
)
SELECT t.* FROM unnest(
    %(project_ids)s::bigint[], %(storage_ids)s::bigint[], %(source_buckets)s::text[], %(source_keys)s::text[],
    %(source_sha256)s::text[], %(code_versions)s::text[], %(datasets)s::text[], %(layouts)s::text[],
    %(statuses)s::text[], %(reasons)s::text[], %(rows_in)s::bigint[], %(rows_ok)s::bigint[],
    %(rows_rejected)s::bigint[], %(schemas)s::jsonb[], %(output_buckets)s::text[], %(output_keys)s::text[],
    %(output_sha256)s::text[], %(quarantine_keys)s::text[], %(quarantine_sha256)s::text[], %(run_ids)s::text[],
    %(qc_counts)s::jsonb[]
) AS t
ON CONFLICT (project_id, source_sha256, code_version) DO NOTHING
RETURNING id, source_key, status
