"""The pure decisions of the processing half: staging (trilha.domain.staging), quarantine assembly
(trilha.domain.quarantine), manifests and records (trilha.domain.manifest), cut parameters
(trilha.domain.cuts). Real INMET lines from include/sample/inmet, no stack."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from trilha.domain import cuts, lineage, manifest, staging
from trilha.domain.quarantine import quarantine_reason, quarantine_table
from trilha.hooks.include import load_contract

SAMPLE = (
    Path(__file__).parents[2]
    / "include"
    / "sample"
    / "inmet"
    / "INMET_S_PR_A807_CURITIBA_01-01-2019_A_31-12-2019.CSV"
)
NAME = "inmet/2019/INMET_S_PR_A807_CURITIBA_01-01-2019_A_31-12-2019.CSV"
BAD_HOUR = b"2019/01/01;2500 UTC;0;911,6;911,8;911,5;;21,3;17,4;22,3;21,3;17,7;17,4;78;75;78;74;6,9;3,2;"


def inmet_file(good: int = 4, hot: bool = True, bad_hour: bool = True) -> bytes:
    """The sample's 9 header lines and ``good`` real data lines; then, optionally, a real line whose
    air temperature is set to 99.5 °C (beyond the gross limits, -40..60: that field is bad, the
    hour stays) and a line at hour 2500 (unreadable: the row is quarantined)."""
    lines = SAMPLE.read_bytes().split(b"\n")
    body = lines[:9] + lines[9 : 9 + good]
    if hot:
        cells = lines[9 + good].split(b";")
        cells[7] = b"99,5"
        body.append(b";".join(cells))
    if bad_hour:
        body.append(BAD_HOUR)
    return b"\n".join(body) + b"\n"


def lines_value(row: int, cell: int) -> float:
    """The number in ``cell`` of data line ``row`` of the sample (decimal comma)."""
    text = SAMPLE.read_bytes().split(b"\n")[9 + row].split(b";")[cell].decode()
    return float(text.replace(",", "."))


def src_row(**over: Any) -> dict[str, Any]:
    """A staging_candidates row."""
    row = {
        "storage_audit_id": 41,
        "project_id": 3,
        "project_prefix": "acme",
        "project_name": "Acme",
        "dest_bucket": "trilha-storage",
        "dest_key": f"acme/{NAME}",
        "logical_name": NAME,
        "sha256": "ab" * 32,
        "size_bytes": 1234,
    }
    return {**row, **over}


# staging ------------------------------------------------------------------------------------------
def test_a_file_with_good_bad_and_unparseable_lines_is_staged_with_its_quarantine() -> None:
    staged = staging.stage_file(inmet_file(), NAME, load_contract)
    assert isinstance(staged, staging.StagedFile)
    assert (staged.dataset, staged.layout) == ("inmet_hourly", "inmet_automatic_2019only")
    assert (staged.rows_in, staged.rows_ok, staged.rows_rejected) == (6, 5, 1)
    assert staged.ok.column("wmo_code").to_pylist() == ["A807"] * 5
    # The 99.5 °C reading is nulled and flagged bad; the rest of its hour is kept as read.
    hot = staged.ok.slice(4).to_pylist()[0]
    assert (hot["air_temp_c"], hot["air_temp_c_qc"], hot["air_temp_c_qc_rule"]) == (
        None,
        "bad",
        "gross_limits",
    )
    assert (hot["rel_humidity_pct"], hot["rel_humidity_pct_qc"], hot["rel_humidity_pct_qc_rule"]) == (
        lines_value(4, 15),
        "ok",
        None,
    )
    assert staged.qc_counts == {"gross_limits": {"air_temp_c": 1}}
    assert staged.quarantine is not None
    by_line = dict(
        zip(
            staged.quarantine.column("_line_number").to_pylist(),
            staged.quarantine.column("_reason").to_pylist(),
            strict=True,
        )
    )
    assert by_line == {15: "expected an hour HH:MM or HHMM UTC, got '2500 UTC'"}


def test_a_clean_file_has_no_quarantine() -> None:
    staged = staging.stage_file(inmet_file(good=3, hot=False, bad_hour=False), NAME, load_contract)
    assert isinstance(staged, staging.StagedFile)
    assert (staged.rows_in, staged.rows_ok, staged.rows_rejected, staged.quarantine) == (3, 3, 0, None)


def test_a_header_without_rows_is_rejected_naming_the_header_line() -> None:
    staged = staging.stage_file(inmet_file(good=0, hot=False, bad_hour=False), NAME, load_contract)
    assert staged == staging.Refused(
        "rejected",
        f"{NAME}: no data lines: expected rows after the header (line 9), got none",
        "inmet_hourly",
        "inmet_automatic_2019only",
    )


def test_bytes_that_are_no_text_are_rejected_with_the_parsers_reason() -> None:
    staged = staging.stage_file(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, "photo.csv", load_contract)
    assert isinstance(staged, staging.Refused)
    assert staged.kind == "rejected"
    assert staged.dataset is None
    assert "photo.csv" in staged.reason


def test_a_missing_contract_rejects_the_file() -> None:
    def no_contract(dataset: str) -> Any:
        raise cuts.CutError(f"no contract for {dataset}")  # any TrilhaError/ValueError

    staged = staging.stage_file(inmet_file(), NAME, no_contract)
    assert staged == staging.Refused("rejected", "no contract for inmet_hourly")


def test_rows_that_do_not_add_up_fail_the_file_rather_than_record_a_wrong_count(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A validator that lost a row: the file is refused as failed, every line counted rejected."""
    import trilha.domain.contracts as contracts

    real = contracts.validate

    def lossy(table: pa.Table, contract: Any, source: str) -> tuple[pa.Table, pa.Table]:
        ok, bad = real(table, contract, source)
        return ok.slice(1), bad

    monkeypatch.setattr(contracts, "validate", lossy)
    staged = staging.stage_file(inmet_file(), NAME, load_contract)
    assert staged == staging.Refused(
        "failed",
        "row accounting mismatch: 6 data lines, 4 ok + 1 quarantined",
        "inmet_hourly",
        "inmet_automatic_2019only",
        rows_in=6,
        rows_ok=0,
        rows_rejected=6,
    )


def test_the_inventory_row_of_a_staged_file_names_both_outputs_and_the_quarantined_lines() -> None:
    staged = staging.stage_file(inmet_file(), NAME, load_contract)
    assert isinstance(staged, staging.StagedFile)
    src = src_row()
    out_key, q_key = staging.output_keys(src, "inmet_hourly", "c0de" * 3)
    stem = "INMET_S_PR_A807_CURITIBA_01-01-2019_A_31-12-2019"
    assert out_key == f"acme/inmet_hourly/inmet/2019/{stem}__{'ab' * 6}.c0dec0dec0de.parquet"
    assert q_key == out_key.replace("acme/inmet_hourly/", "acme/inmet_hourly/_quarantine/")
    row = staging.staging_row(
        src,
        "c0de" * 3,
        staged,
        bucket="trilha-staging",
        output=(out_key, "11" * 32),
        quarantine=(q_key, "22" * 32),
    )
    assert row.status == "staged"
    assert (row.project_id, row.storage_id, row.source_key, row.source_sha256) == (
        3,
        41,
        f"acme/{NAME}",
        "ab" * 32,
    )
    assert (row.rows_in, row.rows_ok, row.rows_rejected) == (6, 5, 1)
    assert row.qc_counts == {"gross_limits": {"air_temp_c": 1}}
    assert (row.output_bucket, row.output_key, row.output_sha256) == ("trilha-staging", out_key, "11" * 32)
    assert (row.quarantine_key, row.quarantine_sha256) == (q_key, "22" * 32)
    assert row.schema is not None
    assert row.schema["observed_at"] == "timestamp[us, tz=UTC]"
    assert row.reason == (
        f"1 row(s) quarantined to trilha-staging/{q_key}: "
        "line 15: expected an hour HH:MM or HHMM UTC, got '2500 UTC'"
    )


def test_the_inventory_row_of_a_refused_file_has_no_outputs() -> None:
    refused = staging.Refused("rejected", "no layout", "generic", None)
    row = staging.staging_row(src_row(), "c0de" * 3, refused)
    assert (row.status, row.reason, row.dataset, row.layout) == ("rejected", "no layout", "generic", None)
    assert (row.output_bucket, row.output_key, row.quarantine_key, row.schema) == (None, None, None, None)


def test_a_staged_row_without_its_output_is_refused() -> None:
    staged = staging.stage_file(inmet_file(hot=False, bad_hour=False), NAME, load_contract)
    with pytest.raises(ValueError, match="needs its output bucket and key"):
        staging.staging_row(src_row(), "c0de" * 3, staged)


# quarantine --------------------------------------------------------------------------------------
def parser_rejects(lines: list[int]) -> pa.Table:
    return pa.table(
        {
            "line_number": pa.array(lines, pa.int32()),
            "reason": [f"bad cell on {n}" for n in lines],
            "raw_line": [f"raw {n}" for n in lines],
        }
    )


def contract_rejects(lines: list[int]) -> pa.Table:
    return pa.table(
        {
            "_source_file": ["f.csv"] * len(lines),
            "_line_number": pa.array(lines, pa.int64()),
            "_reason": [f"air_temp_c out of range on {n}" for n in lines],
            "_raw_line": [f"raw {n}" for n in lines],
            "air_temp_c": [99.0] * len(lines),
        }
    )


def test_the_quarantine_is_the_parsers_rejects_then_the_contracts() -> None:
    table = quarantine_table(parser_rejects([7]), contract_rejects([3, 9]), "f.csv")
    assert table is not None
    assert table.column("_line_number").to_pylist() == [7, 3, 9]
    assert table.column("_source_file").to_pylist() == ["f.csv"] * 3
    assert table.column("_raw_line").to_pylist() == ["raw 7", "raw 3", "raw 9"]
    # The parser's rows have no measurement: the contract's column is null for them.
    assert table.column("air_temp_c").to_pylist() == [None, 99.0, 99.0]
    assert quarantine_table(parser_rejects([]), contract_rejects([]), "f.csv") is None


def test_the_reason_shows_the_first_three_lines_by_number_and_counts_the_rest() -> None:
    table = quarantine_table(parser_rejects([7, 2]), contract_rejects([30, 5, 11]), "f.csv")
    assert table is not None
    assert quarantine_reason(table, "stg", "p/q.parquet") == (
        "5 row(s) quarantined to stg/p/q.parquet: line 2: bad cell on 2; "
        "line 5: air_temp_c out of range on 5; line 7: bad cell on 7; and 2 more"
    )


def test_the_reason_is_cut_to_what_the_audit_stores() -> None:
    long = pa.table({"line_number": [1], "reason": ["x" * 5000], "raw_line": ["r"]})
    table = quarantine_table(long, contract_rejects([]), "f.csv")
    assert table is not None
    reason = quarantine_reason(table, "stg", "k")
    assert reason == "1 row(s) quarantined to stg/k: line 1: " + "x" * 199 + "…"


# manifests and records ---------------------------------------------------------------------------
def staged_part(storage_id: int | None, key: str, rows: int) -> dict[str, Any]:
    return {
        "id": 1,
        "storage_audit_id": storage_id,
        "source_key": f"raw/{key}.csv",
        "source_sha256": key * 8,
        "output_bucket": "trilha-staging",
        "output_key": f"acme/inmet_hourly/{key}.parquet",
        "output_sha256": key * 16,
        "rows_ok": rows,
    }


def test_curated_inputs_follow_storage_order_then_key_whatever_the_names() -> None:
    parts = [
        staged_part(9, "aaaa", 5),
        staged_part(2, "zzzz", 7),
        staged_part(None, "mmmm", 1),
        staged_part(2, "bbbb", 3),
    ]
    inputs = manifest.curated_inputs(parts)
    assert [i["key"] for i in inputs] == [
        "acme/inmet_hourly/mmmm.parquet",
        "acme/inmet_hourly/bbbb.parquet",
        "acme/inmet_hourly/zzzz.parquet",
        "acme/inmet_hourly/aaaa.parquet",
    ]
    assert inputs[1] == {
        "key": "acme/inmet_hourly/bbbb.parquet",
        "sha256": "bbbb" * 16,
        "rows": 3,
        "source_key": "raw/bbbb.csv",
        "source_sha256": "bbbb" * 8,
        "bucket": "trilha-staging",
    }


def test_the_curated_manifest_and_record_describe_the_same_version() -> None:
    inputs = manifest.curated_inputs([staged_part(1, "aaaa", 48)])
    files = {
        "hourly": manifest.file_entry("acme/inmet_hourly/v0002/hourly.parquet", "1" * 64, 48, 9000),
        "daily": manifest.file_entry("acme/inmet_hourly/v0002/daily.parquet", "2" * 64, 2, 800),
    }
    doc = manifest.curated_manifest(
        project="Acme",
        project_prefix="acme",
        dataset="inmet_hourly",
        version=lineage.curated_version(2),
        created_at="2025-01-02T03:04:05+00:00",
        run_id="r1",
        code_version="c0dec0dec0de",
        inputs_fingerprint=lineage.inputs_fingerprint(inputs),
        inputs=inputs,
        files=files,
    )
    assert doc["version"] == "v0002"
    assert doc["inputs"][0]["sha256"] == "aaaa" * 16
    assert doc["files"]["daily"] == {
        "key": "acme/inmet_hourly/v0002/daily.parquet",
        "sha256": "2" * 64,
        "rows": 2,
        "bytes": 800,
    }
    assert json.loads(lineage.manifest_bytes(doc)) == doc
    record = manifest.CuratedRecord(
        3, "inmet_hourly", "v0002", "f" * 64, inputs, files, "cur", "acme/inmet_hourly/v0002", "m", "s", "r1"
    )
    assert record.rows == 48  # the largest table's


def test_the_dataset_manifest_carries_rows_files_and_lineage_to_the_curated_version() -> None:
    files = {
        n: manifest.file_entry(
            f"acme/inmet_hourly/v0001-hash-station-month/{n}.parquet", n[0] * 64, r, r * 10
        )
        for n, r in zip(lineage.SPLITS, (70, 15, 15), strict=True)
    }
    curated = {
        "version": "v0001",
        "manifest_key": "acme/inmet_hourly/v0001/manifest.json",
        "manifest_sha256": "9" * 64,
    }
    args: dict[str, Any] = dict(
        project="Acme",
        dataset="inmet_hourly",
        version="v0001-hash-station-month",
        created_at="2025-01-02T03:04:05+00:00",
        run_id="r2",
        parameters={
            "strategy": "hash",
            "ratios": [0.7, 0.15, 0.15],
            "key_columns": ["wmo_code", "observed_at"],
            "group_by": "month",
            "time_column": "observed_at",
        },
        files=files,
        curated=curated,
        curated_table={
            "key": "acme/inmet_hourly/v0001/hourly.parquet",
            "sha256": "8" * 64,
            "rows": 100,
            "bytes": 5,
        },
    )
    doc = manifest.dataset_manifest(**args)
    assert doc["rows"] == {"train": 70, "validation": 15, "test": 15}
    assert (doc["strategy"], doc["grouping"]) == ("hash", "hash-station-month")
    # The content digest: the split files' sha256s, so other files give another digest.
    assert doc["content_sha256"] == lineage.fingerprint({n: f["sha256"] for n, f in files.items()})
    other = {**files, "test": {**files["test"], "sha256": "x" * 64}}
    assert manifest.dataset_manifest(**{**args, "files": other})["content_sha256"] != doc["content_sha256"]
    assert doc["lineage"] == {
        "curated_version": "v0001",
        "curated_manifest": "acme/inmet_hourly/v0001/manifest.json",
        "curated_manifest_sha256": "9" * 64,
        "curated_table": {
            "key": "acme/inmet_hourly/v0001/hourly.parquet",
            "sha256": "8" * 64,
            "rows": 100,
            "bytes": 5,
        },
    }


def test_a_drive_export_sends_the_splits_in_order_and_the_manifest_last() -> None:
    base = "acme/inmet_hourly/v0001-hash-station-month"
    cut = manifest.RecordedCut(
        id=5,
        version="v0001-hash-station-month",
        bucket="trilha-datasets",
        files={
            n: {"key": f"{base}/{n}.parquet", "sha256": n[:2] * 32, "rows": 1}
            for n in ("test", "train", "validation")
        },
        manifest_key=f"{base}/manifest.json",
        manifest_sha256="ee" * 32,
    )
    assert manifest.drive_export_plan(cut, "inmet_hourly") == [
        (f"{base}/train.parquet", "tr" * 32, "inmet_hourly/v0001-hash-station-month/train.parquet"),
        (f"{base}/validation.parquet", "va" * 32, "inmet_hourly/v0001-hash-station-month/validation.parquet"),
        (f"{base}/test.parquet", "te" * 32, "inmet_hourly/v0001-hash-station-month/test.parquet"),
        (f"{base}/manifest.json", "ee" * 32, "inmet_hourly/v0001-hash-station-month/manifest.json"),
    ]


# cut parameters ----------------------------------------------------------------------------------
def params(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "strategy": "hash",
        "table": "hourly",
        "ratios": (0.7, 0.15, 0.15),
        "key_columns": ("wmo_code", "observed_at"),
        "time_column": "observed_at",
        "validation_start": "",
        "test_start": "",
    }
    return cuts.cut_params(**{**base, **over})


def test_hash_params_from_rendered_json_text() -> None:
    assert params(strategy=" HASH ", ratios="[0.8, 0.1, 0.1]", key_columns='["wmo_code"]') == {
        "strategy": "hash",
        "table": "hourly",
        "ratios": [0.8, 0.1, 0.1],
        "key_columns": ["wmo_code"],
    }


def test_a_list_written_by_hand_is_read_too() -> None:
    assert cuts.as_list("(wmo_code, 'observed_at')", "key_columns") == ["wmo_code", "observed_at"]


def test_temporal_params_keep_their_dates_and_drop_the_hash_ones() -> None:
    assert params(strategy="temporal", validation_start="2024-07-01", test_start="2024-10-01") == {
        "strategy": "temporal",
        "table": "hourly",
        "time_column": "observed_at",
        "validation_start": "2024-07-01",
        "test_start": "2024-10-01",
    }


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"ratios": "[0.7, 0.2, 0.2]"}, "summing to 1, got [0.7, 0.2, 0.2]"),
        ({"ratios": "[0.5, 0.5]"}, "summing to 1, got [0.5, 0.5]"),
        ({"ratios": "[a, b, c]"}, "ratios: expected three numbers, got '[a, b, c]'"),
        ({"ratios": '{"train": 1}'}, "ratios: expected a list"),
        ({"strategy": "random"}, "strategy: expected 'hash' or 'temporal', got 'random'"),
        (
            {"strategy": "temporal", "test_start": "2024-10-01"},
            "expected both validation_start and test_start",
        ),
        ({"strategy": "hash", "group_by": "fortnight"}, "group_by: expected one of ['row', 'day', 'week', "),
    ],
)
def test_bad_params_say_what_was_expected(over: dict[str, Any], message: str) -> None:
    with pytest.raises(cuts.CutError) as err:
        params(**over)
    assert message in str(err.value)


def test_a_cut_the_table_cannot_take_says_so() -> None:
    table = pa.table({"wmo_code": ["A807"], "value": [1.0]})
    with pytest.raises(cuts.CutError, match="^split parameters: "):
        cuts.cut_table(table, params(key_columns=["station_id"]))
    whole = cuts.cut_table(table, params(key_columns=["wmo_code"]))
    assert sorted(whole) == ["test", "train", "validation"]
    assert sum(t.num_rows for t in whole.values()) == 1


def test_temporal_cutoffs_from_ratios_of_the_rows_and_version_names() -> None:
    auto = params(strategy="temporal")
    assert cuts.needs_cutoffs(auto)
    # A station-year of 2019 (8,760 rows), a gap, then 2024 at 24 rows a day: 70% of 17,544 rows
    # is 12,281, reached on 26 May 2024 (8,760 + 147 days x 24 = 12,288).
    days = {date(2019, 1, 1) + timedelta(days=d): 24 for d in range(365)}
    days.update({date(2024, 1, 1) + timedelta(days=d): 24 for d in range(366)})
    resolved = cuts.resolve_cutoffs(auto, days)
    assert (resolved["validation_start"], resolved["test_start"]) == ("2024-05-27", "2024-09-14")
    assert not cuts.needs_cutoffs(resolved)
    # A single day: train takes it, validation and test are empty.
    one = cuts.resolve_cutoffs(auto, {date(2024, 1, 1): 24})
    assert (one["validation_start"], one["test_start"]) == ("2024-01-02", "2024-01-02")
    with pytest.raises(cuts.CutError, match="no 'observed_at' to take the cut-offs from"):
        cuts.resolve_cutoffs(auto, {})
    assert cuts.dataset_version(1, resolved) == "v0001-temporal"
    assert cuts.dataset_version(2, params(group_by="month")) == "v0002-hash-station-month"
    assert (
        cuts.dataset_version(3, params(key_columns=["wmo_code"], group_by="week"))
        == "v0003-hash-station-week"
    )
    assert cuts.dataset_version(12, params()) == "v0012-hash-station-observed_at"
    # A row-keyed hash cut keeps the parameters it always had (and so its fingerprint).
    assert "group_by" not in params()
