"""AuditHook and TrilhaBaseOperator against the session stack's real PostgreSQL and mongod.

* Two writers claiming overlapping content at the same moment: exactly one of them gets each checksum.
* The batching promise, held by the hook's own round-trip counter.
* The operator base's records of a task run: the ``meta.audit_log`` row and the run-log document,
  including when MongoDB is down (the task goes on, a warning is logged, the Postgres row is written).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg2
import pytest
import structlog
from airflow.sdk.exceptions import AirflowException
from pymongo import MongoClient

from tests.helpers import run_operator
from trilha import config
from trilha.exceptions import ConnectionSetupError
from trilha.hooks.audit import AuditHook
from trilha.operators.base import COUNTER_NAMES, Counters, TrilhaBaseOperator
from trilha.ops.devstack import free_port

pytestmark = pytest.mark.integration


def sha(tag: str) -> str:
    return hashlib.sha256(tag.encode()).hexdigest()


def md5(tag: str) -> str:
    return hashlib.md5(tag.encode(), usedforsecurity=False).hexdigest()


def query(stack: Any, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    conn = psycopg2.connect(stack.postgres_dsn())
    try:
        with conn.cursor() as cur:
            cur.execute(sql, params)
            cols = [d[0] for d in cur.description]
            return [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]
    finally:
        conn.close()


@pytest.fixture
def audit(stack: Any) -> Iterator[AuditHook]:
    hook = AuditHook()
    yield hook
    hook.close()


# --------------------------------------------------------------------------------------------------
# concurrent claims


def claim(
    hook: AuditHook, bucket: str, run_id: str, tags: list[str], hold_s: float = 0.0
) -> list[dict[str, Any]]:
    """Claim the contents in one transaction, kept open ``hold_s`` seconds after the claim (as the
    register path keeps it open for its reception rows)."""
    ordered = sorted(tags, key=sha)
    with hook.transaction() as tx:
        rows = tx.run(
            "data_files_claim",
            {
                "bucket": bucket,
                "run_id": run_id,
                "sha256": [sha(t) for t in ordered],
                "md5": [md5(t) for t in ordered],
                "size_bytes": [len(t) for t in ordered],
                "keys": [f"{run_id}/{t}.csv" for t in ordered],
            },
        )
        time.sleep(hold_s)
    return rows


def _create_project(
    hook: AuditHook, tag: str, barrier: threading.Barrier, got: list[Any], errors: list[BaseException]
) -> None:
    try:
        barrier.wait(timeout=30)
        got.append(hook.get_or_create_project(f"race {tag}", f"race-{tag}", f"run-{tag}"))
    except BaseException as err:  # re-raised in the main thread
        errors.append(err)


def test_one_project_created_by_many_runs_at_once(stack: Any) -> None:
    """Four threads (own connections) create the same new project at the same instant, 25 times over:
    each time exactly one creates it and every other gets that very row, never an error. (Without the
    creation lock, the losers can fail on the prefix's UNIQUE index: ON CONFLICT covers the name.)"""
    hooks = [AuditHook() for _ in range(4)]
    try:
        for hook in hooks:
            assert hook.db is not None
        for _ in range(25):
            tag = uuid.uuid4().hex[:12]
            barrier = threading.Barrier(len(hooks))
            got: list[dict[str, Any]] = []
            errors: list[BaseException] = []
            args = (tag, barrier, got, errors)
            threads = [threading.Thread(target=_create_project, args=(h, *args)) for h in hooks]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=60)
            assert not errors, errors
            assert len({r["id"] for r in got}) == 1
            assert sorted(r["created"] for r in got) == [False, False, False, True]
            assert {r["prefix"] for r in got} == {f"race-{tag}"}
    finally:
        for hook in hooks:
            hook.close()


def test_two_writers_claiming_overlapping_content_at_once(stack: Any) -> None:
    """Two threads, each with its own AuditHook (own connection), released together by a barrier.

    Writer A claims contents 0-299, writer B 150-449: each of the 450 distinct checksums must be new
    for exactly one of them, and the 150 shared ones must be duplicates for the other. Each keeps its
    transaction open for a moment after claiming, so the second claimer really waits on the first
    one's uncommitted rows: the path where a loser must still learn where the winner put the content.
    """
    prefix = uuid.uuid4().hex
    tags_a = [f"{prefix}-{i}" for i in range(0, 300)]
    tags_b = [f"{prefix}-{i}" for i in range(150, 450)]
    barrier = threading.Barrier(2)
    results: dict[str, list[dict[str, Any]]] = {}
    errors: list[BaseException] = []

    def writer(name: str, tags: list[str]) -> None:
        hook = AuditHook()
        try:
            assert hook.db is not None  # connect (and migrate) first, so both really claim at once
            barrier.wait(timeout=30)
            results[name] = claim(hook, f"bucket-{name}", f"run-{name}-{prefix}", tags, hold_s=0.5)
        except BaseException as err:  # re-raised in the main thread below
            errors.append(err)
            barrier.abort()
        finally:
            hook.close()

    threads = [
        threading.Thread(target=writer, args=("a", tags_a)),
        threading.Thread(target=writer, args=("b", tags_b)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    assert not any(t.is_alive() for t in threads)

    new_a = {r["sha256"] for r in results["a"] if r["is_new"]}
    new_b = {r["sha256"] for r in results["b"] if r["is_new"]}
    every = {sha(t) for t in tags_a} | {sha(t) for t in tags_b}
    assert len(every) == 450
    # Each writer gets one answer per checksum it claimed.
    assert sorted(r["sha256"] for r in results["a"]) == sorted(sha(t) for t in tags_a)
    assert sorted(r["sha256"] for r in results["b"]) == sorted(sha(t) for t in tags_b)
    assert new_a | new_b == every
    assert new_a & new_b == set()
    # What only one writer claimed is new for it; what both claimed went to one of them.
    assert {sha(t) for t in tags_a[:150]} <= new_a
    assert {sha(t) for t in tags_b[150:]} <= new_b
    # The loser of each shared checksum is told where the winner put it (all 150 are checked).
    by_writer = {name: {r["sha256"]: r for r in rows} for name, rows in results.items()}
    shared = {sha(t) for t in tags_a[150:]}
    for checksum in shared:
        winner = "a" if checksum in new_a else "b"
        loser = "b" if winner == "a" else "a"
        assert by_writer[loser][checksum]["is_new"] is False
        assert by_writer[loser][checksum]["first_bucket"] == f"bucket-{winner}", checksum
        assert by_writer[loser][checksum]["first_key"].startswith(f"run-{winner}-{prefix}/")
    stored = query(
        stack,
        "SELECT sha256, first_bucket FROM raw.data_files WHERE sha256 = ANY(%(s)s)",
        {"s": sorted(every)},
    )
    assert len(stored) == 450
    owners = {r["sha256"]: r["first_bucket"] for r in stored}
    assert {s for s, b in owners.items() if b == "bucket-a"} == new_a
    assert {s for s, b in owners.items() if b == "bucket-b"} == new_b


def test_claim_within_one_batch_deduplicates(audit: AuditHook) -> None:
    prefix = uuid.uuid4().hex
    rows = claim(audit, "b", f"run-{prefix}", [f"{prefix}-x", f"{prefix}-x", f"{prefix}-y"])
    assert sorted((r["sha256"], r["is_new"]) for r in rows) == sorted(
        [(sha(f"{prefix}-x"), True), (sha(f"{prefix}-y"), True)]
    )
    again = claim(audit, "b", f"run2-{prefix}", [f"{prefix}-x"])
    assert [(r["is_new"], r["first_key"]) for r in again] == [(False, f"run-{prefix}/{prefix}-x.csv")]


# --------------------------------------------------------------------------------------------------
# round trips


def test_known_checksums_for_a_thousand_is_one_query(audit: AuditHook) -> None:
    prefix = uuid.uuid4().hex
    known_tags = [f"{prefix}-known-{i}" for i in range(10)]
    claim(audit, "bucket-rt", f"run-{prefix}", known_tags)
    asked = [sha(t) for t in known_tags] + [sha(f"{prefix}-unknown-{i}") for i in range(990)]
    assert len(asked) == 1000

    fresh = AuditHook()
    try:
        assert fresh.db is not None  # connecting (and the migration check) is not a batch round trip
        assert fresh.round_trips == 0
        found = fresh.known_checksums(asked)
        assert fresh.round_trips == 2  # one execute for the whole batch + its commit
    finally:
        fresh.close()
    assert set(found) == {sha(t) for t in known_tags}
    assert {found[sha(t)]["first_key"] for t in known_tags} == {f"run-{prefix}/{t}.csv" for t in known_tags}
    assert {r["first_bucket"] for r in found.values()} == {"bucket-rt"}


def test_transaction_rolls_back_on_error_and_counts(audit: AuditHook) -> None:
    prefix = uuid.uuid4().hex
    before = audit.round_trips
    params = {
        "bucket": "b",
        "run_id": "r",
        "sha256": [sha(prefix)],
        "md5": [md5(prefix)],
        "size_bytes": [1],
        "keys": ["k"],
    }

    def claim_then_fail() -> None:
        with audit.transaction() as tx:
            tx.run("data_files_claim", params)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        claim_then_fail()
    assert audit.round_trips == before + 1  # the execute; no commit
    assert audit.known_checksums([sha(prefix)]) == {}  # rolled back


def test_undefined_or_unreachable_postgres_names_the_connection(
    stack: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConnectionSetupError, match="connection 'trilha_pg_undefined' is not defined"):
        _ = AuditHook(postgres_conn_id="trilha_pg_undefined").db
    port = free_port()
    monkeypatch.setenv(
        "AIRFLOW_CONN_TRILHA_PG_DEAD",
        json.dumps({"conn_type": "postgres", "host": "127.0.0.1", "port": port, "login": "x", "schema": "x"}),
    )
    with pytest.raises(ConnectionSetupError) as exc:
        _ = AuditHook(postgres_conn_id="trilha_pg_dead").db
    assert str(exc.value).startswith("connection 'trilha_pg_dead': cannot connect to PostgreSQL")
    assert "check host, port, login and password" in str(exc.value)


# --------------------------------------------------------------------------------------------------
# the operator base


class CountingOperator(TrilhaBaseOperator):
    """Counts three items, touches one key and, if asked, records one failed item."""

    def __init__(self, *, fail_one: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.fail_one = fail_one

    def run(self, context: Any, counters: Counters) -> dict[str, Any]:
        counters.add("seen", 3)
        counters.add("new", 2)
        counters.add("bytes", 1234)
        counters.touched("inmet/a.csv")
        if self.fail_one:
            counters.problem("failed", "inmet/c.csv", "expected sha256 abc, got def")
        return {"note": "ran"}


def audit_rows(stack: Any, run_id: str) -> list[dict[str, Any]]:
    return query(stack, "SELECT * FROM meta.audit_log WHERE run_id = %(r)s", {"r": run_id})


def run_log_doc(stack: Any, doc_id: str) -> dict[str, Any] | None:
    client = MongoClient(stack.mongo_uri(), serverSelectionTimeoutMS=5000)
    try:
        return client.get_database(config.MONGO_DATABASE)[config.MONGO_RUN_COLLECTION].find_one(
            {"_id": doc_id}
        )
    finally:
        client.close()


def expected_counters(failed: int) -> dict[str, int]:
    values = dict.fromkeys(COUNTER_NAMES, 0)
    values.update(seen=3, new=2, bytes=1234, failed=failed)
    return values


def test_operator_with_a_failed_item_records_failure_everywhere(stack: Any) -> None:
    run_id = f"test__{uuid.uuid4().hex}"
    op = CountingOperator(task_id="count", fail_one=True)
    with pytest.raises(AirflowException) as exc:
        run_operator(op, run_id=run_id, dag_id="test_audit_hook")
    message = str(exc.value)
    assert message.startswith("1 item(s) failed (first: inmet/c.csv: expected sha256 abc, got def)")

    rows = audit_rows(stack, run_id)
    assert len(rows) == 1  # written at start, then updated: one row per try
    row = rows[0]
    assert (row["dag_id"], row["task_id"], row["map_index"], row["try_number"]) == (
        "test_audit_hook",
        "count",
        -1,
        1,
    )
    assert row["status"] == "failed"
    assert row["counters"] == expected_counters(failed=1)
    assert row["problems"] == [
        {"kind": "failed", "item": "inmet/c.csv", "reason": "expected sha256 abc, got def"}
    ]
    assert "1 item(s) failed" in row["error"]
    assert row["ended_at"] is not None
    assert row["ended_at"] >= row["started_at"]
    assert row["duration_s"] is not None
    assert row["duration_s"] >= 0
    assert f"meta.audit_log id {row['id']}" in message

    doc_id = f"test_audit_hook/{run_id}/count/-1/1"
    assert f"run log {doc_id}" in message
    doc = run_log_doc(stack, doc_id)
    assert doc is not None
    assert doc["status"] == "failed"
    assert doc["counters"] == expected_counters(failed=1)
    assert doc["problems"] == row["problems"]
    assert doc["keys_touched"] == ["inmet/a.csv"]
    assert doc["audit_log_id"] == row["id"]
    assert doc["summary"] == {"note": "ran"}
    assert (doc["dag_id"], doc["run_id"], doc["task_id"]) == ("test_audit_hook", run_id, "count")


def test_operator_without_failures_succeeds_and_returns_its_summary(stack: Any) -> None:
    run_id = f"test__{uuid.uuid4().hex}"
    summary = run_operator(CountingOperator(task_id="count"), run_id=run_id, dag_id="test_audit_hook")
    row = audit_rows(stack, run_id)[0]
    assert summary == {
        "counters": expected_counters(failed=0),
        "audit_log_id": row["id"],
        "run_log_id": f"test_audit_hook/{run_id}/count/-1/1",
        "note": "ran",
    }
    assert (row["status"], row["error"], row["counters"]) == ("success", None, expected_counters(failed=0))
    doc = run_log_doc(stack, summary["run_log_id"])
    assert doc is not None
    assert doc["status"] == "success"
    json.dumps(summary)  # JSON-able for XCom


def test_operator_failure_in_run_is_recorded_and_reraised(stack: Any) -> None:
    class Exploding(TrilhaBaseOperator):
        def run(self, context: Any, counters: Counters) -> dict[str, Any]:
            counters.add("seen", 1)
            raise ValueError("bad schema in x.csv")

    run_id = f"test__{uuid.uuid4().hex}"
    with pytest.raises(ValueError, match="bad schema in x.csv"):
        run_operator(Exploding(task_id="explode"), run_id=run_id, dag_id="test_audit_hook")
    row = audit_rows(stack, run_id)[0]
    assert (row["status"], row["error"]) == ("failed", "ValueError: bad schema in x.csv")
    assert row["counters"]["seen"] == 1
    doc = run_log_doc(stack, f"test_audit_hook/{run_id}/explode/-1/1")
    assert doc is not None
    assert doc["error"] == "ValueError: bad schema in x.csv"


def test_fail_on_errors_false_keeps_the_task_green(stack: Any) -> None:
    run_id = f"test__{uuid.uuid4().hex}"
    op = CountingOperator(task_id="count", fail_one=True, fail_on_errors=False)
    summary = run_operator(op, run_id=run_id, dag_id="test_audit_hook")
    assert summary["counters"]["failed"] == 1
    row = audit_rows(stack, run_id)[0]
    assert row["status"] == "success"
    assert row["problems"][0]["item"] == "inmet/c.csv"


def test_operator_with_mongo_down_still_succeeds_and_writes_postgres(
    stack: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    monkeypatch.setenv(
        "AIRFLOW_CONN_TRILHA_MONGO_CLOSED",
        json.dumps(
            {
                "conn_type": "mongo",
                "host": "127.0.0.1",
                "port": port,
                "schema": "trilha",
                "extra": {"srv": False},
            }
        ),
    )
    run_id = f"test__{uuid.uuid4().hex}"
    op = CountingOperator(task_id="count", mongo_conn_id="trilha_mongo_closed")
    started = time.monotonic()
    # Task loggers are structlog loggers in Airflow 3: capture their events directly.
    with structlog.testing.capture_logs() as events:
        summary = run_operator(op, run_id=run_id, dag_id="test_audit_hook")
    assert time.monotonic() - started < 15
    assert summary["run_log_id"] is None
    assert summary["counters"] == expected_counters(failed=0)
    # (pytest's caplog sees only stdlib logging; the RunLogHook test in test_minio_hook uses caplog.)
    warnings = [e["event"] for e in events if e.get("log_level") == "warning"]
    assert len(warnings) == 1, events
    assert warnings[0].startswith("run log not written to connection 'trilha_mongo_closed' (ServerSelection")
    assert warnings[0].endswith("the Postgres audit row is the record")
    infos = [e["event"] for e in events if e.get("log_level") == "info"]
    assert f"summary: {expected_counters(failed=0)}" in infos
    assert op.runlog.last_error is not None
    assert "ServerSelectionTimeoutError" in op.runlog.last_error
    row = audit_rows(stack, run_id)[0]
    assert row["id"] == summary["audit_log_id"]
    assert (row["status"], row["counters"]) == ("success", expected_counters(failed=0))
    assert run_log_doc(stack, f"test_audit_hook/{run_id}/count/-1/1") is None
