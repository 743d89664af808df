-- The path of a set of contents through the lake, one row per event, oldest first.
SELECT 'reception' AS layer, r.sha256, r.bucket, r.object_key AS key, r.status AS detail,
       coalesce(r.source_kind || ':' || r.source_ref, '') AS source, r.run_id, r.registered_at AS at
FROM reception_audit r WHERE r.sha256 = ANY(%(sha256)s::text[])
UNION ALL
SELECT 'deleted from reception', r.sha256, r.bucket, r.object_key, 'verified copy in storage', '', c.run_id,
       c.decided_at
FROM reception_audit r JOIN meta.cleanup_log c ON c.reception_audit_id = r.id AND c.action = 'deleted'
WHERE r.sha256 = ANY(%(sha256)s::text[])
UNION ALL
SELECT 'stored', s.sha256, s.dest_bucket, s.dest_key, 'project ' || s.project_name || ' v' || s.version,
       s.source_bucket || '/' || s.source_key, s.run_id, s.moved_at
FROM storage_audit s WHERE s.sha256 = ANY(%(sha256)s::text[])
UNION ALL
SELECT 'staged', i.source_sha256, coalesce(i.output_bucket, ''), coalesce(i.output_key, ''),
       i.status || ' ' || coalesce(i.dataset, '') || coalesce(' layout ' || i.layout, '')
       || ' rows ok ' || i.rows_ok || ', quarantined ' || i.rows_rejected
       || coalesce(' (' || i.reason || ')', ''), i.source_key, i.run_id, i.staged_at
FROM staging_inventory i WHERE i.source_sha256 = ANY(%(sha256)s::text[])
UNION ALL
SELECT 'curated', x.sha, c.bucket, c.manifest_key,
       c.dataset || ' ' || c.version || ', ' || c.rows || ' rows'
       || coalesce(', snapshots ' || (SELECT string_agg(t.key || '@' || (t.value ->> 'snapshot_id'), ' ' ORDER BY t.key)
                                      FROM jsonb_each(c.tables) AS t), ''),
       '', c.run_id, c.created_at
FROM curated_inventory c
CROSS JOIN LATERAL (SELECT e->>'source_sha256' AS sha FROM jsonb_array_elements(c.inputs) e) x
WHERE x.sha = ANY(%(sha256)s::text[])
UNION ALL
SELECT 'dataset', x.sha, d.bucket, d.manifest_key, d.dataset || ' ' || d.version || ' ' || d.rows::text, c.version,
       d.run_id, d.created_at
FROM dataset_inventory d JOIN curated_inventory c ON c.id = d.curated_id
CROSS JOIN LATERAL (SELECT e->>'source_sha256' AS sha FROM jsonb_array_elements(c.inputs) e) x
WHERE x.sha = ANY(%(sha256)s::text[])
ORDER BY sha256, at
