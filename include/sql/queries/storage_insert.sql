-- Record verified copies. Only called after the copy was verified (size, md5 ETag, sha256 metadata).
INSERT INTO storage_audit (
    project_id, project_prefix, project_name, reception_audit_id, source_bucket, source_key,
    dest_bucket, dest_key, logical_name, version, size_bytes, sha256, md5, run_id
)
SELECT %(project_id)s, %(project_prefix)s, %(project_name)s, t.* FROM unnest(
    %(reception_ids)s::bigint[], %(source_buckets)s::text[], %(source_keys)s::text[],
    %(dest_buckets)s::text[], %(dest_keys)s::text[], %(logical_names)s::text[], %(versions)s::int[],
    %(sizes)s::bigint[], %(sha256)s::text[], %(md5)s::text[], %(run_ids)s::text[]
) AS t
ON CONFLICT DO NOTHING
RETURNING id, sha256, logical_name, version, dest_key
