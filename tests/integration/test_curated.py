"""curated against the real stack: Iceberg tables (SQL catalog in the audit PostgreSQL, files in the
curated bucket) with one conformed row per station and UTC hour, deduplicated across overlapping
inputs, daily aggregates, no snapshot without new input, a new input rewriting only the partitions
(years) it touches, earlier versions readable at their snapshots, and a manifest and snapshot
summaries naming the exact staged inputs (hashed here after download).
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from airflow.sdk.exceptions import AirflowException

from tests.integration.ingest_support import last_audit_log, new_scope, put, read, run, s3, snapshot
from tests.integration.process_support import (
    CURATED,
    NAME_2003,
    NAME_2019,
    NAME_2024,
    NAME_BDMEP,
    STAGING,
    crlf,
    curated,
    curated_rows,
    curated_table,
    data_files,
    data_lines,
    load,
    object_sha,
    record_writes,
    sample,
    sha,
    staged_rows,
    staging,
    summary,
)

pytestmark = pytest.mark.integration

HOURS = data_lines(sample(NAME_2003)) + data_lines(sample(NAME_2019)) + data_lines(sample(NAME_2024))
MICROS_PER_DAY = 86_400_000_000


def version(rows: list[dict[str, Any]], dataset: str, name: str) -> dict[str, Any]:
    (row,) = [r for r in rows if r["dataset"] == dataset and r["version"] == name]
    return row


def table(stack: Any, row: dict[str, Any], name: str) -> pa.Table:
    return curated_table(row, name)


def rows_of(t: pa.Table, *keys: str) -> list[dict[str, Any]]:
    """The rows of ``t`` in key order: a table's content, whatever order its files are read in."""
    return t.sort_by([(k, "ascending") for k in keys]).to_pylist()


def assert_one_row_per_station_hour(hourly: pa.Table) -> None:
    keys = hourly.group_by(["wmo_code", "observed_at"]).aggregate([([], "count_all")])
    assert keys.num_rows == hourly.num_rows
    assert pc.max(keys.column("count_all")).as_py() == 1


def assert_manifest_matches_objects(stack: Any, row: dict[str, Any]) -> dict[str, Any]:
    """The manifest's inputs are the staged inventory's, every sha256 is the object's real one, its
    tables are the row's snapshots, each snapshot's summary names the version and its inputs, and
    every object the row says the version wrote is in the bucket with that size."""
    raw = read(stack, CURATED, row["manifest_key"])
    assert sha(raw) == row["manifest_sha256"]
    manifest = json.loads(raw)
    assert manifest["version"] == row["version"]
    assert manifest["dataset"] == row["dataset"]
    assert (manifest["table_format"], row["table_format"]) == ("iceberg", "iceberg")
    for inp in manifest["inputs"]:
        assert object_sha(stack, inp["bucket"], inp["key"]) == inp["sha256"], inp["key"]
    assert manifest["tables"] == row["tables"]
    assert manifest["inputs"] == row["inputs"]
    for name, t in row["tables"].items():
        props = summary(row, name)
        assert props["trilha.version"] == row["version"], name
        assert props["trilha.inputs-fingerprint"] == row["inputs_fingerprint"], name
        assert int(props["trilha.inputs-count"]) == len(row["inputs"]) == row["inputs_count"]
        assert curated_table(row, name).num_rows == t["rows"], name
    heads = s3(stack)
    assert row["objects"], "a version's commits write objects"
    for obj in row["objects"]:
        assert obj["key"].startswith(f"{row['prefix'].rsplit('/', 1)[0]}/_iceberg/"), obj["key"]
        assert heads.head_object(Bucket=CURATED, Key=obj["key"])["ContentLength"] == obj["bytes"]
    return manifest


@pytest.fixture(scope="module")
def lake(stack: Any) -> dict[str, Any]:
    """Three INMET yearly files (two years of A807, one of A701) and a BDMEP export, staged and curated."""
    s = new_scope("cur")
    load(stack, s, {NAME_2003: sample(NAME_2003), NAME_2019: sample(NAME_2019), NAME_2024: sample(NAME_2024)})
    load(stack, s, {NAME_BDMEP: sample(NAME_BDMEP)})
    run(staging(s))
    op = curated(s)
    written = record_writes(op)
    summary = run(op)
    return {"scope": s, "summary": summary, "written": written, "rows": curated_rows(stack, s)}


def test_one_version_per_dataset_with_its_tables(lake: dict[str, Any]) -> None:
    made = sorted((v["dataset"], v["version"], v["tables"]) for v in lake["summary"]["versions"])
    assert made == [("inmet_bdmep_daily", "v0001", 1), ("inmet_hourly", "v0001", 5)]
    rows = lake["rows"]
    assert sorted((r["dataset"], r["version"]) for r in rows) == [
        ("inmet_bdmep_daily", "v0001"),
        ("inmet_hourly", "v0001"),
    ]
    hourly = version(rows, "inmet_hourly", "v0001")
    assert sorted(hourly["tables"]) == ["daily", "daily_utc", "hourly", "station_years", "stations"]
    assert sorted(version(rows, "inmet_bdmep_daily", "v0001")["tables"]) == ["data"]
    prefix = lake["scope"].prefix
    assert hourly["tables"]["hourly"]["identifier"] == f"{prefix}.inmet_hourly__hourly"
    assert hourly["files"] == {}
    # partitioned by UTC year: one data file per year of the three yearly files
    assert [f["year"] for f in data_files(hourly, "hourly")] == [2003, 2019, 2024]
    assert [f["year"] for f in data_files(hourly, "daily_utc")] == [2003, 2019, 2024]
    # daily by local year: the 2019 and 2024 files begin at 00:00 UTC on 1 January, 31 December of
    # the year before in local time (2003's begins on 28 January)
    assert [f["year"] for f in data_files(hourly, "daily")] == [2003, 2018, 2019, 2023, 2024]
    assert [f["year"] for f in data_files(hourly, "stations")] == [None]
    assert all(
        f["path"].startswith(f"s3://{CURATED}/{prefix}/inmet_hourly/_iceberg/hourly/data/")
        for f in data_files(hourly, "hourly")
    )


def test_hourly_is_one_sorted_row_per_station_and_utc_hour(stack: Any, lake: dict[str, Any]) -> None:
    row = version(lake["rows"], "inmet_hourly", "v0001")
    hourly = table(stack, row, "hourly")
    assert hourly.num_rows == HOURS == row["rows"]
    assert_one_row_per_station_hour(hourly)
    assert hourly.schema.field("observed_at").type == pa.timestamp("us", "UTC")
    assert hourly.schema.names[:2] == ["observed_at", "wmo_code"]
    assert not [n for n in hourly.schema.names if n.startswith("_")]
    codes = hourly.column("wmo_code").to_pylist()
    times = hourly.column("observed_at").cast(pa.int64()).to_numpy()
    # read partition by partition (years ascending), each by station then time
    for code in ("A701", "A807"):
        mask = np.array([c == code for c in codes])
        assert np.all(np.diff(times[mask]) > 0)
    stations = rows_of(table(stack, row, "stations"), "wmo_code", "valid_from")
    assert [r["wmo_code"] for r in stations] == ["A701", "A807", "A807"]
    # A807 moved between 2003 and 2019: one row per position, the first closed by the second
    old, new = stations[1], stations[2]
    assert (old["latitude"], new["latitude"]) == (pytest.approx(-25.43333333), pytest.approx(-25.448688))
    assert (old["hours"], new["hours"]) == (data_lines(sample(NAME_2003)), data_lines(sample(NAME_2019)))
    assert old["valid_from"] == old["first_observed_at"] == datetime(2003, 1, 28, tzinfo=UTC)
    assert old["valid_to"] == new["valid_from"] == datetime(2019, 1, 1, tzinfo=UTC)
    assert (new["valid_to"], stations[0]["valid_to"]) == (None, None)
    assert {r["utc_offset_hours"] for r in stations} == {-3}


@pytest.mark.parametrize(("name", "offset"), [("daily_utc", 0), ("daily", -3)])
def test_daily_aggregates_count_their_hours(stack: Any, lake: dict[str, Any], name: str, offset: int) -> None:
    """Both daily tables against the hours regrouped here: by UTC day, and by local day (Sao Paulo
    and Curitiba are UTC-3), each hour in exactly one day; a sum from fewer than 18 hours is null."""
    row = version(lake["rows"], "inmet_hourly", "v0001")
    hourly, daily = table(stack, row, "hourly"), table(stack, row, name)
    micros = hourly.column("observed_at").cast(pa.int64()).to_numpy() + offset * 3_600_000_000
    day = pa.array(micros // MICROS_PER_DAY)
    per_day = (
        pa.table({"wmo_code": hourly.column("wmo_code"), "day": day, "p": hourly.column("precipitation_mm")})
        .group_by(["wmo_code", "day"])
        .aggregate([([], "count_all"), ("p", "sum"), ("p", "count")])
    )
    expected = {
        (r["wmo_code"], r["day"]): (r["count_all"], r["p_count"], r["p_sum"]) for r in per_day.to_pylist()
    }
    got = {(r["wmo_code"], (r["date"] - date(1970, 1, 1)).days): r for r in daily.to_pylist()}
    assert sorted(got) == sorted(expected)
    assert sum(r["hours_total"] for r in got.values()) == HOURS
    assert {r["utc_offset_hours"] for r in got.values()} == {offset}
    for key, (hours, precip_hours, precip_sum) in expected.items():
        r = got[key]
        assert (r["hours_total"], r["hours_with_precip"]) == (hours, precip_hours), key
        if precip_hours >= 18:
            assert r["precipitation_sum_mm"] == pytest.approx(precip_sum), key
        else:
            assert r["precipitation_sum_mm"] is None, key
    if name == "daily":
        # 00:00-02:00 UTC on 1 January 2019 are 31 December 2018 in Curitiba: a day of 3 hours
        eve = got[("A807", (date(2018, 12, 31) - date(1970, 1, 1)).days)]
        assert (eve["hours_total"], eve["air_temp_mean_c"]) == (3, None)
        return
    first_day = got[("A807", (date(2003, 1, 28) - date(1970, 1, 1)).days)]
    # the station's first day is all -9999: 24 hours, none with a temperature, no invented mean
    assert (first_day["hours_total"], first_day["hours_with_temp"], first_day["air_temp_mean_c"]) == (
        24,
        0,
        None,
    )
    new_year = got[("A701", (date(2024, 1, 1) - date(1970, 1, 1)).days)]
    temps = [
        r["air_temp_c"]
        for r in hourly.filter(pc.equal(hourly.column("wmo_code"), "A701")).slice(0, 24).to_pylist()
    ]
    assert new_year["air_temp_mean_c"] == pytest.approx(sum(temps) / 24)


def test_manifest_lists_the_exact_staged_inputs_and_is_written_last(stack: Any, lake: dict[str, Any]) -> None:
    s = lake["scope"]
    for dataset in ("inmet_hourly", "inmet_bdmep_daily"):
        row = version(lake["rows"], dataset, "v0001")
        manifest = assert_manifest_matches_objects(stack, row)
        staged = [r for r in staged_rows(stack, s) if r["dataset"] == dataset and r["status"] == "staged"]
        assert sorted((i["key"], i["sha256"]) for i in manifest["inputs"]) == sorted(
            (r["output_key"], r["output_sha256"]) for r in staged
        )
        assert row["inputs_count"] == len(staged)
        # the snapshots name the run's inputs: all of them are new in v0001
        added = json.loads(
            summary(row, "hourly" if dataset == "inmet_hourly" else "data")["trilha.inputs-added"]
        )
        assert sorted((a["key"], a["sha256"]) for a in added) == sorted(
            (i["key"], i["sha256"]) for i in manifest["inputs"]
        )
        mine = [k for k in lake["written"] if k.startswith(row["prefix"] + "/")]
        assert mine == [row["manifest_key"]]


def test_no_new_input_makes_no_new_version(stack: Any, lake: dict[str, Any]) -> None:
    before = snapshot(stack)
    summary = run(curated(lake["scope"]))
    assert summary["versions"] == []
    assert summary["counters"]["skipped"] == 2
    assert snapshot(stack) == before


def test_overlapping_input_rewrites_only_its_year_and_earlier_versions_stay_readable(
    stack: Any, lake: dict[str, Any]
) -> None:
    """A CRLF copy of the 2019 file in the same project: other sha256, a second staged part with the
    same 8760 hours. v0002 rewrites the 2019 partitions and daily's 2018 (the file's first hours are
    31 December 2018 locally) only (the 2003 and 2024 data files are the very same files), has the
    same one row per hour, and v0001 is still read at its snapshot."""
    s = lake["scope"]
    v1 = version(lake["rows"], "inmet_hourly", "v0001")
    v1_rows = {n: table(stack, v1, n) for n in ("hourly", "daily", "daily_utc", "stations")}
    load(stack, s, {"again/" + NAME_2019: crlf(sample(NAME_2019))})
    assert run(staging(s))["files"] == 1
    made = run(curated(s, dataset="inmet_hourly"))
    assert [v["version"] for v in made["versions"]] == ["v0002"]
    v2 = version(curated_rows(stack, s), "inmet_hourly", "v0002")
    assert v2["inputs_count"] == v1["inputs_count"] + 1
    # hourly, daily_utc and station_years have no 2018 rows (nothing to add or remove there)
    files = {"hourly": 1, "daily": 2, "daily_utc": 1, "station_years": 1}
    for name, n in files.items():
        t = v2["tables"][name]
        assert (t["partitions_rewritten"], t["files_added"], t["files_removed"]) == ([2018, 2019], n, n), name
    before = {f["year"]: f["path"] for f in data_files(v1, "hourly")}
    after = {f["year"]: f["path"] for f in data_files(v2, "hourly")}
    assert (after[2003], after[2024]) == (before[2003], before[2024])
    assert after[2019] != before[2019]
    hourly = table(stack, v2, "hourly")
    assert hourly.num_rows == HOURS
    assert_one_row_per_station_hour(hourly)
    keys = {
        "hourly": ("wmo_code", "observed_at"),
        "daily": ("wmo_code", "date"),
        "daily_utc": ("wmo_code", "date"),
        "stations": ("wmo_code", "valid_from"),
    }
    for name, key in keys.items():
        assert rows_of(table(stack, v2, name), *key) == rows_of(v1_rows[name], *key), name
        # time travel: v0001 read at its own snapshot is what it was
        assert rows_of(table(stack, v1, name), *key) == rows_of(v1_rows[name], *key), name
    added = json.loads(summary(v2, "hourly")["trilha.inputs-added"])
    assert [a["key"] for a in added] == [
        i["key"] for i in v2["inputs"] if i["key"] not in {j["key"] for j in v1["inputs"]}
    ]
    assert_manifest_matches_objects(stack, v2)
    # the v0002 objects are new ones: no object of v0001 is claimed twice
    assert not {o["key"] for o in v1["objects"]} & {o["key"] for o in v2["objects"]}


def test_the_tables_hold_what_curate_makes_of_the_parts(stack: Any, lake: dict[str, Any]) -> None:
    from trilha.domain.curate import curate
    from trilha.domain.parquet import parquet_bytes_to_table
    from trilha.hooks.include import load_contract

    row = version(lake["rows"], "inmet_hourly", "v0001")
    parts = [parquet_bytes_to_table(read(stack, i["bucket"], i["key"])) for i in row["inputs"]]
    # With the contract's QC, as the curated run does (its temporal rules flag hours in curated).
    whole = curate("inmet_hourly", parts, load_contract("inmet_hourly").qc)
    keys = {
        "hourly": ("wmo_code", "observed_at"),
        "daily": ("wmo_code", "date"),
        "daily_utc": ("wmo_code", "date"),
        "stations": ("wmo_code", "valid_from"),
    }
    for name, key in keys.items():
        got = table(stack, row, name)
        # Iceberg has no dictionary type: the quality flags (dictionary-encoded in memory) are strings.
        plain = pa.schema(
            [
                f.with_type(f.type.value_type) if pa.types.is_dictionary(f.type) else f
                for f in whole[name].schema
            ]
        )
        assert got.schema == plain, name
        assert rows_of(got, *key) == rows_of(whole[name], *key), name


def test_a_corrected_file_stored_later_wins_whatever_its_name(stack: Any) -> None:
    """Dedup keeps the content that entered the lake last: a corrected copy under a name that sorts
    first still replaces the original hour by hour."""
    s = new_scope("curfix")
    original = sample(NAME_2019)
    lines = original.split(b"\n")
    fields = lines[9].split(b";")  # 2019/01/01 0000 UTC, air temperature 21,3
    assert fields[7] == b"21,3"
    fields[7] = b"21,9"
    corrected = b"\n".join([*lines[:9], b";".join(fields), *lines[10:]])
    load(stack, s, {"z-original.csv": original})
    run(staging(s))
    load(stack, s, {"a-corrected.csv": corrected})
    run(staging(s))
    run(curated(s))
    (row,) = curated_rows(stack, s)
    hourly = table(stack, row, "hourly")
    assert hourly.num_rows == 8760
    first = hourly.filter(
        pc.equal(
            hourly.column("observed_at"),
            pa.scalar(datetime(2019, 1, 1, tzinfo=UTC), pa.timestamp("us", "UTC")),
        )
    ).to_pylist()
    assert [r["air_temp_c"] for r in first] == [pytest.approx(21.9)]
    assert [i["source_key"].rsplit("/", 1)[-1] for i in row["inputs"]] == [
        "z-original.csv",
        "a-corrected.csv",
    ]


def test_staged_parts_changed_or_lost_behind_the_audits_back_make_no_version(stack: Any) -> None:
    """Parts are fetched in parallel and each is checked against its inventory sha256: a part
    overwritten in the staging bucket and another one deleted stop the version, each is named with
    its reason (no botocore traceback), and nothing is written. Restored, the next run makes v0001."""
    s = new_scope("curtamper")
    load(stack, s, {NAME_2019: sample(NAME_2019), NAME_2024: sample(NAME_2024)})
    run(staging(s))
    parts = {r["source_key"].rsplit("/", 1)[-1]: r["output_key"] for r in staged_rows(stack, s)}
    originals = {name: read(stack, STAGING, key) for name, key in parts.items()}
    put(stack, parts[NAME_2024], originals[NAME_2024] + b"\0", bucket=STAGING)
    s3(stack).delete_object(Bucket=STAGING, Key=parts[NAME_2019])
    before = snapshot(stack)
    with pytest.raises(AirflowException, match=r"2 item\(s\) failed \(first: .*__"):
        run(curated(s, dataset="inmet_hourly"), run_id=f"tamper__{s.name}")
    record = last_audit_log(stack, f"tamper__{s.name}")
    assert (record["status"], record["counters"]["failed"]) == ("failed", 2)
    assert sorted((p["item"], p["reason"]) for p in record["problems"]) == sorted(
        [
            (parts[NAME_2024], "staged file does not match its inventory sha256"),
            (parts[NAME_2019], f"staged file is missing from bucket {STAGING}"),
        ]
    )
    assert curated_rows(stack, s) == []
    assert snapshot(stack) == before  # no table, no snapshot, no object
    for name, data in originals.items():
        put(stack, parts[name], data, bucket=STAGING)
    assert [v["version"] for v in run(curated(s, dataset="inmet_hourly"))["versions"]] == ["v0001"]
