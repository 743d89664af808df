-- The latest curated version of a project's dataset: what the next version builds on (read by the plan,
-- and again inside record_curated's transaction, under the version lock).
SELECT c.id, c.version, c.table_format, c.tables, c.inputs
FROM curated_inventory c
WHERE c.project_id = %(project_id)s AND c.dataset = %(dataset)s
ORDER BY c.created_at DESC, c.id DESC
LIMIT 1
