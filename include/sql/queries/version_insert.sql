INSERT INTO meta.version_history (
    project_id, logical_name, version, sha256, previous_sha256, storage_audit_id, dest_key, run_id
)
SELECT %(project_id)s, t.* FROM unnest(
    %(logical_names)s::text[], %(versions)s::int[], %(sha256)s::text[], %(previous_sha256)s::text[],
    %(storage_ids)s::bigint[], %(dest_keys)s::text[], %(run_ids)s::text[]
) AS t
ON CONFLICT DO NOTHING
