"""curated against the real stack: one conformed row per station and UTC hour, deduplicated across
overlapping inputs, byte-identical re-runs, daily aggregates, no version without new input, and a
manifest whose inputs and files are the exact objects (hashed here after download).
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
    data_lines,
    load,
    object_sha,
    parquet,
    record_writes,
    sample,
    sha,
    staged_rows,
    staging,
)

pytestmark = pytest.mark.integration

HOURS = data_lines(sample(NAME_2003)) + data_lines(sample(NAME_2019)) + data_lines(sample(NAME_2024))
MICROS_PER_DAY = 86_400_000_000


def version(rows: list[dict[str, Any]], dataset: str, name: str) -> dict[str, Any]:
    (row,) = [r for r in rows if r["dataset"] == dataset and r["version"] == name]
    return row


def table(stack: Any, row: dict[str, Any], name: str) -> pa.Table:
    return parquet(stack, CURATED, row["files"][name]["key"])


def assert_one_row_per_station_hour(hourly: pa.Table) -> None:
    keys = hourly.group_by(["wmo_code", "observed_at"]).aggregate([([], "count_all")])
    assert keys.num_rows == hourly.num_rows
    assert pc.max(keys.column("count_all")).as_py() == 1


def assert_manifest_matches_objects(stack: Any, row: dict[str, Any]) -> dict[str, Any]:
    """The manifest's inputs are the staged inventory's, and every sha256 is the object's real one."""
    raw = read(stack, CURATED, row["manifest_key"])
    assert sha(raw) == row["manifest_sha256"]
    manifest = json.loads(raw)
    assert manifest["version"] == row["version"]
    assert manifest["dataset"] == row["dataset"]
    for inp in manifest["inputs"]:
        assert object_sha(stack, inp["bucket"], inp["key"]) == inp["sha256"], inp["key"]
    for name, f in manifest["files"].items():
        assert object_sha(stack, CURATED, f["key"]) == f["sha256"], name
        assert parquet(stack, CURATED, f["key"]).num_rows == f["rows"], name
        assert f["key"] == f"{row['prefix']}/{name}.parquet"
    assert manifest["files"] == row["files"]
    assert manifest["inputs"] == row["inputs"]
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
    made = sorted((v["dataset"], v["version"], v["files"]) for v in lake["summary"]["versions"])
    assert made == [("inmet_bdmep_daily", "v0001", 1), ("inmet_hourly", "v0001", 3)]
    rows = lake["rows"]
    assert sorted((r["dataset"], r["version"]) for r in rows) == [
        ("inmet_bdmep_daily", "v0001"),
        ("inmet_hourly", "v0001"),
    ]
    assert sorted(version(rows, "inmet_hourly", "v0001")["files"]) == ["daily", "hourly", "stations"]
    assert sorted(version(rows, "inmet_bdmep_daily", "v0001")["files"]) == ["data"]


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
    assert codes == sorted(codes)
    for code in ("A701", "A807"):
        mask = np.array([c == code for c in codes])
        assert np.all(np.diff(times[mask]) > 0)
    stations = {r["wmo_code"]: r for r in table(stack, row, "stations").to_pylist()}
    assert sorted(stations) == ["A701", "A807"]
    # the station's metadata is its latest year's (A807 moved between 2003 and 2019)
    assert stations["A807"]["latitude"] == pytest.approx(-25.448688)
    assert stations["A807"]["hours"] == data_lines(sample(NAME_2003)) + data_lines(sample(NAME_2019))
    assert stations["A807"]["first_observed_at"] == datetime(2003, 1, 28, tzinfo=UTC)


def test_daily_aggregates_count_their_hours(stack: Any, lake: dict[str, Any]) -> None:
    row = version(lake["rows"], "inmet_hourly", "v0001")
    hourly, daily = table(stack, row, "hourly"), table(stack, row, "daily")
    day = pa.array(hourly.column("observed_at").cast(pa.int64()).to_numpy() // MICROS_PER_DAY)
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
    for key, (hours, precip_hours, precip_sum) in expected.items():
        r = got[key]
        assert (r["hours_total"], r["hours_with_precip"]) == (hours, precip_hours), key
        if precip_hours:
            assert r["precipitation_sum_mm"] == pytest.approx(precip_sum), key
        else:
            assert r["precipitation_sum_mm"] is None, key
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
        mine = [k for k in lake["written"] if k.startswith(row["prefix"] + "/")]
        assert mine[-1] == row["manifest_key"]
        assert len(mine) == len(row["files"]) + 1


def test_no_new_input_makes_no_new_version(stack: Any, lake: dict[str, Any]) -> None:
    before = snapshot(stack)
    summary = run(curated(lake["scope"]))
    assert summary["versions"] == []
    assert summary["counters"]["skipped"] == 2
    assert snapshot(stack) == before


def test_overlapping_input_is_deduplicated_and_output_byte_identical(
    stack: Any, lake: dict[str, Any]
) -> None:
    """A CRLF copy of the 2019 file in the same project: other sha256, a second staged part with the
    same 8760 hours. The new version has the same one row per hour, in the very same bytes."""
    s = lake["scope"]
    v1 = version(lake["rows"], "inmet_hourly", "v0001")
    load(stack, s, {"again/" + NAME_2019: crlf(sample(NAME_2019))})
    assert run(staging(s))["files"] == 1
    summary = run(curated(s, dataset="inmet_hourly"))
    assert [v["version"] for v in summary["versions"]] == ["v0002"]
    v2 = version(curated_rows(stack, s), "inmet_hourly", "v0002")
    assert v2["inputs_count"] == v1["inputs_count"] + 1
    hourly = table(stack, v2, "hourly")
    assert hourly.num_rows == HOURS
    assert_one_row_per_station_hour(hourly)
    for name in ("hourly", "daily", "stations"):
        assert v2["files"][name]["sha256"] == v1["files"][name]["sha256"], name
        assert v2["files"][name]["key"] != v1["files"][name]["key"]
    assert_manifest_matches_objects(stack, v2)


def test_curating_the_same_parts_twice_gives_the_same_bytes(stack: Any, lake: dict[str, Any]) -> None:
    from trilha.domain.curate import curate
    from trilha.domain.parquet import parquet_bytes_to_table, table_to_parquet_bytes

    row = version(lake["rows"], "inmet_hourly", "v0001")
    parts = [parquet_bytes_to_table(read(stack, i["bucket"], i["key"])) for i in row["inputs"]]
    once = {n: sha(table_to_parquet_bytes(t)) for n, t in curate("inmet_hourly", parts).items()}
    twice = {n: sha(table_to_parquet_bytes(t)) for n, t in curate("inmet_hourly", list(parts)).items()}
    assert once == twice == {n: f["sha256"] for n, f in row["files"].items()}


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
    assert snapshot(stack) == before
    for name, data in originals.items():
        put(stack, parts[name], data, bucket=STAGING)
    assert [v["version"] for v in run(curated(s, dataset="inmet_hourly"))["versions"]] == ["v0001"]
