-- A curated version of a project's dataset: the one named, or the latest.
SELECT c.id, c.version, c.bucket, c.prefix, c.files, c.manifest_key, c.manifest_sha256, c.rows,
       c.table_format, c.tables, c.dataset,
       p.id AS project_id, p.name AS project_name, p.prefix AS project_prefix
FROM curated_inventory c JOIN projects_registry p ON p.id = c.project_id
WHERE p.name = %(project)s AND c.dataset = %(dataset)s
  AND (%(version)s::text IS NULL OR c.version = %(version)s)
ORDER BY c.created_at DESC, c.id DESC
LIMIT 1
