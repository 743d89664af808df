-- The Trilha page: one staging row, by id (to read its quarantine object).
SELECT i.id, i.source_key, i.source_sha256, i.output_bucket, i.quarantine_key, i.quarantine_sha256,
       i.rows_rejected
FROM staging_inventory i WHERE i.id = %(id)s
