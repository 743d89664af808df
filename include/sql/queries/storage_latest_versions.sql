-- Latest stored version of each logical name of a batch, to number new versions.
SELECT DISTINCT ON (s.logical_name) s.logical_name, s.version, s.sha256
FROM storage_audit s
WHERE s.project_id = %(project_id)s AND s.logical_name = ANY(%(names)s::text[])
ORDER BY s.logical_name, s.version DESC
