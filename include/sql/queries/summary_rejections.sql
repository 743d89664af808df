SELECT i.source_key, coalesce(i.reason, i.rows_rejected || ' rows quarantined to ' || i.quarantine_key) AS reason
FROM staging_inventory i JOIN projects_registry p ON p.id = i.project_id
WHERE p.name = %(project)s AND (i.status = 'rejected' OR i.rows_rejected > 0)
ORDER BY i.id DESC LIMIT 10
