"""Benchmark of the Trilha page (issue #17): one page load under 1 s on a lake of 10,000 files.

Starts a private local stack (real PostgreSQL, S3 server and mongod, ``tests.helpers.running_stack``),
applies the migrations (007's indexes included), then seeds the audit rows of a lake of ``--files``
files (default 10,000) in one project, the way the pipeline leaves them: a ``raw.data_files`` claim,
a ``reception_audit`` row, a ``storage_audit`` row and its ``meta.version_history`` v1, a
``staging_inventory`` row (8,760 rows in, 2 quarantined), 5 curated versions whose inputs list every
file, a dataset version of each, and ``meta.audit_log`` rows of 50 runs of each of the seven DAGs
(4 tasks per run). Seeding is one ``INSERT ... SELECT generate_series`` per table.

It then times the page's endpoints through the FastAPI application as the API server mounts it
(``/trilha``, a real JWT from Airflow's SimpleAuthManager), each ``--repeat`` times, and prints the
median and the slowest. Quarantine objects are not seeded (the staged rows have none), so the trace
times are the audit store's, without the read of a quarantine object.

    .venv/bin/python bench/ui.py                 # 10,000 files, 5 repeats
    .venv/bin/python bench/ui.py --files 2000    # a smaller lake
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DAGS = ("drive_capture", "raw_ingest", "reception_promote", "staging", "curated", "dataset_split",
        "reception_cleanup")  # fmt: skip

SEED = """
INSERT INTO projects_registry (name, prefix) VALUES ('bench', 'bench');
INSERT INTO raw.data_files (sha256, md5, size_bytes, first_bucket, first_key, first_run_id)
SELECT encode(sha256(('f' || i)::bytea), 'hex'), md5('f' || i), 100000 + i, 'recepcao-raw',
       'bench/station_' || lpad(i::text, 5, '0') || '.csv', 'scheduled__raw_' || (i / 1000)
FROM generate_series(1, %(n)s) i;
INSERT INTO reception_audit (bucket, object_key, file_name, etag, size_bytes, uploaded_at, sha256, md5,
                             source_kind, source_ref, status, run_id)
SELECT 'recepcao-raw', 'bench/station_' || lpad(i::text, 5, '0') || '.csv',
       'station_' || lpad(i::text, 5, '0') || '.csv', md5('f' || i), 100000 + i, now(),
       encode(sha256(('f' || i)::bytea), 'hex'), md5('f' || i), 'local',
       '/landing/station_' || lpad(i::text, 5, '0') || '.csv', 'new', 'scheduled__raw_' || (i / 1000)
FROM generate_series(1, %(n)s) i;
INSERT INTO storage_audit (project_id, project_prefix, project_name, reception_audit_id, source_bucket,
                           source_key, dest_bucket, dest_key, logical_name, version, size_bytes, sha256,
                           md5, run_id)
SELECT p.id, 'bench', 'bench', r.id, r.bucket, r.object_key, 'storage-unique', r.object_key, r.file_name, 1,
       r.size_bytes, r.sha256, r.md5, 'scheduled__promote_' || (r.id %% 10)
FROM reception_audit r, projects_registry p WHERE p.name = 'bench';
INSERT INTO meta.version_history (project_id, logical_name, version, sha256, storage_audit_id, dest_key,
                                  run_id)
SELECT s.project_id, s.logical_name, 1, s.sha256, s.id, s.dest_key, s.run_id FROM storage_audit s;
INSERT INTO staging_inventory (project_id, storage_audit_id, source_bucket, source_key, source_sha256,
                               code_version, dataset, layout, status, rows_in, rows_ok, rows_rejected,
                               output_bucket, output_key, output_sha256, run_id)
SELECT s.project_id, s.id, s.dest_bucket, s.dest_key, s.sha256, 'bench', 'inmet_hourly',
       'inmet_automatic_2020plus', 'staged', 8760, 8758, 2, 'staging-data',
       'bench/inmet_hourly/' || s.sha256 || '.parquet', s.sha256,
       'scheduled__staging_' || (s.id %% 10)
FROM storage_audit s;
INSERT INTO curated_inventory (project_id, dataset, version, inputs_fingerprint, inputs_count, rows, bucket,
                               prefix, inputs, files, manifest_key, manifest_sha256, run_id)
SELECT p.id, 'inmet_hourly', 'v' || lpad(v::text, 4, '0'), repeat(v::text, 64), %(n)s, 8758 * %(n)s,
       'curated-data', 'bench/inmet_hourly/v' || v,
       (SELECT jsonb_agg(jsonb_build_object('key', i.output_key, 'source_sha256', i.source_sha256))
        FROM staging_inventory i),
       jsonb_build_object('hourly',
                          jsonb_build_object('key', 'k', 'sha256', 's', 'rows', 1, 'bytes', 1000000)),
       'bench/inmet_hourly/v' || v || '/manifest.json', repeat('a', 64), 'scheduled__curated_' || v
FROM projects_registry p, generate_series(1, 5) v WHERE p.name = 'bench';
INSERT INTO dataset_inventory (project_id, dataset, version, curated_id, strategy, params, params_fingerprint,
                               rows, bucket, prefix, files, manifest_key, manifest_sha256, run_id)
SELECT c.project_id, 'inmet_hourly', c.version, c.id, 'hash', '{}', repeat('b', 64), '{"train": 1}',
       'datasets', 'bench/' || c.version, '{"train": {"key": "k", "sha256": "s", "rows": 1, "bytes": 1000}}',
       'bench/' || c.version || '/manifest.json', repeat('c', 64), 'scheduled__split_' || c.version
FROM curated_inventory c;
INSERT INTO meta.audit_log (dag_id, run_id, task_id, status, counters, started_at, ended_at, duration_s)
SELECT d, 'scheduled__' || d || '_' || r, 't' || t, 'success', '{"seen": 10, "new": 2, "bytes": 1000}',
       now() - make_interval(mins => 60 * r), now() - make_interval(mins => 60 * r - 1), 60
FROM unnest(%(dags)s::text[]) d, generate_series(1, 50) r, generate_series(1, 4) t;
ANALYZE;
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)

    home = tempfile.mkdtemp(prefix="trilha-bench-ui-airflow-")
    os.environ.update(
        AIRFLOW_HOME=home,
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home}/airflow.db",
        AIRFLOW__CORE__AUTH_MANAGER="airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS="admin:admin",
        AIRFLOW__API_AUTH__JWT_SECRET=os.urandom(32).hex(),
    )
    sys.path[:0] = [str(REPO), str(REPO / "plugins")]
    import psycopg2

    from tests.helpers import running_stack

    with running_stack("trilha-bench-ui-", "bench stack") as st:
        conn = psycopg2.connect(st.postgres_dsn())
        started = time.perf_counter()
        with conn, conn.cursor() as cur:
            cur.execute(SEED, {"n": args.files, "dags": list(DAGS)})
        conn.close()
        print(f"seeded the audit rows of {args.files} files in {time.perf_counter() - started:.1f}s")
        rows = time_endpoints(args.repeat)
    print(f"\n{'endpoint':<44} {'median ms':>10} {'max ms':>8} {'bytes':>9}")
    for name, times, size in rows:
        print(f"{name:<44} {statistics.median(times) * 1000:>10.0f} {max(times) * 1000:>8.0f} {size:>9}")
    worst = max(max(t) for _n, t, _s in rows)
    print(f"\nslowest single load: {worst * 1000:.0f} ms (target < 1000 ms)")
    return 0 if worst < 1.0 else 1


def time_endpoints(repeat: int) -> list[tuple[str, list[float], int]]:
    from airflow import settings
    from airflow.api_fastapi.app import create_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
    from airflow.models.revoked_token import RevokedToken
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from trilha.ui import URL_PREFIX, LazyApp

    assert settings.engine is not None
    RevokedToken.__table__.create(settings.engine, checkfirst=True)
    manager = create_auth_manager()
    manager.init()
    token = manager.generate_jwt(SimpleAuthManagerUser(username="admin", role="admin"))
    parent = FastAPI()
    parent.mount(URL_PREFIX, LazyApp())
    sha = __import__("hashlib").sha256(b"f4242").hexdigest()
    cases = [
        ("page: overview", "/trilha/"),
        ("page: search a name + its trace", "/trilha/?q=station_04242.csv"),
        ("page: search by sha256 + its trace", f"/trilha/?q={sha}"),
        ("page: search the start of a name (page 1)", "/trilha/?q=station_0"),
        ("page: search page 50", "/trilha/?q=station_&offset=1000"),
        ("api: overview", "/trilha/api/overview"),
        ("api: trace", f"/trilha/api/trace?sha256={sha}"),
    ]
    import logging

    logging.getLogger("httpx2").setLevel(logging.WARNING)  # one line per request drowns the table
    logging.getLogger("httpx").setLevel(logging.WARNING)
    out = []
    with TestClient(parent) as client:
        client.headers["Authorization"] = f"Bearer {token}"
        client.get("/trilha/api/overview").raise_for_status()  # builds the app (first request)
        for name, path in cases:
            times = []
            for _ in range(repeat):
                started = time.perf_counter()
                resp = client.get(path)
                times.append(time.perf_counter() - started)
                resp.raise_for_status()
            out.append((name, times, len(resp.content)))
    return out


if __name__ == "__main__":
    sys.exit(main())
