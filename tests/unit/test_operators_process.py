"""The processing operators (staging, curated, dataset split) with their hooks stubbed at the typed
methods they call: fakes that keep what was written, so each test asserts on the inventory rows,
objects and summaries a run produces. Real INMET lines (include/sample/inmet), real parsers,
contracts, curation and cuts; curated's Iceberg tables are real too, in a pyiceberg SQL catalog on
SQLite with the warehouse in a temporary folder; no stack."""

from __future__ import annotations

import inspect
import json
from functools import cached_property
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from tests.helpers import run_operator
from tests.unit import fakes
from tests.unit.fakes import FakeAudit, FakeMinio, FakeRunLog, sha
from tests.unit.test_process_domain import NAME, inmet_file
from trilha.domain import lineage, staging, tables
from trilha.domain.curate import curate
from trilha.domain.parquet import parquet_bytes_to_table, table_to_parquet_bytes
from trilha.hooks.audit import AuditHook
from trilha.hooks.iceberg import IcebergHook
from trilha.hooks.include import load_contract
from trilha.hooks.minio import MinioHook
from trilha.operators.curated import CuratedOperator, CuratedPlanOperator
from trilha.operators.split import DatasetSplitOperator
from trilha.operators.staging import StagingOperator

REPO = Path(__file__).resolve().parents[2]
STORAGE, STAGING, CURATED_B, DATASETS = (
    "trilha-storage",
    "trilha-staging",
    "trilha-curated",
    "trilha-datasets",
)


def test_the_fakes_have_the_real_hooks_signatures() -> None:
    """A fake method that drifts from the hook it stands for would let a test pass against a lie."""
    for fake, real in ((FakeAudit, AuditHook), (FakeMinio, MinioHook)):
        for name, method in vars(fake).items():
            if name.startswith("_") or not callable(method):
                continue
            got = list(inspect.signature(method).parameters)
            assert got == list(inspect.signature(getattr(real, name)).parameters), f"{real.__name__}.{name}"


def wired(op: Any, audit: FakeAudit, minio: FakeMinio) -> tuple[FakeAudit, FakeMinio, FakeRunLog]:
    """:func:`tests.unit.fakes.wired`, and curated's Iceberg hook a real catalog on SQLite, its
    warehouse in a temporary folder."""
    wiring = fakes.wired(op, audit, minio)
    if isinstance(op, CuratedOperator):
        op.__dict__["iceberg"] = LocalIceberg()
    return wiring


class LocalIceberg(IcebergHook):
    """The real IcebergHook over a pyiceberg SqlCatalog on SQLite, files under a temporary folder."""

    def __init__(self) -> None:
        import tempfile

        super().__init__()
        self.root = Path(tempfile.mkdtemp(prefix="trilha-iceberg-unit-"))

    @cached_property
    def catalog(self) -> Any:  # type: ignore[override]
        from pyiceberg.catalog.sql import SqlCatalog

        return SqlCatalog("trilha", uri=f"sqlite:///{self.root / 'catalog.db'}", warehouse=self.root.as_uri())

    def location(self, bucket: str, project_prefix: str, dataset: str, table: str) -> str:  # type: ignore[override]
        return (self.root / bucket / project_prefix / dataset / table).as_uri()

    def close(self) -> None:
        """Kept open: the test reads the tables after the run."""


def stored(key: str, data: bytes, storage_id: int, logical_name: str = NAME) -> dict[str, Any]:
    """A staging_candidates row of a stored file."""
    return {
        "storage_audit_id": storage_id,
        "project_id": 3,
        "project_prefix": "acme",
        "project_name": "Acme",
        "dest_bucket": STORAGE,
        "dest_key": key,
        "logical_name": logical_name,
        "sha256": sha(data),
        "size_bytes": len(data),
    }


# staging -----------------------------------------------------------------------------------------
def test_plan_batches_cut_the_candidates_in_storage_order() -> None:
    rows = [{"storage_audit_id": i} for i in (11, 12, 13, 14, 15, 16, 17)]
    assert staging.plan_batches(rows, 3, "v1") == [
        {"storage_ids": [11, 12, 13], "code_version": "v1"},
        {"storage_ids": [14, 15, 16], "code_version": "v1"},
        {"storage_ids": [17], "code_version": "v1"},
    ]
    assert staging.plan_batches(rows, 100, "v1") == [
        {"storage_ids": list(range(11, 18)), "code_version": "v1"}
    ]
    assert staging.plan_batches([], 3, "v1") == []
    with pytest.raises(ValueError, match="batch_size: expected 1 or more"):
        staging.plan_batches(rows, 0, "v1")


def test_the_staging_plan_returns_the_batches_its_mapped_tasks_expand_over() -> None:
    from trilha.hooks.include import code_version
    from trilha.operators.staging import StagingPlanOperator

    audit, minio = FakeAudit(), FakeMinio()
    audit.candidates = [stored(f"acme/{i}.csv", b"x%d" % i, i) for i in range(1, 6)]
    op = StagingPlanOperator(task_id="plan", batch_size="2", staging_bucket=STAGING)
    wired(op, audit, minio)
    batches = run_operator(op, run_id="r-plan")
    assert [b["storage_ids"] for b in batches] == [[1, 2], [3, 4], [5]]
    assert {b["code_version"] for b in batches} == {code_version()}
    assert minio.puts == []  # a plan stages nothing
    assert audit.audit_rows[-1]["counters"]["seen"] == 5
    for bad, why in (("0", "1 or more files"), ("many", "a whole number of files, got 'many'")):
        op = StagingPlanOperator(task_id="plan", batch_size=bad, staging_bucket=STAGING)
        wired(op, audit, minio)
        with pytest.raises(AirflowFailException, match=f"batch_size: expected {why}"):
            run_operator(op)


def test_a_mapped_stage_stages_only_its_batch_and_emits_no_event() -> None:
    a, b = inmet_file(), inmet_file(good=3, hot=False, bad_hour=False)
    audit, minio = FakeAudit(), FakeMinio({(STORAGE, "acme/a.csv"): a, (STORAGE, "acme/b.csv"): b})
    audit.candidates = [stored("acme/a.csv", a, 11), stored("acme/b.csv", b, 12)]
    from trilha.hooks.include import code_version

    op = StagingOperator(
        task_id="stage",
        staging_bucket=STAGING,
        storage_ids=[12],
        code_version=code_version(),
        announce_changes=False,
    )
    wired(op, audit, minio)
    summary = run_operator(op, run_id="r-map", map_index=1)
    assert [r.storage_id for r in audit.staged] == [12]
    assert summary["files"] == 1
    assert audit.audit_rows[-1]["map_index"] == 1


def test_the_staging_dag_plans_maps_then_announces_once() -> None:
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(REPO / "dags" / "staging.py")).dags["staging"]
    plan, stage, announce = (dag.get_task(t) for t in ("plan", "stage", "announce"))
    assert type(stage).__name__ == "MappedOperator"
    assert stage.upstream_task_ids == {"plan"}
    assert announce.upstream_task_ids == {"stage"}
    assert stage.partial_kwargs["announce_changes"] is False
    assert plan.outlets == []
    assert stage.partial_kwargs.get("outlets", []) == []
    assert [a.name for a in announce.outlets] == ["trilha_staged_changes"]
    assert dag.params.validate()["batch_size"] == 100
    assert plan.batch_size == "{{ params.batch_size }}"


def test_staging_writes_outputs_and_quarantine_and_records_one_row_per_usable_file() -> None:
    good = inmet_file()
    photo = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
    audit, minio = FakeAudit(), FakeMinio({(STORAGE, "acme/a.csv"): good, (STORAGE, "acme/photo.csv"): photo})
    audit.candidates = [
        stored("acme/a.csv", good, 11),
        stored("acme/photo.csv", photo, 12, logical_name="photo.csv"),
        stored("acme/gone.csv", b"lost", 13, logical_name="gone.csv"),
    ]
    op = StagingOperator(task_id="stage", staging_bucket=STAGING, fail_on_errors=False)
    wired(op, audit, minio)
    summary = run_operator(op, run_id="r-stage")

    from trilha.hooks.include import code_version

    version = code_version()
    out_key, q_key = staging.output_keys(audit.candidates[0], "inmet_hourly", version)
    assert [(b, k) for b, k, _ in minio.puts] == [(STAGING, out_key), (STAGING, q_key)]
    by_key = {r.source_key: r for r in audit.staged}
    assert sorted(by_key) == ["acme/a.csv", "acme/photo.csv"]  # the missing file has no row: retried
    row = by_key["acme/a.csv"]
    # The 99.5 °C line stays (its temperature nulled and flagged bad); the 2500 UTC line cannot be read.
    assert (row.status, row.rows_in, row.rows_ok, row.rows_rejected) == ("staged", 6, 5, 1)
    assert row.qc_counts == {"gross_limits": {"air_temp_c": 1}}
    assert (row.output_key, row.output_sha256) == (out_key, sha(minio.objects[STAGING, out_key]))
    assert (row.quarantine_key, row.quarantine_sha256) == (q_key, sha(minio.objects[STAGING, q_key]))
    assert row.reason is not None
    assert row.reason.startswith(f"1 row(s) quarantined to {STAGING}/{q_key}: line 15: expected an hour")
    written = parquet_bytes_to_table(minio.objects[STAGING, out_key])
    assert written.column("wmo_code").to_pylist() == ["A807"] * 5
    assert written.column("air_temp_c_qc").to_pylist() == ["ok"] * 4 + ["bad"]
    assert written.column("air_temp_c").to_pylist()[4] is None
    assert parquet_bytes_to_table(minio.objects[STAGING, q_key]).column("_line_number").to_pylist() == [15]
    photo_row = by_key["acme/photo.csv"]
    assert (photo_row.status, photo_row.output_key, photo_row.rows_ok) == ("rejected", None, 0)
    assert "photo.csv" in str(photo_row.reason)

    counters = summary["counters"]
    assert {k: counters[k] for k in ("seen", "new", "rejected", "failed", "rows_ok", "rows_rejected")} == {
        "seen": 3,
        "new": 1,
        "rejected": 1,
        "failed": 1,
        "rows_ok": 5,
        "rows_rejected": 1,
    }
    assert counters["bytes"] == len(minio.objects[STAGING, out_key])
    assert (summary["files"], summary["rows_ok"], summary["rows_rejected"]) == (3, 5, 1)
    assert summary["qc_flags"] == {"gross_limits": 1}
    assert summary["code_version"] == version
    assert audit.audit_rows[-1]["problems"][-1] == {
        "kind": "failed",
        "item": f"{STORAGE}/acme/gone.csv",
        "reason": f"stored file is missing from bucket {STORAGE}",
    }


def test_staging_fails_the_task_for_a_stored_file_changed_behind_the_audits_back() -> None:
    data = inmet_file(hot=False, bad_hour=False)
    audit, minio = FakeAudit(), FakeMinio({(STORAGE, "acme/a.csv"): data + b"tampered"})
    audit.candidates = [stored("acme/a.csv", data, 11)]
    op = StagingOperator(task_id="stage", staging_bucket=STAGING)
    wired(op, audit, minio)
    with pytest.raises(AirflowException, match="stored file does not match its storage_audit sha256"):
        run_operator(op)
    assert (audit.staged, minio.puts) == ([], [])


# curated -----------------------------------------------------------------------------------------
def staged_part(minio: FakeMinio, name: str, data: bytes, storage_id: int) -> dict[str, Any]:
    """Stage ``data`` for real, put its Parquet in the fake lake; its curated_inputs row."""
    result = staging.stage_file(data, NAME, load_contract)
    assert isinstance(result, staging.StagedFile)
    payload = table_to_parquet_bytes(result.ok)
    key = f"acme/inmet_hourly/{name}.parquet"
    minio.objects[STAGING, key] = payload
    return {
        "id": storage_id,
        "storage_audit_id": storage_id,
        "source_key": f"acme/raw/{name}.csv",
        "source_sha256": sha(data),
        "output_bucket": STAGING,
        "output_key": key,
        "output_sha256": sha(payload),
        "rows_ok": result.rows_ok,
    }


def with_hour_02_at(temp: bytes) -> bytes:
    """The sample's hours 02..05, hour 02's air temperature replaced."""
    lines = inmet_file(good=6, hot=False, bad_hour=False).split(b"\n")
    cells = lines[11].split(b";")
    cells[7] = temp
    return b"\n".join([*lines[:9], b";".join(cells), *lines[12:]])


TARGET = {"project_id": 3, "project_name": "Acme", "project_prefix": "acme", "dataset": "inmet_hourly"}


def test_curated_makes_a_version_where_the_part_stored_later_wins_and_the_manifest_goes_last() -> None:
    audit, minio = FakeAudit(), FakeMinio()
    audit.targets, audit.next_number = [TARGET], 3
    early = staged_part(minio, "b-early", inmet_file(good=4, hot=False, bad_hour=False), 9)  # hours 00..03
    late = staged_part(minio, "a-late", with_hour_02_at(b"25,5"), 12)  # hours 02..05, a corrected 02
    audit.parts = [late, early]
    op = CuratedOperator(task_id="curate", curated_bucket=CURATED_B, snowflake_conn_id="")
    wired(op, audit, minio)
    summary = run_operator(op, run_id="r-cur")

    assert summary["versions"] == [
        {"project": "Acme", "dataset": "inmet_hourly", "version": "v0003", "tables": 5}
    ]
    [record] = audit.curated
    base = "acme/inmet_hourly/v0003"
    # the tables' files go through the catalog's file IO; the manifest is the one Trilha object
    assert [k for _, k, _ in minio.puts] == [f"{base}/manifest.json"]
    assert (record.version, record.prefix, record.bucket, record.run_id, record.table_format) == (
        "v0003",
        base,
        CURATED_B,
        "r-cur",
        "iceberg",
    )
    assert [i["key"] for i in record.inputs] == [early["output_key"], late["output_key"]]
    # The version's identity: its inputs and the curated logic (with the completeness rule).
    logic = tables.logic("inmet_hourly", 18)
    assert record.fingerprint == tables.run_fingerprint(record.inputs, logic)
    assert record.fingerprint != lineage.inputs_fingerprint(record.inputs)
    assert record.tables is not None
    entry = record.tables["hourly"]
    assert entry["identifier"] == "acme.inmet_hourly__hourly"
    hourly = op.iceberg.read(("acme", "inmet_hourly__hourly"), entry["snapshot_id"])
    temps = dict(
        zip(
            (t.hour for t in hourly.column("observed_at").to_pylist()),
            hourly.column("air_temp_c").to_pylist(),
            strict=True,
        )
    )
    assert sorted(temps) == [0, 1, 2, 3, 4, 5]
    assert temps[2] == 25.5
    assert record.rows == hourly.num_rows == entry["rows"] == 6
    document = json.loads(minio.objects[CURATED_B, f"{base}/manifest.json"])
    assert record.manifest_sha256 == sha(minio.objects[CURATED_B, f"{base}/manifest.json"])
    assert (document["tables"], document["files"]) == (record.tables, {})
    assert (document["inputs"], document["inputs_fingerprint"]) == (record.inputs, record.fingerprint)
    # Hours from 00:00 UTC on 1 January 2019: 31 December 2018 in local time, the 2018 daily partition.
    assert [i["years"] for i in record.inputs] == [[2018, 2019], [2018, 2019]]
    summary_props = op.iceberg.snapshot_summary(("acme", "inmet_hourly__hourly"), entry["snapshot_id"])
    assert summary_props["trilha.version"] == "v0003"
    assert summary_props["trilha.curated-logic"] == logic == record.tables["daily"]["logic"]
    assert json.loads(summary_props["trilha.inputs-added"]) == [
        {"key": i["key"], "sha256": i["sha256"]} for i in record.inputs
    ]
    assert (summary["counters"]["new"], summary["counters"]["seen"]) == (1, 1)


def test_curated_rewrites_only_the_year_a_new_part_touches() -> None:
    """A second run with one more station-year (another year) commits new snapshots whose
    partitions rewritten are that year's, and the year before (its first hours, 00:00-02:00 UTC on 1
    January, are 31 December locally: the daily partition of the year before); the later year's
    hourly data file stays the same file."""
    audit, minio = FakeAudit(), FakeMinio()
    audit.targets, audit.next_number = [TARGET], 1
    first = staged_part(minio, "y2024", inmet_file(good=4, hot=False, bad_hour=False), 9)
    audit.parts = [first]
    op = CuratedOperator(task_id="curate", curated_bucket=CURATED_B, snowflake_conn_id="")
    wired(op, audit, minio)
    run_operator(op, run_id="r1")
    lines = inmet_file(good=4, hot=False, bad_hour=False).replace(b"2019/", b"2018/")
    second = staged_part(minio, "y2018", lines, 12)
    audit.parts = [first, second]
    op2 = CuratedOperator(task_id="curate", curated_bucket=CURATED_B, snowflake_conn_id="")
    wired(op2, audit, minio)
    op2.__dict__["iceberg"] = op.iceberg
    run_operator(op2, run_id="r2")
    v1, v2 = audit.curated
    assert v2.version == "v0002"
    assert v2.tables is not None
    assert v1.tables is not None
    for name in ("hourly", "daily_utc", "station_years"):
        assert (v2.tables[name]["partitions_rewritten"], v2.tables[name]["files_removed"]) == (
            [2017, 2018],
            0,
        ), name
    # daily 2018 held 31 December 2018 (the 2019 file's first hours): rewritten with 1 January 2018.
    assert (v2.tables["daily"]["partitions_rewritten"], v2.tables["daily"]["files_removed"]) == (
        [2017, 2018],
        1,
    )
    daily = op.iceberg.read(("acme", "inmet_hourly__daily"), v2.tables["daily"]["snapshot_id"])
    assert [
        (d.isoformat(), h)
        for d, h in zip(
            daily.column("date").to_pylist(), daily.column("hours_total").to_pylist(), strict=True
        )
    ] == [
        ("2017-12-31", 3),
        ("2018-01-01", 1),
        ("2018-12-31", 3),
        ("2019-01-01", 1),
    ]
    assert v2.tables["stations"]["partitions_rewritten"] == "all"
    ident = ("acme", "inmet_hourly__hourly")
    before = {f["year"]: f["path"] for f in op.iceberg.data_files(ident, v1.tables["hourly"]["snapshot_id"])}
    after = {f["year"]: f["path"] for f in op.iceberg.data_files(ident, v2.tables["hourly"]["snapshot_id"])}
    assert sorted(after) == [2018, 2019]
    assert after[2019] == before[2019]
    assert op.iceberg.read(ident, v1.tables["hourly"]["snapshot_id"]).num_rows == 4
    assert op.iceberg.read(ident, v2.tables["hourly"]["snapshot_id"]).num_rows == 8


def test_a_snapshot_is_read_one_data_file_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """pyiceberg's batch reader reads every file it is handed on its thread pool at once and holds
    their batches until they are consumed: the hook hands it one file at a time, and a file is read
    only when the consumer asks for its rows, so a slow consumer holds one file."""
    import pyiceberg.table

    audit, minio = FakeAudit(), FakeMinio()
    audit.targets, audit.next_number = [TARGET], 1
    lines = inmet_file(good=4, hot=False, bad_hour=False)
    audit.parts = [
        staged_part(minio, "y2019", lines, 9),
        staged_part(minio, "y2018", lines.replace(b"2019/", b"2018/"), 12),
    ]
    op = CuratedOperator(task_id="curate", curated_bucket=CURATED_B, snowflake_conn_id="")
    wired(op, audit, minio)
    run_operator(op, run_id="r1")
    (v1,) = audit.curated
    assert v1.tables is not None
    handed: list[int] = []
    real = pyiceberg.table._to_arrow_batch_reader_via_file_scan_tasks

    def spy(scan: Any, projection: Any, tasks: Any, *args: Any) -> Any:
        handed.append(len(list(tasks)))
        return real(scan, projection, tasks, *args)

    monkeypatch.setattr(pyiceberg.table, "_to_arrow_batch_reader_via_file_scan_tasks", spy)
    batches = op.iceberg.batches(("acme", "inmet_hourly__hourly"), v1.tables["hourly"]["snapshot_id"])
    first = next(batches)
    assert handed == [1]  # the 2018 file only; 2019's is not read yet
    assert {t.year for t in first.column("observed_at").to_pylist()} == {2018}
    rest = list(batches)
    assert handed == [1, 1]
    assert first.num_rows + sum(b.num_rows for b in rest) == 8


def test_curated_inputs_unchanged_make_no_version() -> None:
    audit, minio = FakeAudit(), FakeMinio()
    audit.targets, audit.made = [TARGET], "v0002"
    audit.parts = [staged_part(minio, "p", inmet_file(hot=False, bad_hour=False), 9)]
    op = CuratedOperator(task_id="curate", snowflake_conn_id="")
    wired(op, audit, minio)
    summary = run_operator(op)
    assert (summary["versions"], audit.curated, minio.puts) == ([], [], [])
    assert summary["counters"]["skipped"] == 1


def test_a_lost_staged_part_makes_no_version_and_fails_that_part() -> None:
    audit, minio = FakeAudit(), FakeMinio()
    audit.targets = [TARGET]
    part = staged_part(minio, "p", inmet_file(hot=False, bad_hour=False), 9)
    del minio.objects[STAGING, part["output_key"]]
    audit.parts = [part]
    op = CuratedOperator(task_id="curate", snowflake_conn_id="", fail_on_errors=False)
    wired(op, audit, minio)
    summary = run_operator(op)
    assert (summary["versions"], audit.curated, minio.puts) == ([], [], [])
    assert audit.audit_rows[-1]["problems"] == [
        {
            "kind": "failed",
            "item": part["output_key"],
            "reason": f"staged file is missing from bucket {STAGING}",
        }
    ]


# dataset split -----------------------------------------------------------------------------------
def curated_version(minio: FakeMinio) -> dict[str, Any]:
    """A curated version (curated_select row, files decoded) whose hourly table is in the fake lake."""
    part = staging.stage_file(inmet_file(good=40, hot=False, bad_hour=False), NAME, load_contract)
    assert isinstance(part, staging.StagedFile)
    hourly = curate("inmet_hourly", [part.ok])["hourly"]
    payload = table_to_parquet_bytes(hourly)
    key = "acme/inmet_hourly/v0001/hourly.parquet"
    minio.objects[CURATED_B, key] = payload
    return {
        "id": 21,
        "version": "v0001",
        "bucket": CURATED_B,
        "prefix": "acme/inmet_hourly/v0001",
        "files": {
            "hourly": {"key": key, "sha256": sha(payload), "rows": hourly.num_rows, "bytes": len(payload)}
        },
        "manifest_key": "acme/inmet_hourly/v0001/manifest.json",
        "manifest_sha256": "9" * 64,
        "rows": hourly.num_rows,
        "project_id": 3,
        "project_name": "Acme",
        "project_prefix": "acme",
    }


def test_a_hash_cut_writes_three_files_then_the_manifest_and_records_the_cut() -> None:
    audit, minio = FakeAudit(), FakeMinio()
    audit.curated_row = curated_version(minio)
    op = DatasetSplitOperator(
        task_id="split",
        project="Acme",
        strategy="hash",
        group_by="month",
        ratios="[0.5, 0.25, 0.25]",
        datasets_bucket=DATASETS,
    )
    wired(op, audit, minio)
    summary = run_operator(op, run_id="r-split")

    params = {
        "strategy": "hash",
        "table": "hourly",
        "ratios": [0.5, 0.25, 0.25],
        "key_columns": ["wmo_code", "observed_at"],
        "group_by": "month",
        "time_column": "observed_at",
    }
    fp = lineage.fingerprint({**params, "curated_id": 21})
    # The name says how the rows were cut (the dataset's first cut, hash by station-month), no hash.
    version = "v0001-hash-station-month"
    base = f"acme/inmet_hourly/{version}"
    [record] = audit.datasets
    assert (record.version, record.params, record.fingerprint, record.curated_id) == (version, params, fp, 21)
    assert sorted(k for _, k, _ in minio.puts[:3]) == sorted(f"{base}/{n}.parquet" for n in lineage.SPLITS)
    assert minio.puts[3] == (DATASETS, f"{base}/manifest.json", "application/json")
    assert sum(record.rows.values()) == 40
    for name in lineage.SPLITS:
        data = minio.objects[DATASETS, f"{base}/{name}.parquet"]
        assert (record.files[name]["sha256"], record.files[name]["rows"]) == (
            sha(data),
            parquet_bytes_to_table(data).num_rows,
        )
    document = json.loads(minio.objects[DATASETS, f"{base}/manifest.json"])
    assert record.manifest_sha256 == sha(minio.objects[DATASETS, f"{base}/manifest.json"])
    assert document["lineage"]["curated_table"] == audit.curated_row["files"]["hourly"]
    assert (document["parameters"], document["rows"]) == (params, record.rows)
    assert (document["strategy"], document["grouping"]) == ("hash", "hash-station-month")
    assert document["content_sha256"] == lineage.fingerprint(
        {n: record.files[n]["sha256"] for n in lineage.SPLITS}
    )
    assert summary["version"] == version
    assert summary["created"] is True
    assert summary["rows"] == record.rows
    assert summary["manifest"] == f"{base}/manifest.json"
    assert (summary["counters"]["new"], summary["counters"]["seen"]) == (1, 1)


def test_the_default_cut_is_temporal_with_its_cut_offs_from_the_rows() -> None:
    """No strategy, no dates: a temporal cut whose cut-off days are taken from the ratios of the rows
    per day (40 hours: 24 on 1 January 2019, 16 on the 2nd; 70% is reached on the 2nd), recorded in
    the parameters; the name says how it was cut."""
    audit, minio = FakeAudit(), FakeMinio()
    audit.curated_row = curated_version(minio)
    op = DatasetSplitOperator(task_id="split", project="Acme", datasets_bucket=DATASETS)
    wired(op, audit, minio)
    summary = run_operator(op, run_id="r-temporal")
    [record] = audit.datasets
    assert summary["version"] == record.version == "v0001-temporal"
    assert record.params == {
        "strategy": "temporal",
        "table": "hourly",
        "time_column": "observed_at",
        "ratios": [0.7, 0.15, 0.15],
        "validation_start": "2019-01-03",
        "test_start": "2019-01-03",
    }
    assert record.rows == {"train": 40, "validation": 0, "test": 0}


def test_an_existing_cut_writes_nothing_and_exports_only_what_its_folder_lacks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import trilha.hooks.drive

    audit, minio = FakeAudit(), FakeMinio()
    audit.curated_row = curated_version(minio)
    first = DatasetSplitOperator(task_id="split", project="Acme", datasets_bucket=DATASETS)
    wired(first, audit, minio)
    made = run_operator(first)
    written = len(minio.puts)

    uploads: list[list[tuple[str, bytes]]] = []

    class FakeDrive:
        """TrilhaDriveHook's upload, keeping the Drive path and bytes of each file, in order."""

        def __init__(self, gcp_conn_id: str) -> None:
            assert gcp_conn_id == "trilha_google"

        def upload_files(self, local_paths: list[tuple[Path, str]], parent_folder_id: str) -> list[str]:
            assert parent_folder_id == "F1"
            uploads.append([(drive, local.read_bytes()) for local, drive in local_paths])
            return []

    monkeypatch.setattr(trilha.hooks.drive, "TrilhaDriveHook", FakeDrive)
    again = DatasetSplitOperator(
        task_id="split", project="Acme", datasets_bucket=DATASETS, drive_folder_id="F1"
    )
    wired(again, audit, minio)
    summary = run_operator(again)

    assert (summary["version"], summary["created"]) == (made["version"], False)
    assert len(minio.puts) == written
    [cut] = audit.cuts.values()
    base = f"inmet_hourly/{cut.version}"
    assert [drive for drive, _ in uploads[0]] == [
        f"{base}/{n}" for n in ("train.parquet", "validation.parquet", "test.parquet", "manifest.json")
    ]
    assert uploads[0][-1][1] == minio.objects[DATASETS, cut.manifest_key]
    assert audit.exported == [(cut.id, "F1")]
    assert (summary["counters"]["skipped"], summary["counters"]["exported"]) == (1, 4)

    # Exported to that folder now: the next run with it has nothing left to do.
    third = DatasetSplitOperator(
        task_id="split", project="Acme", datasets_bucket=DATASETS, drive_folder_id="F1"
    )
    wired(third, audit, minio)
    assert "exported" not in run_operator(third)["counters"]  # optional counters appear once counted
    assert (len(uploads), len(minio.puts)) == (1, written)


def test_a_missing_table_fails_with_the_tables_there_are() -> None:
    audit, minio = FakeAudit(), FakeMinio()
    audit.curated_row = curated_version(minio)
    op = DatasetSplitOperator(task_id="split", project="Acme", table="daily")
    wired(op, audit, minio)
    with pytest.raises(
        AirflowFailException,
        match=r"table: expected one of \['hourly'\] in curated version v0001, got 'daily'",
    ):
        run_operator(op)
    assert (audit.datasets, minio.puts) == ([], [])


def test_bad_split_params_fail_before_anything_is_read() -> None:
    audit, minio = FakeAudit(), FakeMinio()
    op = DatasetSplitOperator(task_id="split", project="Acme", ratios='{"train": 1}')
    wired(op, audit, minio)
    with pytest.raises(AirflowFailException, match=r"^ratios: expected a list, got '\{\"train\": 1\}'$"):
        run_operator(op)
    assert audit.audit_rows[-1]["error"] == "ratios: expected a list, got '{\"train\": 1}'"


def test_dataset_split_templates_render_params_into_the_operators_fields() -> None:
    """The DAG's Jinja (``tojson`` lists, ``or ''`` for empty optionals), rendered as Airflow does."""
    import copy
    from types import SimpleNamespace

    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(REPO / "dags" / "dataset_split.py")).dags.get("dataset_split")
    assert dag is not None
    defaults = dict(dag.params.validate())

    # No Variable set: the bucket falls back to its default, as Airflow's ``var.value.get`` does.
    variables = SimpleNamespace(value=SimpleNamespace(get=lambda _key, default="": default))

    def rendered(params: dict[str, Any]) -> Any:
        task = copy.deepcopy(dag.get_task("split"))
        task.render_template_fields({"params": params, "var": variables})
        return task

    task = rendered(defaults)
    assert (task.project, task.dataset, task.curated_version, task.drive_folder_id) == (
        "inmet",
        "inmet_hourly",
        "",
        "",
    )
    assert (task.validation_start, task.test_start, task.datasets_bucket) == ("", "", "datasets")
    # Time series by default: a temporal cut, its cut-offs from the ratios of the time span.
    assert task.split_params() == {
        "strategy": "temporal",
        "table": "hourly",
        "time_column": "observed_at",
        "ratios": [0.7, 0.15, 0.15],
        "validation_start": None,
        "test_start": None,
    }
    hashed = rendered({**defaults, "strategy": "hash"})
    assert hashed.split_params() == {
        "strategy": "hash",
        "table": "hourly",
        "ratios": [0.7, 0.15, 0.15],
        "key_columns": ["wmo_code", "observed_at"],
        "group_by": "month",
        "time_column": "observed_at",
    }

    user = {
        **defaults,
        "project": "acme",
        "strategy": "hash",
        "ratios": [0.8, 0.1, 0.1],
        "key_columns": ["wmo_code"],
    }
    task = rendered({**user, "curated_version": "v0002", "drive_folder_id": "F1"})
    assert (task.project, task.curated_version, task.drive_folder_id) == ("acme", "v0002", "F1")
    assert task.split_params()["ratios"] == [0.8, 0.1, 0.1]
    assert task.split_params()["key_columns"] == ["wmo_code"]
    # The DAG object's own task is untouched: it is rendered per run, never in place.
    assert dag.get_task("split").ratios == "{{ params.ratios | tojson }}"

    task = rendered(
        {**defaults, "strategy": "temporal", "validation_start": "2024-07-01", "test_start": "2024-10-01"}
    )
    assert task.split_params() == {
        "strategy": "temporal",
        "table": "hourly",
        "time_column": "observed_at",
        "validation_start": "2024-07-01",
        "test_start": "2024-10-01",
    }


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("abc", "min_hours_for_daily: expected a whole number of hours, got 'abc'"),
        ("25", "min_hours_for_daily: expected 1 to 24 valid hours of 24, got 25"),
        ("0", "min_hours_for_daily: expected 1 to 24 valid hours of 24, got 0"),
    ],
)
def test_a_bad_completeness_rule_fails_the_plan_saying_what_was_expected(value: str, message: str) -> None:
    op = CuratedPlanOperator(task_id="plan", min_hours_for_daily=value)
    with pytest.raises(AirflowFailException) as err:
        op.min_hours()
    assert str(err.value) == message
    assert CuratedPlanOperator(task_id="plan", min_hours_for_daily="12").min_hours() == 12


def test_two_runs_creating_a_projects_namespace_at_once_both_get_the_table() -> None:
    """The SQL catalog checks that a namespace is missing, then inserts it: a run that checked before
    another inserted hits the key (IntegrityError). The hook takes that as "already exists", as
    pyiceberg does for a table, and opens the table."""
    import pyarrow as pa

    hook = LocalIceberg()
    hook.catalog.create_namespace("acme")  # the other run won
    real = hook.catalog.namespace_exists
    calls: list[bool] = []

    def stale(namespace: Any) -> bool:
        """The first answer is what this run saw before the other run's insert; then the truth."""
        calls.append(real(namespace) if calls else False)
        return calls[-1]

    hook.catalog.namespace_exists = stale  # type: ignore[method-assign]
    schema = pa.schema([("observed_at", pa.timestamp("us", tz="UTC")), ("wmo_code", pa.string())])
    location = hook.location("c", "acme", "inmet_hourly", "hourly")
    table = hook.open_or_create(("acme", "inmet_hourly__hourly"), "hourly", schema, location)
    assert table.name() == ("acme", "inmet_hourly__hourly")
    assert calls[:2] == [False, True]  # the insert lost the race, then the namespace was found
