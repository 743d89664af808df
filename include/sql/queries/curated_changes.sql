-- The curated versions a run made, per project, as parallel arrays ordered by dataset and version:
-- a run makes at most one version per dataset, so these stay short (for its asset event).
WITH per_project AS (
    SELECT p.name AS project_name, p.prefix AS project_prefix,
           count(*) AS items,
           coalesce(sum(c.rows), 0) AS rows,
           array_agg(c.dataset ORDER BY c.dataset, c.version) AS version_datasets,
           array_agg(c.version ORDER BY c.dataset, c.version) AS versions,
           array_agg(c.prefix ORDER BY c.dataset, c.version) AS version_paths,
           array_agg(c.rows ORDER BY c.dataset, c.version) AS version_rows,
           array_agg(c.manifest_key ORDER BY c.dataset, c.version) AS keys
    FROM curated_inventory c
    JOIN projects_registry p ON p.id = c.project_id
    WHERE c.run_id = %(run_id)s AND c.bucket = %(bucket)s
    GROUP BY p.name, p.prefix
)
SELECT pp.*,
       count(pp.project_name) OVER () AS projects_total,
       sum(pp.items) OVER () AS all_items,
       sum(pp.rows) OVER () AS all_rows
FROM per_project pp
ORDER BY pp.project_name
LIMIT %(max_projects)s
