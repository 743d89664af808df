-- What a run staged (its staging_inventory rows with status 'staged'; rejected files are not
-- announced), per project: the datasets, the first %(max_keys)s staged keys, sorted, and the
-- project's and the run's totals (for its asset event).
WITH per_project AS (
    SELECT p.name AS project_name, p.prefix AS project_prefix,
           count(*) AS items,
           coalesce(sum(i.rows_ok), 0) AS rows_ok,
           coalesce(sum(i.rows_rejected), 0) AS rows_rejected,
           array_agg(DISTINCT i.dataset) AS datasets,
           (array_agg(i.output_key ORDER BY i.output_key))[1:%(max_keys)s] AS keys
    FROM staging_inventory i
    JOIN projects_registry p ON p.id = i.project_id
    WHERE i.run_id = %(run_id)s AND i.status = 'staged' AND i.output_bucket = %(bucket)s
    GROUP BY p.name, p.prefix
)
SELECT pp.*,
       count(pp.project_name) OVER () AS projects_total,
       sum(pp.items) OVER () AS all_items,
       sum(pp.rows_ok) OVER () AS all_rows_ok,
       sum(pp.rows_rejected) OVER () AS all_rows_rejected
FROM per_project pp
ORDER BY pp.project_name
LIMIT %(max_projects)s
