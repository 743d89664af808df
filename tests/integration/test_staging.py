"""staging against the real stack: layouts from content, tidy typed Parquet, every row accounted for,
quarantine with reasons, CRLF = LF, idempotent re-runs, and bad input that never stops the batch.

Each test owns a project (uuid). Files enter the lake the way users put them there (reception upload,
raw_ingest, reception_promote); what staging wrote is read back from S3, never taken from its summary.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from airflow.sdk.exceptions import AirflowException

from tests.integration.ingest_support import (
    STORAGE,
    last_audit_log,
    new_scope,
    put,
    query,
    read,
    run,
    s3,
    snapshot,
    storage_rows,
)
from tests.integration.process_support import (
    INMET_YEARLY,
    NAME_2003,
    NAME_2019,
    NAME_2024,
    NAME_BDMEP,
    STAGING,
    crlf,
    data_lines,
    load,
    object_sha,
    parquet,
    sample,
    sha,
    staged_by_name,
    staged_rows,
    staging,
)

pytestmark = pytest.mark.integration

STATION_COLUMNS = ("wmo_code", "station", "uf", "region", "latitude", "longitude", "altitude")
MEASUREMENTS = (
    "precipitation_mm",
    "pressure_station_hpa",
    "pressure_max_hpa",
    "pressure_min_hpa",
    "radiation_kj_m2",
    "air_temp_c",
    "dew_point_c",
    "air_temp_max_c",
    "air_temp_min_c",
    "dew_point_max_c",
    "dew_point_min_c",
    "rel_humidity_max_pct",
    "rel_humidity_min_pct",
    "rel_humidity_pct",
    "wind_dir_deg",
    "wind_gust_ms",
    "wind_speed_ms",
)
SNAKE = re.compile(r"^_?[a-z][a-z0-9_]*$")


def row_at(table: pa.Table, when: datetime) -> dict[str, Any]:
    rows = table.filter(pc.equal(table.column("observed_at"), pa.scalar(when, pa.timestamp("us", "UTC"))))
    assert rows.num_rows == 1, f"expected one row at {when}, got {rows.num_rows}"
    return rows.to_pylist()[0]


def quarantine(stack: Any, row: dict[str, Any]) -> pa.Table | None:
    if row["quarantine_key"] is None:
        return None
    return parquet(stack, STAGING, row["quarantine_key"])


# ------------------------------------------------------------------------------------ the samples


@pytest.fixture(scope="module")
def samples_staged(stack: Any) -> dict[str, Any]:
    """The four bundled samples, uploaded under neutral names (detection must use the content)."""
    s = new_scope("stg")
    names = {NAME_2003: "f1.csv", NAME_2019: "f2.txt", NAME_2024: "sub/f3.CSV", NAME_BDMEP: "f4.dat"}
    load(stack, s, {alias: sample(real) for real, alias in names.items()})
    summary = run(staging(s))
    return {"scope": s, "names": names, "summary": summary, "rows": staged_by_name(stack, s)}


def test_layouts_are_detected_from_content(samples_staged: dict[str, Any]) -> None:
    rows, names = samples_staged["rows"], samples_staged["names"]
    found = {
        real: (rows[Path(alias).name]["layout"], rows[Path(alias).name]["dataset"])
        for real, alias in names.items()
    }
    assert found == {
        NAME_2003: ("inmet_automatic_pre2019", "inmet_hourly"),
        NAME_2019: ("inmet_automatic_2019only", "inmet_hourly"),
        NAME_2024: ("inmet_automatic_2020plus", "inmet_hourly"),
        NAME_BDMEP: ("inmet_bdmep", "inmet_bdmep_daily"),
    }
    assert samples_staged["summary"]["files"] == 4
    assert samples_staged["summary"]["counters"]["new"] == 4


def test_every_data_line_is_a_staged_or_quarantined_row(stack: Any, samples_staged: dict[str, Any]) -> None:
    rows, names = samples_staged["rows"], samples_staged["names"]
    total_ok = 0
    for real, alias in names.items():
        row = rows[Path(alias).name]
        expected = data_lines(sample(real))
        assert expected > 8000
        staged = parquet(stack, STAGING, row["output_key"])
        q = quarantine(stack, row)
        q_rows = q.num_rows if q is not None else 0
        assert row["status"] == "staged", row["reason"]
        assert row["rows_in"] == expected, real
        assert (row["rows_ok"], row["rows_rejected"]) == (staged.num_rows, q_rows), real
        assert staged.num_rows + q_rows == expected, real
        # the inventory's sha256 is the object's, and the source is the stored file's
        assert object_sha(stack, STAGING, row["output_key"]) == row["output_sha256"]
        assert row["source_sha256"] == sha(sample(real))
        assert row["output_key"].startswith(f"{samples_staged['scope'].prefix}/{row['dataset']}/")
        total_ok += row["rows_ok"]
    assert samples_staged["summary"]["rows_ok"] == total_ok


def test_inmet_years_share_one_tidy_typed_schema(stack: Any, samples_staged: dict[str, Any]) -> None:
    rows, names = samples_staged["rows"], samples_staged["names"]
    tables = {
        real: parquet(stack, STAGING, rows[Path(names[real]).name]["output_key"]) for real in INMET_YEARLY
    }
    schemas = {real: [(f.name, str(f.type)) for f in t.schema] for real, t in tables.items()}
    first = schemas[NAME_2003]
    assert schemas[NAME_2019] == first
    assert schemas[NAME_2024] == first
    names_only = [n for n, _ in first]
    assert all(SNAKE.match(n) for n in names_only), names_only
    assert names_only[: 1 + len(STATION_COLUMNS)] == ["observed_at", *STATION_COLUMNS]
    assert set(MEASUREMENTS) <= set(names_only)
    types = dict(first)
    assert types["observed_at"] == "timestamp[us, tz=UTC]"
    assert all(types[m] == "double" for m in MEASUREMENTS)
    assert all(types[c] == "double" for c in ("latitude", "longitude", "altitude"))

    t2024 = tables[NAME_2024]
    first_hour = row_at(t2024, datetime(2024, 1, 1, 0, tzinfo=UTC))
    # 2024/01/01;0000 UTC;0;926,9;926,9;926,4;;19,5;15;19,9;19,4;15,2;14,5;76;71;75;161;8,8;3,4;
    assert first_hour["wmo_code"] == "A701"
    assert first_hour["station"] == "SAO PAULO - MIRANTE"
    assert (first_hour["uf"], first_hour["region"]) == ("SP", "SE")
    assert first_hour["latitude"] == pytest.approx(-23.49638888)
    assert first_hour["altitude"] == pytest.approx(785.64)
    assert first_hour["pressure_station_hpa"] == pytest.approx(926.9)
    assert first_hour["air_temp_c"] == pytest.approx(19.5)
    assert first_hour["wind_speed_ms"] == pytest.approx(3.4)
    assert first_hour["radiation_kj_m2"] is None  # an empty field (2019+) is missing
    assert t2024.column("observed_at")[t2024.num_rows - 1].as_py() == datetime(2024, 12, 31, 23, tzinfo=UTC)

    # 2019/12/31;2300 UTC;...;3,6;,8;  (leading zero dropped)
    last_2019 = row_at(tables[NAME_2019], datetime(2019, 12, 31, 23, tzinfo=UTC))
    assert last_2019["wind_speed_ms"] == pytest.approx(0.8)
    assert last_2019["wmo_code"] == "A807"

    t2003 = tables[NAME_2003]
    # 2003-01-28;00:00;-9999;... : the -9999 sentinel is null, never a number
    sentinel_row = row_at(t2003, datetime(2003, 1, 28, 0, tzinfo=UTC))
    assert all(sentinel_row[m] is None for m in MEASUREMENTS)
    for real, table in tables.items():
        for m in MEASUREMENTS:
            column = table.column(m)
            assert not pc.any(pc.less_equal(column, -9999)).as_py(), (real, m)
    assert sentinel_row["latitude"] == pytest.approx(-25.43333333)
    # the same station's coordinates differ between years: each file keeps its own
    assert row_at(tables[NAME_2019], datetime(2019, 1, 1, 0, tzinfo=UTC))["latitude"] == pytest.approx(
        -25.448688
    )


def test_rerun_with_unchanged_input_creates_nothing(stack: Any, samples_staged: dict[str, Any]) -> None:
    before = snapshot(stack)
    summary = run(staging(samples_staged["scope"]))
    assert summary["files"] == 0
    assert summary["counters"]["new"] == 0
    assert snapshot(stack) == before


# ------------------------------------------------------------------------------------ quarantine


def test_implausible_fields_are_flagged_and_nulled_and_only_unreadable_rows_quarantined(stack: Any) -> None:
    s = new_scope("stgq")
    lines = sample(NAME_2019).split(b"\n")
    # line 10 is 2019/01/01 0000 UTC: 75,3 degC and (line 11) 150 % break the gross limits of their
    # fields; line 12 gets an hour that does not exist, so that row cannot be placed at all.
    fields = lines[9].split(b";")
    fields[7] = b"75,3"
    lines[9] = b";".join(fields)
    fields = lines[10].split(b";")
    fields[15] = b"150"
    lines[10] = b";".join(fields)
    fields = lines[11].split(b";")
    fields[1] = b"2500 UTC"
    lines[11] = b";".join(fields)
    load(stack, s, {"bad-ranges.csv": b"\n".join(lines)})

    made = run(staging(s))

    assert (made["rows_ok"], made["rows_rejected"], made["qc_flags"]) == (8759, 1, {"gross_limits": 2})
    (row,) = staged_rows(stack, s)
    assert (row["status"], row["rows_in"], row["rows_ok"], row["rows_rejected"]) == ("staged", 8760, 8759, 1)
    assert row["qc_counts"] == {"gross_limits": {"air_temp_c": 1, "rel_humidity_pct": 1}}
    q = parquet(stack, STAGING, row["quarantine_key"])
    assert object_sha(stack, STAGING, row["quarantine_key"]) == row["quarantine_sha256"]
    (only,) = q.to_pylist()
    assert (only["_line_number"], only["_source_file"]) == (12, "bad-ranges.csv")
    assert "2500 UTC" in only["_reason"]
    staged = parquet(stack, STAGING, row["output_key"])
    hours = {r["_line_number"]: r for r in staged.to_pylist() if r["_line_number"] in (10, 11)}
    # The bad fields are null with their flag and rule; the rest of those hours is kept as read.
    assert (hours[10]["air_temp_c"], hours[10]["air_temp_c_qc"], hours[10]["air_temp_c_qc_rule"]) == (
        None,
        "bad",
        "gross_limits",
    )
    assert (hours[10]["rel_humidity_pct"], hours[10]["rel_humidity_pct_qc"]) == (78.0, "ok")
    assert (hours[11]["rel_humidity_pct"], hours[11]["rel_humidity_pct_qc"]) == (None, "bad")
    assert (hours[11]["air_temp_c"], hours[11]["air_temp_c_qc"]) == (20.8, "ok")
    # the audit names the line and why
    assert "line 12" in row["reason"]


# ------------------------------------------------------------------------------------ CRLF


def test_crlf_copy_stages_to_the_identical_table_and_bytes(stack: Any) -> None:
    lf, cr = new_scope("stglf"), new_scope("stgcr")
    load(stack, lf, {NAME_2019: sample(NAME_2019)})
    load(stack, cr, {NAME_2019: crlf(sample(NAME_2019))})
    run(staging(lf))
    run(staging(cr))
    (a,), (b,) = staged_rows(stack, lf), staged_rows(stack, cr)
    assert a["source_sha256"] != b["source_sha256"]
    ta, tb = parquet(stack, STAGING, a["output_key"]), parquet(stack, STAGING, b["output_key"])
    assert ta.num_rows == tb.num_rows == 8760
    assert ta.equals(tb)
    # Nothing file-specific is embedded in the staged Parquet (no source name, no path, no time):
    # the same rows give the same bytes.
    assert ta.schema.metadata is None or b"source" not in str(ta.schema.metadata).encode()
    assert a["output_sha256"] == b["output_sha256"]


# ------------------------------------------------------------------------------------ bad input

GIANT_LINE_BYTES = 50 * 1024 * 1024


@pytest.fixture(scope="module")
def bad_batch(stack: Any) -> dict[str, Any]:
    """One staging batch: the good 2024 file next to every kind of bad input."""
    s = new_scope("stgbad")
    good = sample(NAME_2024)
    y2019 = sample(NAME_2019)
    lines = y2019.split(b"\n")
    header, body = lines[:9], [ln for ln in lines[9:] if ln]

    no_radiation_header = header[8].split(b";")
    radiation = next(i for i, h in enumerate(no_radiation_header) if h.startswith(b"RADIACAO"))

    def drop(line: bytes) -> bytes:
        fields = line.split(b";")
        return b";".join(fields[:radiation] + fields[radiation + 1 :])

    bad_date = list(body)
    bad_date[99] = bad_date[99].replace(b"2019/01/05", b"2019/13/45")  # line 109
    mid_giant = list(body)
    mid_giant.insert(50, b"9" * (2 * 1024 * 1024))  # a 2 MB line 60 in an otherwise good file
    files = {
        "good.csv": good,
        "header-only.csv": b"\n".join(header) + b"\n",
        "truncated.csv": y2019.rstrip(b"\n")[:-30],
        "binary.csv": b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 64,
        "nul-bytes.csv": bytes(range(256)) * 64,
        "dots.csv": b"\n".join(header + [ln.replace(b",", b".") for ln in body]) + b"\n",
        "no-radiation.csv": b"\n".join([*header[:8], drop(header[8]), *(drop(ln) for ln in body)]) + b"\n",
        "bad-date.csv": b"\n".join(header + bad_date) + b"\n",
        "whitespace.csv": b"\n  \n\t\n",
        "giant-line.csv": b"7;" * (GIANT_LINE_BYTES // 2),
        "giant-inside.csv": b"\n".join(header + mid_giant) + b"\n",
    }
    load(stack, s, files)
    # a 0-byte object never passes raw_ingest, so it is put straight into storage with its audit row
    empty_key = f"{s.prefix}/empty.csv"
    put(stack, empty_key, b"", bucket="storage-unique")
    query(
        stack,
        "INSERT INTO storage_audit (project_id, project_prefix, project_name, source_bucket, source_key, "
        "dest_bucket, dest_key, logical_name, size_bytes, sha256, md5) "
        "SELECT id, prefix, name, 'recepcao-raw', %s, 'storage-unique', %s, 'empty.csv', 0, %s, %s "
        "FROM projects_registry WHERE name = %s",
        (empty_key, empty_key, sha(b""), "d41d8cd98f00b204e9800998ecf8427e", s.name),
    )
    summary = run(staging(s))
    return {"scope": s, "files": files, "summary": summary, "rows": staged_by_name(stack, s)}


def test_bad_input_never_stops_the_batch_nor_loses_the_good_file(
    stack: Any, bad_batch: dict[str, Any]
) -> None:
    rows = bad_batch["rows"]
    assert len(rows) == len(bad_batch["files"]) + 1  # every file has its inventory row, the empty one too
    good = rows["good.csv"]
    assert (good["status"], good["rows_in"], good["rows_ok"], good["rows_rejected"]) == (
        "staged",
        data_lines(sample(NAME_2024)),
        data_lines(sample(NAME_2024)),
        0,
    )
    assert parquet(stack, STAGING, good["output_key"]).num_rows == 8784
    assert bad_batch["summary"]["counters"]["failed"] == 0
    for row in rows.values():
        assert row["rows_in"] == row["rows_ok"] + row["rows_rejected"]


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("empty.csv", ["empty"]),
        ("whitespace.csv", ["whitespace"]),
        ("header-only.csv", ["no data", "line 9"]),
        ("binary.csv", ["binary", "PNG"]),
        ("nul-bytes.csv", ["binary"]),
        ("giant-line.csv", ["line 1", "bytes"]),
    ],
)
def test_whole_file_rejections_name_the_file_and_why(
    bad_batch: dict[str, Any], name: str, words: list[str]
) -> None:
    row = bad_batch["rows"][name]
    assert row["status"] == "rejected", row
    assert row["output_key"] is None
    assert row["rows_ok"] == 0
    assert name in row["reason"]
    for word in words:
        assert word in row["reason"], row["reason"]


@pytest.mark.parametrize(
    ("name", "line", "words"),
    [
        ("truncated.csv", 8769, ["expected 20 fields", "truncated"]),
        ("bad-date.csv", 109, ["expected a date", "2019/13/45"]),
        ("giant-inside.csv", 60, ["bytes long"]),
    ],
)
def test_bad_lines_are_quarantined_and_their_neighbours_kept(
    stack: Any, bad_batch: dict[str, Any], name: str, line: int, words: list[str]
) -> None:
    row = bad_batch["rows"][name]
    expected_in = data_lines(bad_batch["files"][name]) + (1 if name == "giant-inside.csv" else 0)
    assert row["status"] == "staged"
    assert (row["rows_in"], row["rows_ok"], row["rows_rejected"]) == (expected_in, expected_in - 1, 1)
    q = parquet(stack, STAGING, row["quarantine_key"]).to_pylist()
    assert [(r["_source_file"], r["_line_number"]) for r in q] == [(name, line)]
    for word in words:
        assert word in q[0]["_reason"]
    staged = parquet(stack, STAGING, row["output_key"])
    numbers = staged.column("_line_number").to_pylist()
    assert line not in numbers
    assert line - 1 in numbers
    assert line + 1 in numbers or line == 8769
    # the inventory row names the file (its source key); its reason says which line, without
    # repeating the file's name
    assert row["source_key"].endswith(f"/{name}")
    assert row["reason"].startswith("1 row(s) quarantined to "), row["reason"]
    assert name not in row["reason"].split(": ", 1)[1], row["reason"]
    assert f"line {line}" in row["reason"], row["reason"]


def test_decimal_points_parse_like_decimal_commas(stack: Any, bad_batch: dict[str, Any]) -> None:
    dots = bad_batch["rows"]["dots.csv"]
    assert (dots["status"], dots["rows_ok"], dots["rows_rejected"]) == ("staged", 8760, 0)
    table = parquet(stack, STAGING, dots["output_key"])
    last = row_at(table, datetime(2019, 12, 31, 23, tzinfo=UTC))
    assert last["wind_speed_ms"] == pytest.approx(0.8)
    assert last["pressure_station_hpa"] == pytest.approx(907.5)
    assert pc.sum(table.column("air_temp_c")).as_py() == pytest.approx(
        pc.sum(_reference_2019(stack).column("air_temp_c")).as_py()
    )


def test_a_column_missing_from_one_year_becomes_nulls_with_the_same_schema(
    stack: Any, bad_batch: dict[str, Any]
) -> None:
    row = bad_batch["rows"]["no-radiation.csv"]
    assert (row["status"], row["rows_ok"], row["rows_rejected"]) == ("staged", 8760, 0)
    table = parquet(stack, STAGING, row["output_key"])
    good = parquet(stack, STAGING, bad_batch["rows"]["good.csv"]["output_key"])
    assert table.schema.names == good.schema.names
    assert table.column("radiation_kj_m2").null_count == 8760
    assert table.column("air_temp_c").null_count < 8760


_REFERENCE: dict[str, pa.Table] = {}


def _reference_2019(stack: Any) -> pa.Table:
    """The 2019 sample as staged from its original bytes (decimal commas)."""
    if "t" not in _REFERENCE:
        from trilha.domain.contracts import validate
        from trilha.domain.formats import parse_file
        from trilha.hooks.include import load_contract

        parsed = parse_file(sample(NAME_2019), NAME_2019)
        ok, _ = validate(parsed.table, load_contract(parsed.dataset), NAME_2019)
        _REFERENCE["t"] = ok
    return _REFERENCE["t"]


def test_stored_files_changed_or_lost_behind_the_audits_back_are_failed_not_staged(stack: Any) -> None:
    """Staging reads each stored file checked against its storage_audit sha256. One overwritten in
    unique storage and one deleted are failed items named with their reasons (no botocore
    traceback, no staged content under a sha256 it does not have) and get no inventory row; the
    third file is staged all the same. Restored, the next run stages the two."""
    s = new_scope("stgtamper")
    load(stack, s, {NAME_2003: sample(NAME_2003), NAME_2019: sample(NAME_2019), NAME_2024: sample(NAME_2024)})
    stored = {r["dest_key"].rsplit("/", 1)[-1]: r for r in storage_rows(stack, s.name)}
    assert sorted(stored) == sorted([NAME_2003, NAME_2019, NAME_2024])
    originals = {name: read(stack, STORAGE, r["dest_key"]) for name, r in stored.items()}
    put(
        stack,
        stored[NAME_2024]["dest_key"],
        originals[NAME_2024].replace(b"21,7", b"31,7", 1),
        bucket=STORAGE,
    )
    s3(stack).delete_object(Bucket=STORAGE, Key=stored[NAME_2019]["dest_key"])

    with pytest.raises(AirflowException, match=r"2 item\(s\) failed"):
        run(staging(s), run_id=f"tamper__{s.name}")
    record = last_audit_log(stack, f"tamper__{s.name}")
    assert (record["status"], record["counters"]["failed"]) == ("failed", 2)
    reasons = {p["item"]: p["reason"] for p in record["problems"]}
    changed = f"{STORAGE}/{stored[NAME_2024]['dest_key']}"
    assert reasons[changed].startswith("stored file does not match its storage_audit sha256: ")
    assert f"expected sha256 {stored[NAME_2024]['sha256']}, got " in reasons[changed]
    assert (
        reasons[f"{STORAGE}/{stored[NAME_2019]['dest_key']}"]
        == f"stored file is missing from bucket {STORAGE}"
    )
    assert sorted(staged_by_name(stack, s)) == [NAME_2003]
    assert staged_by_name(stack, s)[NAME_2003]["status"] == "staged"

    for name in (NAME_2019, NAME_2024):
        put(stack, stored[name]["dest_key"], originals[name], bucket=STORAGE)
    again = run(staging(s))
    assert (again["files"], again["counters"]["failed"]) == (2, 0)
    rows = staged_by_name(stack, s)
    assert sorted(rows) == sorted([NAME_2003, NAME_2019, NAME_2024])
    assert rows[NAME_2024]["rows_ok"] + rows[NAME_2024]["rows_rejected"] == data_lines(sample(NAME_2024))


def test_a_put_the_server_keeps_refusing_fails_that_file_alone(stack: Any) -> None:
    """Issue 13: one output the S3 server refused (``InternalError`` after botocore's retries) failed
    the whole staging task, and the other files' staging was not recorded. The refusal here is real:
    a folder sits where the disk-backed server must write one file's staged Parquet, so its
    PutObject fails on every try. That file is a failed item with the server's answer, the other two
    are staged and recorded, and once the obstacle is gone the next run stages it."""
    import shutil

    from trilha.domain import lineage
    from trilha.hooks import include

    s = new_scope("stgput")
    load(stack, s, {NAME_2003: sample(NAME_2003), NAME_2019: sample(NAME_2019), NAME_2024: sample(NAME_2024)})
    stored = {r["dest_key"].rsplit("/", 1)[-1]: r for r in storage_rows(stack, s.name)}
    blocked_key = lineage.staged_key(
        s.prefix, "inmet_hourly", NAME_2019, stored[NAME_2019]["sha256"], include.code_version()
    )
    obstacle = Path(stack.state_dir) / "s3" / STAGING / blocked_key
    obstacle.mkdir(parents=True)
    (obstacle / "occupied").write_bytes(b"x")
    try:
        with pytest.raises(AirflowException, match=r"1 item\(s\) failed"):
            run(staging(s), run_id=f"put__{s.name}")
        record = last_audit_log(stack, f"put__{s.name}")
        assert (record["status"], record["counters"]["failed"], record["counters"]["new"]) == ("failed", 1, 2)
        [problem] = [p for p in record["problems"] if p["kind"] == "failed"]
        assert problem["item"] == f"{STORAGE}/{stored[NAME_2019]['dest_key']}"
        assert problem["reason"].startswith(f"cannot write s3://{STAGING}/{blocked_key}: ")
        assert "InternalError" in problem["reason"]
        assert sorted(staged_by_name(stack, s)) == sorted([NAME_2003, NAME_2024])
    finally:
        shutil.rmtree(obstacle)
    again = run(staging(s))
    assert (again["files"], again["counters"]["failed"]) == (1, 0)
    assert sorted(staged_by_name(stack, s)) == sorted([NAME_2003, NAME_2019, NAME_2024])


# ------------------------------------------------------------------------------ mapped batches


def mapped_staging(
    s: Any, batch_size: int, run_id: str, fail_batch: int | None = None
) -> list[dict[str, Any]]:
    """The staging DAG's tasks as Airflow runs them: ``plan``, then one ``stage`` per batch (map
    index i), then ``announce``; the plan's batches. Batch ``fail_batch`` is not run (a failed task)."""
    from tests.helpers import run_operator
    from trilha.assets import STAGED
    from trilha.operators.base import AnnounceOperator
    from trilha.operators.staging import StagingOperator, StagingPlanOperator

    plan = StagingPlanOperator(
        task_id="plan", project=s.name, batch_size=str(batch_size), staging_bucket=STAGING
    )
    batches = run_operator(plan, run_id=run_id)
    for i, batch in enumerate(batches):
        if i != fail_batch:
            op = StagingOperator(task_id="stage", staging_bucket=STAGING, announce_changes=False, **batch)
            run_operator(op, run_id=run_id, map_index=i)
    run_operator(AnnounceOperator(task_id="announce", layer=STAGED, bucket=STAGING), run_id=run_id)
    return list(batches)


def comparable(rows: list[dict[str, Any]], version: str) -> dict[str, tuple[Any, ...]]:
    """What a staged file's inventory row says, by source key, with the code version taken out."""
    return {
        r["source_key"]: (
            r["status"],
            r["dataset"],
            r["layout"],
            r["rows_in"],
            r["rows_ok"],
            r["rows_rejected"],
            r["output_sha256"],
            r["quarantine_sha256"],
            str(r["schema_json"]),
            (r["output_key"] or "").replace(version, "<v>"),
            (r["reason"] or "").replace(version, "<v>"),
        )
        for r in rows
        if r["code_version"] == version
    }


def test_one_three_or_seven_mapped_batches_stage_the_same(
    stack: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The staging DAG fans out one mapped task per batch of stored files: whatever the batch size,
    the same files are staged to the same bytes and the same inventory rows. Each arm stages under
    a code version of its own (so the three arms stage the same stored files in one project)."""
    from trilha.hooks import include

    s = new_scope("stgmap")
    files = {n: sample(n) for n in (*INMET_YEARLY, NAME_BDMEP)}
    files |= {f"crlf/{n}": crlf(sample(n)) for n in INMET_YEARLY}
    load(stack, s, files)
    seen: dict[int, dict[str, tuple[Any, ...]]] = {}
    for size, tasks in ((7, 1), (3, 3), (1, 7)):
        version = f"mapped-{size:02d}"
        monkeypatch.setattr(include, "code_version", lambda v=version: v)
        run_id = f"test__mapped_{size}_{s.prefix}"
        batches = mapped_staging(s, size, run_id)
        assert len(batches) == tasks
        assert sorted(i for b in batches for i in b["storage_ids"]) == sorted(
            r["id"] for r in storage_rows(stack, s.name)
        )
        seen[size] = comparable(staged_rows(stack, s), version)
        stage_rows = query(
            stack,
            "SELECT map_index, status FROM meta.audit_log "
            "WHERE run_id = %s AND task_id = 'stage' ORDER BY map_index",
            (run_id,),
        )
        assert [(r["map_index"], r["status"]) for r in stage_rows] == [(i, "success") for i in range(tasks)]
    assert len(seen[7]) == 7
    assert {v[0] for v in seen[7].values()} == {"staged"}
    assert seen[3] == seen[7]
    assert seen[1] == seen[7]


def test_a_failed_batch_is_retried_alone_and_a_changed_code_version_is_refused(
    stack: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    from tests.helpers import run_operator
    from trilha.hooks import include
    from trilha.operators.staging import StagingOperator

    s = new_scope("stgretry")
    load(stack, s, {n: sample(n) for n in INMET_YEARLY})
    monkeypatch.setattr(include, "code_version", lambda: "retry-v1")
    run_id = f"test__retry_{s.prefix}"
    batches = mapped_staging(s, 1, run_id, fail_batch=1)
    assert len(batches) == 3
    staged = {r["storage_audit_id"] for r in staged_rows(stack, s)}
    assert staged == {batches[0]["storage_ids"][0], batches[2]["storage_ids"][0]}
    # The retry of batch 1 stages its file; a retry of batch 0 finds nothing left to do.
    retry = run_operator(
        StagingOperator(task_id="stage", staging_bucket=STAGING, announce_changes=False, **batches[1]),
        run_id=run_id,
        map_index=1,
        try_number=2,
    )
    assert (retry["files"], retry["counters"]["new"]) == (1, 1)
    again = run_operator(
        StagingOperator(task_id="stage", staging_bucket=STAGING, announce_changes=False, **batches[0]),
        run_id=run_id,
        map_index=0,
        try_number=2,
    )
    assert (again["files"], again["counters"]["new"]) == (0, 0)
    assert len(staged_rows(stack, s)) == 3
    # A worker that runs other parsers than the plan was made for refuses the batch.
    monkeypatch.setattr(include, "code_version", lambda: "retry-v2")
    with pytest.raises(AirflowFailException, match="plan was made for retry-v1, this worker runs retry-v2"):
        run_operator(
            StagingOperator(task_id="stage", staging_bucket=STAGING, announce_changes=False, **batches[1]),
            run_id=run_id,
            map_index=1,
            try_number=3,
        )
