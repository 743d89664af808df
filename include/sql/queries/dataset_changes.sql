-- The dataset versions (cuts) a run made, per project, as parallel arrays ordered by dataset and
-- version, with the rows of each cut (train + validation + test), for its asset event.
WITH cuts AS (
    SELECT p.name AS project_name, p.prefix AS project_prefix, d.dataset, d.version, d.prefix,
           d.manifest_key,
           (SELECT coalesce(sum(r.value::bigint), 0) FROM jsonb_each_text(d.rows) AS r) AS total_rows
    FROM dataset_inventory d
    JOIN projects_registry p ON p.id = d.project_id
    WHERE d.run_id = %(run_id)s AND d.bucket = %(bucket)s
), per_project AS (
    SELECT project_name, project_prefix,
           count(*) AS items,
           sum(total_rows) AS rows,
           array_agg(dataset ORDER BY dataset, version) AS version_datasets,
           array_agg(version ORDER BY dataset, version) AS versions,
           array_agg(prefix ORDER BY dataset, version) AS version_paths,
           array_agg(total_rows ORDER BY dataset, version) AS version_rows,
           array_agg(manifest_key ORDER BY dataset, version) AS keys
    FROM cuts
    GROUP BY project_name, project_prefix
)
SELECT pp.*,
       count(pp.project_name) OVER () AS projects_total,
       sum(pp.items) OVER () AS all_items,
       sum(pp.rows) OVER () AS all_rows
FROM per_project pp
ORDER BY pp.project_name
LIMIT %(max_projects)s
