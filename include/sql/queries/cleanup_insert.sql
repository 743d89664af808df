-- Record cleanup decisions: deletions (before the delete is sent), dry-run and kept decisions.
INSERT INTO meta.cleanup_log (
    reception_audit_id, bucket, object_key, sha256, size_bytes, etag, storage_audit_id, action, reason,
    dry_run, run_id
)
SELECT t.* FROM unnest(
    %(reception_ids)s::bigint[], %(buckets)s::text[], %(keys)s::text[], %(sha256)s::text[],
    %(sizes)s::bigint[], %(etags)s::text[], %(storage_ids)s::bigint[], %(actions)s::text[],
    %(reasons)s::text[], %(dry_runs)s::boolean[], %(run_ids)s::text[]
) AS t
ON CONFLICT DO NOTHING
