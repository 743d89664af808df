-- A task run that had nothing to do (for example drive_capture with no source configured) ends
-- "skipped" in Airflow; the audit says the same instead of "failed".
ALTER TABLE meta.audit_log DROP CONSTRAINT audit_log_status_check;
ALTER TABLE meta.audit_log
    ADD CONSTRAINT audit_log_status_check CHECK (status IN ('running', 'success', 'failed', 'skipped'));
