-- Stored raw files not yet staged by the current code version (rejections count as staged: a file
-- that failed is retried only when the code changes). %(keys)s (NULL: every key) narrows a run to
-- the stored keys its asset events named; %(storage_ids)s (NULL: every file) to one mapped batch.
SELECT s.id AS storage_audit_id, s.project_id, p.prefix AS project_prefix, p.name AS project_name,
       s.dest_bucket, s.dest_key, s.logical_name, s.sha256, s.size_bytes
FROM storage_audit s
JOIN projects_registry p ON p.id = s.project_id
WHERE (%(project)s::text IS NULL OR p.name = %(project)s)
  AND left(s.dest_key, length(%(key_prefix)s)) = %(key_prefix)s
  AND (%(keys)s::text[] IS NULL OR s.dest_key = ANY(%(keys)s::text[]))
  AND (%(storage_ids)s::bigint[] IS NULL OR s.id = ANY(%(storage_ids)s::bigint[]))
  AND NOT EXISTS (
      SELECT 1 FROM staging_inventory i
      WHERE i.project_id = s.project_id AND i.source_sha256 = s.sha256 AND i.code_version = %(code_version)s
  )
ORDER BY s.id
