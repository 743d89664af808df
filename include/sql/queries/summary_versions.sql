SELECT 'curated' AS kind, c.dataset, c.version, c.bucket, c.prefix, c.rows::text AS rows, c.created_at
FROM curated_inventory c JOIN projects_registry p ON p.id = c.project_id WHERE p.name = %(project)s
UNION ALL
SELECT 'dataset', d.dataset, d.version, d.bucket, d.prefix, d.rows::text, d.created_at
FROM dataset_inventory d JOIN projects_registry p ON p.id = d.project_id WHERE p.name = %(project)s
ORDER BY created_at DESC
