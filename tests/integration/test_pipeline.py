"""The README's first command, end to end: ``make demo`` on a folder of real INMET files (plus one
file that is not a table) runs the seven DAG files through ``dag.test()`` in one process
(``python -m trilha.ops.run``, asset events handed from each run to the next) against a stack of
its own (real PostgreSQL, S3 server and mongod, started by ``make demo`` in a temporary state
directory, stopped by ``make down``), then a second ``make demo`` changes nothing.

Nothing is faked: the DAG files, their Params and templates, the operators, the Airflow CLI and the
services are the ones a user gets. What is checked is in the audit store and the objects themselves.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.ingest_support import REPO, list_keys, query, read, snapshot
from tests.integration.process_support import (
    DATASETS,
    INMET_YEARLY,
    NAME_2019,
    NAME_BDMEP,
    SAMPLES,
    data_lines,
    parquet,
    sample,
    sha,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PROJECT = "Estações INMET"
PREFIX = "esta-es-inmet"  # what scripts/demo.sh derives from the name
DAGS = (
    "drive_capture",
    "raw_ingest",
    "reception_promote",
    "staging",
    "curated",
    "dataset_split",
    "reception_cleanup",
)
NOT_A_TABLE = "leia-me.csv"


def clean_env(state: Path) -> dict[str, str]:
    """The user's shell: none of this test session's Airflow settings or connections."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "TRILHA_"))}
    env["TRILHA_STATE_DIR"] = str(state)
    return env


def make(state: Path, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", *args, f"STATE={state}"],
        cwd=REPO,
        env=clean_env(state),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def logs_of(state: Path) -> str:
    logs = sorted((state / "demo-logs").glob("*.log"))
    return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in logs)


@pytest.fixture(scope="module")
def demo() -> Iterator[dict[str, Any]]:
    from trilha.ops.devstack import Stack

    # Not under pytest's 0700 basetemp: as root, PostgreSQL runs as an unprivileged user that needs
    # to traverse every parent directory (see tests/unit/test_bootstrap.py).
    base = Path(tempfile.mkdtemp(prefix="trilha-demo-"))
    base.chmod(0o711)
    state, inbox = base / "state", base / "inbox"
    inbox.mkdir()
    for path in SAMPLES.iterdir():
        if path.suffix.lower() == ".csv":
            shutil.copy(path, inbox / path.name)
    (inbox / NOT_A_TABLE).write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8)
    try:
        first = make(state, "demo", f"INPUT={inbox}", f"PROJECT={PROJECT}")
        assert first.returncode == 0, f"{first.stdout[-3000:]}\n{first.stderr[-3000:]}\n{logs_of(state)}"
        stack = Stack(state)
        yield {"state": state, "inbox": inbox, "stack": stack, "out": first.stdout}
    finally:
        down = make(state, "down", timeout=120)
        shutil.rmtree(base, ignore_errors=True)
        assert down.returncode == 0, down.stderr


def project_rows(stack: Any, table: str) -> list[dict[str, Any]]:
    return query(
        stack,
        f"SELECT t.* FROM {table} t JOIN projects_registry p ON p.id = t.project_id "  # noqa: S608 - fixed names
        "WHERE p.name = %s ORDER BY t.id",
        (PROJECT,),
    )


def test_every_dag_ran_and_the_summary_says_where_to_look(demo: dict[str, Any]) -> None:
    lines = demo["out"].splitlines()
    for dag_id in DAGS:
        (line,) = [ln for ln in lines if ln.startswith(dag_id + " ")]
        assert " ok " in line, line
        # Each consumer ran on the event its producer's run emitted, as under the scheduler; the
        # capture starts the chain and the cleanup is scheduled by time only.
        handed_on = dag_id not in ("drive_capture", "reception_cleanup")
        assert ("(1 asset events)" in line) == handed_on, line
    assert [ln for ln in lines if ln.startswith(f"{len(DAGS)} DAG(s) in ")], lines
    out = demo["out"]
    assert f"project '{PROJECT}' (prefix '{PREFIX}')" in out
    assert f"s3://datasets/{PREFIX}/inmet_hourly/" in out
    assert NOT_A_TABLE in out  # the rejection is reported with its file
    # The layouts staging detected, by the names the formats give them.
    for layout in ("inmet_automatic_pre2019", "inmet_automatic_2019only", "inmet_automatic_2020plus"):
        assert f"{layout} (inmet_hourly): 1 file(s)" in out, out
    assert "inmet_bdmep (inmet_bdmep_daily): 1 file(s)" in out
    # Not the default state directory: every closing hint names it.
    state = demo["state"]
    assert f"Stop: make down STATE={state}" in out
    assert f"(make ui STATE={state})" in out
    assert f"devstack dsn --state-dir {state})" in out
    assert f"set -a; . {state}/env; set +a;" in out


def test_each_layer_holds_every_file_once(demo: dict[str, Any]) -> None:
    stack = demo["stack"]
    names = sorted(p.name for p in demo["inbox"].iterdir())
    (project,) = query(stack, "SELECT * FROM projects_registry WHERE name = %s", (PROJECT,))
    assert project["prefix"] == PREFIX
    stored = project_rows(stack, "storage_audit")
    assert sorted(Path(r["dest_key"]).name for r in stored) == names
    for row in stored:
        assert row["sha256"] == sha((demo["inbox"] / Path(row["dest_key"]).name).read_bytes())
    staged = {Path(r["source_key"]).name: r for r in project_rows(stack, "staging_inventory")}
    assert sorted(staged) == names
    for name in INMET_YEARLY:
        assert (staged[name]["status"], staged[name]["dataset"]) == ("staged", "inmet_hourly")
        assert staged[name]["rows_ok"] + staged[name]["rows_rejected"] == data_lines(sample(name))
    assert staged[NAME_BDMEP]["dataset"] == "inmet_bdmep_daily"
    bad = staged[NOT_A_TABLE]
    assert bad["status"] == "rejected"
    assert NOT_A_TABLE in bad["reason"]
    assert bad["output_key"] is None


def test_the_dataset_is_the_curated_hours_cut_three_ways(demo: dict[str, Any]) -> None:
    stack = demo["stack"]
    curated = {r["dataset"]: r for r in project_rows(stack, "curated_inventory")}
    assert sorted(curated) == ["inmet_bdmep_daily", "inmet_hourly"]
    hours = sum(data_lines(sample(n)) for n in INMET_YEARLY)
    assert curated["inmet_hourly"]["rows"] == hours
    (cut,) = project_rows(stack, "dataset_inventory")
    assert cut["curated_id"] == curated["inmet_hourly"]["id"]
    manifest = json.loads(read(stack, DATASETS, cut["manifest_key"]))
    assert sha(read(stack, DATASETS, cut["manifest_key"])) == cut["manifest_sha256"]
    assert sum(manifest["rows"].values()) == hours
    for name, f in manifest["files"].items():
        data = read(stack, DATASETS, f["key"])
        assert sha(data) == f["sha256"], name
        assert parquet(stack, DATASETS, f["key"]).num_rows == f["rows"], name
    # the S3 server is disk-backed: what the summary points at is a plain file under the state dir
    on_disk = demo["state"] / "s3" / DATASETS / cut["manifest_key"]
    assert sha(on_disk.read_bytes()) == cut["manifest_sha256"]


def test_run_log_and_audit_log_have_a_record_of_every_task(demo: dict[str, Any]) -> None:
    import pymongo

    stack = demo["stack"]
    rows = query(stack, "SELECT dag_id, status, counters FROM meta.audit_log ORDER BY id")
    assert sorted({r["dag_id"] for r in rows}) == sorted(DAGS)
    assert {r["status"] for r in rows} == {"success"}
    port = stack.state["mongo"]["port"]
    client = pymongo.MongoClient("127.0.0.1", port, serverSelectionTimeoutMS=5000)
    try:
        docs = list(client["trilha"]["run_log"].find({}, {"dag_id": 1, "audit_log_id": 1, "status": 1}))
    finally:
        client.close()
    assert sorted(d["dag_id"] for d in docs) == sorted(r["dag_id"] for r in rows)
    assert {d["status"] for d in docs} == {"success"}


def test_trace_follows_a_file_from_the_folder_to_the_dataset(demo: dict[str, Any]) -> None:
    # What `set -a; . .trilha/env` gives a user's shell: the stack's own variables.
    env = {**clean_env(demo["state"]), **demo["stack"].env_vars()}
    res = subprocess.run(
        [str(REPO / ".venv" / "bin" / "python"), "-m", "trilha.ops.trace", NAME_2019],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    layers = [
        ln.split()[0] for ln in res.stdout.splitlines() if ln.startswith("  ") and ln.split()[0] != "at"
    ]
    assert layers == ["reception", "stored", "staged", "curated", "dataset"], res.stdout
    assert f"recepcao-raw/{PREFIX}/{NAME_2019}" in res.stdout
    assert f"local:{demo['inbox'] / NAME_2019}" in res.stdout
    assert f"storage-unique/{PREFIX}/{NAME_2019}" in res.stdout
    assert "staged inmet_hourly layout inmet_automatic_2019only rows ok" in res.stdout


def test_a_second_demo_changes_nothing(demo: dict[str, Any]) -> None:
    stack, state = demo["stack"], demo["state"]
    before = snapshot(stack)
    objects = {b: sorted(list_keys(stack, b, "")) for b in before[1]}
    again = make(state, "demo", f"INPUT={demo['inbox']}", f"PROJECT={PROJECT}")
    assert again.returncode == 0, f"{again.stdout[-3000:]}\n{logs_of(state)}"
    after = snapshot(stack)
    # The cleanup log is a log of decisions: the dry run records its "kept" decisions each time it
    # runs (it "may record that it ran"); it deleted nothing and may not claim it did.
    decisions = after[0].pop("meta.cleanup_log") - before[0].pop("meta.cleanup_log")
    assert decisions == len(project_rows(stack, "storage_audit"))
    assert query(stack, "SELECT count(*) AS n FROM meta.cleanup_log WHERE action = 'deleted'") == [{"n": 0}]
    assert after == before
    assert {b: sorted(list_keys(stack, b, "")) for b in before[1]} == objects
    (capture,) = [ln for ln in again.stdout.splitlines() if ln.startswith("drive_capture ")]
    # The summary shows the counters that are not zero: every file seen again, none new.
    assert (
        f'capture: {{"seen":{len(names_in(demo["inbox"]))},"duplicate":{len(names_in(demo["inbox"]))}}}'
        in capture
    )
    # Nothing changed, so no layer emitted an event, and no consumer ran scoped to one.
    assert "asset events" not in again.stdout


def names_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_a_failed_dag_stops_the_chain_and_names_its_log_and_error(demo: dict[str, Any]) -> None:
    env = {**clean_env(demo["state"]), **demo["stack"].env_vars()}
    missing = demo["state"] / "no-such-folder"
    res = subprocess.run(
        [
            str(REPO / ".venv" / "bin" / "python"),
            "-m",
            "trilha.ops.run",
            "drive_capture",
            "raw_ingest",
            "--conf-for",
            "drive_capture=" + json.dumps({"source": str(missing), "project": PROJECT}),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert res.returncode == 1, res.stdout + res.stderr
    lines = res.stdout.splitlines()
    (failed,) = [ln for ln in lines if ln.startswith("drive_capture ")]
    assert " FAILED " in failed
    assert not [ln for ln in lines if ln.startswith("raw_ingest ")]  # the chain stopped
    log_lines = [ln.split("log: ", 1)[1] for ln in lines if ln.strip().startswith("log: ")]
    assert log_lines, lines
    assert all("task_id=capture" in path for path in log_lines), lines
    assert Path(log_lines[0]).read_text()  # the task's own log file, where the UI reads it
    assert f"local folder '{missing}': does not exist" in res.stdout
