-- What a run registered in reception_audit for promotion (new and duplicate rows; rejections are not
-- announced), per project: a key belongs to the project whose prefix is its first segment (NULL
-- project: under no registered project). The first %(max_keys)s keys of each project, sorted, with
-- the project's and the run's totals; the asset event's extra is built from these rows.
WITH changed AS (
    SELECT p.name AS project_name, p.prefix AS project_prefix, r.object_key, r.status, r.size_bytes
    FROM reception_audit r
    LEFT JOIN projects_registry p
      ON strpos(r.object_key, '/') > 0 AND p.prefix = split_part(r.object_key, '/', 1)
    WHERE r.bucket = %(bucket)s AND r.run_id = %(run_id)s AND r.status IN ('new', 'duplicate')
), per_project AS (
    SELECT project_name, project_prefix,
           count(*) AS items,
           count(*) FILTER (WHERE status = 'new') AS new,
           count(*) FILTER (WHERE status = 'duplicate') AS duplicate,
           coalesce(sum(size_bytes), 0) AS bytes,
           (array_agg(object_key ORDER BY object_key))[1:%(max_keys)s] AS keys
    FROM changed
    GROUP BY project_name, project_prefix
)
SELECT pp.*,
       count(pp.project_name) OVER () AS projects_total,
       sum(pp.items) OVER () AS all_items,
       sum(pp.new) OVER () AS all_new,
       sum(pp.duplicate) OVER () AS all_duplicate,
       sum(pp.bytes) OVER () AS all_bytes
FROM per_project pp
ORDER BY pp.project_name NULLS LAST
LIMIT %(max_projects)s
