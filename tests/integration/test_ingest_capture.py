"""drive_capture against the real stack, from a local folder and from a fake Google Drive.

The Drive tests have no Google endpoint: Drive is faked **at the HTTP boundary** with
:class:`googleapiclient.http.HttpMockSequence` (as in ``tests/unit/test_drive_hook.py``), serving
realistic Drive v3 JSON and bytes to the real ``drive v3`` client, which replaces
``TrilhaDriveHook.get_conn``. Everything else is real: ``CaptureOperator`` builds the hook from the
folder id, and the captured files go to the real S3 server and audit store.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from airflow.sdk.exceptions import AirflowFailException
from googleapiclient.http import HttpMockSequence

from tests.integration.ingest_support import (
    RECEPTION,
    S3Calls,
    Scope,
    install_fake_drive,
    list_keys,
    md5,
    new_scope,
    query,
    read,
    reception_rows,
    run,
    sha,
    snapshot,
)

pytestmark = pytest.mark.integration

FOLDER_MIME = "application/vnd.google-apps.folder"
SHEET_MIME = "application/vnd.google-apps.spreadsheet"
DOC_MIME = "application/vnd.google-apps.document"


def capture(s: Scope, source: str, **kwargs: Any) -> Any:
    from trilha.operators.capture import CaptureOperator

    kwargs.setdefault("project_prefix", s.prefix)
    return CaptureOperator(task_id="capture", source=source, project=s.name, **kwargs)


def problems_of(stack: Any, summary: dict[str, Any]) -> dict[str, dict[str, str]]:
    row = query(stack, "SELECT problems FROM meta.audit_log WHERE id = %s", (summary["audit_log_id"],))[0]
    return {p["item"]: p for p in row["problems"]}


# ------------------------------------------------------------------------------- local folder


def test_a_name_that_is_not_utf8_is_rejected_alone(stack: Any, tmp_path: Path) -> None:
    """Issue 13: a file name that is not valid UTF-8 (latin-1 bytes, as old Windows zips leave them)
    failed the whole capture on every retry with "UnicodeEncodeError: ... surrogates not allowed".
    Now that file is rejected with a reason that shows its bytes escaped, and the others are captured."""
    s = new_scope("latin")
    good = f"ok;{s.prefix}\n".encode()
    (tmp_path / "bom.csv").write_bytes(good)
    with open(os.path.join(os.fsencode(tmp_path), b"caf\xe9.csv"), "wb") as handle:
        handle.write(f"latin;{s.prefix}\n".encode())

    summary = run(capture(s, str(tmp_path)))

    assert (summary["counters"]["new"], summary["counters"]["rejected"], summary["counters"]["failed"]) == (
        1,
        1,
        0,
    )
    assert sorted(list_keys(stack, RECEPTION, s.keys)) == [s.key("bom.csv")]
    [problem] = problems_of(stack, summary).values()
    assert problem["kind"] == "rejected"
    assert problem["item"] == "caf\\xe9.csv"
    assert "is not valid UTF-8" in problem["reason"]
    assert "rename" in problem["reason"]


def test_no_source_skips_and_the_audit_says_skipped(stack: Any) -> None:
    """The trigger form's default (no source, no Variable) is a skipped run, recorded as skipped."""
    from airflow.sdk.exceptions import AirflowSkipException

    s = new_scope("nosrc")
    run_id = f"nosrc__{s.prefix}"
    with pytest.raises(AirflowSkipException, match="no source: set the 'source' parameter"):
        run(capture(s, ""), run_id=run_id)
    row = query(stack, "SELECT status, error FROM meta.audit_log WHERE run_id = %s", (run_id,))
    assert [(r["status"], r["error"][:10]) for r in row] == [("skipped", "no source:")]
    assert not query(stack, "SELECT 1 FROM projects_registry WHERE name = %s", (s.name,))


def test_local_folder_is_captured_under_the_project_prefix(stack: Any, tmp_path: Path) -> None:
    s = new_scope("cap")
    a, b = f"a;{s.prefix}\n".encode(), f"b;{s.prefix}\n".encode()
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.csv").write_bytes(a)
    (tmp_path / "sub" / "b.csv").write_bytes(b)
    (tmp_path / "sub" / "copia.csv").write_bytes(a)
    (tmp_path / "vazio.csv").write_bytes(b"")
    (tmp_path / "bad\x07name.csv").write_bytes(f"sino;{s.prefix}\n".encode())
    (tmp_path / ".oculto.csv").write_bytes(f"oculto;{s.prefix}\n".encode())
    op = capture(s, str(tmp_path))
    calls = S3Calls(op)

    summary = run(op)

    assert sorted(list_keys(stack, RECEPTION, s.keys)) == [s.key("a.csv"), s.key("sub/b.csv")]
    assert calls["PutObject"] == 2, "duplicate, empty and rejected files must never be uploaded"
    counters = summary["counters"]
    assert (counters["seen"], counters["new"], counters["duplicate"], counters["rejected"]) == (5, 2, 1, 2)
    rows = {r["object_key"]: r for r in reception_rows(stack, s.keys)}
    row = rows[s.key("sub/b.csv")]
    assert (row["status"], row["sha256"], row["md5"], row["size_bytes"]) == ("new", sha(b), md5(b), len(b))
    assert (row["source_kind"], row["source_ref"]) == ("local", str(tmp_path.resolve() / "sub" / "b.csv"))
    assert row["source_revision"].endswith(f"-{len(b)}")
    assert read(stack, RECEPTION, s.key("a.csv")) == a
    problems = problems_of(stack, summary)
    assert "control characters" in problems["bad\x07name.csv"]["reason"]
    assert problems["bad\x07name.csv"]["kind"] == "rejected"
    assert "empty" in problems["vazio.csv"]["reason"]
    assert (summary["project"], summary["prefix"]) == (s.name, s.prefix)

    before = snapshot(stack)
    op = capture(s, str(tmp_path), project_prefix=None)
    calls = S3Calls(op)
    again = run(op)
    assert snapshot(stack) == before
    assert (calls["PutObject"], calls["GetObject"], again["counters"]["new"]) == (0, 0, 0)


def test_rerun_costs_constant_round_trips(stack: Any, tmp_path: Path) -> None:
    def rerun(n: int) -> int:
        s = new_scope(f"capn{n}")
        folder = tmp_path / s.prefix
        folder.mkdir()
        for i in range(n):
            (folder / f"f{i:03d}.csv").write_bytes(f"{s.prefix};{i}\n".encode())
        assert run(capture(s, str(folder)))["counters"]["new"] == n
        op = capture(s, str(folder), project_prefix=None)
        calls = S3Calls(op)
        again = run(op)
        assert (again["counters"]["new"], again["counters"]["duplicate"]) == (0, n)
        assert (calls["PutObject"], calls["GetObject"], calls["HeadObject"]) == (0, 0, 0)
        return int(op.audit.round_trips)

    trips_10, trips_60 = rerun(10), rerun(60)
    assert trips_10 == trips_60, f"SQL round trips grew with N: {trips_10} for 10, {trips_60} for 60"


def test_rerun_reads_no_unchanged_file_and_hashes_a_touched_one(
    stack: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file captured at the same revision (mtime and size) is not even read again; a file whose
    mtime moved is hashed, found known by its sha256, and still not uploaded."""
    from trilha.hooks.sources import LocalFolderSource

    s = new_scope("caprev")
    for i in range(5):
        (tmp_path / f"f{i}.csv").write_bytes(f"{s.prefix};{i}\n".encode())
    assert run(capture(s, str(tmp_path)))["counters"]["new"] == 5
    hashed: list[str] = []
    real = LocalFolderSource.with_checksums

    def spy(self: Any, file: Any) -> Any:
        hashed.append(file.relative_path)
        return real(self, file)

    monkeypatch.setattr(LocalFolderSource, "with_checksums", spy)
    touched = tmp_path / "f3.csv"
    os.utime(touched, ns=(touched.stat().st_atime_ns, touched.stat().st_mtime_ns + 10**9))

    op = capture(s, str(tmp_path), project_prefix=None)
    calls = S3Calls(op)
    again = run(op)

    assert hashed == ["f3.csv"]
    assert (again["counters"]["new"], again["counters"]["duplicate"]) == (0, 5)
    assert calls["PutObject"] == 0


def test_same_name_with_other_content_lands_beside_never_over(stack: Any, tmp_path: Path) -> None:
    s = new_scope("capv")
    first, second = f"primeira;{s.prefix}\n".encode(), f"segunda;{s.prefix}\n".encode()
    (tmp_path / "dados.csv").write_bytes(first)
    run(capture(s, str(tmp_path)))
    (tmp_path / "dados.csv").write_bytes(second)

    summary = run(capture(s, str(tmp_path)))

    sibling = s.key(f"dados__{sha(second)[:12]}.csv")
    assert sorted(list_keys(stack, RECEPTION, s.keys)) == [s.key("dados.csv"), sibling]
    assert read(stack, RECEPTION, s.key("dados.csv")) == first
    assert read(stack, RECEPTION, sibling) == second
    assert summary["counters"]["new"] == 1


def test_missing_local_folder_fails_at_once_naming_it(stack: Any, tmp_path: Path) -> None:
    s = new_scope("capmiss")
    missing = tmp_path / "nao-existe"
    with pytest.raises(AirflowFailException, match=f"local folder '{missing}': does not exist"):
        run(capture(s, str(missing)))
    assert not query(stack, "SELECT 1 FROM projects_registry WHERE name = %s", (s.name,))


def test_unknown_project_without_prefix_fails_at_capture(stack: Any, tmp_path: Path) -> None:
    s = new_scope("capunk")
    (tmp_path / "a.csv").write_bytes(b"a\n")
    with pytest.raises(AirflowFailException, match="set project_prefix"):
        run(capture(s, str(tmp_path), project_prefix=""))
    assert list_keys(stack, RECEPTION, s.keys) == {}


# ------------------------------------------------------------------------------- Google Drive (faked)


def ok(payload: dict[str, Any]) -> tuple[dict[str, str], str]:
    return {"status": "200", "content-type": "application/json; charset=UTF-8"}, json.dumps(payload)


def too_large() -> tuple[dict[str, str], str]:
    message = "This file is too large to be exported."
    body = {
        "error": {
            "code": 403,
            "message": message,
            "errors": [{"message": message, "domain": "global", "reason": "exportSizeLimitExceeded"}],
        }
    }
    return {"status": "403", "content-type": "application/json; charset=UTF-8"}, json.dumps(body)


def blob(file_id: str, name: str, content: bytes) -> dict[str, Any]:
    return {
        "id": file_id,
        "name": name,
        "mimeType": "text/csv",
        "size": str(len(content)),
        "md5Checksum": hashlib.md5(content).hexdigest(),
        "sha256Checksum": hashlib.sha256(content).hexdigest(),
        "modifiedTime": "2024-03-01T10:20:30.000Z",
        "headRevisionId": f"rev-{file_id}",
        "trashed": False,
    }


def media(content: bytes) -> tuple[dict[str, str], bytes]:
    n = len(content)
    return {"status": "206", "content-range": f"bytes 0-{n - 1}/{n}"}, content


@pytest.fixture
def fake_drive(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Install a fake Drive for the next capture: ``fake_drive(responses)`` returns its recorder."""
    return lambda responses: install_fake_drive(monkeypatch, HttpMockSequence(responses))


def paths(http: HttpMockSequence) -> list[str]:
    return [urlsplit(uri).path for uri, *_ in http.request_sequence]


def test_drive_folder_capture_with_exports_rejections_and_no_rework(stack: Any, fake_drive: Any) -> None:
    """Fake Drive (HttpMockSequence): a CSV blob, a Sheet (exported to XLSX), a Doc too large to
    export, and two items whose names are not safe keys (``..`` and a control character)."""
    s = new_scope("drive")
    tag = uuid.uuid4().hex[:8]
    root, csv_id, sheet_id, doc_id = (f"{x}-{tag}" for x in ("root", "csv", "sheet", "doc"))
    csv = f"estacao;chuva\n{s.prefix}\n".encode()
    xlsx = b"PK\x03\x04" + s.prefix.encode()
    native = {"modifiedTime": "2024-05-05T05:05:05.000Z", "trashed": False}
    listing = ok(
        {
            "files": [
                blob(csv_id, "dados.csv", csv),
                {"id": sheet_id, "name": "Estações", "mimeType": SHEET_MIME, **native},
                {"id": doc_id, "name": "Relatório", "mimeType": DOC_MIME, **native},
                blob(f"dots-{tag}", "..", b"escape"),
                blob(f"bell-{tag}", "a\x07b.csv", b"bell"),
            ]
        }
    )
    folder = ok({"id": root, "name": "capturas", "mimeType": FOLDER_MIME, "trashed": False})
    http = fake_drive(
        [
            folder,
            listing,
            media(csv),
            ({"status": "200", "content-length": str(len(xlsx))}, xlsx),
            too_large(),
        ]
    )

    summary = run(capture(s, root, workers=1))

    assert paths(http) == [
        f"/drive/v3/files/{root}",
        "/drive/v3/files",
        f"/drive/v3/files/{csv_id}",
        f"/drive/v3/files/{sheet_id}/export",
        f"/drive/v3/files/{doc_id}/export",
    ]
    assert sorted(list_keys(stack, RECEPTION, s.keys)) == [s.key("Estações.xlsx"), s.key("dados.csv")]
    rows = {r["object_key"]: r for r in reception_rows(stack, s.keys)}
    sheet = rows[s.key("Estações.xlsx")]
    assert (sheet["source_kind"], sheet["source_ref"], sheet["source_revision"]) == (
        "drive",
        sheet_id,
        native["modifiedTime"],
    )
    assert sheet["sha256"] == sha(xlsx)
    assert (rows[s.key("dados.csv")]["source_ref"], rows[s.key("dados.csv")]["sha256"]) == (csv_id, sha(csv))
    counters = summary["counters"]
    assert (counters["new"], counters["rejected"], counters["failed"]) == (2, 3, 0)
    problems = problems_of(stack, summary)
    doc = problems[s.key("Relatório.pdf")]
    assert doc["kind"] == "rejected"
    assert "exportSizeLimitExceeded" in doc["reason"]
    assert "10 MB" in doc["reason"]
    assert "'..'" in problems[".."]["reason"]
    assert "control characters" in problems["a\x07b.csv"]["reason"]

    # Second run: the CSV (known sha256) is not downloaded, the Sheet (known revision) not exported.
    before = snapshot(stack)
    http = fake_drive([folder, listing, too_large()])
    again = run(capture(s, root, workers=1, project_prefix=None))
    assert paths(http) == [f"/drive/v3/files/{root}", "/drive/v3/files", f"/drive/v3/files/{doc_id}/export"]
    assert snapshot(stack) == before
    assert (again["counters"]["new"], again["counters"]["duplicate"]) == (0, 2)
