-- reconcile: what the audit says the curated buckets hold: every table of each version (its files
-- JSONB: key, sha256, bytes; v0001-style versions), every object an Iceberg version's commits wrote
-- (its objects JSONB: key, bytes, etag) and the version's manifest.
SELECT c.bucket,
       f.key,
       f.size_bytes,
       f.etag,
       NULL::text AS md5,
       f.sha256,
       c.created_at AS recorded_at,
       false AS deleted,
       c.id AS seq,
       'curated_inventory:' || c.id || ' (' || f.what || ')' AS source
FROM curated_inventory c
CROSS JOIN LATERAL (
    SELECT t.value ->> 'key' AS key, (t.value ->> 'bytes')::bigint AS size_bytes,
           t.value ->> 'sha256' AS sha256, NULL::text AS etag, t.name AS what
    FROM jsonb_each(c.files) AS t(name, value)
    UNION ALL
    SELECT o.value ->> 'key', (o.value ->> 'bytes')::bigint, NULL::text, o.value ->> 'etag', 'iceberg file'
    FROM jsonb_array_elements(c.objects) AS o(value)
    UNION ALL
    SELECT c.manifest_key, NULL::bigint, c.manifest_sha256, NULL::text, 'manifest'
) AS f
WHERE c.bucket = ANY(%(buckets)s::text[])
  AND (%(key_prefix)s::text IS NULL OR starts_with(f.key, %(key_prefix)s::text))
