-- Transaction-scoped locks on a batch of (project, content|name) keys, taken in sorted order so two
-- concurrent runs can never deadlock; released at COMMIT/ROLLBACK.
SELECT pg_advisory_xact_lock(%(project_id)s::int, k)
FROM (SELECT DISTINCT unnest(%(lock_keys)s::int[]) AS k ORDER BY 1) AS keys
