"""The ingestion operators without a stack: their declared counters, their DAGs' templates rendered
the way Airflow renders them (params -> operator fields), the base operator's task record, and capture,
raw ingest, promote and cleanup run with their hooks stubbed at the typed methods they call."""

from __future__ import annotations

import inspect
import os
import socket
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSkipException

from tests.helpers import run_operator
from tests.unit.fakes import (
    PUT_AT,
    FakeAudit,
    FakeMinio,
    FakePromotionBatch,
    FakeRunLog,
    add_project,
    md5,
    put_object,
    sha,
    wired,
)
from trilha.domain import drift
from trilha.hooks.audit import PromotionBatch
from trilha.operators.base import COUNTER_NAMES, DECLARED_COUNTERS, Counters, TaskRecord, TrilhaBaseOperator
from trilha.operators.capture import CaptureOperator
from trilha.operators.cleanup import CleanupOperator
from trilha.operators.ingest import RawIngestOperator
from trilha.operators.promote import PromoteOperator

DAGS = Path(__file__).resolve().parents[2] / "dags"


def test_counters_report_every_base_name_and_only_the_optional_ones_counted() -> None:
    counters = Counters()
    counters.add("seen", 3)
    counters.add("would_delete", 2)
    counters.problem("rejected", "inmet/vazio.csv", "empty file (0 bytes)")
    assert counters.as_dict() == {
        **dict.fromkeys(COUNTER_NAMES, 0),
        "seen": 3,
        "rejected": 1,
        "would_delete": 2,
    }
    assert "deleted" not in counters.as_dict()
    assert counters["deleted"] == 0


def test_an_undeclared_counter_is_a_bug() -> None:
    counters = Counters()
    with pytest.raises(KeyError, match="'copeid' is not declared"):
        counters.add("copeid")
    with pytest.raises(KeyError, match="not declared"):
        counters.problem("faild", "x.csv", "typo in the kind")
    assert counters.as_dict() == dict.fromkeys(COUNTER_NAMES, 0)


def test_reconcile_statuses_are_declared_counters() -> None:
    assert set(drift.STATUSES) <= DECLARED_COUNTERS


def load_dag(name: str) -> Any:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS / f"{name}.py"))
    assert bag.import_errors == {}
    return bag.dags[name]


def rendered(dag: Any, task_id: str, **params: Any) -> Any:
    task = dag.get_task(task_id)
    values = {name: p.value for name, p in dag.params.items()}
    values.update(params)
    context: dict[str, Any] = {"params": values, "var": {"value": {}}}
    task.render_template_fields(context)
    return task


@pytest.mark.parametrize(
    ("dag_id", "task_id", "cls"),
    [
        ("drive_capture", "capture", CaptureOperator),
        ("raw_ingest", "register", RawIngestOperator),
        ("reception_promote", "promote", PromoteOperator),
        ("reception_cleanup", "cleanup", CleanupOperator),
    ],
)
def test_each_ingestion_dag_runs_its_operator(dag_id: str, task_id: str, cls: type) -> None:
    assert type(load_dag(dag_id).get_task(task_id)) is cls


def test_cleanup_defaults_render_a_dry_run_over_every_key() -> None:
    task = rendered(load_dag("reception_cleanup"), "cleanup")
    assert (task.key_prefix, task.dry_run_only, task.retention_days) == ("", "True", "7")


def test_cleanup_user_values_reach_the_operator() -> None:
    task = rendered(
        load_dag("reception_cleanup"), "cleanup", dry_run=False, retention_days=30, key_prefix="inmet/"
    )
    assert (task.key_prefix, task.dry_run_only, task.retention_days) == ("inmet/", "False", "30")


def test_promote_renders_the_project_from_params_and_an_empty_prefix_not_none() -> None:
    dag = load_dag("reception_promote")
    task = rendered(dag, "promote", project="clima sp", project_prefix=None, key_prefix=None)
    assert (task.project, task.project_prefix, task.key_prefix) == ("clima sp", "", "")
    task = rendered(load_dag("reception_promote"), "promote", project="clima sp", key_prefix="clima-sp/2024/")
    assert task.key_prefix == "clima-sp/2024/"


# --------------------------------------------------------------------------------------------------
# The operators run, with their hooks stubbed at the typed methods they call (tests/unit/fakes.py):
# real INMET files (include/sample/inmet), a real LocalFolderSource over a tmp dir, the real domain
# decisions; the fakes keep the audit rows, objects and documents each run writes.

SAMPLES = Path(__file__).resolve().parents[2] / "include" / "sample" / "inmet"
CURITIBA_2019 = "INMET_S_PR_A807_CURITIBA_01-01-2019_A_31-12-2019.CSV"
CURITIBA_2003 = "INMET_S_PR_A807_CURITIBA_28-01-2003_A_31-12-2003.CSV"
MIRANTE_2024 = "INMET_SE_SP_A701_SAO PAULO - MIRANTE_01-01-2024_A_31-12-2024.CSV"
RECEPTION_B, STORAGE_B = "recepcao-raw", "storage-unique"


def sample(name: str, lines: int = 60) -> bytes:
    """The first ``lines`` lines of a real INMET file (9 header lines, then hourly rows)."""
    return b"\n".join((SAMPLES / name).read_bytes().split(b"\n")[:lines]) + b"\n"


def entries_by_key(audit: FakeAudit) -> dict[str, tuple[str, str | None]]:
    """Each registered reception key's ``(status, reason)``."""
    return {r["object_key"]: (r["status"], r["reason"]) for r in audit.reception}


def counted(summary: dict[str, Any], *names: str) -> dict[str, int]:
    return {n: summary["counters"].get(n, 0) for n in names}


def test_the_promotion_batch_fake_has_the_real_signatures() -> None:
    for name, method in vars(FakePromotionBatch).items():
        if name.startswith("_") or not callable(method):
            continue
        got = list(inspect.signature(method).parameters)
        assert got == list(inspect.signature(getattr(PromotionBatch, name)).parameters), name


# base operator: the task record ------------------------------------------------------------------
class Probe(TrilhaBaseOperator):
    """A Trilha operator whose ``run`` is the test's function."""

    def __init__(self, *, work: Callable[[Counters], dict[str, Any] | None], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.work = work

    def run(self, context: Any, counters: Counters) -> dict[str, Any]:
        return self.work(counters) or {}


def probe(
    work: Callable[[Counters], dict[str, Any] | None], **kwargs: Any
) -> tuple[Probe, FakeAudit, FakeRunLog]:
    op = Probe(task_id="probe", work=work, **kwargs)
    audit, _, runlog = wired(op, FakeAudit(), FakeMinio())
    return op, audit, runlog


def two_copied(counters: Counters) -> dict[str, Any]:
    counters.add("seen", 2)
    counters.add("copied", 2)
    counters.add("bytes", 2048)
    counters.touched(f"{STORAGE_B}/clima/{CURITIBA_2019}")
    return {"project": "clima"}


def test_a_task_writes_its_audit_row_running_then_final_and_one_run_log_document() -> None:
    op, audit, runlog = probe(two_copied)
    summary = run_operator(op, run_id="manual__2024-06-01", dag_id="reception_promote", try_number=2)

    ids = {
        "dag_id": "reception_promote",
        "run_id": "manual__2024-06-01",
        "task_id": "probe",
        "map_index": -1,
        "try_number": 2,
    }
    assert audit.schema_checks == 1
    first, final = audit.audit_rows
    assert {k: first[k] for k in ids} == ids == {k: final[k] for k in ids}
    assert (first["status"], first["ended_at"], first["duration_s"], first["counters"]) == (
        "running",
        None,
        None,
        {},
    )
    assert first["started_at"] == final["started_at"]
    assert final["status"] == "success"
    assert final["error"] is None
    assert final["ended_at"] >= final["started_at"]
    assert final["duration_s"] == (final["ended_at"] - final["started_at"]).total_seconds()
    counters = {**dict.fromkeys(COUNTER_NAMES, 0), "seen": 2, "copied": 2, "bytes": 2048}
    assert final["counters"] == counters
    assert (final["hostname"], final["pid"]) == (socket.gethostname(), os.getpid())

    [doc] = runlog.documents
    assert doc["_id"] == "reception_promote/manual__2024-06-01/probe/-1/2"
    assert {k: doc[k] for k in ids} == ids
    assert (doc["status"], doc["error"], doc["audit_log_id"]) == ("success", None, 7)
    assert doc["keys_touched"] == [f"{STORAGE_B}/clima/{CURITIBA_2019}"]
    assert doc["summary"] == {"project": "clima"}
    assert doc["counters"] == counters
    assert summary == {
        "counters": counters,
        "audit_log_id": 7,
        "run_log_id": doc["_id"],
        "project": "clima",
    }


def one_failed(counters: Counters) -> dict[str, Any]:
    counters.add("seen", 3)
    counters.add("copied", 2)
    counters.problem("rejected", "recepcao-raw/clima/vazio.csv", "empty file (0 bytes)")
    counters.problem("failed", f"recepcao-raw/clima/{CURITIBA_2003}", "verification failed: expected md5 x")
    return {"copied": 2}


def test_a_failed_item_fails_the_task_at_the_end_naming_it_and_the_records() -> None:
    op, audit, runlog = probe(one_failed)
    with pytest.raises(AirflowException) as caught:
        run_operator(op, run_id="r1", dag_id="reception_promote")
    error = (
        f"1 item(s) failed (first: recepcao-raw/clima/{CURITIBA_2003}: verification failed: expected md5 x)"
    )
    assert str(caught.value) == (
        f"{error}; the rest of the batch was processed. See meta.audit_log id 7 and run log "
        "reception_promote/r1/probe/-1/1."
    )
    final = audit.audit_rows[-1]
    assert (final["status"], final["error"]) == ("failed", error)
    assert [p["kind"] for p in final["problems"]] == ["rejected", "failed"]
    assert final["counters"]["copied"] == 2
    [doc] = runlog.documents
    assert (doc["status"], doc["error"], doc["summary"]) == ("failed", error, {"copied": 2})


def test_fail_on_errors_off_keeps_the_task_green_and_the_problems_recorded() -> None:
    op, audit, runlog = probe(one_failed, fail_on_errors=False)
    summary = run_operator(op)
    assert audit.audit_rows[-1]["status"] == "success"
    assert audit.audit_rows[-1]["problems"][1] == {
        "kind": "failed",
        "item": f"recepcao-raw/clima/{CURITIBA_2003}",
        "reason": "verification failed: expected md5 x",
    }
    assert counted(summary, "rejected", "failed", "copied") == {"rejected": 1, "failed": 1, "copied": 2}
    assert runlog.documents[0]["status"] == "success"


def test_only_rejections_do_not_fail_the_task() -> None:
    def rejected(counters: Counters) -> None:
        counters.problem("rejected", "recepcao-raw/clima/foto.png", "not a CSV")

    op, audit, _ = probe(rejected)
    assert run_operator(op)["counters"]["rejected"] == 1
    assert audit.audit_rows[-1]["status"] == "success"


class Lines:
    """A logger that keeps each line, by level (the task log, as the operator writes it)."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def __getattr__(self, level: str) -> Callable[..., None]:
        return lambda msg, *args, **kw: self.lines.append((level, msg % args if args else msg))


def test_an_expected_failure_is_logged_in_one_line_and_recorded_with_its_summary(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def bad_param(counters: Counters) -> None:
        counters.add("seen", 1)
        err = AirflowFailException("retention_days: expected a whole number of days, got 'sete'")
        err.summary = {"dry_run": True}  # type: ignore[attr-defined]
        raise err

    op, audit, runlog = probe(bad_param)
    log = Lines()
    monkeypatch.setattr(Probe, "log", log)
    with pytest.raises(AirflowFailException, match="^retention_days"):
        run_operator(op)
    assert [line for level, line in log.lines if level == "error"] == [
        "retention_days: expected a whole number of days, got 'sete'"
    ]
    final = audit.audit_rows[-1]
    assert (final["status"], final["error"]) == (
        "failed",
        "retention_days: expected a whole number of days, got 'sete'",
    )
    assert final["counters"]["seen"] == 1
    assert runlog.documents[0]["summary"] == {"dry_run": True}


def test_a_skip_is_recorded_as_skipped_and_not_turned_into_a_failure() -> None:
    def nothing(counters: Counters) -> None:
        raise AirflowSkipException("no source: set the 'source' parameter")

    op, audit, runlog = probe(nothing)
    with pytest.raises(AirflowSkipException):
        run_operator(op)
    final = audit.audit_rows[-1]
    assert (final["status"], final["error"]) == ("skipped", "no source: set the 'source' parameter")
    assert final["ended_at"] is not None
    assert runlog.documents[0]["status"] == "skipped"


def test_an_unexpected_error_is_raised_as_is_and_recorded_with_its_type() -> None:
    def crash(counters: Counters) -> None:
        counters.add("seen", 4)
        raise ConnectionResetError("s3 endpoint reset the connection")

    op, audit, runlog = probe(crash)
    with pytest.raises(ConnectionResetError):
        run_operator(op)
    final = audit.audit_rows[-1]
    assert (final["status"], final["error"]) == (
        "failed",
        "ConnectionResetError: s3 endpoint reset the connection",
    )
    assert runlog.documents[0]["counters"]["seen"] == 4


def test_the_run_log_is_written_even_when_the_final_audit_write_fails() -> None:
    op, audit, runlog = probe(two_copied)
    writes: list[str] = []

    def flaky(row: dict[str, Any]) -> int:
        writes.append(row["status"])
        if row["status"] != "running":
            raise ConnectionResetError("audit store went away")
        return 7

    audit.write_audit_log = flaky  # type: ignore[method-assign]
    with pytest.raises(ConnectionResetError):
        run_operator(op)
    assert writes == ["running", "success"]
    assert [(d["status"], d["audit_log_id"]) for d in runlog.documents] == [("success", 7)]


def test_task_record_summary_and_document_agree_on_ids() -> None:
    record = TaskRecord({"dag_id": "d", "run_id": "r", "task_id": "t", "map_index": 3, "try_number": 1})
    assert record.audit_row()["status"] == "running"
    counters = Counters()
    counters.add("new", 5)
    record.status = "success"
    record.end(counters)
    assert record.audit_row()["status"] == "success"
    assert record.run_log_document()["_id"] == "d/r/t/3/1"
    assert record.summary()["counters"]["new"] == 5


# capture -----------------------------------------------------------------------------------------
@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A synced INMET folder: two new files, a copy of one of them, a file whose content the lake
    already holds, an empty file, a name that is no valid key, and OS metadata."""
    root = tmp_path / "inmet"
    for rel, data in {
        f"2019/{CURITIBA_2019}": sample(CURITIBA_2019),
        f"2024/{MIRANTE_2024}": sample(MIRANTE_2024),
        f"2024/copia/{MIRANTE_2024}": sample(MIRANTE_2024),
        f"2003/{CURITIBA_2003}": sample(CURITIBA_2003),
        "vazio.csv": b"",
        "A807\\2019.CSV": sample(CURITIBA_2019, 20),
        ".DS_Store": b"\x00\x00\x00\x01Bud1",
    }.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


@pytest.fixture
def source_reads(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """The relative paths LocalFolderSource hashes and streams (for upload), in order."""
    from trilha.hooks.sources import LocalFolderSource

    seen: dict[str, list[str]] = {"hashed": [], "streamed": []}
    hash_file, stream_file = LocalFolderSource.with_checksums, LocalFolderSource.iter_chunks

    def with_checksums(self: Any, file: Any) -> Any:
        seen["hashed"].append(file.relative_path)
        return hash_file(self, file)

    def iter_chunks(self: Any, file: Any, chunk_size: int = 8 << 20) -> Any:
        seen["streamed"].append(file.relative_path)
        return stream_file(self, file, chunk_size)

    monkeypatch.setattr(LocalFolderSource, "with_checksums", with_checksums)
    monkeypatch.setattr(LocalFolderSource, "iter_chunks", iter_chunks)
    return seen


def capture(
    source: Path | str, audit: FakeAudit, minio: FakeMinio, run_id: str = "r-capture", **kwargs: Any
) -> dict[str, Any]:
    op = CaptureOperator(task_id="capture", source=str(source), project="Clima SP", **kwargs)
    wired(op, audit, minio)
    return run_operator(op, run_id=run_id, dag_id="drive_capture")


def test_capture_uploads_new_content_once_and_never_reads_known_content(
    folder: Path, source_reads: dict[str, list[str]]
) -> None:
    audit, minio = FakeAudit(), FakeMinio()
    known = sample(CURITIBA_2003)
    audit.data_files[sha(known)] = {
        "sha256": sha(known),
        "md5": md5(known),
        "size_bytes": len(known),
        "first_bucket": RECEPTION_B,
        "first_key": f"clima/antigo/{CURITIBA_2003}",
    }
    summary = capture(folder, audit, minio, project_prefix="clima")

    new_keys = [f"clima/2019/{CURITIBA_2019}", f"clima/2024/{MIRANTE_2024}"]
    assert sorted(k for _, k, _ in minio.puts) == new_keys
    assert {b for b, _, _ in minio.puts} == {RECEPTION_B}
    assert minio.objects[RECEPTION_B, new_keys[0]] == sample(CURITIBA_2019)
    # The copy and the known content were hashed to tell, but never streamed nor sent.
    assert sorted(source_reads["streamed"]) == [f"2019/{CURITIBA_2019}", f"2024/{MIRANTE_2024}"]
    assert f"2003/{CURITIBA_2003}" in source_reads["hashed"]
    assert entries_by_key(audit) == {k: ("new", None) for k in new_keys}
    row = next(r for r in audit.reception if r["object_key"] == new_keys[0])
    path = folder / "2019" / CURITIBA_2019
    stat = path.stat()
    assert (row["source_kind"], row["source_ref"], row["source_revision"]) == (
        "local",
        str(path),
        f"{stat.st_mtime_ns}-{stat.st_size}",
    )
    assert (row["sha256"], row["md5"], row["size_bytes"]) == (
        sha(sample(CURITIBA_2019)),
        md5(sample(CURITIBA_2019)),
        len(sample(CURITIBA_2019)),
    )
    assert minio.metadata[RECEPTION_B, new_keys[0]] == {
        "source-kind": "local",
        "source-revision": row["source_revision"],
        "sha256": row["sha256"],
    }
    assert sorted(audit.data_files) == sorted(
        {sha(known), sha(sample(CURITIBA_2019)), sha(sample(MIRANTE_2024))}
    )
    assert counted(summary, "seen", "new", "duplicate", "rejected", "failed", "bytes") == {
        "seen": 6,
        "new": 2,
        "duplicate": 2,
        "rejected": 2,
        "failed": 0,
        "bytes": len(sample(CURITIBA_2019)) + len(sample(MIRANTE_2024)),
    }
    problems = {p["item"]: p["reason"] for p in audit.audit_rows[-1]["problems"]}
    assert problems["vazio.csv"] == "empty file (0 bytes): nothing to capture"
    assert "backslashes are not allowed" in problems["A807\\2019.CSV"]
    assert [p["kind"] for p in audit.audit_rows[-1]["problems"]] == ["rejected", "rejected"]
    assert (summary["project"], summary["prefix"]) == ("Clima SP", "clima")
    assert summary["source"] == f"local folder {folder.resolve()}"
    assert audit.projects[0]["prefix"] == "clima"


def test_a_capture_run_again_finds_every_file_captured_at_its_revision(
    folder: Path, source_reads: dict[str, list[str]]
) -> None:
    audit, minio = FakeAudit(), FakeMinio()
    capture(folder, audit, minio, project_prefix="clima")
    puts, rows = list(minio.puts), list(audit.reception)
    source_reads["hashed"].clear()
    source_reads["streamed"].clear()

    again = capture(folder, audit, minio, run_id="r-again")
    assert (minio.puts, audit.reception) == (puts, rows)
    assert source_reads["streamed"] == []
    # The three captured files are known by their revision: not even hashed. The copy is hashed.
    assert source_reads["hashed"] == [f"2024/copia/{MIRANTE_2024}"]
    assert counted(again, "seen", "new", "duplicate", "rejected") == {
        "seen": 6,
        "new": 0,
        "duplicate": 4,
        "rejected": 2,
    }


def test_capture_never_overwrites_other_content_under_the_name_it_disambiguates(folder: Path) -> None:
    audit, minio = FakeAudit(), FakeMinio()
    key = f"clima/2019/{CURITIBA_2019}"
    earlier = sample(CURITIBA_2019, 30)
    put_object(minio, RECEPTION_B, key, earlier, {"sha256": sha(earlier)})
    capture(folder, audit, minio, project_prefix="clima", key_prefix="2019/")

    data = sample(CURITIBA_2019)
    tagged = f"clima/2019/{CURITIBA_2019[:-4]}__{sha(data)[:12]}.CSV"
    assert [k for _, k, _ in minio.puts] == [tagged]
    assert minio.objects[RECEPTION_B, key] == earlier
    assert minio.objects[RECEPTION_B, tagged] == data
    assert entries_by_key(audit) == {tagged: ("new", None)}


def test_an_upload_left_unregistered_by_a_dead_run_is_registered_not_sent_again(folder: Path) -> None:
    audit, minio = FakeAudit(), FakeMinio()
    key, data = f"clima/2019/{CURITIBA_2019}", sample(CURITIBA_2019)
    put_object(minio, RECEPTION_B, key, data, {"sha256": sha(data), "source-kind": "local"})
    summary = capture(folder, audit, minio, project_prefix="clima", key_prefix="2019/")

    assert minio.puts == []
    assert entries_by_key(audit) == {key: ("new", None)}
    [row] = audit.reception
    assert (row["etag"], row["sha256"], row["md5"]) == (md5(data), sha(data), md5(data))
    assert counted(summary, "seen", "new", "bytes") == {"seen": 1, "new": 1, "bytes": len(data)}


def test_capture_of_an_unknown_project_without_prefix_fails_before_anything_moves(folder: Path) -> None:
    audit, minio = FakeAudit(), FakeMinio()
    with pytest.raises(
        AirflowFailException, match="project 'Clima SP' is not registered and no project_prefix"
    ):
        capture(folder, audit, minio)
    assert (minio.puts, audit.reception, audit.projects) == ([], [], [])
    assert audit.audit_rows[-1]["error"].startswith("project 'Clima SP' is not registered")


def test_capture_refuses_a_prefix_that_belongs_to_another_project(folder: Path) -> None:
    audit, minio = FakeAudit(), FakeMinio()
    add_project(audit, "Clima PR", "clima")
    with pytest.raises(
        AirflowFailException,
        match="project prefix 'clima' already belongs to project 'Clima PR'; choose another prefix",
    ):
        capture(folder, audit, minio, project_prefix="clima")
    assert (minio.puts, len(audit.projects)) == ([], 1)


def test_capture_from_a_missing_folder_fails_naming_it(tmp_path: Path) -> None:
    audit, minio = FakeAudit(), FakeMinio()
    with pytest.raises(AirflowFailException, match=r"local folder '.*/sumiu': does not exist"):
        capture(tmp_path / "sumiu", audit, minio, project_prefix="clima")
    assert audit.audit_rows[-1]["status"] == "failed"


def test_capture_without_a_source_is_skipped() -> None:
    audit, minio = FakeAudit(), FakeMinio()
    with pytest.raises(AirflowSkipException, match="no source"):
        capture(" ", audit, minio, project_prefix="clima")
    assert audit.audit_rows[-1]["status"] == "skipped"


# raw ingest --------------------------------------------------------------------------------------
def register_row(audit: FakeAudit, key: str, data: bytes, **over: Any) -> dict[str, Any]:
    """Test setup: a reception_audit row (and its content claim) of ``data`` under ``key``."""
    row = {
        "id": len(audit.reception) + 1,
        "bucket": RECEPTION_B,
        "object_key": key,
        "file_name": PurePosixPath(key).name,
        "etag": md5(data),
        "size_bytes": len(data),
        "uploaded_at": PUT_AT,
        "sha256": sha(data),
        "md5": md5(data),
        "source_kind": "upload",
        "source_ref": None,
        "source_revision": None,
        "status": "new",
        "duplicate_of": None,
        "reason": None,
        "run_id": "r-earlier",
        "deleted_at": None,
        **over,
    }
    audit.reception.append(row)
    audit.data_files.setdefault(
        sha(data),
        {
            "sha256": sha(data),
            "md5": md5(data),
            "size_bytes": len(data),
            "first_bucket": RECEPTION_B,
            "first_key": key,
        },
    )
    return row


def ingest(audit: FakeAudit, minio: FakeMinio, **kwargs: Any) -> dict[str, Any]:
    op = RawIngestOperator(task_id="register", **kwargs)
    wired(op, audit, minio)
    return run_operator(op, run_id="r-ingest", dag_id="raw_ingest")


def test_raw_ingest_registers_each_listed_object_once_with_its_status_and_reason() -> None:
    audit, minio = FakeAudit(), FakeMinio()
    curitiba, mirante, old = sample(CURITIBA_2019), sample(MIRANTE_2024), sample(CURITIBA_2003)
    register_row(audit, f"clima/2003/{CURITIBA_2003}", old)
    objects = {
        f"clima/2019/{CURITIBA_2019}": curitiba,
        f"clima/2024/{MIRANTE_2024}": mirante,
        f"clima/2024/copia/{MIRANTE_2024}": mirante,
        f"clima/2003/{CURITIBA_2003}": old,  # registered before, same ETag
        f"clima/2003/de-novo/{CURITIBA_2003}": old,  # content the inventory holds, another key
        "clima/vazio.csv": b"",
        "clima//A807.CSV": curitiba[:500],
        "clima/sumiu.csv": b"listed, then deleted",
        "outro/x.csv": b"not under the prefix",
    }
    for key, data in objects.items():
        put_object(minio, RECEPTION_B, key, data)
    minio.lost.add((RECEPTION_B, "clima/sumiu.csv"))

    summary = ingest(audit, minio, key_prefix="clima/")

    first_2024 = f"{RECEPTION_B}/clima/2024/{MIRANTE_2024}"
    first_2003 = f"{RECEPTION_B}/clima/2003/{CURITIBA_2003}"
    assert entries_by_key(audit) == {
        f"clima/2003/{CURITIBA_2003}": ("new", None),  # the earlier row, untouched
        "clima//A807.CSV": (
            "rejected",
            "reception key 'clima//A807.CSV': empty, '.' or '..' path segments are not allowed",
        ),
        f"clima/2003/de-novo/{CURITIBA_2003}": ("duplicate", f"same content as {first_2003}"),
        f"clima/2019/{CURITIBA_2019}": ("new", None),
        f"clima/2024/{MIRANTE_2024}": ("new", None),
        f"clima/2024/copia/{MIRANTE_2024}": ("duplicate", f"same content as {first_2024}"),
        "clima/vazio.csv": ("rejected", "empty file (0 bytes)"),
    }
    assert len(audit.reception) == 7  # one row per object: the registered one is not registered again
    by_key = {r["object_key"]: r for r in audit.reception}
    assert by_key["clima//A807.CSV"]["sha256"] == sha(curitiba[:500])  # a refused key still names its content
    assert (by_key["clima/vazio.csv"]["sha256"], by_key["clima/vazio.csv"]["md5"]) == (sha(b""), md5(b""))
    assert by_key[f"clima/2024/copia/{MIRANTE_2024}"]["duplicate_of"] == sha(mirante)
    assert by_key[f"clima/2019/{CURITIBA_2019}"]["uploaded_at"] == PUT_AT
    assert {r["run_id"] for r in audit.reception[1:]} == {"r-ingest"}
    # Read: each unregistered object with bytes, once. Not the registered one, not the empty one.
    assert sorted(minio.reads) == sorted(
        (RECEPTION_B, k)
        for k in (
            f"clima/2019/{CURITIBA_2019}",
            f"clima/2024/{MIRANTE_2024}",
            f"clima/2024/copia/{MIRANTE_2024}",
            f"clima/2003/de-novo/{CURITIBA_2003}",
            "clima//A807.CSV",
        )
    )
    assert counted(summary, "seen", "new", "duplicate", "rejected", "skipped", "failed", "bytes") == {
        "seen": 8,
        "new": 2,
        "duplicate": 2,
        "rejected": 2,
        "skipped": 2,  # registered before; vanished
        "failed": 0,
        "bytes": len(curitiba) + 2 * len(mirante) + len(old) + 500,
    }
    assert {p["item"]: p["reason"] for p in audit.audit_rows[-1]["problems"]}[
        f"{RECEPTION_B}/clima/sumiu.csv"
    ] == "vanished between listing and reading"
    assert (summary["registered"], summary["bucket"]) == (6, RECEPTION_B)
    assert summary["scope"] == "not triggered by asset events"
    assert minio.puts == []


def test_raw_ingest_captures_the_landing_dir_first_then_finds_it_registered(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    (landing / "2019").mkdir(parents=True)
    (landing / "2019" / CURITIBA_2019).write_bytes(sample(CURITIBA_2019))
    (landing / MIRANTE_2024).write_bytes(sample(MIRANTE_2024))
    audit, minio = FakeAudit(), FakeMinio()
    summary = ingest(audit, minio, landing_dir=str(landing), landing_prefix="clima/estacoes/")

    keys = [f"clima/estacoes/2019/{CURITIBA_2019}", f"clima/estacoes/{MIRANTE_2024}"]
    assert sorted(k for _, k, _ in minio.puts) == sorted(keys)
    assert entries_by_key(audit) == {k: ("new", None) for k in keys}
    assert {r["source_kind"] for r in audit.reception} == {"local"}
    assert minio.reads == []  # the listing finds them registered under their ETag
    assert counted(summary, "seen", "new", "skipped") == {"seen": 4, "new": 2, "skipped": 2}
    assert summary["registered"] == 0


def test_raw_ingest_with_a_missing_landing_dir_fails_naming_the_parameter(tmp_path: Path) -> None:
    audit, minio = FakeAudit(), FakeMinio()
    with pytest.raises(AirflowFailException, match=r"^landing_dir: local folder '.*/nada': does not exist"):
        ingest(audit, minio, landing_dir=str(tmp_path / "nada"))
    assert audit.reception == []


# promote -----------------------------------------------------------------------------------------
def received(
    audit: FakeAudit, minio: FakeMinio, key: str, data: bytes, status: str = "new"
) -> dict[str, Any]:
    """Test setup: ``data`` in reception under ``key``, registered."""
    put_object(minio, RECEPTION_B, key, data)
    return register_row(audit, key, data, status=status)


def stored_row(
    audit: FakeAudit, minio: FakeMinio | None, name: str, data: bytes, version: int = 1, project_id: int = 1
) -> dict[str, Any]:
    """Test setup: ``data`` stored as version ``version`` of ``name`` (in the lake too, unless
    ``minio`` is ``None``: an audit row whose object is gone)."""
    key = f"clima/{name}" if version == 1 else f"clima/{name[:-4]}__v{version}{name[-4:]}"
    row = {
        "id": 100 + len(audit.storage),
        "project_id": project_id,
        "reception_id": None,
        "source_bucket": RECEPTION_B,
        "source_key": key,
        "dest_bucket": STORAGE_B,
        "dest_key": key,
        "logical_name": name,
        "version": version,
        "previous_sha256": None,
        "size_bytes": len(data),
        "sha256": sha(data),
        "md5": md5(data),
        "run_id": "r-earlier",
    }
    audit.storage.append(row)
    if minio is not None:
        put_object(minio, STORAGE_B, key, data, {"sha256": sha(data), "project": "clima"})
    return row


def promote(audit: FakeAudit, minio: FakeMinio, **kwargs: Any) -> dict[str, Any]:
    """The run's summary, and its run-log document under ``"document"``."""
    op = PromoteOperator(task_id="promote", project="Clima SP", **kwargs)
    _, _, runlog = wired(op, audit, minio)
    summary = run_operator(op, run_id="r-promote", dag_id="reception_promote")
    return {**summary, "document": runlog.documents[-1]}


def storage_rows(audit: FakeAudit, run_id: str = "r-promote") -> list[tuple[str, str, int, str | None]]:
    """``(source key, stored key, version, previous sha256)`` of what ``run_id`` recorded."""
    return sorted(
        (s["source_key"], s["dest_key"], s["version"], s["previous_sha256"])
        for s in audit.storage
        if s["run_id"] == run_id
    )


def test_promote_copies_new_content_once_and_skips_what_storage_verifiably_holds() -> None:
    audit, minio = FakeAudit(), FakeMinio()
    project = add_project(audit, "Clima SP", "clima")
    curitiba, mirante, old = sample(CURITIBA_2019), sample(MIRANTE_2024), sample(CURITIBA_2003)
    stored_row(audit, minio, f"2003/{CURITIBA_2003}", old)
    a = received(audit, minio, f"clima/2019/{CURITIBA_2019}", curitiba)
    b = received(audit, minio, f"clima/2024/{MIRANTE_2024}", mirante)
    received(audit, minio, f"clima/2024/copia/{MIRANTE_2024}", mirante, status="duplicate")
    received(audit, minio, f"clima/2003/de-novo/{CURITIBA_2003}", old, status="duplicate")
    received(audit, minio, "outro/x.csv", b"another project's file")
    summary = promote(audit, minio)

    assert storage_rows(audit) == [
        (a["object_key"], f"clima/2019/{CURITIBA_2019}", 1, None),
        (b["object_key"], f"clima/2024/{MIRANTE_2024}", 1, None),
    ]
    assert sorted(minio.copies) == [
        (RECEPTION_B, a["object_key"], STORAGE_B, f"clima/2019/{CURITIBA_2019}"),
        (RECEPTION_B, b["object_key"], STORAGE_B, f"clima/2024/{MIRANTE_2024}"),
    ]
    assert minio.objects[STORAGE_B, f"clima/2019/{CURITIBA_2019}"] == curitiba
    assert minio.metadata[STORAGE_B, f"clima/2019/{CURITIBA_2019}"] == {
        "project": "clima",
        "source-key": a["object_key"],
        "sha256": sha(curitiba),
    }
    assert {(s["reception_id"], s["logical_name"]) for s in audit.storage if s["run_id"] == "r-promote"} == {
        (a["id"], f"2019/{CURITIBA_2019}"),
        (b["id"], f"2024/{MIRANTE_2024}"),
    }
    # One batch, its locks taken on its checksums and names, sorted (the order every run takes them in).
    [(project_id, shas, names)] = audit.batches
    assert project_id == project["id"]
    assert shas == sorted({sha(curitiba), sha(mirante), sha(old)})
    assert names == sorted(
        [
            f"2019/{CURITIBA_2019}",
            f"2024/{MIRANTE_2024}",
            f"2024/copia/{MIRANTE_2024}",
            f"2003/de-novo/{CURITIBA_2003}",
        ]
    )
    assert counted(summary, "seen", "copied", "duplicate", "failed", "bytes") == {
        "seen": 4,
        "copied": 2,
        "duplicate": 2,
        "failed": 0,
        "bytes": len(curitiba) + len(mirante),
    }
    assert (summary["project"], summary["prefix"], summary["copied"], summary["duplicates"]) == (
        "Clima SP",
        "clima",
        2,
        2,
    )
    assert sorted(summary["document"]["keys_touched"]) == [
        f"{STORAGE_B}/clima/2019/{CURITIBA_2019}",
        f"{STORAGE_B}/clima/2024/{MIRANTE_2024}",
    ]

    # Run again: everything is stored and verified present, nothing is copied or recorded.
    again = promote(audit, minio)
    assert (len(minio.copies), len(audit.storage)) == (2, 3)
    assert counted(again, "seen", "copied", "duplicate") == {"seen": 4, "copied": 0, "duplicate": 4}


def test_a_new_content_under_a_stored_name_is_a_new_version_that_never_lands_on_a_taken_key() -> None:
    audit, minio = FakeAudit(), FakeMinio()
    add_project(audit, "Clima SP", "clima")
    name = f"2019/{CURITIBA_2019}"
    first, corrected = sample(CURITIBA_2019, 40), sample(CURITIBA_2019, 60)
    stored_row(audit, minio, name, first)
    # A file really named ..._A_31-12-2019__v2.CSV is stored: version 2 of the name must not take its key.
    v2_name = f"2019/{CURITIBA_2019[:-4]}__v2.CSV"
    stored_row(audit, minio, v2_name, b"another file, really named __v2")
    received(audit, minio, f"clima/{name}", first)  # the first upload, promoted before...
    received(audit, minio, f"clima/{name}", corrected)  # ...then the corrected file under the same key
    summary = promote(audit, minio)

    v3 = f"clima/2019/{CURITIBA_2019[:-4]}__v3.CSV"
    assert storage_rows(audit) == [(f"clima/{name}", v3, 3, sha(first))]
    assert minio.objects[STORAGE_B, v3] == corrected
    assert minio.objects[STORAGE_B, f"clima/{v2_name}"] == b"another file, really named __v2"
    assert minio.objects[STORAGE_B, f"clima/{name}"] == first
    assert counted(summary, "seen", "copied", "duplicate") == {"seen": 1, "copied": 1, "duplicate": 0}


def test_a_stored_copy_that_is_gone_is_repaired_under_its_audit_row() -> None:
    audit, minio = FakeAudit(), FakeMinio()
    add_project(audit, "Clima SP", "clima")
    data = sample(CURITIBA_2019)
    stored_row(audit, None, f"2019/{CURITIBA_2019}", data)  # the audit row, not the object
    received(audit, minio, f"clima/2019/{CURITIBA_2019}", data)
    summary = promote(audit, minio)

    assert minio.copies == [
        (RECEPTION_B, f"clima/2019/{CURITIBA_2019}", STORAGE_B, f"clima/2019/{CURITIBA_2019}")
    ]
    assert minio.objects[STORAGE_B, f"clima/2019/{CURITIBA_2019}"] == data
    assert len(audit.storage) == 1  # no second row for the same content
    assert counted(summary, "copied", "duplicate", "bytes") == {
        "copied": 1,
        "duplicate": 0,
        "bytes": len(data),
    }


def test_a_reception_object_changed_since_registered_fails_alone_and_is_not_recorded() -> None:
    audit, minio = FakeAudit(), FakeMinio()
    add_project(audit, "Clima SP", "clima")
    changed = received(audit, minio, f"clima/2019/{CURITIBA_2019}", sample(CURITIBA_2019))
    put_object(minio, RECEPTION_B, changed["object_key"], sample(CURITIBA_2019, 80))  # overwritten since
    ok = received(audit, minio, f"clima/2024/{MIRANTE_2024}", sample(MIRANTE_2024))
    summary = promote(audit, minio, fail_on_errors=False)

    assert storage_rows(audit) == [(ok["object_key"], f"clima/2024/{MIRANTE_2024}", 1, None)]
    assert (STORAGE_B, f"clima/2019/{CURITIBA_2019}") not in minio.objects
    assert audit.audit_rows[-1]["problems"] == [
        {
            "kind": "failed",
            "item": f"{RECEPTION_B}/{changed['object_key']}",
            "reason": "the reception object is gone or changed since it was registered "
            "(run raw_ingest again)",
        }
    ]
    assert counted(summary, "copied", "failed") == {"copied": 1, "failed": 1}

    with pytest.raises(AirflowException, match=r"^1 item\(s\) failed \(first: recepcao-raw/clima/2019/"):
        promote(audit, minio)


# cleanup -----------------------------------------------------------------------------------------
OLD, YOUNG = timedelta(days=30), timedelta(days=2)


@pytest.fixture
def reception_to_clean() -> tuple[FakeAudit, FakeMinio, dict[str, str]]:
    """A reception bucket with one object the rule lets go and one kept by each condition; the reason
    each kept one must be recorded with."""
    audit, minio = FakeAudit(), FakeMinio()
    now = datetime.now(UTC)
    curitiba, mirante, old = sample(CURITIBA_2019), sample(MIRANTE_2024), sample(CURITIBA_2003)

    def audited(key: str, data: bytes, age: timedelta = OLD, **over: Any) -> dict[str, Any]:
        put_object(minio, RECEPTION_B, key, data)
        return register_row(audit, key, data, uploaded_at=now - age, **over)

    audited(f"clima/2019/{CURITIBA_2019}", curitiba)
    stored_row(audit, minio, f"2019/{CURITIBA_2019}", curitiba)
    audited(f"clima/2024/{MIRANTE_2024}", mirante, age=YOUNG)
    stored_row(audit, minio, f"2024/{MIRANTE_2024}", mirante)
    put_object(minio, RECEPTION_B, "clima/sem-audit.csv", curitiba[:300])
    audited("clima/vazio.csv", b"", status="rejected", reason="empty file (0 bytes)")
    changed = audited(f"clima/2003/{CURITIBA_2003}", old)
    stored_row(audit, minio, f"2003/{CURITIBA_2003}", old)
    put_object(minio, RECEPTION_B, changed["object_key"], old + b"2003/12/31;2300 UTC;;;;;;;;;;;;;;;;;;\n")
    audited("clima/nao-promovido.csv", mirante[:700])
    lost = sample(CURITIBA_2019, 25)
    audited("clima/perdido.csv", lost)
    stored_row(audit, None, "perdido.csv", lost)
    swapped = sample(CURITIBA_2019, 35)
    audited("clima/trocado.csv", swapped)
    stored_row(audit, minio, "trocado.csv", swapped)
    # The stored copy now holds other bytes, under metadata that still claims the audited sha256.
    put_object(minio, STORAGE_B, "clima/trocado.csv", sample(CURITIBA_2019, 36), {"sha256": sha(swapped)})

    new_size = len(minio.objects[RECEPTION_B, changed["object_key"]])
    new_etag = md5(minio.objects[RECEPTION_B, changed["object_key"]])
    other = "but that object is missing or holds other content"
    reasons = {
        f"clima/2019/{CURITIBA_2019}": f"verified stored at {STORAGE_B}/clima/2019/{CURITIBA_2019}; "
        "older than 7 days",
        f"clima/2024/{MIRANTE_2024}": "younger than the retention window (7 days)",
        "clima/sem-audit.csv": "no reception_audit row for this object (run raw_ingest first)",
        "clima/vazio.csv": "rejected at ingestion (empty file (0 bytes)); kept for inspection",
        f"clima/2003/{CURITIBA_2003}": f"object changed since audit (size {len(old)} -> {new_size}, "
        f"ETag {md5(old)} -> {new_etag})",
        "clima/nao-promovido.csv": "content not in storage_audit yet (run reception_promote first)",
        "clima/perdido.csv": f"storage_audit names {STORAGE_B}/clima/perdido.csv {other}",
        "clima/trocado.csv": f"storage_audit names {STORAGE_B}/clima/trocado.csv {other}",
    }
    return audit, minio, reasons


def cleanup(audit: FakeAudit, minio: FakeMinio, **kwargs: Any) -> dict[str, Any]:
    op = CleanupOperator(task_id="cleanup", **kwargs)
    _, _, runlog = wired(op, audit, minio)
    summary = run_operator(op, run_id="r-cleanup", dag_id="reception_cleanup")
    return {**summary, "document": runlog.documents[-1]}


def test_a_dry_run_records_what_it_would_delete_and_why_the_rest_is_kept(
    reception_to_clean: tuple[FakeAudit, FakeMinio, dict[str, str]],
) -> None:
    audit, minio, reasons = reception_to_clean
    before = dict(minio.objects)
    summary = cleanup(audit, minio)

    assert (minio.deletes, minio.objects) == ([], before)
    doomed = f"clima/2019/{CURITIBA_2019}"
    assert {r.key: (r.action, r.reason) for r, _, _ in audit.cleanups} == {
        k: ("would_delete" if k == doomed else "kept", why) for k, why in reasons.items()
    }
    assert {(dry, run) for _, dry, run in audit.cleanups} == {(True, "r-cleanup")}
    assert all(r["deleted_at"] is None for r in audit.reception)
    assert counted(summary, "seen", "would_delete", "skipped", "deleted", "failed") == {
        "seen": 8,
        "would_delete": 1,
        "skipped": 7,
        "deleted": 0,
        "failed": 0,
    }
    assert {k: summary[k] for k in ("dry_run", "deleted", "would_delete", "kept", "retention_days")} == {
        "dry_run": True,
        "deleted": 0,
        "would_delete": 1,
        "kept": 7,
        "retention_days": 7,
    }


def test_cleanup_deletes_only_the_verified_stored_object_after_recording_it(
    reception_to_clean: tuple[FakeAudit, FakeMinio, dict[str, str]],
) -> None:
    audit, minio, reasons = reception_to_clean
    doomed = f"clima/2019/{CURITIBA_2019}"
    delete_keys = minio.delete_keys

    def recorded_first(bucket: str, keys: list[str]) -> list[str]:
        # Never an unrecorded deletion: the rows say "deleted" before the request is sent.
        assert {r.key for r, _, _ in audit.cleanups if r.action == "deleted"} == set(keys)
        return delete_keys(bucket, keys)

    minio.delete_keys = recorded_first  # type: ignore[method-assign]
    summary = cleanup(audit, minio, dry_run="False", retention_days="7")

    assert minio.deletes == [(RECEPTION_B, doomed)]
    assert (RECEPTION_B, doomed) not in minio.objects
    assert sum(1 for b, _ in minio.objects if b == RECEPTION_B) == 7
    records = {r.key: r for r, _, _ in audit.cleanups}
    assert {k: r.action for k, r in records.items()} == {
        k: "deleted" if k == doomed else "kept" for k in reasons
    }
    row = next(r for r in audit.reception if r["object_key"] == doomed)
    assert row["deleted_at"] is not None
    assert [r["object_key"] for r in audit.reception if r["deleted_at"]] == [doomed]
    assert (records[doomed].reception_id, records[doomed].sha256) == (row["id"], row["sha256"])
    assert records[doomed].storage_id == audit.stored_anywhere([row["sha256"]])[row["sha256"]]["id"]
    # The overwritten object's sha256 is no longer the audited one: it is not recorded as such.
    assert records[f"clima/2003/{CURITIBA_2003}"].sha256 is None
    assert records["clima/sem-audit.csv"].reception_id is None
    assert counted(summary, "deleted", "skipped", "failed") == {"deleted": 1, "skipped": 7, "failed": 0}
    assert "would_delete" not in summary["counters"]
    assert summary["document"]["keys_touched"] == [f"{RECEPTION_B}/{doomed}"]
    assert (summary["dry_run"], summary["deleted"]) == (False, 1)


def test_a_deletion_the_server_does_not_confirm_fails_the_task(
    reception_to_clean: tuple[FakeAudit, FakeMinio, dict[str, str]],
) -> None:
    audit, minio, _ = reception_to_clean
    doomed = f"clima/2019/{CURITIBA_2019}"
    minio.undeletable.add((RECEPTION_B, doomed))
    with pytest.raises(AirflowException, match="the server did not confirm the deletion"):
        cleanup(audit, minio, dry_run=False, retention_days=0)
    assert (RECEPTION_B, doomed) in minio.objects
    final = audit.audit_rows[-1]
    assert final["problems"] == [
        {
            "kind": "failed",
            "item": f"{RECEPTION_B}/{doomed}",
            "reason": "the server did not confirm the deletion",
        }
    ]
    # retention 0: the young object is verified stored too, and goes.
    assert final["counters"]["deleted"] == 1
    assert minio.deletes == [(RECEPTION_B, f"clima/2024/{MIRANTE_2024}")]

    # Its record says "deleted" (written before the request): the next run completes the deletion.
    minio.undeletable.clear()
    again = cleanup(audit, minio, dry_run=False, retention_days=0)
    assert (RECEPTION_B, doomed) not in minio.objects
    assert (again["deleted"], again["counters"]["failed"]) == (1, 0)


@pytest.mark.parametrize(
    ("days", "message"),
    [
        ("sete", "retention_days: expected a whole number of days, got 'sete'"),
        ("-1", "retention_days: expected 0 or more, got -1"),
    ],
)
def test_a_bad_retention_fails_before_anything_is_listed(days: str, message: str) -> None:
    audit, minio = FakeAudit(), FakeMinio()
    put_object(minio, RECEPTION_B, "clima/a.csv", b"x")
    op = CleanupOperator(task_id="cleanup", retention_days=days, dry_run=False)
    wired(op, audit, minio)
    with pytest.raises(AirflowFailException, match=f"^{message}$"):
        run_operator(op)
    assert (audit.cleanups, minio.deletes, minio.checked) == ([], [], [])
    assert audit.audit_rows[-1]["error"] == message


@pytest.mark.parametrize(
    "make",
    [
        lambda: CaptureOperator(task_id="t", source="/srv/inmet", project="Clima SP", key_prefix="../2019/"),
        lambda: RawIngestOperator(task_id="t", key_prefix="../2019/"),
        lambda: CleanupOperator(task_id="t", key_prefix="../2019/"),
    ],
    ids=["capture", "raw_ingest", "cleanup"],
)
def test_a_bad_key_prefix_fails_naming_it_before_any_bucket_is_touched(make: Callable[[], Any]) -> None:
    audit, minio = FakeAudit(), FakeMinio()
    op = make()
    wired(op, audit, minio)
    # A parameter no retry fixes: AirflowFailException (no retries), one error line, the audit says why.
    with pytest.raises(
        AirflowFailException, match=r"key_prefix '\.\./2019/': empty, '\.' or '\.\.' path segments"
    ):
        run_operator(op)
    assert (minio.checked, audit.reception, audit.cleanups) == ([], [], [])
    assert audit.audit_rows[-1]["status"] == "failed"
    assert audit.audit_rows[-1]["error"].startswith("key_prefix '../2019/'")


def test_the_run_log_document_holds_the_tasks_own_peak_memory() -> None:
    """The peak resident set is reset when a task starts (one process runs many tasks under
    dag.test): a task that holds 64 MiB reports at least that, and the next, small task does not
    carry that peak over."""

    def hold(counters: Counters) -> dict[str, Any]:
        block = bytearray(64 * 1024 * 1024)
        for page in range(0, len(block), 4096):  # touch every page, so that it is resident
            block[page] = 1
        return {}

    big, _, big_log = probe(hold)
    run_operator(big)
    small, _, small_log = probe(two_copied)
    run_operator(small)
    (big_doc,), (small_doc,) = big_log.documents, small_log.documents
    assert big_doc["peak_rss_bytes"] >= 64 * 1024 * 1024
    assert small_doc["peak_rss_bytes"] < big_doc["peak_rss_bytes"] - 32 * 1024 * 1024
