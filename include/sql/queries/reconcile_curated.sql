-- reconcile: what the audit says the curated buckets hold: every table of each version (its files
-- JSONB: key, sha256, bytes) and the version's manifest.
SELECT c.bucket,
       f.key,
       f.size_bytes,
       NULL::text AS etag,
       NULL::text AS md5,
       f.sha256,
       c.created_at AS recorded_at,
       false AS deleted,
       c.id AS seq,
       'curated_inventory:' || c.id || ' (' || f.what || ')' AS source
FROM curated_inventory c
CROSS JOIN LATERAL (
    SELECT t.value ->> 'key' AS key, (t.value ->> 'bytes')::bigint AS size_bytes,
           t.value ->> 'sha256' AS sha256, t.name AS what
    FROM jsonb_each(c.files) AS t(name, value)
    UNION ALL
    SELECT c.manifest_key, NULL::bigint, c.manifest_sha256, 'manifest'
) AS f
WHERE c.bucket = ANY(%(buckets)s::text[])
  AND (%(key_prefix)s::text IS NULL OR starts_with(f.key, %(key_prefix)s::text))
