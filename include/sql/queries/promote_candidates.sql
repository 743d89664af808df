-- Registered reception objects to consider for promotion (not rejected, not cleaned up). A row whose
-- key was registered again later with another ETag describes bytes that are no longer in reception
-- (the object was overwritten): the newer row is the candidate, the superseded one stays as history.
-- %(keys)s (NULL: every key under the prefix) narrows a run to the keys its asset events named.
SELECT r.id, r.bucket, r.object_key, r.sha256, r.md5, r.size_bytes, r.etag, r.status
FROM reception_audit r
WHERE r.bucket = %(bucket)s
  AND r.status IN ('new', 'duplicate')
  AND r.deleted_at IS NULL
  AND left(r.object_key, length(%(key_prefix)s)) = %(key_prefix)s
  AND (%(keys)s::text[] IS NULL OR r.object_key = ANY(%(keys)s::text[]))
  AND NOT EXISTS (
      SELECT 1 FROM reception_audit n
      WHERE n.bucket = r.bucket AND n.object_key = r.object_key AND n.id > r.id
  )
ORDER BY r.id
