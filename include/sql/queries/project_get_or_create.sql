-- Get a project by name, creating it with the given prefix if it does not exist yet. The conflict arm
-- is DO UPDATE (a no-op assignment) so that a project created by a concurrent run, committed after this
-- statement's snapshot, is still returned instead of nothing; xmax = 0 only on a row inserted here.
WITH created AS (
    INSERT INTO projects_registry AS p (name, prefix, created_run_id)
    SELECT %(name)s, %(prefix)s, %(run_id)s
    WHERE %(prefix)s::text IS NOT NULL
    ON CONFLICT (name) DO UPDATE SET name = p.name
    RETURNING p.id, p.name, p.prefix, p.created_at, (p.xmax = 0) AS created
)
SELECT id, name, prefix, created_at, created FROM created
UNION ALL
SELECT id, name, prefix, created_at, false FROM projects_registry WHERE name = %(name)s
LIMIT 1
