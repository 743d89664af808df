"""Concurrent runs and runs killed half-way, against the real stack.

Concurrency uses two real processes (``ingest_child.py``, started with ``subprocess``; they inherit
this session's ``AIRFLOW_CONN_*``) released at the same instant by a start file. Crash safety
starts a run in a child process and ``kill -9``s it in the middle of its work. Two narrower races
(claiming the same content, creating the same project) are made deterministic by holding the
competing transaction open in the test until the operator is seen waiting on it.
"""

from __future__ import annotations

import signal
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import psycopg2
import pytest

from tests.integration.ingest_support import (
    RECEPTION,
    STORAGE,
    Scope,
    child_result,
    cleanup,
    ingest,
    list_keys,
    md5,
    new_scope,
    promote,
    put,
    query,
    read,
    reception_rows,
    run,
    sha,
    spawn_child,
    storage_rows,
    wait_until,
)

pytestmark = pytest.mark.integration


def stage(stack: Any, s: Scope, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        put(stack, s.key(rel), data)
    run(ingest(key_prefix=s.keys, workers=8))


def files_for(s: Scope, n: int, distinct: int, tag: str | None = None) -> dict[str, bytes]:
    """``n`` small files with ``distinct`` different contents (the rest repeat earlier ones)."""
    tag = tag or s.prefix
    return {f"lote/f{i:03d}.csv": f"linha;{i % distinct};{tag}\n".encode() for i in range(n)}


def promote_job(s: Scope, **extra: Any) -> dict[str, Any]:
    return {
        "op": "promote",
        "kwargs": {"project": s.name, "project_prefix": s.prefix, "workers": extra.pop("workers", 4)},
        **extra,
    }


# ------------------------------------------------------------------------------- two runs at once


def test_two_promotes_started_together_copy_and_record_each_content_once(stack: Any, tmp_path: Path) -> None:
    s = new_scope("conc")
    files = files_for(s, 60, 45)
    stage(stack, s, files)
    go = tmp_path / "go"
    children = []
    for i in range(2):
        ready = tmp_path / f"ready{i}"
        job = promote_job(s, ready_file=str(ready), go_file=str(go), run_id=f"conc{i}-{s.prefix}")
        children.append((spawn_child(job, tmp_path / f"child{i}.log"), ready))
    # Both children are up, connected and waiting: release them at the same instant.
    wait_until(lambda: all(r.exists() for _, r in children), 90, "both children ready")
    go.write_text("go")
    for i, (proc, _) in enumerate(children):
        assert proc.wait(120) == 0, (tmp_path / f"child{i}.log").read_text()[-3000:]
    results = [child_result(tmp_path / f"child{i}.log") for i in range(2)]

    assert sum(r["copied"] for r in results) == 45
    assert sum(r["duplicates"] for r in results) == 2 * 60 - 45
    assert all(r["failed"] == 0 for r in results)
    rows = storage_rows(stack, s.name)
    per_sha = Counter(r["sha256"] for r in rows)
    assert len(per_sha) == 45
    assert set(per_sha.values()) == {1}
    assert per_sha.keys() == {sha(d) for d in files.values()}
    stored = list_keys(stack, STORAGE, s.keys)
    assert sorted(stored) == sorted(r["dest_key"] for r in rows)
    for row in rows:
        assert stored[row["dest_key"]]["ETag"].strip('"') == row["md5"]
    versions = query(
        stack,
        "SELECT count(*) AS n FROM meta.version_history h JOIN projects_registry p ON p.id = h.project_id "
        "WHERE p.name = %s",
        (s.name,),
    )
    assert versions[0]["n"] == 45
    assert len(query(stack, "SELECT id FROM projects_registry WHERE name = %s", (s.name,))) == 1
    # The two runs really overlapped in time.
    first, second = (
        query(
            stack,
            "SELECT started_at, ended_at FROM meta.audit_log WHERE run_id = %s",
            (f"conc{i}-{s.prefix}",),
        )[0]
        for i in range(2)
    )
    assert first["started_at"] < second["ended_at"]
    assert second["started_at"] < first["ended_at"]


def hold(stack: Any, sql: str, params: tuple[Any, ...]) -> Any:
    """Run ``sql`` in a transaction that stays open (the competing run), and return its connection."""
    conn = psycopg2.connect(stack.postgres_dsn())
    conn.cursor().execute(sql, params)
    return conn


def waiting_on_a_lock(stack: Any) -> bool:
    rows = query(
        stack,
        "SELECT count(*) AS n FROM pg_stat_activity "
        "WHERE wait_event_type = 'Lock' AND datname = current_database()",
    )
    return bool(rows[0]["n"])


def in_thread(fn: Any) -> tuple[threading.Thread, dict[str, Any]]:
    out: dict[str, Any] = {}

    def target() -> None:
        try:
            out["result"] = fn()
        except Exception as err:  # handed to the test thread, which asserts on it
            out["error"] = err

    thread = threading.Thread(target=target)
    thread.start()
    return thread, out


def test_content_claimed_by_a_concurrent_run_names_its_first_key(stack: Any) -> None:
    """raw_ingest claims a sha256 while another transaction, not yet committed, claims it too: once
    that one commits, the object is a duplicate whose reason names the key that won."""
    s = new_scope("claim")
    data = f"disputado;{s.prefix}\n".encode()
    put(stack, s.key("mine.csv"), data)
    rival = hold(
        stack,
        "INSERT INTO raw.data_files (sha256, md5, size_bytes, first_bucket, first_key) "
        "VALUES (%s, %s, %s, %s, %s)",
        (sha(data), md5(data), len(data), RECEPTION, s.key("theirs.csv")),
    )
    try:
        thread, out = in_thread(lambda: run(ingest(key_prefix=s.keys)))
        wait_until(lambda: waiting_on_a_lock(stack), 30, "raw_ingest waiting on the rival claim")
        rival.commit()
        thread.join(30)
    finally:
        rival.close()

    assert "error" not in out, out.get("error")
    (row,) = reception_rows(stack, s.keys)
    assert (row["status"], row["duplicate_of"]) == ("duplicate", sha(data))
    assert row["reason"] == f"same content as {RECEPTION}/{s.key('theirs.csv')}"


def test_project_created_by_a_concurrent_run_is_selected_not_refused(stack: Any) -> None:
    s = new_scope("race")
    rival = hold(stack, "INSERT INTO projects_registry (name, prefix) VALUES (%s, %s)", (s.name, s.prefix))
    try:
        thread, out = in_thread(lambda: run(promote(s)))
        wait_until(lambda: waiting_on_a_lock(stack), 30, "promote waiting on the rival project")
        rival.commit()
        thread.join(30)
    finally:
        rival.close()

    assert "error" not in out, out.get("error")
    assert out["result"]["prefix"] == s.prefix


# ------------------------------------------------------------------------------- killed half-way


def storage_state(stack: Any, s: Scope) -> list[tuple[Any, ...]]:
    """A project's storage rows, relative to its prefix, so two projects can be compared."""
    rows = storage_rows(stack, s.name)
    return sorted(
        (r["logical_name"], r["version"], r["sha256"], r["size_bytes"], r["dest_key"][len(s.keys) :])
        for r in rows
    )


def test_promote_killed_half_way_converges_to_the_uninterrupted_result(stack: Any, tmp_path: Path) -> None:
    crashed, reference = new_scope("crash"), new_scope("ref")
    tag = crashed.prefix
    stage(stack, crashed, files_for(crashed, 200, 180, tag))
    stage(stack, reference, files_for(reference, 200, 180, tag))  # the same bytes, another project
    run(promote(reference))

    job = promote_job(crashed, workers=1, batch=20, delay_s=0.01)
    proc = spawn_child(job, tmp_path / "child.log")
    wait_until(
        lambda: storage_rows(stack, crashed.name) and len(list_keys(stack, STORAGE, crashed.keys)) >= 30,
        90,
        "a committed batch and some copies",
    )
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(30) == -signal.SIGKILL

    # What the killed run recorded is true: each row's object exists and holds that sha256.
    rows = storage_rows(stack, crashed.name)
    assert 0 < len(rows) < 180
    for row in rows:
        assert sha(read(stack, STORAGE, row["dest_key"])) == row["sha256"]

    summary = run(promote(crashed, project_prefix=None))

    assert summary["failed"] == 0
    assert storage_state(stack, crashed) == storage_state(stack, reference)
    keys = sorted(k[len(crashed.keys) :] for k in list_keys(stack, STORAGE, crashed.keys))
    assert keys == sorted(k[len(reference.keys) :] for k in list_keys(stack, STORAGE, reference.keys))
    assert set(Counter(r["sha256"] for r in storage_rows(stack, crashed.name)).values()) == {1}
    for row in storage_rows(stack, crashed.name):
        assert sha(read(stack, STORAGE, row["dest_key"])) == row["sha256"]


def test_cleanup_killed_half_way_records_every_deletion_and_converges(stack: Any, tmp_path: Path) -> None:
    s = new_scope("ckill")
    stage(stack, s, files_for(s, 200, 200))
    run(promote(s))
    job = {
        "op": "cleanup",
        "kwargs": {"key_prefix": s.keys, "dry_run": False, "retention_days": 0},
        "batch": 10,
        "delay_s": 0.02,
    }
    proc = spawn_child(job, tmp_path / "child.log")
    wait_until(lambda: len(list_keys(stack, RECEPTION, s.keys)) <= 150, 90, "some deletions")
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(30) == -signal.SIGKILL

    remaining = set(list_keys(stack, RECEPTION, s.keys))
    assert 0 < len(remaining) < 200, "the kill must land in the middle of the deletions"
    deleted_rows = query(
        stack,
        "SELECT object_key FROM meta.cleanup_log WHERE action = 'deleted' AND left(object_key, %s) = %s",
        (len(s.keys), s.keys),
    )
    gone = {s.key(rel) for rel in files_for(s, 200, 200)} - remaining
    assert gone <= {r["object_key"] for r in deleted_rows}, "an object was deleted without a record"

    summary = run(cleanup(s, dry_run=False, retention_days=0))

    assert list_keys(stack, RECEPTION, s.keys) == {}
    assert summary["deleted"] == len(remaining)
    per_row = query(
        stack,
        "SELECT r.id, r.deleted_at, count(c.id) AS deletions FROM reception_audit r "
        "LEFT JOIN meta.cleanup_log c ON c.reception_audit_id = r.id AND c.action = 'deleted' "
        "WHERE left(r.object_key, %s) = %s GROUP BY r.id, r.deleted_at",
        (len(s.keys), s.keys),
    )
    assert len(per_row) == 200
    assert all(r["deletions"] == 1 and r["deleted_at"] is not None for r in per_row)
