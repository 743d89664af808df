"""The chaos suite (issue 13): kill Trilha's task processes, stop its servers, and check that every
re-run converges to a lake that the audit explains exactly.

Each trial owns a project on a private stack (real PostgreSQL, S3 server and mongod, started for this
module). It prepares the step's input with the real operators, runs the step in a child process
(``tests/chaos/child.py``) and kills it with SIGKILL: either at a seeded random time, or aimed at a
point in the middle of a copy or of a commit (right after an S3 write whose audit row is not written
yet, or right after an INSERT whose transaction never commits). Outage trials stop the S3 server or
PostgreSQL while the step runs. Then the step (and, for cleanup, its prerequisites) is re-run, and:

* ``python -m trilha.ops.reconcile --project <p> --grace-minutes 0`` reports 0 drift (every audited
  object is in the lake with its size, ETag and sha256; no object lacks its audit row), and the
  killed run's ``meta.audit_log`` row is no longer ``running`` (reconcile marks it ``abandoned``);
* no reception object was deleted without a verified stored copy;
* the staged, curated and dataset row counts add up to the input's rows.

Trials are seeded (``TRILHA_CHAOS_SEED``, default fixed) and bounded: each child has a deadline. The
cheap set (one aimed kill per step) runs in ``make test``; ``make chaos`` sets ``TRILHA_CHAOS=full``
for the whole set (at least 24 trials). A table of trials and outcomes is printed at the end.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.integration.ingest_support import REPO, Scope, new_scope

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FULL = os.environ.get("TRILHA_CHAOS") == "full"
SEED = int(os.environ.get("TRILHA_CHAOS_SEED", "20261203"))
RECEPTION, STORAGE = "recepcao-raw", "storage-unique"
N_FILES = 120  # reception files of the ingestion trials
N_PARTS, ROWS_PER_PART = 4, 3000  # generic CSVs of the processing trials
CHILD_DEADLINE_S = 120

#: Where an aimed kill lands, per step: mid-copy (an S3 write done, its audit row not yet written) and
#: mid-commit (the INSERT executed inside a transaction that never commits).
AIMED: dict[str, list[tuple[str, dict[str, Any]]]] = {
    "ingest": [
        ("mid-hash", {"target": "MinioHook.digest_object", "call": 40, "when": "after"}),
        ("mid-commit", {"target": "sql:reception_insert", "call": 1, "when": "after"}),
    ],
    "promote": [
        ("mid-copy", {"target": "MinioHook.copy_object_verified", "call": 30, "when": "after"}),
        ("mid-commit", {"target": "sql:storage_insert", "call": 1, "when": "after"}),
    ],
    "cleanup": [
        ("mid-delete", {"target": "MinioHook.delete_keys", "call": 1, "when": "after"}),
        ("mid-commit", {"target": "sql:cleanup_insert", "call": 1, "when": "after"}),
        ("before-delete", {"target": "MinioHook.delete_keys", "call": 1, "when": "before"}),
    ],
    "staging": [
        ("mid-write", {"target": "MinioHook.put_bytes", "call": 2, "when": "after"}),
        ("mid-commit", {"target": "sql:staging_insert", "call": 1, "when": "after"}),
    ],
    "curated": [
        ("mid-write", {"target": "MinioHook.put_bytes", "call": 1, "when": "after"}),
        ("mid-commit", {"target": "sql:curated_insert", "call": 1, "when": "after"}),
    ],
    "split": [
        ("mid-write", {"target": "MinioHook.put_bytes", "call": 2, "when": "after"}),
        ("mid-commit", {"target": "sql:dataset_insert", "call": 1, "when": "after"}),
    ],
}
#: What each step needs done before it.
BEFORE = {
    "ingest": [],
    "promote": ["ingest"],
    "cleanup": ["ingest", "promote"],
    "staging": ["ingest", "promote"],
    "curated": ["ingest", "promote", "staging"],
    "split": ["ingest", "promote", "staging", "curated"],
}


@dataclass
class Trial:
    number: int
    step: str
    how: str  # "random", an AIMED label, "s3-down" or "postgres-down"
    kill: dict[str, Any] | None = None
    delay_s: float = 0.0
    outcome: str = ""
    drift: int | None = None
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def id(self) -> str:
        return f"{self.number:02d}-{self.step}-{self.how}"


def build_trials() -> list[Trial]:
    rng = random.Random(SEED)
    trials: list[Trial] = []
    for step, points in AIMED.items():
        chosen = points if FULL else [points[len(trials) % 2]]
        for label, kill in chosen:
            trials.append(Trial(len(trials) + 1, step, label, kill=kill))
        if FULL:
            for _ in range(2):
                trials.append(
                    Trial(len(trials) + 1, step, "random", delay_s=round(rng.uniform(0.05, 2.0), 2))
                )
    if FULL:
        trials.append(Trial(len(trials) + 1, "promote", "s3-down", delay_s=round(rng.uniform(0.2, 1.0), 2)))
        trials.append(
            Trial(len(trials) + 1, "staging", "postgres-down", delay_s=round(rng.uniform(0.1, 0.6), 2))
        )
    return trials


TRIALS = build_trials()
RESULTS: list[Trial] = []


# --------------------------------------------------------------------------------------- the private stack


@pytest.fixture(scope="module")
def chaos_stack() -> Iterator[Any]:
    """A stack of this module's own (its servers get stopped), its connections in ``os.environ``."""
    from tests.helpers import running_stack

    try:
        with running_stack("trilha-chaos-stack-", "chaos stack") as st:
            yield st
    finally:
        print_table()


def print_table() -> None:
    if not RESULTS:
        return
    lines = [f"{'trial':<28} {'outcome':<34} {'drift':>5} {'s':>6}  notes"]
    for t in RESULTS:
        lines.append(
            f"{t.id:<28} {t.outcome:<34} {('-' if t.drift is None else t.drift):>5} {t.seconds:>6.1f}  "
            + "; ".join(t.notes)
        )
    killed = sum(1 for t in RESULTS if t.outcome.startswith("killed"))
    lines.append(
        f"{len(RESULTS)} trials, {killed} killed mid-run, seed {SEED}, {'full' if FULL else 'cheap'} set"
    )
    print("\n" + "\n".join(lines), file=sys.__stdout__, flush=True)


# --------------------------------------------------------------------------------------- steps


def kwargs_for(step: str, s: Scope) -> dict[str, Any]:
    return {
        "ingest": {"key_prefix": s.keys},
        "promote": {"project": s.name, "project_prefix": s.prefix},
        "cleanup": {"key_prefix": s.keys, "retention_days": 0, "dry_run": False},
        "staging": {"project": s.name},
        "curated": {"project": s.name, "dataset": "generic"},
        # The generic table has no time column: a hash cut by row (temporal is the default).
        "split": {
            "project": s.name,
            "dataset": "generic",
            "table": "data",
            "key_columns": ["id"],
            "strategy": "hash",
            "group_by": "row",
        },
    }[step]


def run_in_process(step: str, s: Scope) -> dict[str, Any]:
    from tests.chaos.child import build
    from tests.helpers import run_operator

    return dict(run_operator(build(step, kwargs_for(step, s))))


def s3_client(st: Any) -> Any:
    return st.s3_client()


def put_inputs(st: Any, trial: Trial, s: Scope) -> int:
    """The step's input in reception; returns the data rows it holds (0 for the ingestion trials)."""
    from trilha.hooks.audit import AuditHook

    audit = AuditHook()
    try:  # the project exists before anything, so reconcile can scope even an ingest-only trial
        audit.get_or_create_project(s.name, s.prefix, None)
    finally:
        audit.close()
    client = s3_client(st)
    if trial.step in ("ingest", "promote", "cleanup"):
        for i in range(N_FILES):
            body = f"trial;{trial.id};file;{i}\n".encode() * (1 + i % 7)
            client.put_object(Bucket=RECEPTION, Key=s.key(f"in/{i:04d}.csv"), Body=body)
        return 0
    for part in range(N_PARTS):
        rows = "".join(
            f"{part * ROWS_PER_PART + r};{trial.id};{(part * 7 + r) % 101}.5\n" for r in range(ROWS_PER_PART)
        )
        client.put_object(
            Bucket=RECEPTION, Key=s.key(f"parts/part{part}.csv"), Body=f"id;trial;value\n{rows}".encode()
        )
    return N_PARTS * ROWS_PER_PART


def spawn(
    step: str, s: Scope, out: Path, run_id: str, kill: dict[str, Any] | None
) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "plugins"), str(REPO)])
    job = {"op": step, "kwargs": kwargs_for(step, s), "run_id": run_id, "kill": kill}
    handle = open(out, "wb")
    try:
        return subprocess.Popen(
            [sys.executable, str(REPO / "tests" / "chaos" / "child.py"), json.dumps(job)],
            cwd=REPO,
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
    finally:
        handle.close()


def wait_started(proc: subprocess.Popen[bytes], out: Path) -> None:
    deadline = time.monotonic() + CHILD_DEADLINE_S
    while b"STARTED" not in out.read_bytes():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"child did not start:\n{out.read_text(errors='replace')[-3000:]}")
        time.sleep(0.02)


def stop_service(st: Any, component: str) -> None:
    from trilha.ops.devstack import stop_pid

    info = st.state[component]
    if component == "postgres":
        subprocess.run(  # noqa: S603
            [str(Path(info["bin_dir"]) / "pg_ctl"), "stop", "-D", info["data_dir"], "-m", "immediate", "-w"],
            capture_output=True,
            check=False,
            timeout=60,
            user=info.get("os_user"),
            group=info.get("os_user"),
            extra_groups=[] if info.get("os_user") else None,
        )
        info["pid"] = None
    else:
        stop_pid(int(info["pid"]), info.get("expect", ""))
        info["pid"] = None


def run_killed_step(st: Any, trial: Trial, s: Scope, tmp: Path) -> str:
    """Run the step in a child and break it as the trial says; returns what happened to the child."""
    out = tmp / f"{trial.id}.log"
    run_id = f"chaos__{trial.id}__{s.prefix}"
    proc = spawn(trial.step, s, out, run_id, trial.kill)
    try:
        wait_started(proc, out)
        if trial.how in ("s3-down", "postgres-down"):
            time.sleep(trial.delay_s)
            stop_service(st, "s3" if trial.how == "s3-down" else "postgres")
            proc.wait(CHILD_DEADLINE_S)
            st.up()  # the servers come back on the same ports, with the same data
            return f"{trial.how}: child exit {proc.returncode}"
        if trial.how == "random":
            time.sleep(trial.delay_s)
            if proc.poll() is None:
                proc.kill()
                proc.wait(30)
                return f"killed at {trial.delay_s}s"
            proc.wait(30)
            return f"finished before {trial.delay_s}s (exit {proc.returncode})"
        proc.wait(CHILD_DEADLINE_S)
        return (
            "killed at the aimed point"
            if proc.returncode == -9
            else f"point not reached (exit {proc.returncode})"
        )
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)


def reconcile(s: Scope) -> dict[str, Any]:
    from trilha.ops import reconcile as cli

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = cli.main(["--project", s.name, "--grace-minutes", "0", "--json"])
    text = buf.getvalue()
    assert code in (0, 1), f"reconcile could not run (exit {code}): {text[-2000:]}"
    start = re.search(r"^\{$", text, re.M)  # the JSON document, after any log lines
    assert start, text[-2000:]
    return {"exit": code, **json.loads(text[start.start() :])}


def sql(st: Any, statement: str, params: tuple[Any, ...]) -> list[dict[str, Any]]:
    import psycopg2
    import psycopg2.extras

    conn = psycopg2.connect(st.postgres_dsn())
    try:
        with conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
            cur.execute(statement, params)
            return [dict(r) for r in cur.fetchall()]
    finally:
        conn.close()


def check_invariants(st: Any, trial: Trial, s: Scope, rows_in: int) -> list[str]:
    """What must hold after the re-run; returns the violations (empty = converged)."""
    problems: list[str] = []
    report = reconcile(s)
    trial.drift = int(report["drift_total"]) if "drift_total" in report else None
    if report["exit"] != 0:
        problems.append(f"reconcile exit {report['exit']}: {json.dumps(report)[:1500]}")
    running = sql(
        st,
        "SELECT id, dag_id, task_id, run_id FROM meta.audit_log WHERE status = 'running' AND run_id LIKE %s",
        (f"chaos__{trial.id}__%",),
    )
    if running:
        problems.append(f"audit_log rows still 'running' after reconcile: {running}")
    # No reception object deleted without a verified stored copy of the same content.
    unsafe = sql(
        st,
        """
        SELECT c.object_key FROM meta.cleanup_log c
        WHERE c.action = 'deleted' AND left(c.object_key, %s) = %s
          AND NOT EXISTS (SELECT 1 FROM storage_audit a WHERE a.sha256 = c.sha256 AND a.project_name = %s)
        """,
        (len(s.keys), s.keys, s.name),
    )
    if unsafe:
        problems.append(f"deleted without a stored copy: {unsafe}")
    if trial.step == "cleanup":
        left = s3_client(st).list_objects_v2(Bucket=RECEPTION, Prefix=s.keys).get("KeyCount", 0)
        deleted = sql(
            st,
            "SELECT count(*) AS n FROM meta.cleanup_log "
            "WHERE action = 'deleted' AND left(object_key, %s) = %s",
            (len(s.keys), s.keys),
        )[0]["n"]
        if (left, deleted) != (0, N_FILES):
            problems.append(f"cleanup: {left} objects left in reception, {deleted} deletions recorded")
    if trial.step in ("staging", "curated", "split"):
        staged = sql(
            st,
            "SELECT i.status, i.rows_ok, i.rows_rejected FROM staging_inventory i "
            "JOIN projects_registry p ON p.id = i.project_id WHERE p.name = %s",
            (s.name,),
        )
        if sorted((r["status"], r["rows_ok"]) for r in staged) != [("staged", ROWS_PER_PART)] * N_PARTS:
            problems.append(f"staging rows: {staged}")
    if trial.step in ("curated", "split"):
        cur = sql(
            st,
            "SELECT c.version, c.rows FROM curated_inventory c "
            "JOIN projects_registry p ON p.id = c.project_id WHERE p.name = %s",
            (s.name,),
        )
        if [(r["version"], r["rows"]) for r in cur] != [("v0001", rows_in)]:
            problems.append(f"curated versions: {cur}")
    if trial.step == "split":
        cut = sql(
            st,
            "SELECT d.rows FROM dataset_inventory d JOIN projects_registry p ON p.id = d.project_id "
            "WHERE p.name = %s",
            (s.name,),
        )
        totals = [sum(int(v) for v in r["rows"].values()) for r in cut]
        if totals != [rows_in]:
            problems.append(f"dataset versions and rows: {cut}")
    return problems


@pytest.mark.parametrize("trial", TRIALS, ids=[t.id for t in TRIALS])
def test_a_broken_run_converges_on_rerun(chaos_stack: Any, trial: Trial, tmp_path: Path) -> None:
    start = time.monotonic()
    s = new_scope(f"chaos{trial.number}")
    try:
        rows_in = put_inputs(chaos_stack, trial, s)
        for step in BEFORE[trial.step]:
            run_in_process(step, s)
        trial.outcome = run_killed_step(chaos_stack, trial, s, tmp_path)
        # The re-run: the step again (cleanup's own prerequisites are done; a kill may have cut them).
        summary = run_in_process(trial.step, s)
        trial.notes.append(f"re-run counters {summary['counters']}")
        problems = check_invariants(chaos_stack, trial, s, rows_in)
    finally:
        trial.seconds = time.monotonic() - start
        RESULTS.append(trial)
    assert problems == [], f"{trial.id} (log: {tmp_path / (trial.id + '.log')}): {problems}"
