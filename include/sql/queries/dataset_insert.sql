INSERT INTO dataset_inventory (
    project_id, dataset, version, curated_id, strategy, params, params_fingerprint, rows, bucket, prefix, files,
    manifest_key, manifest_sha256, run_id
) VALUES (
    %(project_id)s, %(dataset)s, %(version)s, %(curated_id)s, %(strategy)s, %(params)s::jsonb, %(fingerprint)s,
    %(rows)s::jsonb, %(bucket)s, %(prefix)s, %(files)s::jsonb, %(manifest_key)s, %(manifest_sha256)s,
    %(run_id)s
)
ON CONFLICT DO NOTHING
RETURNING id
