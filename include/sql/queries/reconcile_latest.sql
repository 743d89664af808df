-- The latest reconcile report of each bucket (python -m trilha.ops.trace summary). With a project prefix:
-- the latest that covered that project (a run over every project, or over this one).
SELECT DISTINCT ON (r.bucket)
       r.bucket, r.layers, r.run_id, r.project_prefix, r.checked_at, r.counts, r.drift_total,
       r.report_bucket, r.report_key
FROM meta.reconcile_report r
WHERE %(project_prefix)s::text IS NULL OR r.project_prefix IS NULL OR r.project_prefix = %(project_prefix)s
ORDER BY r.bucket, r.checked_at DESC, r.id DESC
