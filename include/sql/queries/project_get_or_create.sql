-- Get a project by name, creating it with the given prefix if it does not exist yet.
WITH created AS (
    INSERT INTO projects_registry (name, prefix, created_run_id)
    SELECT %(name)s, %(prefix)s, %(run_id)s
    WHERE %(prefix)s::text IS NOT NULL
    ON CONFLICT (name) DO NOTHING
    RETURNING id, name, prefix, created_at, true AS created
)
SELECT id, name, prefix, created_at, created FROM created
UNION ALL
SELECT id, name, prefix, created_at, false FROM projects_registry WHERE name = %(name)s
LIMIT 1
