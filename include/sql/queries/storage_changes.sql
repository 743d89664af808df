-- What a run promoted into storage (its storage_audit rows), per project: the first %(max_keys)s
-- stored keys of each project, sorted, with the project's and the run's totals (for its asset event).
WITH per_project AS (
    SELECT p.name AS project_name, p.prefix AS project_prefix,
           count(*) AS items,
           count(*) FILTER (WHERE s.version > 1) AS new_versions,
           coalesce(sum(s.size_bytes), 0) AS bytes,
           (array_agg(s.dest_key ORDER BY s.dest_key))[1:%(max_keys)s] AS keys
    FROM storage_audit s
    JOIN projects_registry p ON p.id = s.project_id
    WHERE s.run_id = %(run_id)s AND s.dest_bucket = %(bucket)s
    GROUP BY p.name, p.prefix
)
SELECT pp.*,
       count(pp.project_name) OVER () AS projects_total,
       sum(pp.items) OVER () AS all_items,
       sum(pp.new_versions) OVER () AS all_new_versions,
       sum(pp.bytes) OVER () AS all_bytes
FROM per_project pp
ORDER BY pp.project_name
LIMIT %(max_projects)s
