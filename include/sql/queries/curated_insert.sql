INSERT INTO curated_inventory (
    project_id, dataset, version, inputs_fingerprint, inputs_count, rows, bucket, prefix, inputs, files,
    manifest_key, manifest_sha256, run_id, table_format, tables, objects
) VALUES (
    %(project_id)s, %(dataset)s, %(version)s, %(fingerprint)s, %(inputs_count)s, %(rows)s, %(bucket)s,
    %(prefix)s, %(inputs)s::jsonb, %(files)s::jsonb, %(manifest_key)s, %(manifest_sha256)s, %(run_id)s,
    %(table_format)s, %(tables)s::jsonb, %(objects)s::jsonb
)
ON CONFLICT DO NOTHING
RETURNING id
