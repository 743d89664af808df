UPDATE reception_audit SET deleted_at = now()
WHERE id = ANY(%(ids)s::bigint[]) AND deleted_at IS NULL
