-- reconcile: the report objects earlier reconcile runs wrote (one per run, named by every bucket row
-- of that run), so that a run never counts an earlier run's report as an orphan.
SELECT DISTINCT ON (r.report_bucket, r.report_key)
       r.report_bucket AS bucket,
       r.report_key AS key,
       r.report_bytes AS size_bytes,
       NULL::text AS etag,
       r.report_md5 AS md5,
       r.report_sha256 AS sha256,
       r.recorded_at,
       false AS deleted,
       r.id AS seq,
       'reconcile_report:' || r.id AS source
FROM meta.reconcile_report r
WHERE r.report_bucket = ANY(%(buckets)s::text[])
  AND (%(key_prefix)s::text IS NULL OR starts_with(r.report_key, %(key_prefix)s::text))
ORDER BY r.report_bucket, r.report_key, r.id
