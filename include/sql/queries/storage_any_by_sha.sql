-- Where content is stored, in any project (cleanup's condition 2).
SELECT DISTINCT ON (s.sha256) s.id, s.sha256, s.md5, s.size_bytes, s.dest_bucket, s.dest_key
FROM storage_audit s
WHERE s.sha256 = ANY(%(sha256)s::text[])
ORDER BY s.sha256, s.id
