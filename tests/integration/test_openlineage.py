"""OpenLineage events of a demo run, through the provider's file transport, checked against the audit.

The pipeline runs as ``make demo`` runs it (``scripts/demo.sh``: ``python -m trilha.ops.run`` over the
seven DAGs in one process, asset events handed on, capture from a local folder, dry-run cleanup), on
the session's local stack, with ``AIRFLOW__OPENLINEAGE__TRANSPORT`` set to the provider's ``file``
transport. (``scripts/demo.sh`` itself is not called: it runs the interpreter of the checkout's own
``.venv``, which a worktree may not have; the arguments are the same.)

For every Trilha task the run recorded in ``meta.audit_log``, there must be exactly one COMPLETE
event, for job ``<dag_id>.<task_id>``, whose ``trilha`` run facet names that audit row, and whose
inputs and outputs are exactly the objects the audit tables say that task read and wrote (matched
through the ``run_id`` they record, and the map index for the mapped tasks), with their sha256 and
row counts.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from tests.integration.ingest_support import REPO, query
from tests.integration.process_support import INMET_YEARLY, NAME_2019, SAMPLES, sample, tagged
from trilha.ops.run import PIPELINE

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DAGS = PIPELINE  # what scripts/demo.sh runs
NOT_A_TABLE = "leia-me.csv"
#: The 2019 file with one line's date made impossible: staged, with that one row quarantined.
BAD_DATE = "data-impossivel.csv"
NAMESPACE = "trilha-ol-test"

Side = set[tuple[str, str]]


def run(cmd: list[str], env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False)
    assert res.returncode == 0, f"{cmd}: {res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    return res


@pytest.fixture(scope="module")
def demo(stack: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("openlineage")
    inbox, events_file = base / "inbox", base / "ol.jsonl"
    inbox.mkdir()
    tag = uuid.uuid4().hex[:8]
    # The lake is content-addressed across projects, and the session's stack has seen the samples
    # (other tests load them): this run's copies name the station with a tag of their own, so every
    # file is new content here and each task has something to declare.
    for path in SAMPLES.iterdir():
        if path.suffix.lower() == ".csv":
            (inbox / path.name).write_bytes(tagged(path.read_bytes(), tag))
    (inbox / NOT_A_TABLE).write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8 + tag.encode())
    lines = tagged(sample(NAME_2019), tag).split(b"\n")
    lines[108] = lines[108].replace(b"2019/01/05", b"2019/13/45")
    (inbox / BAD_DATE).write_bytes(b"\n".join(lines))
    project = f"OpenLineage {tag}"
    prefix = re.sub(r"[^a-z0-9_-]+", "-", project.lower()).strip("-_")  # as scripts/demo.sh derives it
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "TRILHA_", "OPENLINEAGE"))}
    env.update(stack.env_vars())
    env.update(
        PYTHONPATH=str(REPO / "plugins"),
        AIRFLOW__OPENLINEAGE__TRANSPORT=json.dumps(
            {"type": "file", "log_file_path": str(events_file), "append": True}
        ),
        AIRFLOW__OPENLINEAGE__NAMESPACE=NAMESPACE,
    )
    airflow = str(Path(sys.executable).parent / "airflow")
    # What `make up` does after starting the stack (the stack fixture migrated the audit store).
    run([airflow, "db", "migrate"], env, timeout=600)
    run([sys.executable, "-m", "trilha.ops.settings"], env, timeout=300)
    res = run(
        [
            sys.executable,
            "-m",
            "trilha.ops.run",
            *DAGS,
            "--conf",
            json.dumps({"project": project}),
            "--conf-for",
            "drive_capture=" + json.dumps({"source": str(inbox), "project_prefix": prefix}),
            "--conf-for",
            'reception_cleanup={"dry_run": true}',
            "--log",
            str(base / "run.log"),
        ],
        env,
        timeout=1200,
    )
    events = [json.loads(line) for line in events_file.read_text().splitlines() if line.strip()]
    return {
        "stack": stack,
        "project": project,
        "prefix": prefix,
        "inbox": inbox,
        "events": events,
        "out": res.stdout,
    }


def task_events(demo: dict[str, Any]) -> dict[int, dict[str, Any]]:
    """The COMPLETE event of each Trilha task of the run, by its ``meta.audit_log`` id (exactly one
    each: a second event for the same audit row fails here)."""
    by_audit: dict[int, dict[str, Any]] = {}
    for e in demo["events"]:
        facet = e["run"]["facets"].get("trilha")
        if e["eventType"] != "COMPLETE" or facet is None:
            continue
        audit_id = int(facet["audit_log_id"])
        assert audit_id not in by_audit, f"two COMPLETE events for audit row {audit_id}"
        by_audit[audit_id] = e
    return by_audit


def audit_rows(demo: dict[str, Any]) -> list[dict[str, Any]]:
    """The run's ``meta.audit_log`` rows (its DAG runs are the ones the events name)."""
    run_ids = sorted(
        {
            e["run"]["facets"]["airflow"]["dagRun"]["run_id"]
            for e in demo["events"]
            if "airflow" in e["run"]["facets"] and "dagRun" in e["run"]["facets"]["airflow"]
        }
    )
    assert len(run_ids) >= len(DAGS), run_ids
    return query(
        demo["stack"],
        "SELECT id, dag_id, run_id, task_id, map_index, status FROM meta.audit_log "
        "WHERE run_id = ANY(%s) AND dag_id = ANY(%s) ORDER BY id",
        (run_ids, list(DAGS)),
    )


def side(event: dict[str, Any], which: str) -> Side:
    return {(d["namespace"], d["name"]) for d in event[which]}


def facet_of(event: dict[str, Any], which: str, name: str) -> dict[str, Any]:
    (d,) = [d for d in event[which] if d["name"] == name]
    return dict(d)


def only(events: list[dict[str, Any]]) -> dict[str, Any]:
    (e,) = events
    return e


@pytest.fixture(scope="module")
def by_task(demo: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Each task's events (``<dag>.<task>``; a mapped task has one per map index, in index order),
    after checking that every task of the run has exactly one COMPLETE event naming its audit row."""
    rows = audit_rows(demo)
    events = task_events(demo)
    assert {r["status"] for r in rows} == {"success"}, rows
    assert sorted(events) == sorted(r["id"] for r in rows)
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        e = events[r["id"]]
        assert e["job"]["name"] == f"{r['dag_id']}.{r['task_id']}"
        assert e["job"]["namespace"] == NAMESPACE
        out[e["job"]["name"]].append(e)
    assert sorted(out) == sorted(
        [
            "drive_capture.capture",
            "raw_ingest.register",
            "reception_promote.promote",
            "staging.plan",
            "staging.stage",
            "staging.announce",
            "curated.plan",
            "curated.write",
            "curated.commit",
            "dataset_split.split",
            "reception_cleanup.cleanup",
        ]
    )
    return dict(out)


def rows_of(demo: dict[str, Any], sql: str) -> list[dict[str, Any]]:
    return query(
        demo["stack"],
        f"SELECT t.* FROM {sql} t JOIN projects_registry p ON p.id = t.project_id "  # noqa: S608 - fixed names
        "WHERE p.name = %s ORDER BY t.id",
        (demo["project"],),
    )


def test_capture_reads_the_folder_and_writes_what_reception_audit_registered(
    demo: dict[str, Any], by_task: dict[str, list[dict[str, Any]]]
) -> None:
    e = only(by_task["drive_capture.capture"])
    registered = query(
        demo["stack"],
        "SELECT object_key, sha256, size_bytes, source_ref FROM reception_audit "
        "WHERE object_key LIKE %s AND status <> 'rejected' ORDER BY object_key",
        (demo["prefix"] + "/%",),
    )
    assert len(registered) == len(list(demo["inbox"].iterdir()))
    assert side(e, "outputs") == {("s3://recepcao-raw", r["object_key"]) for r in registered}
    assert side(e, "inputs") == {
        ("file", str(demo["inbox"] / Path(r["object_key"]).name)) for r in registered
    }
    for r in registered:
        out = facet_of(e, "outputs", r["object_key"])
        assert out["facets"]["version"]["datasetVersion"] == r["sha256"]
        assert out["facets"]["trilha"]["sha256"] == r["sha256"]
        assert out["outputFacets"]["outputStatistics"]["size"] == r["size_bytes"]


def test_raw_ingest_reads_only_what_capture_did_not_register(
    by_task: dict[str, list[dict[str, Any]]],
) -> None:
    # Capture registered every object it uploaded: raw_ingest, scoped to that project, reads none.
    e = only(by_task["raw_ingest.register"])
    assert (e["inputs"], e["outputs"]) == ([], [])
    assert (
        e["run"]["facets"]["trilha"]["counters"]["skipped"]
        == e["run"]["facets"]["trilha"]["counters"]["seen"]
        > 0
    )


def test_promote_copies_reception_objects_to_their_storage_keys(
    demo: dict[str, Any], by_task: dict[str, list[dict[str, Any]]]
) -> None:
    e = only(by_task["reception_promote.promote"])
    stored = rows_of(demo, "storage_audit")
    assert len(stored) == len(list(demo["inbox"].iterdir()))
    assert side(e, "inputs") == {(f"s3://{r['source_bucket']}", r["source_key"]) for r in stored}
    assert side(e, "outputs") == {(f"s3://{r['dest_bucket']}", r["dest_key"]) for r in stored}
    for r in stored:
        assert facet_of(e, "outputs", r["dest_key"])["facets"]["version"]["datasetVersion"] == r["sha256"]
        assert facet_of(e, "inputs", r["source_key"])["facets"]["version"]["datasetVersion"] == r["sha256"]


def test_each_stage_task_reads_its_stored_files_and_writes_their_staged_and_quarantine_files(
    demo: dict[str, Any], by_task: dict[str, list[dict[str, Any]]]
) -> None:
    staged = rows_of(demo, "staging_inventory")
    assert {Path(r["source_key"]).name for r in staged} == {p.name for p in demo["inbox"].iterdir()}
    stage_events = by_task["staging.stage"]
    inputs = [side(e, "inputs") for e in stage_events]
    outputs = [side(e, "outputs") for e in stage_events]
    # Every staged file is read by exactly one mapped task, and its outputs come from that task.
    assert sum(len(s) for s in inputs) == len(staged)
    assert set().union(*inputs) == {(f"s3://{r['source_bucket']}", r["source_key"]) for r in staged}
    expected_out: Side = set()
    for r in staged:
        if r["output_key"]:
            expected_out.add((f"s3://{r['output_bucket']}", r["output_key"]))
        if r["quarantine_key"]:
            expected_out.add((f"s3://{r['output_bucket']}", r["quarantine_key"]))
    assert set().union(*outputs) == expected_out
    (bad,) = [r for r in staged if Path(r["source_key"]).name == BAD_DATE]
    assert (bad["rows_rejected"], bool(bad["quarantine_key"])) == (1, True)  # the quarantine is covered
    for r in staged:
        (e,) = [
            e
            for e, ins in zip(stage_events, inputs, strict=True)
            if ("s3://" + r["source_bucket"], r["source_key"]) in ins
        ]
        if r["output_key"] is None:
            assert r["status"] == "rejected"
            assert Path(r["source_key"]).name == NOT_A_TABLE
            continue
        out = facet_of(e, "outputs", r["output_key"])
        assert out["outputFacets"]["outputStatistics"]["rowCount"] == r["rows_ok"]
        assert out["facets"]["version"]["datasetVersion"] == r["output_sha256"]
        # the staged file's schema, as the inventory records it (JSONB: key order is not kept)
        assert {f["name"]: f["type"] for f in out["facets"]["schema"]["fields"]} == r["schema_json"]
        assert (
            facet_of(e, "inputs", r["source_key"])["inputFacets"]["inputStatistics"]["rowCount"]
            == r["rows_in"]
        )
        if r["quarantine_key"]:
            q = facet_of(e, "outputs", r["quarantine_key"])
            assert q["outputFacets"]["outputStatistics"]["rowCount"] == r["rows_rejected"]
    plan = only(by_task["staging.plan"])
    assert (plan["inputs"], plan["outputs"]) == ([], [])  # it reads and writes the audit only
    # announce moves no data and declares nothing. The provider would fall back to the task's asset
    # events, but the layer Assets' URIs are Trilha's own x-trilha://<layer>, which OpenLineage has
    # no dataset naming for: the event names no dataset (the stage tasks named every object).
    announce = only(by_task["staging.announce"])
    assert (announce["inputs"], side(announce, "outputs")) == ([], set())


def test_curated_commit_writes_the_iceberg_tables_from_the_staged_parts(
    demo: dict[str, Any], by_task: dict[str, list[dict[str, Any]]]
) -> None:
    curated = rows_of(demo, "curated_inventory")
    assert sorted(r["dataset"] for r in curated) == ["inmet_bdmep_daily", "inmet_hourly"]
    e = only(by_task["curated.commit"])
    expected_in: Side = set()
    expected_out: Side = set()
    for r in curated:
        inputs = r["inputs"] if isinstance(r["inputs"], list) else json.loads(r["inputs"])
        expected_in |= {(f"s3://{i['bucket']}", i["key"]) for i in inputs}
        expected_out.add((f"s3://{r['bucket']}", r["manifest_key"]))
        for name, t in r["tables"].items():
            location = f"{demo['prefix']}/{r['dataset']}/_iceberg/{name}"
            expected_out.add((f"s3://{r['bucket']}", location))
            out = facet_of(e, "outputs", location)
            assert out["outputFacets"]["outputStatistics"]["rowCount"] == t["rows"]
            assert out["facets"]["version"]["datasetVersion"] == str(t["snapshot_id"])
            assert out["facets"]["symlinks"]["identifiers"][0]["name"] == t["identifier"]
        assert (
            facet_of(e, "outputs", r["manifest_key"])["facets"]["version"]["datasetVersion"]
            == r["manifest_sha256"]
        )
    assert side(e, "inputs") == expected_in
    assert side(e, "outputs") == expected_out
    hourly = next(r for r in curated if r["dataset"] == "inmet_hourly")
    assert len([i for i in expected_in if Path(i[1]).name.startswith("INMET_")]) == len(INMET_YEARLY)
    assert hourly["rows"] == max(t["rows"] for t in hourly["tables"].values())
    # The plan reads the new staged parts (to find the stations and years they touch): all of them,
    # on a first run; it writes nothing.
    plan = only(by_task["curated.plan"])
    assert (side(plan, "inputs"), plan["outputs"]) == (expected_in, [])
    # The write tasks read the same staged parts between them (each part once), and wrote data files
    # under the tables' locations.
    writes = by_task["curated.write"]
    assert set().union(*(side(w, "inputs") for w in writes)) == expected_in
    for w in writes:
        for ns, name in side(w, "outputs"):
            assert ns == "s3://curated-data"
            assert "/_iceberg/" in name


def test_dataset_split_reads_the_curated_table_and_writes_the_inventoried_files(
    demo: dict[str, Any], by_task: dict[str, list[dict[str, Any]]]
) -> None:
    (cut,) = rows_of(demo, "dataset_inventory")
    (hourly,) = [r for r in rows_of(demo, "curated_inventory") if r["id"] == cut["curated_id"]]
    e = only(by_task["dataset_split.split"])
    files = cut["files"] if isinstance(cut["files"], dict) else json.loads(cut["files"])
    assert side(e, "outputs") == {("s3://datasets", f["key"]) for f in files.values()} | {
        ("s3://datasets", cut["manifest_key"])
    }
    for f in files.values():
        out = facet_of(e, "outputs", f["key"])
        assert out["outputFacets"]["outputStatistics"]["rowCount"] == f["rows"]
        assert out["facets"]["version"]["datasetVersion"] == f["sha256"]
    table = (
        str(cut["params"]["table"]) if isinstance(cut["params"], dict) else json.loads(cut["params"])["table"]
    )
    location = f"{demo['prefix']}/inmet_hourly/_iceberg/{table}"
    assert side(e, "inputs") == {(f"s3://{hourly['bucket']}", location)}
    assert facet_of(e, "inputs", location)["facets"]["version"]["datasetVersion"] == str(
        hourly["tables"][table]["snapshot_id"]
    )


def test_a_dry_run_cleanup_deletes_nothing_and_declares_nothing(
    by_task: dict[str, list[dict[str, Any]]],
) -> None:
    e = only(by_task["reception_cleanup.cleanup"])
    assert e["outputs"] == []
    assert e["run"]["facets"]["trilha"]["counters"].get("deleted", 0) == 0
