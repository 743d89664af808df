-- The cut of a curated version with these parameters, if it was made.
SELECT id, version, bucket, prefix, files, manifest_key, manifest_sha256, drive_folder_id
FROM dataset_inventory
WHERE curated_id = %(curated_id)s AND params_fingerprint = %(fingerprint)s
