-- 007: the indexes of the Trilha page in the Airflow UI (issue 17). Its search finds a content by file
-- name (exact, or by the start of the name), key, sha256 or source id at every layer, and each arm
-- of that search is an index lookup; the last run of each DAG and the DAG of a run id are too.

CREATE INDEX audit_log_dag_started_idx ON meta.audit_log (dag_id, started_at DESC);
CREATE INDEX audit_log_run_id_idx ON meta.audit_log (run_id);
-- text_pattern_ops: a LIKE 'start%' search uses these whatever the database's collation.
CREATE INDEX reception_audit_file_name_idx ON reception_audit (file_name text_pattern_ops);
CREATE INDEX storage_audit_logical_name_idx ON storage_audit (logical_name text_pattern_ops);
-- The existing (bucket, key) indexes lead with the bucket; the search does not know it.
CREATE INDEX reception_audit_object_key_idx ON reception_audit (object_key);
CREATE INDEX reception_audit_source_ref_idx ON reception_audit (source_ref);
CREATE INDEX storage_audit_dest_key_idx ON storage_audit (dest_key);
CREATE INDEX staging_inventory_source_sha256_idx ON staging_inventory (source_sha256);
CREATE INDEX staging_inventory_output_key_idx ON staging_inventory (output_key);
CREATE INDEX staging_inventory_quarantine_key_idx ON staging_inventory (quarantine_key);
