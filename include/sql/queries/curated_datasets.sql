-- Datasets with staged data, per project. %(datasets)s (NULL: every dataset) narrows a run to the
-- datasets its asset events named.
SELECT DISTINCT p.id AS project_id, p.name AS project_name, p.prefix AS project_prefix, i.dataset
FROM staging_inventory i JOIN projects_registry p ON p.id = i.project_id
WHERE i.status = 'staged' AND (%(project)s::text IS NULL OR p.name = %(project)s)
  AND (%(dataset)s::text IS NULL OR i.dataset = %(dataset)s)
  AND (%(datasets)s::text[] IS NULL OR i.dataset = ANY(%(datasets)s::text[]))
ORDER BY p.name, i.dataset
