-- The Trilha page's search: the contents whose file name, key, sha256 or source id is %(q)s, or
-- whose file name starts with it (%(start)s, a LIKE pattern with its wildcards escaped), newest
-- first, one page at a time. Every arm is an index lookup (migration 007).
SELECT m.sha256, min(m.name) AS name, max(m.at) AS last_seen
FROM (
    SELECT r.sha256, r.file_name AS name, r.registered_at AS at FROM reception_audit r
     WHERE r.sha256 = %(q)s OR r.object_key = %(q)s OR r.source_ref = %(q)s OR r.file_name LIKE %(start)s
    UNION ALL
    SELECT s.sha256, s.logical_name, s.moved_at FROM storage_audit s
     WHERE s.sha256 = %(q)s OR s.dest_key = %(q)s OR s.logical_name LIKE %(start)s
    UNION ALL
    SELECT i.source_sha256, i.source_key, i.staged_at FROM staging_inventory i
     WHERE i.output_key = %(q)s OR i.quarantine_key = %(q)s
) m
WHERE m.sha256 IS NOT NULL
GROUP BY m.sha256
ORDER BY max(m.at) DESC, m.sha256
LIMIT %(limit)s OFFSET %(offset)s
