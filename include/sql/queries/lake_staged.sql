-- The Trilha page: the staging rows of these contents (rows in / ok / rejected, quarantine object).
SELECT i.id, p.name AS project, i.source_bucket, i.source_key, i.source_sha256, i.code_version, i.dataset,
       i.layout, i.status, i.reason, i.rows_in, i.rows_ok, i.rows_rejected, i.output_bucket, i.output_key,
       i.quarantine_key, i.quarantine_sha256, i.run_id, i.staged_at
FROM staging_inventory i JOIN projects_registry p ON p.id = i.project_id
WHERE i.source_sha256 = ANY(%(sha256)s::text[])
ORDER BY i.staged_at DESC, i.id DESC
LIMIT %(limit)s
