-- reconcile: what the audit says the reception buckets hold. Every row of reception_audit, deleted
-- ones too: per key, the row whose ETag the object has wins, else the latest (trilha.domain.drift), and a
-- latest row that records a deletion says the object is expected gone. A rejected row describes the
-- object by ETag and size only (its digest may be of bytes read while the object changed).
SELECT r.bucket,
       r.object_key AS key,
       r.size_bytes,
       r.etag,
       CASE WHEN r.status = 'rejected' THEN NULL ELSE r.md5 END AS md5,
       CASE WHEN r.status = 'rejected' THEN NULL ELSE r.sha256 END AS sha256,
       coalesce(r.deleted_at, r.registered_at) AS recorded_at,
       r.deleted_at IS NOT NULL AS deleted,
       r.id AS seq,
       'reception_audit:' || r.id AS source
FROM reception_audit r
WHERE r.bucket = ANY(%(buckets)s::text[])
  AND (%(key_prefix)s::text IS NULL OR starts_with(r.object_key, %(key_prefix)s::text))
