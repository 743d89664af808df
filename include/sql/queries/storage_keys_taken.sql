-- Which planned destination keys already belong to a storage_audit row (of any content): a new
-- version must never land on them. One round trip for a batch.
SELECT s.dest_key
FROM storage_audit s
WHERE s.dest_bucket = %(bucket)s AND s.dest_key = ANY(%(keys)s::text[])
