-- The double check, audit side: which checksums of a batch are already stored for the project.
SELECT s.id, s.sha256, s.md5, s.dest_bucket, s.dest_key, s.size_bytes
FROM storage_audit s
WHERE s.project_id = %(project_id)s AND s.sha256 = ANY(%(sha256)s::text[])
