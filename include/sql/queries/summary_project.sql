-- What the lake holds for one project, layer by layer (staging: the latest staging of each content).
WITH p AS (SELECT id, name, prefix FROM projects_registry WHERE name = %(project)s),
staged AS (
    SELECT DISTINCT ON (i.source_sha256) i.*
    FROM staging_inventory i WHERE i.project_id = (SELECT id FROM p)
    ORDER BY i.source_sha256, i.staged_at DESC, i.id DESC
),
reception AS (
    SELECT r.* FROM reception_audit r, p WHERE left(r.object_key, length(p.prefix) + 1) = p.prefix || '/'
)
SELECT
  (SELECT name FROM p) AS project,
  (SELECT prefix FROM p) AS prefix,
  (SELECT count(*) FROM reception) AS reception_objects,
  (SELECT count(*) FROM reception WHERE status = 'rejected') AS reception_rejected,
  (SELECT count(*) FROM storage_audit s WHERE s.project_id = (SELECT id FROM p)) AS stored_files,
  (SELECT coalesce(sum(size_bytes), 0) FROM storage_audit s WHERE s.project_id = (SELECT id FROM p)) AS stored_bytes,
  (SELECT count(*) FROM staged WHERE status = 'staged') AS staged_files,
  (SELECT count(*) FROM staged WHERE status = 'rejected') AS staging_rejected_files,
  (SELECT coalesce(sum(rows_in), 0) FROM staged) AS rows_in,
  (SELECT coalesce(sum(rows_ok), 0) FROM staged) AS rows_staged,
  (SELECT coalesce(sum(rows_rejected), 0) FROM staged) AS rows_quarantined
