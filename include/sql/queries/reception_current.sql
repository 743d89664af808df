-- Cleanup's view of a listing page: for each key, the row of its current ETag, else the key's latest
-- row, so that an object re-uploaded with other bytes reads as "changed since audit" rather than as
-- never audited. One round trip per page.
SELECT DISTINCT ON (k.object_key)
       r.id, r.object_key, r.etag, r.status, r.reason, r.sha256, r.md5, r.size_bytes, r.uploaded_at,
       r.deleted_at
FROM unnest(%(keys)s::text[], %(etags)s::text[]) AS k(object_key, etag)
JOIN reception_audit r
  ON r.bucket = %(bucket)s AND r.object_key = k.object_key
ORDER BY k.object_key, (r.etag = k.etag) DESC, (r.deleted_at IS NULL) DESC, r.id DESC
