"""The curated DAG's three steps as the scheduler runs them: ``plan``, one mapped ``write`` per shard
(any order, any worker, each with its own map index), then ``commit``.

Every test loads synthetic INMET station files (``bench/synth.py``: the real 2020+ layout) of one
year into a project of its own, stages them, and drives the operators with the context the task
runner gives them. The lake is real (PostgreSQL, the S3 server, the Iceberg catalog).
"""

from __future__ import annotations

import hashlib
import io
import sys
import uuid
from typing import Any

import pyarrow as pa
import pyarrow.ipc as ipc
import pytest
from airflow.sdk.exceptions import AirflowException

from tests.helpers import run_operator
from tests.integration.ingest_support import REPO, Scope, new_scope, put, read, run, s3
from tests.integration.process_support import (
    CURATED,
    STAGING,
    curated,
    curated_rows,
    curated_table,
    data_files,
    load,
    staged_rows,
    staging,
)

pytestmark = pytest.mark.integration

BENCH = REPO / "bench"
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

import synth  # noqa: E402  # bench/synth.py

STATIONS = 7
HOURS = 72
YEAR = 2024


def station_files() -> dict[str, bytes]:
    return {f.name: f.data for f in synth.generate(STATIONS, 1, last_year=YEAR, hours=HOURS)}


def staged_scope(stack: Any, label: str) -> Scope:
    s = new_scope(label)
    load(stack, s, station_files())
    made = run(staging(s))
    assert made["files"] == STATIONS
    return s


def rows_ok(stack: Any, s: Scope) -> int:
    """The rows the staged parts hold (the contract quarantines a few implausible synthetic hours)."""
    rows = staged_rows(stack, s)
    assert len(rows) == STATIONS
    assert sum(int(r["rows_ok"]) + int(r["rows_rejected"]) for r in rows) == STATIONS * HOURS
    return sum(int(r["rows_ok"]) for r in rows)


def plan(s: Scope, batch_size: int, run_id: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    from trilha.operators.curated import CuratedPlanOperator

    op = CuratedPlanOperator(task_id="plan", project=s.name, dataset="inmet_hourly", batch_size=batch_size)
    units = run_operator(op, run_id=run_id)
    return units, op.planned["targets"]


def write(unit: dict[str, Any], run_id: str, map_index: int, try_number: int = 1) -> dict[str, Any]:
    from trilha.operators.curated import CuratedWriteOperator

    op = CuratedWriteOperator(task_id="write", **unit)
    return dict(run_operator(op, run_id=run_id, map_index=map_index, try_number=try_number))


def commit(targets: list[dict[str, Any]], written: list[dict[str, Any]], run_id: str) -> dict[str, Any]:
    from trilha.operators.curated import CuratedCommitOperator

    op = CuratedCommitOperator(task_id="commit", targets=targets, written=written)
    return dict(run_operator(op, run_id=run_id))


def mapped_run(s: Scope, batch_size: int) -> tuple[int, dict[str, Any]]:
    run_id = f"mapped__{uuid.uuid4().hex[:8]}"
    units, targets = plan(s, batch_size, run_id)
    # the scheduler may run mapped tasks in any order: run them backwards
    written = {i: write(u, run_id, i) for i, u in reversed(list(enumerate(units)))}
    return len(units), commit(targets, [written[i] for i in range(len(units))], run_id)


def digest(table: pa.Table) -> str:
    """The table's content as Arrow IPC bytes, hashed: equal only for the same rows, in the same
    order, with the same schema."""
    sink = io.BytesIO()
    with ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table.combine_chunks())
    return hashlib.sha256(sink.getvalue()).hexdigest()


def lake_keys(stack: Any, s: Scope) -> set[str]:
    listed = s3(stack).list_objects_v2(Bucket=CURATED, Prefix=f"{s.prefix}/")
    return {o["Key"] for o in listed.get("Contents", [])}


def data_keys(stack: Any, s: Scope) -> set[str]:
    return {k for k in lake_keys(stack, s) if "/data/" in k}


def claimed(row: dict[str, Any]) -> set[str]:
    return {o["key"] for o in row["objects"]} | {row["manifest_key"]}


def normalised(row: dict[str, Any], s: Scope) -> dict[str, Any]:
    """What an inventory row says that does not depend on the project, the run or the shards."""
    return {
        "version": row["version"],
        "rows": row["rows"],
        "inputs_count": row["inputs_count"],
        "inputs": [
            {k: str(v).replace(s.prefix, "P") for k, v in i.items() if k != "bucket"} for i in row["inputs"]
        ],
        "tables": {
            name: (t["rows"], t["partitions_rewritten"], t["files_removed"])
            for name, t in row["tables"].items()
        },
    }


def test_1_3_and_7_write_tasks_make_the_same_tables_and_inventory_rows(stack: Any) -> None:
    """Seven station-years cut into shards of 7, 3 and 1 parts: 1, 3 and 7 mapped write tasks per year
    (2024, and 2023: the files begin at 00:00 UTC on 1 January, 31 December 2023 in local time, which
    2023's daily partition holds). The tables read back byte for byte the same (rows, order, schema),
    the inventory rows say the same, and each run wrote one hourly data file per 2024 shard, in shard
    (station) order."""
    results = []
    for batch_size, per_year in ((7, 1), (3, 3), (1, 7)):
        expected_units = 2 * per_year
        s = staged_scope(stack, f"map{batch_size}")
        units, made = mapped_run(s, batch_size)
        assert units == expected_units
        assert [v["version"] for v in made["versions"]] == ["v0001"]
        (row,) = curated_rows(stack, s)
        assert row["tables"]["hourly"]["files_added"] == per_year
        assert row["tables"]["daily"]["files_added"] == 2 * per_year
        names = ("hourly", "daily", "daily_utc", "station_years", "stations")
        tables = {name: curated_table(row, name) for name in names}
        assert tables["hourly"].num_rows == rows_ok(stack, s) == row["rows"]
        codes = tables["hourly"].column("wmo_code").to_pylist()
        assert codes == sorted(codes)  # shards read back in station order
        results.append(({n: digest(t) for n, t in tables.items()}, normalised(row, s)))
    (one, row_one), (three, row_three), (seven, row_seven) = results
    assert one == three == seven
    assert row_one == row_three == row_seven


def test_a_failed_write_task_is_retried_alone_and_nothing_is_published_before(stack: Any) -> None:
    """One shard's staged part is overwritten behind the audit's back: the mapped tasks that read it
    (its 2024 shard, and the 2023 shard its first hours go to) fail naming the part, the others keep
    their data files, nothing is published. Restored, a retry of those map indexes alone writes their
    shards, and the commit publishes v0001 with every row."""
    s = staged_scope(stack, "mapfail")
    run_id = f"mapfail__{uuid.uuid4().hex[:8]}"
    units, targets = plan(s, 3, run_id)
    assert [u["unit"]["year"] for u in units] == [2023] * 3 + [2024] * 3
    victim = units[4]["unit"]["parts"][0]
    # the part is in its 2024 shard and in the 2023 shard of the same stations (its first hours)
    hit = [i for i, u in enumerate(units) if victim["key"] in {p["key"] for p in u["unit"]["parts"]}]
    assert hit == [1, 4]
    original = read(stack, STAGING, victim["key"])
    put(stack, victim["key"], original + b"\0", bucket=STAGING)
    written: dict[int, dict[str, Any]] = {}
    for i in range(6):
        if i not in hit:
            written[i] = write(units[i], run_id, i)
    kept = data_keys(stack, s)
    for i in hit:
        with pytest.raises(
            AirflowException, match=r"1 item\(s\) failed \(first: .*does not match its inventory sha256"
        ):
            write(units[i], run_id, i)
    assert data_keys(stack, s) == kept  # the failed tasks wrote nothing, the others' files stay
    # two 2024 shards x hourly, daily, daily_utc, station_years; two 2023 shards x daily
    assert len(kept) == 2 * 4 + 2
    assert curated_rows(stack, s) == []
    put(stack, victim["key"], original, bucket=STAGING)
    for i in hit:
        written[i] = write(units[i], run_id, i, try_number=2)
    made = commit(targets, [written[i] for i in range(6)], run_id)
    assert [v["version"] for v in made["versions"]] == ["v0001"]
    (row,) = curated_rows(stack, s)
    assert curated_table(row, "hourly").num_rows == rows_ok(stack, s)
    assert kept <= data_keys(stack, s)  # the shards that succeeded were not rewritten
    assert lake_keys(stack, s) == claimed(row)


def test_a_commit_without_all_its_shards_is_refused(stack: Any) -> None:
    """A commit handed fewer written shards than its plan made (a write task that never finished)
    refuses to publish a version that would miss rows."""
    s = staged_scope(stack, "mapmiss")
    run_id = f"mapmiss__{uuid.uuid4().hex[:8]}"
    units, targets = plan(s, 3, run_id)
    written = [write(u, run_id, i) for i, u in enumerate(units)]
    with pytest.raises(AirflowException, match=r"expected 6 written unit\(s\) from the write tasks, got 2"):
        commit(targets, written[:2], run_id)
    assert curated_rows(stack, s) == []


def test_a_run_that_loses_the_commit_race_exits_cleanly_and_leaves_no_orphan(stack: Any) -> None:
    """Two runs plan the same inputs at the same time and both write their shards. The one that
    commits first publishes v0001; the other finds the dataset changed under the version lock: it
    publishes nothing, deletes its data files, and succeeds. Every object left is claimed by v0001."""
    s = staged_scope(stack, "maprace")
    runs = {}
    for name in ("a", "b"):
        run_id = f"race_{name}__{uuid.uuid4().hex[:8]}"
        units, targets = plan(s, 3, run_id)
        runs[name] = (run_id, targets, [write(u, run_id, i) for i, u in enumerate(units)])
    # two runs x (three 2024 shards x four tables + three 2023 shards x daily)
    assert len(data_keys(stack, s)) == 2 * (3 * 4 + 3)
    won = commit(runs["b"][1], runs["b"][2], runs["b"][0])
    lost = commit(runs["a"][1], runs["a"][2], runs["a"][0])
    assert [v["version"] for v in won["versions"]] == ["v0001"]
    assert lost["versions"] == []
    assert (lost["counters"]["skipped"], lost["counters"]["failed"]) == (1, 0)
    (row,) = curated_rows(stack, s)
    assert row["run_id"] == runs["b"][0]
    assert lake_keys(stack, s) == claimed(row)
    assert curated_table(row, "hourly").num_rows == rows_ok(stack, s)


def test_a_run_killed_between_its_writes_and_its_commit_leaves_nothing_behind(stack: Any) -> None:
    """The writes of a run finish and its commit never runs (the worker was killed): no version, and
    its data files are in no snapshot. The next run (the one-task operator) publishes v0001 and
    deletes the dead run's files, which no table references: no orphan remains."""
    s = staged_scope(stack, "mapkill")
    run_id = f"mapkill__{uuid.uuid4().hex[:8]}"
    units, _ = plan(s, 3, run_id)
    for i, u in enumerate(units):
        write(u, run_id, i)
    dead = data_keys(stack, s)
    assert len(dead) == 3 * 4 + 3
    assert curated_rows(stack, s) == []
    made = run(curated(s, dataset="inmet_hourly"))
    assert [v["version"] for v in made["versions"]] == ["v0001"]
    (row,) = curated_rows(stack, s)
    assert not dead & lake_keys(stack, s)
    assert lake_keys(stack, s) == claimed(row)


def test_a_retried_commit_reuses_the_snapshots_its_first_attempt_made(stack: Any) -> None:
    """The commit dies after its tables' snapshots, before its manifest and inventory row. Retried in
    the same DAG run (same run id, same written shards), it finds its own snapshots, commits nothing
    twice and publishes v0001: each table has exactly one snapshot."""
    from trilha.operators.curated import CuratedCommitOperator

    s = staged_scope(stack, "mapretry")
    run_id = f"mapretry__{uuid.uuid4().hex[:8]}"
    units, targets = plan(s, 3, run_id)
    written = [write(u, run_id, i) for i, u in enumerate(units)]
    op = CuratedCommitOperator(task_id="commit", targets=targets, written=written)
    put_bytes = op.minio.put_bytes

    def die_at_the_manifest(bucket: str, key: str, data: bytes, **kwargs: Any) -> Any:
        if key.endswith("/manifest.json"):
            raise ConnectionError("killed before the manifest")
        return put_bytes(bucket, key, data, **kwargs)

    op.minio.put_bytes = die_at_the_manifest  # type: ignore[method-assign]
    with pytest.raises(ConnectionError, match="killed before the manifest"):
        run_operator(op, run_id=run_id)
    assert curated_rows(stack, s) == []
    made = dict(
        run_operator(
            CuratedCommitOperator(task_id="commit", targets=targets, written=written),
            run_id=run_id,
            try_number=2,
        )
    )
    assert [v["version"] for v in made["versions"]] == ["v0001"]
    (row,) = curated_rows(stack, s)
    from trilha.hooks.iceberg import IcebergHook

    hook = IcebergHook()
    try:
        for name, t in row["tables"].items():
            table = hook.load(tuple(t["identifier"].split(".", 1)))  # type: ignore[arg-type]
            assert [snap.snapshot_id for snap in table.snapshots()] == [t["snapshot_id"]], name
    finally:
        hook.close()
    assert curated_table(row, "hourly").num_rows == rows_ok(stack, s)
    assert lake_keys(stack, s) == claimed(row)


def test_a_commit_after_an_outside_writer_builds_on_the_new_state(stack: Any) -> None:
    """Iceberg's optimistic commit: a table object loaded before another writer committed is stale.
    The hook refreshes the table before it plans its overwrite, so its commit builds on the other
    writer's snapshot: both commits are kept, in order, and the table holds the rows of the last one
    (the other writer's file is replaced, not kept beside it)."""
    from trilha.hooks.iceberg import IcebergHook

    s = staged_scope(stack, "mapcas")
    made = run(curated(s, dataset="inmet_hourly"))
    assert [v["version"] for v in made["versions"]] == ["v0001"]
    (row,) = curated_rows(stack, s)
    ident = tuple(row["tables"]["daily"]["identifier"].split(".", 1))
    hook = IcebergHook()
    try:
        stale, outside = hook.load(ident), hook.load(ident)  # type: ignore[arg-type]
        rows = hook.read(ident, row["tables"]["daily"]["snapshot_id"])  # type: ignore[arg-type]
        added = hook.write_files(stale, rows.slice(0, 5))
        theirs = hook.write_files(outside, rows)  # one file per local year of the daily rows
        first = hook.commit(outside, theirs, None, {"trilha.run-id": "outside"})
        second = hook.commit(stale, added, None, {"trilha.run-id": "ours"})
        table = hook.load(ident)  # type: ignore[arg-type]
        ids = [snap.snapshot_id for snap in table.snapshots()]
        assert ids[-2:] == [first.snapshot_id, second.snapshot_id]
        assert second.rows == 5
        assert second.files_removed == len(theirs) == 2  # the outside writer's files (2023, 2024)
        assert hook.read(ident, second.snapshot_id).num_rows == 5  # type: ignore[arg-type]
    finally:
        hook.close()


def paths(row: dict[str, Any], name: str) -> set[str]:
    return {f["path"] for f in data_files(row, name)}


def test_a_corrected_station_rewrites_only_its_files_and_matches_a_lake_built_at_once(stack: Any) -> None:
    """v0001: seven stations in shards of 3, 3 and 1 (one data file each per table). Then station
    A005's file is corrected (same name, other content) and a new station A008 arrives. The next run
    recomputes only the shard that holds A005 and writes A008 beside it: in each year partition
    of each table one data file is replaced and the other two are kept. The five tables read back
    byte for byte as a lake that staged all nine parts and curated them at once (the corrected part
    wins, hour by hour)."""
    first = station_files()
    corrected = synth.one_file(4, YEAR, 99, hours=HOURS)
    new = synth.one_file(STATIONS, YEAR, 7, hours=HOURS)
    assert corrected.name in first
    assert first[corrected.name] != corrected.data
    later = {corrected.name: corrected.data, new.name: new.data}

    s = staged_scope(stack, "narrow")
    mapped_run(s, 3)
    load(stack, s, later)
    assert run(staging(s))["files"] == 2
    _, made = mapped_run(s, 3)
    assert [v["version"] for v in made["versions"]] == ["v0002"]
    v1, v2 = curated_rows(stack, s)
    # Files of three shards per year and table: 2024's, and for `daily` also 2023's (the local
    # 31 December that ends on 1 January UTC). One shard's file is replaced in each, two are kept.
    years = {"hourly": [YEAR], "daily": [YEAR - 1, YEAR], "daily_utc": [YEAR], "station_years": [YEAR]}
    for name, touched in years.items():
        t = v2["tables"][name]
        assert (t["files_removed"], t["partitions_rewritten"]) == (len(touched), [YEAR - 1, YEAR]), name
        kept = paths(v1, name) & paths(v2, name)
        assert len(kept) == 2 * len(touched), name  # the shards of A001-A003 and A007 are not rewritten

    scratch = new_scope("narrowscratch")
    load(stack, scratch, first)
    load(stack, scratch, later)
    assert run(staging(scratch))["files"] == STATIONS + 2
    mapped_run(scratch, 3)
    (whole,) = curated_rows(stack, scratch)
    for name in ("hourly", "daily", "daily_utc", "station_years", "stations"):
        assert digest(curated_table(v2, name)) == digest(curated_table(whole, name)), name
    hourly = curated_table(v2, "hourly")
    assert hourly.num_rows == v2["tables"]["hourly"]["rows"] == whole["tables"]["hourly"]["rows"]
    assert set(hourly.column("wmo_code").to_pylist()) == {synth.station_code(i) for i in range(STATIONS + 1)}
    assert lake_keys(stack, s) == claimed(v1) | claimed(v2)
