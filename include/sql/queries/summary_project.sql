-- What the lake holds for one project, layer by layer.
WITH p AS (SELECT id, name, prefix FROM projects_registry WHERE name = %(project)s)
SELECT
  (SELECT name FROM p) AS project, (SELECT prefix FROM p) AS prefix,
  (SELECT count(*) FROM reception_audit r WHERE left(r.object_key, length((SELECT prefix FROM p)) + 1) = (SELECT prefix FROM p) || '/') AS reception_objects,
  (SELECT count(*) FROM reception_audit r WHERE r.status = 'rejected' AND left(r.object_key, length((SELECT prefix FROM p)) + 1) = (SELECT prefix FROM p) || '/') AS reception_rejected,
  (SELECT count(*) FROM storage_audit s WHERE s.project_id = (SELECT id FROM p)) AS stored_files,
  (SELECT coalesce(sum(size_bytes), 0) FROM storage_audit s WHERE s.project_id = (SELECT id FROM p)) AS stored_bytes,
  (SELECT count(*) FROM staging_inventory i WHERE i.project_id = (SELECT id FROM p) AND i.status = 'staged') AS staged_files,
  (SELECT count(*) FROM staging_inventory i WHERE i.project_id = (SELECT id FROM p) AND i.status = 'rejected') AS staging_rejected_files,
  (SELECT coalesce(sum(rows_in), 0) FROM staging_inventory i WHERE i.project_id = (SELECT id FROM p)) AS rows_in,
  (SELECT coalesce(sum(rows_ok), 0) FROM staging_inventory i WHERE i.project_id = (SELECT id FROM p)) AS rows_staged,
  (SELECT coalesce(sum(rows_rejected), 0) FROM staging_inventory i WHERE i.project_id = (SELECT id FROM p)) AS rows_quarantined
