-- Registered reception objects to consider for promotion (not rejected, not cleaned up).
SELECT r.id, r.bucket, r.object_key, r.sha256, r.md5, r.size_bytes, r.etag, r.status
FROM reception_audit r
WHERE r.bucket = %(bucket)s
  AND r.status IN ('new', 'duplicate')
  AND r.deleted_at IS NULL
  AND left(r.object_key, length(%(key_prefix)s)) = %(key_prefix)s
ORDER BY r.id
