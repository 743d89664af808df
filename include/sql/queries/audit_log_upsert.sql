-- One row per task try: written as 'running' at start and updated at the end, failures included.
-- hostname and pid name the process of the try, so that reconcile can tell when it is gone.
INSERT INTO meta.audit_log (dag_id, run_id, task_id, map_index, try_number, status, counters, problems, error,
                            started_at, ended_at, duration_s, hostname, pid)
VALUES (%(dag_id)s, %(run_id)s, %(task_id)s, %(map_index)s, %(try_number)s, %(status)s,
        %(counters)s::jsonb, %(problems)s::jsonb, %(error)s, %(started_at)s, %(ended_at)s, %(duration_s)s,
        %(hostname)s, %(pid)s)
ON CONFLICT (dag_id, run_id, task_id, map_index, try_number) DO UPDATE
SET status = EXCLUDED.status, counters = EXCLUDED.counters, problems = EXCLUDED.problems, error = EXCLUDED.error,
    ended_at = EXCLUDED.ended_at, duration_s = EXCLUDED.duration_s
RETURNING id
