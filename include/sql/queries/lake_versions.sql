-- The Trilha page: the version history (meta.version_history) of every name these contents were
-- stored under, newest version first.
SELECT p.name AS project, v.logical_name, v.version, v.sha256, v.previous_sha256, v.dest_key, v.run_id,
       v.created_at
FROM meta.version_history v JOIN projects_registry p ON p.id = v.project_id
WHERE (v.project_id, v.logical_name) IN (
    SELECT s.project_id, s.logical_name FROM storage_audit s WHERE s.sha256 = ANY(%(sha256)s::text[])
)
ORDER BY p.name, v.logical_name, v.version DESC
LIMIT %(limit)s
