-- The Trilha page: what one run wrote, layer by layer, oldest first, one page at a time (through the
-- run_id indexes of migration 004). content_sha256: the content a reception, stored or staged row is
-- about (its trace); curated and dataset rows name their manifest.
SELECT o.layer, o.bucket, o.key, o.content_sha256, o.size_bytes, o.detail, o.at
FROM (
    SELECT 'reception' AS layer, r.bucket, r.object_key AS key, r.sha256 AS content_sha256, r.size_bytes,
           r.status AS detail, r.registered_at AS at
    FROM reception_audit r WHERE r.run_id = %(run_id)s
    UNION ALL
    SELECT 'stored', s.dest_bucket, s.dest_key, s.sha256, s.size_bytes, 'version ' || s.version, s.moved_at
    FROM storage_audit s WHERE s.run_id = %(run_id)s
    UNION ALL
    SELECT 'staged', coalesce(i.output_bucket, ''), coalesce(i.output_key, i.source_key), i.source_sha256, NULL,
           i.status || ', rows ok ' || i.rows_ok || ', quarantined ' || i.rows_rejected, i.staged_at
    FROM staging_inventory i WHERE i.run_id = %(run_id)s
    UNION ALL
    SELECT 'curated', c.bucket, c.manifest_key, NULL, NULL, c.dataset || ' ' || c.version || ', ' || c.rows || ' rows',
           c.created_at
    FROM curated_inventory c WHERE c.run_id = %(run_id)s
    UNION ALL
    SELECT 'dataset', d.bucket, d.manifest_key, NULL, NULL, d.dataset || ' ' || d.version, d.created_at
    FROM dataset_inventory d WHERE d.run_id = %(run_id)s
) o
ORDER BY o.at, o.layer, o.key
LIMIT %(limit)s OFFSET %(offset)s
