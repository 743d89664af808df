-- The layouts staging detected in one project's files (the latest staging of each content).
WITH staged AS (
    SELECT DISTINCT ON (i.source_sha256) i.*
    FROM staging_inventory i
    WHERE i.project_id = (SELECT id FROM projects_registry WHERE name = %(project)s)
    ORDER BY i.source_sha256, i.staged_at DESC, i.id DESC
)
SELECT coalesce(dataset, '') AS dataset, coalesce(layout, 'none') AS layout, count(*) AS files,
       coalesce(sum(rows_ok), 0) AS rows
FROM staged
WHERE status = 'staged'
GROUP BY 1, 2
ORDER BY 1, 2
