-- reconcile: one row per bucket of a run, all naming the run's JSON report object.
INSERT INTO meta.reconcile_report (run_id, project_prefix, bucket, layers, checked_at, grace_minutes, rehash,
                                   counts, drift, drift_total, report_bucket, report_key, report_sha256,
                                   report_md5, report_bytes)
SELECT %(run_id)s, %(project_prefix)s, u.bucket, string_to_array(u.layers, ','), %(checked_at)s,
       %(grace_minutes)s, %(rehash)s, u.counts::jsonb, u.drift::jsonb, u.drift_total, %(report_bucket)s,
       %(report_key)s, %(report_sha256)s, %(report_md5)s, %(report_bytes)s
FROM unnest(%(buckets)s::text[], %(layers)s::text[], %(counts)s::text[], %(drift)s::text[],
            %(drift_totals)s::int[]) AS u(bucket, layers, counts, drift, drift_total)
RETURNING id, bucket
