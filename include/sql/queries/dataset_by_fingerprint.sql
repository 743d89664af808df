SELECT id, version, manifest_key FROM dataset_inventory
WHERE curated_id = %(curated_id)s AND params_fingerprint = %(fingerprint)s
