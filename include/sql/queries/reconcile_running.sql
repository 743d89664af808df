-- reconcile: the task runs meta.audit_log still says are running (for trilha.domain.drift.abandoned).
SELECT id, dag_id, run_id, task_id, try_number, status, hostname, pid, started_at
FROM meta.audit_log
WHERE status = 'running'
ORDER BY id
