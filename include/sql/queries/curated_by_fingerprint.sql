SELECT id, version, manifest_key FROM curated_inventory
WHERE project_id = %(project_id)s AND dataset = %(dataset)s AND inputs_fingerprint = %(fingerprint)s
