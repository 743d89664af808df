-- A dataset version was uploaded, whole and verified, to a Google Drive folder.
UPDATE dataset_inventory
SET drive_folder_id = %(drive_folder_id)s, drive_exported_at = now()
WHERE id = %(id)s
