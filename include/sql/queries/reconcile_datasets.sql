-- reconcile: what the audit says the dataset buckets hold: every split file of each version (its
-- files JSONB: key, sha256, bytes) and the version's manifest.
SELECT d.bucket,
       f.key,
       f.size_bytes,
       NULL::text AS etag,
       NULL::text AS md5,
       f.sha256,
       d.created_at AS recorded_at,
       false AS deleted,
       d.id AS seq,
       'dataset_inventory:' || d.id || ' (' || f.what || ')' AS source
FROM dataset_inventory d
CROSS JOIN LATERAL (
    SELECT t.value ->> 'key' AS key, (t.value ->> 'bytes')::bigint AS size_bytes,
           t.value ->> 'sha256' AS sha256, t.name AS what
    FROM jsonb_each(d.files) AS t(name, value)
    UNION ALL
    SELECT d.manifest_key, NULL::bigint, d.manifest_sha256, 'manifest'
) AS f
WHERE d.bucket = ANY(%(buckets)s::text[])
  AND (%(key_prefix)s::text IS NULL OR starts_with(f.key, %(key_prefix)s::text))
