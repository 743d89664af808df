-- Every content (sha256) a name, key, checksum or source id refers to, at any layer.
SELECT sha256 FROM reception_audit
 WHERE sha256 = %(q)s OR object_key = %(q)s OR file_name = %(q)s OR source_ref = %(q)s
UNION
SELECT sha256 FROM storage_audit WHERE sha256 = %(q)s OR dest_key = %(q)s OR logical_name = %(q)s
UNION
SELECT source_sha256 FROM staging_inventory WHERE output_key = %(q)s OR quarantine_key = %(q)s
