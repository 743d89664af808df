-- When a dataset version was last exported, whole and verified, to its Google Drive folder. Until then
-- drive_folder_id stays NULL, so a re-run asked for the export knows it still has to do it.
ALTER TABLE dataset_inventory ADD COLUMN drive_exported_at TIMESTAMPTZ;
ALTER TABLE dataset_inventory
    ADD CONSTRAINT dataset_inventory_export_complete
    CHECK ((drive_folder_id IS NULL) = (drive_exported_at IS NULL));
