-- reconcile: what the audit says the staging buckets hold: the output of every staged row, and its
-- quarantine when it has one (same bucket). The inventory records their sha256, not their size.
SELECT i.output_bucket AS bucket,
       o.key,
       NULL::bigint AS size_bytes,
       NULL::text AS etag,
       NULL::text AS md5,
       o.sha256,
       i.staged_at AS recorded_at,
       false AS deleted,
       i.id AS seq,
       'staging_inventory:' || i.id || o.what AS source
FROM staging_inventory i
CROSS JOIN LATERAL (
    VALUES (i.output_key, i.output_sha256, ''), (i.quarantine_key, i.quarantine_sha256, ' (quarantine)')
) AS o(key, sha256, what)
WHERE i.status = 'staged'
  AND o.key IS NOT NULL
  AND i.output_bucket = ANY(%(buckets)s::text[])
  AND (%(key_prefix)s::text IS NULL OR starts_with(o.key, %(key_prefix)s::text))
