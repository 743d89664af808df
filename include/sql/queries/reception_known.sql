-- Which (key, ETag) pairs of a listing page are already registered: one round trip per page.
SELECT r.id, r.object_key, r.etag, r.status, r.reason, r.sha256, r.md5, r.size_bytes, r.uploaded_at,
       r.deleted_at
FROM unnest(%(keys)s::text[], %(etags)s::text[]) AS k(object_key, etag)
JOIN reception_audit r
  ON r.bucket = %(bucket)s AND r.object_key = k.object_key AND r.etag = k.etag AND r.deleted_at IS NULL
