-- What a DAG run added to a layer is looked up by run id when the run announces it (the asset
-- event's extra, include/sql/queries/*_changes.sql): an index per table that a producer writes.
CREATE INDEX reception_audit_run_id_idx ON reception_audit (run_id);
CREATE INDEX storage_audit_run_id_idx ON storage_audit (run_id);
CREATE INDEX staging_inventory_run_id_idx ON staging_inventory (run_id);
CREATE INDEX curated_inventory_run_id_idx ON curated_inventory (run_id);
CREATE INDEX dataset_inventory_run_id_idx ON dataset_inventory (run_id);
