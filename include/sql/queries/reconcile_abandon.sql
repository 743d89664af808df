-- reconcile: mark task runs whose process is gone as abandoned, with the time and why (kept in error
-- when the row has none). A row that finished meanwhile is not 'running' any more and is left alone.
UPDATE meta.audit_log a
SET status = 'abandoned',
    abandoned_at = %(now)s,
    error = coalesce(a.error, 'abandoned: ' || u.reason)
FROM unnest(%(ids)s::bigint[], %(reasons)s::text[]) AS u(id, reason)
WHERE a.id = u.id AND a.status = 'running'
RETURNING a.id
