-- The staged parts of a project's dataset: the latest staging of each distinct source content.
SELECT DISTINCT ON (i.source_sha256)
       i.id, i.storage_audit_id, i.source_key, i.source_sha256, i.output_bucket, i.output_key,
       i.output_sha256, i.rows_ok
FROM staging_inventory i
WHERE i.project_id = %(project_id)s AND i.dataset = %(dataset)s AND i.status = 'staged'
ORDER BY i.source_sha256, i.staged_at DESC, i.id DESC
