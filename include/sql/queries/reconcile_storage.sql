-- reconcile: what the audit says the storage buckets hold: every storage_audit row (size, md5 and
-- sha256 of a verified copy).
SELECT s.dest_bucket AS bucket,
       s.dest_key AS key,
       s.size_bytes,
       NULL::text AS etag,
       s.md5,
       s.sha256,
       s.moved_at AS recorded_at,
       false AS deleted,
       s.id AS seq,
       'storage_audit:' || s.id AS source
FROM storage_audit s
WHERE s.dest_bucket = ANY(%(buckets)s::text[])
  AND (%(key_prefix)s::text IS NULL OR starts_with(s.dest_key, %(key_prefix)s::text))
