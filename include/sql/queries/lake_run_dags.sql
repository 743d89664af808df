-- The Trilha page: the DAG of each of these run ids (to link a run to its Airflow run page).
SELECT DISTINCT a.run_id, a.dag_id FROM meta.audit_log a WHERE a.run_id = ANY(%(run_ids)s::text[])
