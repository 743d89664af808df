-- The Trilha page: every project with its files and bytes per layer, rows quarantined and its newest
-- curated and dataset versions. Reception: the live objects (not deleted by cleanup) under the
-- project's prefix; staging: the latest staging of each content. One pass over each audit table,
-- grouped by project; the number of projects is small, the files are not.
WITH rec AS (
    SELECT split_part(r.object_key, '/', 1) AS prefix, count(*) AS files, sum(r.size_bytes) AS bytes
    FROM reception_audit r
    WHERE r.bucket = %(reception_bucket)s AND r.deleted_at IS NULL
    GROUP BY 1
),
sto AS (
    SELECT s.project_id, count(*) AS files, sum(s.size_bytes) AS bytes
    FROM storage_audit s GROUP BY s.project_id
),
stg AS (
    SELECT l.project_id,
           count(*) FILTER (WHERE l.status = 'staged') AS files,
           count(*) FILTER (WHERE l.status = 'rejected') AS rejected_files,
           sum(l.rows_in) AS rows_in, sum(l.rows_ok) AS rows_ok, sum(l.rows_rejected) AS rows_quarantined
    FROM (
        SELECT DISTINCT ON (i.project_id, i.source_sha256) i.project_id, i.status, i.rows_in, i.rows_ok,
               i.rows_rejected
        FROM staging_inventory i
        ORDER BY i.project_id, i.source_sha256, i.staged_at DESC, i.id DESC
    ) l
    GROUP BY l.project_id
),
cur AS (
    SELECT DISTINCT ON (c.project_id) c.project_id, c.dataset, c.version, c.rows, c.run_id, c.created_at,
           (SELECT count(*) FROM jsonb_each(c.files)) AS files,
           (SELECT sum((f.value ->> 'bytes')::bigint) FROM jsonb_each(c.files) f) AS bytes,
           (SELECT count(*) FROM curated_inventory a WHERE a.project_id = c.project_id) AS versions
    FROM curated_inventory c
    ORDER BY c.project_id, c.created_at DESC, c.id DESC
),
dst AS (
    SELECT DISTINCT ON (d.project_id) d.project_id, d.dataset, d.version, d.rows, d.run_id, d.created_at,
           (SELECT count(*) FROM jsonb_each(d.files)) AS files,
           (SELECT sum((f.value ->> 'bytes')::bigint) FROM jsonb_each(d.files) f) AS bytes,
           (SELECT count(*) FROM dataset_inventory a WHERE a.project_id = d.project_id) AS versions
    FROM dataset_inventory d
    ORDER BY d.project_id, d.created_at DESC, d.id DESC
)
SELECT p.name AS project, p.prefix, p.created_at,
       coalesce(rec.files, 0) AS reception_files, coalesce(rec.bytes, 0) AS reception_bytes,
       coalesce(sto.files, 0) AS stored_files, coalesce(sto.bytes, 0) AS stored_bytes,
       coalesce(stg.files, 0) AS staged_files, coalesce(stg.rejected_files, 0) AS staging_rejected_files,
       coalesce(stg.rows_in, 0) AS rows_in, coalesce(stg.rows_ok, 0) AS rows_ok,
       coalesce(stg.rows_quarantined, 0) AS rows_quarantined,
       cur.dataset AS curated_dataset, cur.version AS curated_version, cur.rows AS curated_rows,
       cur.run_id AS curated_run_id, cur.created_at AS curated_at, coalesce(cur.files, 0) AS curated_files,
       coalesce(cur.bytes, 0) AS curated_bytes, coalesce(cur.versions, 0) AS curated_versions,
       dst.dataset AS dataset_name, dst.version AS dataset_version, dst.rows AS dataset_rows,
       dst.run_id AS dataset_run_id, dst.created_at AS dataset_at, coalesce(dst.files, 0) AS dataset_files,
       coalesce(dst.bytes, 0) AS dataset_bytes, coalesce(dst.versions, 0) AS dataset_versions
FROM projects_registry p
LEFT JOIN rec ON rec.prefix = p.prefix
LEFT JOIN sto ON sto.project_id = p.id
LEFT JOIN stg ON stg.project_id = p.id
LEFT JOIN cur ON cur.project_id = p.id
LEFT JOIN dst ON dst.project_id = p.id
WHERE (%(name)s::text IS NULL OR p.name = %(name)s)
ORDER BY p.name
LIMIT %(limit)s OFFSET %(offset)s
