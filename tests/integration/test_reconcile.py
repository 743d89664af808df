"""The reconcile DAG's operator and CLI against the real stack (PostgreSQL, rclone S3, mongod).

Reconcile reads the whole audit store and lists whole buckets, and it marks other runs' rows
``abandoned``: so it never runs on the session's shared database and buckets. Each :class:`Lake` is
a database of its own on the session's PostgreSQL (migrated by the first hook that uses it) and
five fresh buckets on its S3 server. A module lake holds the scenarios that each work in their own
project scope; the tests that check every project, or abandoned rows, get a lake of their own.

Drift scenarios run with ``grace_minutes=0``: what they set up is seconds old, and would otherwise
be ``pending`` (which a test checks too, with the default grace of 60 minutes).
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg2
import pytest

from tests.helpers import run_operator
from tests.integration.ingest_support import REPO, Scope, child_env, new_scope, query, s3
from tests.integration.process_support import NAME_2019, sample

pytestmark = pytest.mark.integration

LAYERS = ("reception", "storage", "staging", "curated", "datasets")
NL = b"\n"
ZERO = {"match": 0, "missing_in_lake": 0, "missing_in_audit": 0, "differ": 0, "pending": 0}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class Lake:
    """A private audit database (through connection ``conn_id``) and five private buckets."""

    stack: Any
    conn_id: str
    dsn: str
    buckets: dict[str, str]

    def postgres_dsn(self) -> str:
        return self.dsn

    def query(self, sql: str, params: Any = None) -> list[dict[str, Any]]:
        return query(self, sql, params)  # ingest_support's, on this lake's database

    def kwargs(self, *layers: str) -> dict[str, Any]:
        return {"postgres_conn_id": self.conn_id, **{f"{la}_bucket": self.buckets[la] for la in layers}}

    def reconcile(self, **kwargs: Any) -> Any:
        from trilha.operators.reconcile import ReconcileOperator

        return ReconcileOperator(task_id="reconcile", **self.kwargs(*LAYERS), **kwargs)

    def put(self, layer: str, key: str, data: bytes, **extra: Any) -> str:
        resp = s3(self.stack).put_object(Bucket=self.buckets[layer], Key=key, Body=data, **extra)
        return str(resp["ETag"]).strip('"')

    def load(self, scope: Scope, files: dict[str, bytes]) -> None:
        """Upload ``files`` to reception under the scope's prefix, register and promote them."""
        from trilha.operators.ingest import RawIngestOperator
        from trilha.operators.promote import PromoteOperator

        for rel, data in files.items():
            self.put("reception", scope.key(rel), data)
        run_operator(RawIngestOperator(task_id="register", key_prefix=scope.keys, **self.kwargs("reception")))
        promoted = run_operator(
            PromoteOperator(
                task_id="promote",
                project=scope.name,
                project_prefix=scope.prefix,
                **self.kwargs("reception", "storage"),
            )
        )
        assert promoted["failed"] == 0, promoted


@pytest.fixture(scope="session")
def new_lake(stack: Any) -> Iterator[Any]:
    """A factory of private lakes (migrated); every database it made is dropped at the end."""
    from trilha.hooks.migrations import migrate

    made: list[str] = []
    saved: dict[str, str | None] = {}

    def make() -> Lake:
        tag = uuid.uuid4().hex[:10]
        name = f"rc_{tag}"
        admin = psycopg2.connect(stack.postgres_dsn())
        admin.autocommit = True
        try:
            with admin.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{name}"')
        finally:
            admin.close()
        made.append(name)
        env = f"AIRFLOW_CONN_{name.upper()}"
        saved.setdefault(env, os.environ.get(env))
        os.environ[env] = json.dumps(dict(stack.connections()["trilha_postgres"], schema=name))
        dsn = stack.postgres_dsn().rsplit("/", 1)[0] + f"/{name}"
        conn = psycopg2.connect(dsn)
        try:
            migrate(conn)
        finally:
            conn.close()
        buckets = {layer: f"rc-{tag}-{layer}" for layer in LAYERS}
        for bucket in buckets.values():
            s3(stack).create_bucket(Bucket=bucket)
        return Lake(stack, name, dsn, buckets)

    yield make
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    admin = psycopg2.connect(stack.postgres_dsn())
    admin.autocommit = True
    try:
        with admin.cursor() as cur:
            for name in made:
                cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.close()


@pytest.fixture(scope="module")
def lake(new_lake: Any) -> Lake:
    return new_lake()  # type: ignore[no-any-return]


def reconcile(
    lake: Lake, scope: Scope | None = None, run_id: str | None = None, **kwargs: Any
) -> dict[str, Any]:
    """Run the operator; return its summary (or, when it fails on drift, the error's summary)."""
    from trilha.operators.reconcile import DriftFoundError

    op = lake.reconcile(project=scope.name if scope else "", **kwargs)
    try:
        return dict(run_operator(op, run_id=run_id))
    except DriftFoundError as err:
        return {**err.summary, "failed": str(err)}


def counts(summary: dict[str, Any], lake: Lake) -> dict[str, dict[str, int]]:
    """The non-zero counts of each bucket that has any, the lake's buckets named by their layer."""
    names = {bucket: layer for layer, bucket in lake.buckets.items()}
    out = {
        names.get(bucket, bucket): {k: v for k, v in b["counts"].items() if v}
        for bucket, b in summary["buckets"].items()
    }
    return {name: c for name, c in out.items() if c}


def items(summary: dict[str, Any], lake: Lake, layer: str) -> list[dict[str, Any]]:
    return list(summary["buckets"][lake.buckets[layer]]["drift"])


# ------------------------------------------------------------------------------ scoped scenarios


def test_an_orphan_in_storage_is_pending_when_young_and_missing_in_audit_after_the_grace(lake: Lake) -> None:
    scope = new_scope("rco")
    lake.load(scope, {"a.csv": b"x;y\n1;2\n"})
    orphan = b"nobody recorded me\n"
    lake.put("storage", scope.key("orphan.csv"), orphan)

    young = reconcile(lake, scope, bucket="storage")
    assert "failed" not in young
    assert counts(young, lake) == {"storage": {"match": 1, "pending": 1}}
    assert young["drift_total"] == 0

    late = reconcile(lake, scope, bucket="storage", grace_minutes=0)
    assert counts(late, lake) == {"storage": {"match": 1, "missing_in_audit": 1}}
    [item] = items(late, lake, "storage")
    assert item["status"] == "missing_in_audit"
    assert item["key"] == scope.key("orphan.csv")
    assert item["reason"].startswith(f"no audit row claims this object ({len(orphan)} bytes, written 20")
    assert late["failed"].startswith(
        f"reconcile found 1 drift item(s): {lake.buckets['storage']}: missing_in_audit 1. Report: s3://"
    )


def test_a_young_orphan_is_pending_and_the_task_succeeds(lake: Lake) -> None:
    scope = new_scope("rcy")
    lake.load(scope, {"a.csv": b"x;y\n1;2\n"})
    lake.put("reception", scope.key("just-uploaded.csv"), b"raw_ingest has not run yet\n")
    summary = reconcile(lake, scope)
    assert "failed" not in summary
    assert counts(summary, lake) == {"reception": {"match": 1, "pending": 1}, "storage": {"match": 1}}
    assert summary["drift_total"] == 0
    row = lake.query(
        "SELECT counts, drift_total FROM meta.reconcile_report WHERE run_id = %s AND bucket = %s",
        (summary["run_id"], lake.buckets["reception"]),
    )
    assert row == [{"counts": {**ZERO, "match": 1, "pending": 1}, "drift_total": 0}]


def test_an_object_deleted_behind_the_audit_is_missing_in_lake(lake: Lake) -> None:
    scope = new_scope("rcm")
    lake.load(scope, {"keep.csv": b"k;v\n1;1\n", "lost.csv": b"k;v\n2;2\n"})
    stored = lake.query(
        "SELECT id, dest_key FROM storage_audit WHERE project_prefix = %s AND dest_key LIKE %s",
        (scope.prefix, "%lost.csv"),
    )[0]
    s3(lake.stack).delete_object(Bucket=lake.buckets["storage"], Key=stored["dest_key"])

    summary = reconcile(lake, scope, grace_minutes=0)
    assert counts(summary, lake) == {"reception": {"match": 2}, "storage": {"match": 1, "missing_in_lake": 1}}
    [item] = items(summary, lake, "storage")
    assert item["key"] == scope.key("lost.csv")
    assert item["reason"] == f"storage_audit:{stored['id']} records it, the bucket has no such object"
    assert item["expected"]["sha256"] == sha(b"k;v\n2;2\n")
    # Never deletes, never repairs: the reception copy and the audit row are as they were.
    assert lake.query("SELECT count(*) AS n FROM storage_audit WHERE id = %s", (stored["id"],)) == [{"n": 1}]


def test_an_object_overwritten_with_other_bytes_differs_and_names_the_field(lake: Lake) -> None:
    scope = new_scope("rcd")
    lake.load(scope, {"same-size.csv": b"k;v\n1;1\n", "longer.csv": b"k;v\n2;2\n"})
    lake.put("storage", scope.key("same-size.csv"), b"k;v\n9;9\n")
    lake.put("storage", scope.key("longer.csv"), b"k;v\n2;2\n3;3\n")
    lake.put("reception", scope.key("same-size.csv"), b"k;v\n7;7\n")

    summary = reconcile(lake, scope, grace_minutes=0)
    assert counts(summary, lake) == {"reception": {"differ": 1, "match": 1}, "storage": {"differ": 2}}
    by_key = {i["key"]: i for i in items(summary, lake, "storage")}
    assert by_key[scope.key("same-size.csv")]["fields"] == ["etag"]
    assert by_key[scope.key("longer.csv")]["fields"] == ["size", "etag"]
    assert by_key[scope.key("longer.csv")]["reason"].startswith(
        "size: expected 8 bytes, found 12; etag: expected md5 "
    )
    [rec] = items(summary, lake, "reception")
    assert rec["fields"] == ["etag"]
    assert rec["reason"].startswith(
        f"etag: expected ETag {hashlib.md5(b'k;v' + NL + b'1;1' + NL).hexdigest()}, found "
    )
    assert summary["failed"].startswith(
        f"reconcile found 3 drift item(s): {lake.buckets['reception']}: differ 1; "
        f"{lake.buckets['storage']}: differ 2. Report: "
    )


def test_forged_sha256_metadata_passes_a_head_but_not_a_rehash(lake: Lake) -> None:
    """Staged objects have no recorded md5 or size: without rehash their sha256 metadata is trusted."""
    from trilha.operators.staging import StagingOperator

    scope = new_scope("rch")
    lake.load(scope, {"tiny.csv": b"a;b\n1;2\n3;4\n"})
    run_operator(StagingOperator(task_id="stage", project=scope.name, **lake.kwargs("staging")))
    staged = lake.query(
        "SELECT output_key, output_sha256 FROM staging_inventory "
        "WHERE status = 'staged' AND output_key LIKE %s",
        (scope.keys + "%",),
    )
    assert len(staged) == 1, staged
    key, recorded = staged[0]["output_key"], staged[0]["output_sha256"]
    clean = reconcile(lake, scope, bucket="staging", grace_minutes=0)
    assert counts(clean, lake) == {"staging": {"match": 1}}
    assert clean["heads"] == 1  # no md5 recorded: the listing alone cannot tell

    lake.put("staging", key, b"not parquet at all", Metadata={"sha256": recorded})
    trusted = reconcile(lake, scope, bucket="staging", grace_minutes=0)
    assert counts(trusted, lake) == {"staging": {"match": 1}}
    read = reconcile(lake, scope, bucket="staging", grace_minutes=0, rehash="True")
    assert counts(read, lake) == {"staging": {"differ": 1}}
    [item] = items(read, lake, "staging")
    assert item["fields"] == ["sha256"]
    assert f"found content sha256 (read) {sha(b'not parquet at all')}" in item["reason"]
    assert (read["reads"], read["heads"], read["bytes_read"]) == (1, 0, len(b"not parquet at all"))


def test_rows_keep_their_bucket_even_when_it_no_longer_exists(lake: Lake) -> None:
    scope = new_scope("rcb")
    lake.load(scope, {"moved.csv": b"m;n\n1;2\n"})
    gone = f"rc-gone-{uuid.uuid4().hex[:8]}"
    lake.query("UPDATE storage_audit SET dest_bucket = %s WHERE project_prefix = %s", (gone, scope.prefix))
    summary = reconcile(lake, scope, bucket="storage", grace_minutes=0)
    assert summary["missing_buckets"] == [gone]
    assert counts(summary, lake) == {gone: {"missing_in_lake": 1}, "storage": {"missing_in_audit": 1}}
    assert summary["buckets"][gone]["layers"] == ["storage"]


def test_an_unknown_project_fails_with_the_known_ones(lake: Lake) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    with pytest.raises(AirflowFailException, match=r"^project 'no such project' is not registered in proj"):
        run_operator(lake.reconcile(project="no such project"))


# ------------------------------------------------------------------------------ every project


@pytest.mark.slow
def test_a_clean_lake_has_no_drift_and_the_report_is_recorded_three_ways(
    new_lake: Any, tmp_path: Path
) -> None:
    from pymongo import MongoClient

    from trilha.operators.capture import CaptureOperator
    from trilha.operators.curated import CuratedOperator
    from trilha.operators.promote import PromoteOperator
    from trilha.operators.split import DatasetSplitOperator
    from trilha.operators.staging import StagingOperator

    mine = new_lake()
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / NAME_2019).write_bytes(sample(NAME_2019))
    scope = new_scope("rcc")
    run_operator(
        CaptureOperator(
            task_id="capture",
            source=str(folder),
            project=scope.name,
            project_prefix=scope.prefix,
            **mine.kwargs("reception"),
        )
    )
    run_operator(
        PromoteOperator(task_id="promote", project=scope.name, **mine.kwargs("reception", "storage"))
    )
    run_operator(StagingOperator(task_id="stage", project=scope.name, **mine.kwargs("staging")))
    run_operator(CuratedOperator(task_id="curate", project=scope.name, **mine.kwargs("curated")))
    run_operator(DatasetSplitOperator(task_id="split", project=scope.name, **mine.kwargs("datasets")))

    # The curated version: its manifest and every object its Iceberg commits wrote (data, manifests,
    # manifest lists, metadata files of its four tables), each claimed with its size and ETag.
    (cur,) = mine.query(
        "SELECT c.objects FROM curated_inventory c JOIN projects_registry p ON p.id = c.project_id "
        "WHERE p.name = %s",
        (scope.name,),
    )
    curated_objects = 1 + len(cur["objects"])
    assert len(cur["objects"]) >= 4 * 3  # per table at least a metadata file, a manifest list, a manifest
    started = time.monotonic()
    first = reconcile(mine, run_id="rc-first")
    elapsed = time.monotonic() - started
    assert "failed" not in first
    # One file: its reception and stored copies, one staged part (no quarantine), the three curated
    # tables with their manifest, the three splits with theirs.
    assert counts(first, mine) == {
        "reception": {"match": 1},
        "storage": {"match": 1},
        "staging": {"match": 1},
        "curated": {"match": curated_objects},
        "datasets": {"match": 4},
    }
    assert first["drift_total"] == 0
    # staged, curated manifest and dataset objects: no md5 recorded; the Iceberg files' ETags decide
    assert first["heads"] == 6
    assert elapsed < 20, elapsed

    # The table: one row per bucket, each naming the report object, whose sha256 it holds.
    rows = mine.query("SELECT * FROM meta.reconcile_report WHERE run_id = 'rc-first' ORDER BY bucket")
    assert sorted(r["bucket"] for r in rows) == sorted(mine.buckets.values())
    assert {r["report_key"] for r in rows} == {first["report"].split("/", 3)[3]}
    row = rows[0]
    assert row["report_bucket"] == mine.buckets["storage"]
    assert row["report_key"].startswith("_reconcile/20")
    assert row["report_key"].endswith("__rc-first.json")
    assert row["project_prefix"] is None
    assert (row["grace_minutes"], row["rehash"], row["drift_total"], row["drift"]) == (60, False, 0, [])
    assert {r["bucket"]: r["layers"] for r in rows} == {b: [la] for la, b in mine.buckets.items()}
    body = s3(mine.stack).get_object(Bucket=row["report_bucket"], Key=row["report_key"])["Body"].read()
    assert sha(body) == row["report_sha256"] == first["report_sha256"]
    assert len(body) == row["report_bytes"]
    document = json.loads(body)
    assert document["run_id"] == "rc-first"
    assert document["buckets"][mine.buckets["curated"]]["counts"] == {**ZERO, "match": curated_objects}
    assert document["buckets"][mine.buckets["curated"]]["by_project"] == {
        scope.prefix: {**ZERO, "match": curated_objects}
    }
    assert {b: r["counts"] for b, r in document["buckets"].items()} == {
        r["bucket"]: r["counts"] for r in rows
    }

    # The run log document of the task, and its audit_log row (with this process's host and pid).
    audit = mine.query("SELECT * FROM meta.audit_log WHERE run_id = 'rc-first'")[0]
    assert (audit["status"], audit["hostname"], audit["pid"]) == (
        "success",
        socket.gethostname(),
        os.getpid(),
    )
    assert audit["counters"]["match"] == 7 + curated_objects
    client = MongoClient(mine.stack.mongo_uri(), serverSelectionTimeoutMS=5000)
    try:
        doc = client.get_database("trilha").run_log.find_one({"_id": "test_dag/rc-first/reconcile/-1/1"})
    finally:
        client.close()
    assert doc is not None
    assert doc["summary"]["report"] == first["report"]
    assert doc["summary"]["counts"] == {**ZERO, "match": 7 + curated_objects}

    # The next runs count the earlier report objects as expected, never as orphans.
    second = reconcile(mine, run_id="rc-second", bucket="storage")
    assert counts(second, mine) == {"storage": {"match": 2}}
    third = reconcile(mine, run_id="rc-third")
    assert counts(third, mine)["storage"] == {"match": 3}
    assert third["drift_total"] == 0


def test_the_task_fails_on_drift_after_recording_everything(new_lake: Any) -> None:
    from trilha.operators.reconcile import DriftFoundError

    mine = new_lake()
    scope = new_scope("rcf")
    mine.load(scope, {"a.csv": b"a;b\n1;2\n"})
    mine.put("storage", "stray/object.bin", b"stray")
    op = mine.reconcile(grace_minutes="0")
    with pytest.raises(DriftFoundError) as caught:
        run_operator(op, run_id="rc-drift")
    report = mine.query("SELECT DISTINCT report_key FROM meta.reconcile_report WHERE run_id = 'rc-drift'")
    assert len(report) == 1
    expected = (
        f"reconcile found 1 drift item(s): {mine.buckets['storage']}: missing_in_audit 1. "
        f"Report: s3://{mine.buckets['storage']}/{report[0]['report_key']} "
        "(meta.reconcile_report run_id 'rc-drift')"
    )
    assert str(caught.value) == expected
    audit = mine.query(
        "SELECT status, error, counters, problems FROM meta.audit_log WHERE run_id = 'rc-drift'"
    )
    assert audit[0]["status"] == "failed"
    assert audit[0]["error"] == expected
    assert audit[0]["counters"]["missing_in_audit"] == 1
    assert audit[0]["problems"] == [
        {
            "kind": "missing_in_audit",
            "item": f"{mine.buckets['storage']}/stray/object.bin",
            "reason": caught.value.summary["buckets"][mine.buckets["storage"]]["drift"][0]["reason"],
        }
    ]
    stored = mine.query(
        "SELECT drift, drift_total FROM meta.reconcile_report WHERE run_id = 'rc-drift' AND bucket = %s",
        (mine.buckets["storage"],),
    )[0]
    assert stored["drift_total"] == 1
    assert [(d["status"], d["key"]) for d in stored["drift"]] == [("missing_in_audit", "stray/object.bin")]
    # It never deletes.
    assert (
        s3(mine.stack).head_object(Bucket=mine.buckets["storage"], Key="stray/object.bin")["ContentLength"]
        == 5
    )


def test_running_rows_of_gone_processes_are_marked_abandoned(new_lake: Any) -> None:
    mine = new_lake()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = socket.gethostname()
    now = datetime.now(UTC)
    rows = {
        "dead_pid": (host, dead.pid, now - timedelta(minutes=5)),
        "live_pid": (host, os.getpid(), now - timedelta(minutes=5)),
        "other_host_old": ("elsewhere", 4242, now - timedelta(hours=30)),
        "other_host_recent": ("elsewhere", 4242, now - timedelta(hours=1)),
        "own_run": (host, dead.pid, now - timedelta(days=3)),
    }
    ids = {}
    for task, (hostname, pid, started) in rows.items():
        run_id = "rc-abandon" if task == "own_run" else f"old-{task}"
        dag_id = "test_dag" if task == "own_run" else "raw_ingest"
        ids[task] = mine.query(
            "INSERT INTO meta.audit_log (dag_id, run_id, task_id, status, started_at, hostname, pid) "
            "VALUES (%s, %s, %s, 'running', %s, %s, %s) RETURNING id",
            (dag_id, run_id, task, started, hostname, pid),
        )[0]["id"]
    before = datetime.now(UTC)
    summary = reconcile(mine, run_id="rc-abandon")
    after = datetime.now(UTC)
    got = {
        r["task_id"]: r
        for r in mine.query(
            "SELECT task_id, status, abandoned_at, error FROM meta.audit_log WHERE task_id = ANY(%s)",
            (list(rows),),
        )
    }
    assert {t: r["status"] for t, r in got.items()} == {
        "dead_pid": "abandoned",
        "live_pid": "running",
        "other_host_old": "abandoned",
        "other_host_recent": "running",
        "own_run": "running",
    }
    assert before <= got["dead_pid"]["abandoned_at"] <= after
    assert got["dead_pid"]["error"] == f"abandoned: process {dead.pid} on {host} is gone"
    assert got["other_host_old"]["error"].startswith("abandoned: running since ")
    assert got["other_host_old"]["error"].endswith(
        " on elsewhere, more than 24 h: its process is presumed gone"
    )
    assert got["live_pid"]["abandoned_at"] is None
    assert [(a["id"], a["task_id"]) for a in summary["abandoned"]] == [
        (ids["dead_pid"], "dead_pid"),
        (ids["other_host_old"], "other_host_old"),
    ]
    # The next run is not that run: its row (a dead pid too) is abandoned then, and nothing else.
    assert [a["task_id"] for a in reconcile(mine, run_id="rc-abandon-2")["abandoned"]] == ["own_run"]
    assert reconcile(mine, run_id="rc-abandon-3")["abandoned"] == []


# ------------------------------------------------------------------------------ the CLI


def cli(lake: Lake, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    variables = {f"AIRFLOW_VAR_TRILHA_BUCKET_{la.upper()}": b for la, b in lake.buckets.items()}
    return subprocess.run(
        [sys.executable, "-m", "trilha.ops.reconcile", "--postgres-conn-id", lake.conn_id, *args],
        cwd=REPO,
        # Not in unit-test mode (the session's): Airflow would say so on stdout, which a user never sees.
        env={k: v for k, v in child_env(**variables, **env).items() if k != "AIRFLOW__CORE__UNIT_TEST_MODE"},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


@pytest.mark.slow
def test_cli_prints_a_table_and_exits_0_clean_1_on_drift_2_unreachable(new_lake: Any) -> None:
    from trilha.config import s3_connection_extra
    from trilha.ops.devstack import free_port

    mine = new_lake()
    scope = new_scope("rcl")
    mine.load(scope, {"a.csv": b"a;b\n1;2\n", "b.csv": b"a;b\n3;4\n"})

    clean = cli(mine, "--project", scope.name)
    assert clean.returncode == 0, clean.stderr
    lines = clean.stdout.splitlines()
    assert lines[0].startswith("reconcile cli__20")
    assert f": project '{scope.name}' ({scope.prefix}/), grace 60 min, checked 20" in lines[0]
    assert lines[1].split() == [
        "bucket",
        "layers",
        "match",
        "missing_in_lake",
        "missing_in_audit",
        "differ",
        "pending",
        "drift",
    ]
    table = {ln.split()[0]: ln.split()[1:] for ln in lines[2:7]}
    assert table == {
        mine.buckets["curated"]: ["curated", "0", "0", "0", "0", "0", "0"],
        mine.buckets["datasets"]: ["datasets", "0", "0", "0", "0", "0", "0"],
        mine.buckets["reception"]: ["reception", "2", "0", "0", "0", "0", "0"],
        mine.buckets["staging"]: ["staging", "0", "0", "0", "0", "0", "0"],
        mine.buckets["storage"]: ["storage", "2", "0", "0", "0", "0", "0"],
    }
    assert lines[-1] == "no drift (4 match, 0 pending)"
    assert lines[-2].startswith(f"report: s3://{mine.buckets['storage']}/_reconcile/")

    mine.put("storage", scope.key("orphan.csv"), b"orphan")
    drifted = cli(mine, "--project", scope.name, "--grace-minutes", "0", "--bucket", "storage")
    assert drifted.returncode == 1, drifted.stderr
    out = drifted.stdout.splitlines()
    assert out[2].split() == [mine.buckets["storage"], "storage", "2", "0", "1", "0", "0", "1"]
    assert out[3].startswith(
        f"  missing_in_audit s3://{mine.buckets['storage']}/{scope.key('orphan.csv')}: no audit row claims "
        "this object (6 bytes, written "
    )
    assert out[-1].startswith(
        f"reconcile found 1 drift item(s): {mine.buckets['storage']}: missing_in_audit 1."
    )

    as_json = cli(mine, "--project", scope.name, "--grace-minutes", "0", "--json")
    assert as_json.returncode == 1
    document = json.loads(as_json.stdout)
    assert document["drift_total"] == 1
    assert document["buckets"][mine.buckets["storage"]]["drift"][0]["key"] == scope.key("orphan.csv")

    extra = s3_connection_extra(f"http://127.0.0.1:{free_port()}")
    extra["config_kwargs"].update(retries={"mode": "standard", "total_max_attempts": 1}, connect_timeout=2)
    dead_s3 = json.dumps(
        {"conn_type": "aws", "login": "nobody-key", "password": "nobody-secret", "extra": extra}
    )
    no_s3 = cli(mine, "--aws-conn-id", "rc_dead_s3", AIRFLOW_CONN_RC_DEAD_S3=dead_s3)
    assert no_s3.returncode == 2
    assert no_s3.stdout == ""
    assert no_s3.stderr.startswith("trilha reconcile: connection 'rc_dead_s3': cannot reach the S3 endpoint")
    assert "Traceback" not in no_s3.stderr

    dead_pg = json.dumps(
        {
            "conn_type": "postgres",
            "host": "127.0.0.1",
            "port": free_port(),
            "login": "nobody",
            "password": "nobody-secret",
            "schema": "nothing",
        }
    )
    no_pg = cli(mine, "--postgres-conn-id", "rc_dead_pg", AIRFLOW_CONN_RC_DEAD_PG=dead_pg)  # the last wins
    assert no_pg.returncode == 2
    assert no_pg.stderr.startswith("trilha reconcile: connection 'rc_dead_pg': cannot connect to PostgreSQL")
    assert "Traceback" not in no_pg.stderr
