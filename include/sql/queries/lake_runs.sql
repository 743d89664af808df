-- The Trilha page: every task run of the last run of each DAG (meta.audit_log, through
-- audit_log_dag_started_idx: the newest row of each DAG, then that run's rows).
WITH latest AS (
    SELECT DISTINCT ON (a.dag_id) a.dag_id, a.run_id
    FROM meta.audit_log a
    ORDER BY a.dag_id, a.started_at DESC
)
SELECT a.dag_id, a.run_id, a.task_id, a.map_index, a.try_number, a.status, a.counters, a.error,
       a.started_at, a.ended_at
FROM meta.audit_log a JOIN latest l ON l.dag_id = a.dag_id AND l.run_id = a.run_id
ORDER BY a.dag_id, a.task_id, a.map_index, a.try_number
