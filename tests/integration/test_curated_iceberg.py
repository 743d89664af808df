"""The curated Iceberg tables from outside Trilha: time travel to an earlier version through the
catalog (its snapshot id) and through ``python -m trilha.ops.trace version``, and another engine
(DuckDB) reading a snapshot through its metadata and getting the very rows Trilha reads.

DuckDB's own ``iceberg`` extension is downloaded at run time, which this machine cannot do; DuckDB
reads the data files that the snapshot's metadata lists (pyiceberg plans them from the catalog), which
is what the extension does for a table without delete files (Trilha writes none).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from tests.integration.ingest_support import new_scope, run, s3
from tests.integration.process_support import (
    NAME_2019,
    NAME_2024,
    curated,
    curated_identifier,
    curated_rows,
    curated_table,
    data_files,
    data_lines,
    load,
    sample,
    staging,
    summary,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def two_versions(stack: Any) -> dict[str, Any]:
    """v0001 from A807 2019; v0002 adds A701 2024 (one new partition)."""
    s = new_scope("ice")
    load(stack, s, {NAME_2019: sample(NAME_2019)})
    run(staging(s))
    run(curated(s, dataset="inmet_hourly"))
    load(stack, s, {NAME_2024: sample(NAME_2024)})
    run(staging(s))
    run(curated(s, dataset="inmet_hourly"))
    rows = {r["version"]: r for r in curated_rows(stack, s)}
    return {"scope": s, "v1": rows["v0001"], "v2": rows["v0002"]}


def test_time_travel_through_the_catalog(two_versions: dict[str, Any]) -> None:
    v1, v2 = two_versions["v1"], two_versions["v2"]
    assert v1["tables"]["hourly"]["identifier"] == v2["tables"]["hourly"]["identifier"]
    # 2024's partition, and 2023's: the 2024 file's first hours are 31 December 2023 in local time
    assert v2["tables"]["hourly"]["partitions_rewritten"] == [2023, 2024]
    old, new = curated_table(v1, "hourly"), curated_table(v2, "hourly")
    assert old.num_rows == data_lines(sample(NAME_2019)) == v1["rows"]
    assert new.num_rows == data_lines(sample(NAME_2019)) + data_lines(sample(NAME_2024)) == v2["rows"]
    assert set(old.column("wmo_code").to_pylist()) == {"A807"}
    # the table's current snapshot is v0002's; v0001's is its parent
    from trilha.hooks.iceberg import IcebergHook

    hook = IcebergHook()
    try:
        table = hook.load(curated_identifier(v2, "hourly"))
        current = table.current_snapshot()
        assert current is not None
        assert current.snapshot_id == v2["tables"]["hourly"]["snapshot_id"]
        assert current.parent_snapshot_id == v1["tables"]["hourly"]["snapshot_id"]
    finally:
        hook.close()


def test_time_travel_through_the_trace_command(
    two_versions: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    from trilha.ops import trace

    s, v1 = two_versions["scope"], two_versions["v1"]
    code = trace.main(["version", "--project", s.name, "--version", "v0001", "--head", "2"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"{s.name} inmet_hourly v0001 (iceberg)" in out
    line = next(ln for ln in out.splitlines() if ln.strip().startswith("hourly "))
    assert f"snapshot {v1['tables']['hourly']['snapshot_id']}" in line
    assert f"rows {data_lines(sample(NAME_2019))}" in line
    assert "inputs added 1, removed 0" in out
    assert "A807" in out  # the first rows, read at v0001's snapshot
    assert "A701" not in out
    missing = trace.main(["version", "--project", s.name, "--version", "v0009"])
    assert missing == 1
    assert "no curated version of 'inmet_hourly' with that name" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["v1", "v2"])
def test_duckdb_reads_a_snapshot_and_gets_the_rows_trilha_reads(
    stack: Any, two_versions: dict[str, Any], tmp_path: Path, name: str
) -> None:
    import duckdb

    from trilha.hooks.iceberg import IcebergHook

    row = two_versions[name]
    hook = IcebergHook()
    try:
        files = hook.data_files(
            curated_identifier(row, "hourly"), int(row["tables"]["hourly"]["snapshot_id"])
        )
    finally:
        hook.close()
    assert [f["year"] for f in files] == ([2019] if name == "v1" else [2019, 2024])
    local = []
    for i, f in enumerate(files):
        bucket, key = f["path"].removeprefix("s3://").split("/", 1)
        path = tmp_path / f"{i}.parquet"
        path.write_bytes(s3(stack).get_object(Bucket=bucket, Key=key)["Body"].read())
        assert path.stat().st_size == f["bytes"]
        local.append(str(path))
    con = duckdb.connect()
    try:
        got = con.sql(
            "SELECT * FROM read_parquet($files) ORDER BY wmo_code, observed_at", params={"files": local}
        ).to_arrow_table()
    finally:
        con.close()
    mine = curated_table(row, "hourly").sort_by([("wmo_code", "ascending"), ("observed_at", "ascending")])
    assert got.num_rows == mine.num_rows == row["rows"]
    assert got.column_names == mine.column_names
    assert got.cast(mine.schema).to_pylist() == mine.to_pylist()
    assert isinstance(got, pa.Table)


def test_a_run_that_dies_after_its_commits_leaves_no_version_and_the_rerun_converges(
    stack: Any,
) -> None:
    """curated dies after its tables' commits, before its manifest and inventory row (the publication
    point), with a data file it wrote and never committed besides: no version exists, so no reader
    sees its snapshots. The re-run deletes the never-committed file, claims the committed ones (the
    tables' history), publishes v0001 with the right rows, and reconcile finds no drift."""
    from trilha.hooks.iceberg import IcebergHook
    from trilha.ops import reconcile as cli

    s = new_scope("icedie")
    load(stack, s, {NAME_2019: sample(NAME_2019)})
    run(staging(s))
    op = curated(s, dataset="inmet_hourly")
    put_bytes = op.minio.put_bytes

    def die_at_the_manifest(bucket: str, key: str, data: bytes, **kwargs: Any) -> Any:
        if key.endswith("/manifest.json"):
            # what a killed run leaves besides its commits: a data file written, never committed
            hook = IcebergHook()
            try:
                table = hook.load((s.prefix, "inmet_hourly__daily"))
                hook.write_files(
                    table, hook.read((s.prefix, "inmet_hourly__daily"), table.current_snapshot().snapshot_id)
                )
            finally:
                hook.close()
            raise ConnectionError("killed before the manifest")
        return put_bytes(bucket, key, data, **kwargs)

    op.minio.put_bytes = die_at_the_manifest
    with pytest.raises(ConnectionError, match="killed before the manifest"):
        run(op)
    assert curated_rows(stack, s) == []
    keys = [
        o["Key"] for o in s3(stack).list_objects_v2(Bucket="curated-data", Prefix=f"{s.prefix}/")["Contents"]
    ]
    daily_data = [k for k in keys if "/_iceberg/daily/data/" in k]
    # the committed ones (local years 2018 and 2019: the file begins on 31 December 2018 locally)
    # and as many never-committed ones
    assert len(daily_data) == 4

    made = run(curated(s, dataset="inmet_hourly"))
    assert [v["version"] for v in made["versions"]] == ["v0001"]
    (row,) = curated_rows(stack, s)
    assert curated_table(row, "hourly").num_rows == data_lines(sample(NAME_2019)) == row["rows"]
    after = {
        o["Key"] for o in s3(stack).list_objects_v2(Bucket="curated-data", Prefix=f"{s.prefix}/")["Contents"]
    }
    # of the dead run's four daily data files the committed ones stay (history), the orphans are gone
    assert len(set(daily_data) & after) == 2
    assert len([k for k in after if "/_iceberg/daily/data/" in k]) == 4  # and the re-run's own
    # every object is claimed by the version: the dead run's commits and the re-run's
    assert after == {o["key"] for o in row["objects"]} | {row["manifest_key"]}
    code = cli.main(["--project", s.name, "--grace-minutes", "0", "--bucket", "curated"])
    assert code == 0


def test_a_lake_made_under_another_curated_logic_is_rewritten_whole(
    stack: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """v0001 made as the previous code made it: no curated logic in its tables' entries or snapshot
    summaries, its fingerprint its inputs' alone (here: the logic blanked while it runs). The next run,
    with no new input, publishes v0002 rewriting every table whole (every partition, every old data
    file replaced), so no table mixes rows of two meanings by partition; after that, runs build on it
    partition by partition again. A change of the completeness rule is a new logic too."""
    from trilha.domain import lineage
    from trilha.domain import tables as plan

    s = new_scope("icelogic")
    load(stack, s, {NAME_2019: sample(NAME_2019), NAME_2024: sample(NAME_2024)})
    run(staging(s))
    monkeypatch.setattr(plan, "logic", lambda dataset, min_hours: "")
    assert [v["version"] for v in run(curated(s, dataset="inmet_hourly"))["versions"]] == ["v0001"]
    monkeypatch.undo()
    (v1,) = curated_rows(stack, s)
    assert v1["inputs_fingerprint"] == lineage.inputs_fingerprint(v1["inputs"])
    assert {t.get("logic") for t in v1["tables"].values()} == {""}

    assert [v["version"] for v in run(curated(s, dataset="inmet_hourly"))["versions"]] == ["v0002"]
    v2 = {r["version"]: r for r in curated_rows(stack, s)}["v0002"]
    logic = plan.logic("inmet_hourly", 18)
    assert v2["inputs_fingerprint"] == plan.run_fingerprint(v2["inputs"], logic) != v1["inputs_fingerprint"]
    for name, t in v2["tables"].items():
        assert (t["partitions_rewritten"], t["logic"]) == ("all", logic), name
        # every data file of v0001 is gone from the table: none of its partitions survives
        assert t["files_removed"] == v1["tables"][name]["files_added"], name
        assert not {f["path"] for f in data_files(v1, name)} & {f["path"] for f in data_files(v2, name)}
    assert summary(v2, "daily")["trilha.curated-logic"] == logic
    assert run(curated(s, dataset="inmet_hourly"))["versions"] == []

    strict = run(curated(s, dataset="inmet_hourly", min_hours_for_daily=24))
    assert [v["version"] for v in strict["versions"]] == ["v0003"]
    v3 = {r["version"]: r for r in curated_rows(stack, s)}["v0003"]
    assert {t["partitions_rewritten"] for t in v3["tables"].values()} == {"all"}
    daily = curated_table(v3, "daily").to_pylist()
    assert all(d["air_temp_mean_c"] is None for d in daily if d["hours_with_temp"] < 24)
    assert any(d["air_temp_mean_c"] is not None for d in daily)
