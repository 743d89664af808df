"""TrilhaDriveHook against a fake Google Drive at the HTTP boundary.

There is no Drive endpoint here, so every test serves realistic Drive v3 JSON (and media bytes)
through :class:`googleapiclient.http.HttpMockSequence`. The real ``drive v3`` client is built from the
discovery document bundled with google-api-python-client, and injected as the hook's client by
replacing ``get_conn`` (the client boundary); everything between the hook and the HTTP layer is real.
The tests then assert on the requests the fake server received: paths, query parameters and headers.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError
from googleapiclient.http import HttpMockSequence

from trilha.exceptions import ExportTooLargeError, IntegrityError, InvalidKeyError, SourceError
from trilha.hooks.drive import (
    EXPORT_FORMATS,
    FOLDER_MIME,
    LIST_FIELDS,
    XLSX_MIME,
    DriveConnectionError,
    TrilhaDriveHook,
)
from trilha.hooks.sources import CaptureSource, SourceFile

ROOT = "1RootFolderAbC"
SHEET_MIME = "application/vnd.google-apps.spreadsheet"


class RecordingHttp(HttpMockSequence):
    """HttpMockSequence that also keeps the bytes of streamed request bodies (resumable uploads)."""

    def __init__(self, iterable: list[tuple[dict[str, str], Any]]) -> None:
        super().__init__(iterable)
        self.bodies: list[bytes | None] = []

    def request(self, uri: str, method: str = "GET", body: Any = None, headers: Any = None, **kw: Any) -> Any:
        if hasattr(body, "read"):
            body = body.read()
        self.bodies.append(body if isinstance(body, bytes | None) else str(body).encode())
        return super().request(uri, method, body, headers, **kw)


def ok(payload: dict[str, Any]) -> tuple[dict[str, str], str]:
    return {"status": "200", "content-type": "application/json; charset=UTF-8"}, json.dumps(payload)


def error(status: int, reason: str, message: str) -> tuple[dict[str, str], str]:
    body = {
        "error": {
            "code": status,
            "message": message,
            "errors": [{"message": message, "domain": "global", "reason": reason}],
        }
    }
    return {"status": str(status), "content-type": "application/json; charset=UTF-8"}, json.dumps(body)


def folder_meta(folder_id: str = ROOT, drive_id: str | None = None) -> tuple[dict[str, str], str]:
    meta: dict[str, Any] = {"id": folder_id, "name": "capturas", "mimeType": FOLDER_MIME, "trashed": False}
    if drive_id:
        meta["driveId"] = drive_id
    return ok(meta)


def blob(file_id: str, name: str, content: bytes, **extra: Any) -> dict[str, Any]:
    item = {
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
    item.update(extra)
    return item


def page(*files: dict[str, Any], next_token: str | None = None) -> tuple[dict[str, str], str]:
    payload: dict[str, Any] = {"files": list(files)}
    if next_token:
        payload["nextPageToken"] = next_token
    return ok(payload)


def params(uri: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(uri).query).items()}


def path_of(uri: str) -> str:
    return urlsplit(uri).path


@pytest.fixture
def google_conn(monkeypatch: pytest.MonkeyPatch) -> None:
    # A real Airflow connection, defined the way Trilha's local runs define it (no key: never used).
    monkeypatch.setenv(
        "AIRFLOW_CONN_TRILHA_GOOGLE",
        json.dumps({"conn_type": "google_cloud_platform", "extra": {"num_retries": 0}}),
    )


def make_hook(
    monkeypatch: pytest.MonkeyPatch,
    responses: list[tuple[dict[str, str], Any]],
    folder_id: str | None = ROOT,
    drive_id: str | None = None,
) -> tuple[TrilhaDriveHook, RecordingHttp]:
    http = RecordingHttp(responses)
    service = build("drive", "v3", http=http, static_discovery=True)
    hook = TrilhaDriveHook(folder_id=folder_id, drive_id=drive_id)
    monkeypatch.setattr(hook, "get_conn", lambda: service)
    return hook, http


pytestmark = pytest.mark.usefixtures("google_conn")


# ---------------------------------------------------------------------------- listing


def test_lists_across_pages_and_into_sub_folders(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake Drive (HttpMockSequence): a root folder of two pages (nextPageToken) holding a sub-folder."""
    a, b, c = b"a;b\n1;2\n", b"x\n", b"estacao;chuva\nA701;0,2\n"
    hook, http = make_hook(
        monkeypatch,
        [
            folder_meta(),
            page(
                blob("fa", "a.csv", a),
                {"id": "fsub", "name": "2024", "mimeType": FOLDER_MIME},
                next_token="tok-2",
            ),
            page(blob("fb", "b.csv", b)),
            page(blob("fc", "INMET_SE_SP_A701_SAO PAULO - MIRANTE_01-01-2024_A_31-12-2024.CSV", c)),
        ],
    )

    files = list(hook.list_files())

    assert [f.relative_path for f in files] == [
        "a.csv",
        "b.csv",
        "2024/INMET_SE_SP_A701_SAO PAULO - MIRANTE_01-01-2024_A_31-12-2024.CSV",
    ]
    first = files[0]
    assert first == SourceFile(
        source_kind="drive",
        source_id="fa",
        relative_path="a.csv",
        size=len(a),
        md5=hashlib.md5(a).hexdigest(),
        sha256=hashlib.sha256(a).hexdigest(),
        mime_type="text/csv",
        modified_time="2024-03-01T10:20:30.000Z",
        revision="rev-fa",
        export_mime_type=None,
        drive_id=None,
    )
    uris = [uri for uri, *_ in http.request_sequence]
    assert path_of(uris[0]) == f"/drive/v3/files/{ROOT}"
    assert params(uris[0])["supportsAllDrives"] == "true"
    listing = [params(uri) for uri in uris[1:]]
    assert [p["q"] for p in listing] == [
        f"'{ROOT}' in parents and trashed = false",
        f"'{ROOT}' in parents and trashed = false",
        "'fsub' in parents and trashed = false",
    ]
    assert "pageToken" not in listing[0]
    assert listing[1]["pageToken"] == "tok-2"
    for p in listing:
        assert p["fields"] == LIST_FIELDS
        assert p["supportsAllDrives"] == "true"
        assert p["includeItemsFromAllDrives"] == "true"
        assert "corpora" not in p
        assert "driveId" not in p


def test_folder_id_with_quote_and_backslash_is_escaped_in_q(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake Drive (HttpMockSequence): a folder id carrying ' and \\ must not end the q= literal early."""
    odd = "abc'd\\e"
    hook, http = make_hook(monkeypatch, [folder_meta(odd), page()], folder_id=odd)

    assert list(hook.list_files()) == []

    q = params(http.request_sequence[1][0])["q"]
    assert q == "'abc\\'d\\\\e' in parents and trashed = false"


def test_shared_drive_folder_lists_with_corpora_drive(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake Drive (HttpMockSequence): the folder lives in shared drive 0AShared, found from its metadata."""
    content = b"1;2\n"
    hook, http = make_hook(
        monkeypatch,
        [folder_meta(drive_id="0AShared"), page(blob("fs", "shared.csv", content, driveId="0AShared"))],
    )

    (item,) = hook.list_files()

    assert item.drive_id == "0AShared"
    assert item.sha256 == hashlib.sha256(content).hexdigest()
    listing = params(http.request_sequence[1][0])
    assert listing["corpora"] == "drive"
    assert listing["driveId"] == "0AShared"
    assert listing["supportsAllDrives"] == "true"
    assert listing["includeItemsFromAllDrives"] == "true"


def test_given_drive_id_is_used_and_a_mismatch_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake Drive (HttpMockSequence): drive_id given by the user; then a folder from another shared drive."""
    hook, http = make_hook(monkeypatch, [folder_meta(), page()], drive_id="0AGiven")
    assert list(hook.list_files()) == []
    assert params(http.request_sequence[1][0])["driveId"] == "0AGiven"
    assert hook.describe() == f"drive folder {ROOT} in shared drive 0AGiven"

    hook, _ = make_hook(monkeypatch, [folder_meta(drive_id="0AOther")], drive_id="0AGiven")
    with pytest.raises(
        SourceError, match="expected it in shared drive '0AGiven', got shared drive '0AOther'"
    ):
        list(hook.list_files())


def test_file_without_md5_is_listed_without_checksums(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake Drive (HttpMockSequence): an item whose metadata has no md5Checksum nor sha256Checksum."""
    item = blob("fn", "sem-checksum.bin", b"??")
    del item["md5Checksum"], item["sha256Checksum"]
    hook, _ = make_hook(monkeypatch, [folder_meta(), page(item)])

    (listed,) = hook.list_files()

    assert (listed.relative_path, listed.md5, listed.sha256, listed.size) == (
        "sem-checksum.bin",
        None,
        None,
        2,
    )


def test_native_documents_are_exported_and_other_items_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake Drive (HttpMockSequence): Sheet, Doc, Slides, Form, shortcut and a trashed file in one folder."""
    native = {"modifiedTime": "2024-05-05T05:05:05.000Z", "trashed": False}
    hook, _ = make_hook(
        monkeypatch,
        [
            folder_meta(),
            page(
                {"id": "s1", "name": "Estações", "mimeType": SHEET_MIME, **native},
                {"id": "s2", "name": "já.xlsx", "mimeType": SHEET_MIME, **native},
                {"id": "d1", "name": "Notas", "mimeType": "application/vnd.google-apps.document", **native},
                {
                    "id": "p1",
                    "name": "Deck",
                    "mimeType": "application/vnd.google-apps.presentation",
                    **native,
                },
                {"id": "f1", "name": "Form", "mimeType": "application/vnd.google-apps.form", **native},
                {"id": "k1", "name": "atalho", "mimeType": "application/vnd.google-apps.shortcut", **native},
                blob("t1", "lixo.csv", b"x", trashed=True),
            ),
        ],
    )

    files = {f.relative_path: f for f in hook.list_files()}

    assert sorted(files) == ["Deck.pdf", "Estações.xlsx", "Notas.pdf", "já.xlsx"]
    sheet = files["Estações.xlsx"]
    assert sheet.export_mime_type == XLSX_MIME
    assert sheet.mime_type == SHEET_MIME
    assert (sheet.size, sheet.md5, sheet.sha256) == (None, None, None)
    assert sheet.revision == "2024-05-05T05:05:05.000Z"
    assert files["Notas.pdf"].export_mime_type == "application/pdf"
    assert files["Deck.pdf"].export_mime_type == "application/pdf"
    assert EXPORT_FORMATS[SHEET_MIME] == (XLSX_MIME, ".xlsx")


def test_duplicate_names_and_slashes_never_share_a_relative_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake Drive (HttpMockSequence): two files named dados.csv in one folder, and a name with a '/'."""
    hook, _ = make_hook(
        monkeypatch,
        [
            folder_meta(),
            page(
                blob("first", "dados.csv", b"1"),
                blob("second", "dados.csv", b"2"),
                blob("slash", "relatório 01/2024.csv", b"3"),
            ),
        ],
    )

    assert [f.relative_path for f in hook.list_files()] == [
        "dados.csv",
        "dados (second).csv",
        "relatório 01_2024.csv",
    ]


def test_prefix_skips_folders_that_cannot_match(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake Drive (HttpMockSequence): only the root and the matching sub-folder may be listed."""
    hook, http = make_hook(
        monkeypatch,
        [
            folder_meta(),
            page(
                blob("top", "2024.csv", b"1"),
                {"id": "f2023", "name": "2023", "mimeType": FOLDER_MIME},
                {"id": "f2024", "name": "2024", "mimeType": FOLDER_MIME},
            ),
            page(blob("in", "jan.csv", b"2")),
        ],
    )

    assert [f.relative_path for f in hook.list_files("2024/")] == ["2024/jan.csv"]
    assert [params(uri)["q"] for uri, *_ in http.request_sequence[1:]] == [
        f"'{ROOT}' in parents and trashed = false",
        "'f2024' in parents and trashed = false",
    ]


def test_missing_or_wrong_folder_gives_a_clear_source_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake Drive (HttpMockSequence): the folder id is unknown (404), then it names a file, not a folder."""
    hook, _ = make_hook(monkeypatch, [error(404, "notFound", f"File not found: {ROOT}.")])
    with pytest.raises(
        SourceError, match=f"Drive folder '{ROOT}': not found.*shared with the service account"
    ):
        list(hook.list_files())

    hook, _ = make_hook(monkeypatch, [ok({"id": ROOT, "name": "x.csv", "mimeType": "text/csv"})])
    with pytest.raises(SourceError, match="expected a folder, got 'text/csv'"):
        list(hook.list_files())

    hook = TrilhaDriveHook()
    with pytest.raises(SourceError, match="no folder_id"):
        list(hook.list_files())


# ---------------------------------------------------------------------------- content


def drive_file(file_id: str = "f1", name: str = "a.csv", export: str | None = None) -> SourceFile:
    return SourceFile("drive", file_id, name, None, None, None, None, None, None, export_mime_type=export)


def test_chunked_download_yields_the_served_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake Drive (HttpMockSequence): a 10-byte file served as three ranged 206 responses."""
    body = b"0123456789"
    ranged = [
        ({"status": "206", "content-range": f"bytes {start}-{end}/{len(body)}"}, body[start : end + 1])
        for start, end in ((0, 3), (4, 7), (8, 9))
    ]
    hook, http = make_hook(monkeypatch, ranged)

    chunks = list(hook.iter_chunks(drive_file("fbin"), chunk_size=4))

    assert chunks == [b"0123", b"4567", b"89"]
    assert b"".join(chunks) == body
    uris = [uri for uri, *_ in http.request_sequence]
    assert {path_of(u) for u in uris} == {"/drive/v3/files/fbin"}
    assert params(uris[0]) == {"alt": "media", "supportsAllDrives": "true"}
    assert [headers["range"] for *_, headers in http.request_sequence] == [
        "bytes=0-3",
        "bytes=4-7",
        "bytes=8-11",
    ]


def test_empty_file_downloads_as_no_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake Drive (HttpMockSequence): a zero-byte file answers the ranged request with 416 and size 0."""
    hook, http = make_hook(monkeypatch, [({"status": "416", "content-range": "bytes */0"}, b"")])

    assert list(hook.iter_chunks(drive_file("empty", "vazio.csv"))) == []
    assert len(http.request_sequence) == 1


def test_sheet_is_exported_with_the_chosen_mime_type(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake Drive (HttpMockSequence): the export endpoint answers 200 with the whole XLSX at once."""
    xlsx = b"PK\x03\x04" + b"x" * 10
    hook, http = make_hook(monkeypatch, [({"status": "200", "content-length": str(len(xlsx))}, xlsx)])

    chunks = list(hook.iter_chunks(drive_file("s1", "Estações.xlsx", XLSX_MIME), chunk_size=4))

    assert b"".join(chunks) == xlsx
    assert max(len(c) for c in chunks) == 4
    (uri, method, *_), *_ = http.request_sequence
    assert method == "GET"
    assert path_of(uri) == "/drive/v3/files/s1/export"
    assert params(uri)["mimeType"] == XLSX_MIME


def test_export_over_the_size_limit_raises_export_too_large(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake Drive (HttpMockSequence): Drive answers 403 exportSizeLimitExceeded to the export."""
    hook, _ = make_hook(
        monkeypatch, [error(403, "exportSizeLimitExceeded", "This file is too large to be exported.")]
    )

    with pytest.raises(ExportTooLargeError) as info:
        list(hook.iter_chunks(drive_file("big", "Planilha enorme.xlsx", XLSX_MIME)))

    message = str(info.value)
    assert "'Planilha enorme.xlsx' (big)" in message
    assert "10 MB" in message
    assert isinstance(info.value, SourceError)


@pytest.mark.parametrize("reason", ["fileNotDownloadable", "cannotDownloadFile"])
def test_undownloadable_file_raises_source_error_naming_it(
    monkeypatch: pytest.MonkeyPatch, reason: str
) -> None:
    """Fake Drive (HttpMockSequence): Drive answers 403 with a reason no retry can fix."""
    hook, _ = make_hook(
        monkeypatch, [error(403, reason, "Only files with binary content can be downloaded.")]
    )

    with pytest.raises(
        SourceError, match=rf"'dados\.csv' \(f9\): Drive refuses to download it \({reason}"
    ) as info:
        list(hook.iter_chunks(drive_file("f9", "dados.csv")))
    assert not isinstance(info.value, ExportTooLargeError)


def test_file_deleted_after_listing_raises_vanished(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake Drive (HttpMockSequence): the media request answers 404 notFound."""
    hook, _ = make_hook(monkeypatch, [error(404, "notFound", "File not found: f7.")])

    with pytest.raises(SourceError, match=r"'a\.csv' \(f7\): vanished since it was listed"):
        list(hook.iter_chunks(drive_file("f7")))


def test_other_http_errors_propagate_unchanged(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake Drive (HttpMockSequence): a 401 is no per-file problem, so it stays an HttpError."""
    hook, _ = make_hook(monkeypatch, [error(401, "authError", "Invalid Credentials")])

    with pytest.raises(HttpError):
        list(hook.iter_chunks(drive_file()))


# ---------------------------------------------------------------------------- connection and protocol


def test_missing_connection_names_the_conn_id_and_what_to_set(monkeypatch: pytest.MonkeyPatch) -> None:
    """No HTTP at all: the Airflow connection lookup fails first."""
    monkeypatch.delenv("AIRFLOW_CONN_TRILHA_GOOGLE")

    with pytest.raises(DriveConnectionError) as info:
        TrilhaDriveHook(folder_id=ROOT)

    message = str(info.value)
    assert "'trilha_google'" in message
    assert "AIRFLOW_CONN_TRILHA_GOOGLE" in message
    assert isinstance(info.value, SourceError)


def test_hook_is_a_capture_source_with_provider_metadata() -> None:
    """No HTTP: the client is not built by the constructor (get_conn is never called here)."""
    hook = TrilhaDriveHook(folder_id=ROOT)

    assert isinstance(hook, CaptureSource)
    assert hook.kind == "drive"
    assert hook.describe() == f"drive folder {ROOT}"
    assert (hook.conn_name_attr, hook.default_conn_name, hook.conn_type) == (
        "gcp_conn_id",
        "trilha_google",
        "google_cloud_platform",
    )
    assert hook._conn is None


# ---------------------------------------------------------------------------- upload


def resumable_start(location: str) -> tuple[dict[str, str], str]:
    return {"status": "200", "location": location}, ""


def test_upload_creates_missing_folders_and_verifies_md5(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Fake Drive (HttpMockSequence): folder a/ is missing (created), a/b/ exists, then a resumable upload."""
    content = b"PAR1" + bytes(range(200)) + b"PAR1"
    local = tmp_path / "part-0.parquet"
    local.write_bytes(content)
    md5 = hashlib.md5(content).hexdigest()
    hook, http = make_hook(
        monkeypatch,
        [
            folder_meta("dest"),
            page(),  # a/ under dest: missing
            ok({"id": "fa"}),  # folder a created
            page({"id": "fb", "name": "b", "mimeType": FOLDER_MIME}),  # b/ under a/: exists
            page(),  # no file named part-0.parquet yet
            resumable_start(
                "https://www.googleapis.com/upload/drive/v3/files?uploadType=resumable&upload_id=U1"
            ),
            ok({"id": "new-file", "md5Checksum": md5, "size": str(len(content))}),
        ],
        folder_id=None,
    )

    assert hook.upload_files([(local, "a/b/part-0.parquet")], "dest") == ["new-file"]

    seq = http.request_sequence
    assert params(seq[1][0])[
        "q"
    ] == "'dest' in parents and trashed = false and name = 'a' and mimeType = " + (f"'{FOLDER_MIME}'")
    assert seq[2][1] == "POST"
    assert json.loads(seq[2][2]) == {"name": "a", "mimeType": FOLDER_MIME, "parents": ["dest"]}
    assert params(seq[3][0])["q"].startswith("'fa' in parents")
    assert params(seq[4][0])["q"] == "'fb' in parents and trashed = false and name = 'part-0.parquet'"
    start_uri, start_method, start_body, start_headers = seq[5]
    assert (start_method, path_of(start_uri)) == ("POST", "/upload/drive/v3/files")
    assert params(start_uri)["uploadType"] == "resumable"
    assert json.loads(start_body) == {"name": "part-0.parquet", "parents": ["fb"]}
    assert start_headers["X-Upload-Content-Length"] == str(len(content))
    assert seq[6][1] == "PUT"
    assert http.bodies[6] == content


def test_upload_twice_keeps_the_existing_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Fake Drive (HttpMockSequence): the same name with the same md5 already exists: no bytes are sent."""
    content = b"id,split\n1,train\n"
    local = tmp_path / "manifest.csv"
    local.write_bytes(content)
    existing = blob("old", "manifest.csv", content)
    hook, http = make_hook(monkeypatch, [folder_meta("dest"), page(existing)], folder_id=None)

    assert hook.upload_files([(local, "manifest.csv")], "dest") == ["old"]
    assert len(http.request_sequence) == 2


def test_upload_with_new_content_becomes_a_new_revision(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Fake Drive (HttpMockSequence): same name, other md5: the file is updated (PATCH), not duplicated."""
    content = b"new bytes"
    local = tmp_path / "x.csv"
    local.write_bytes(content)
    hook, http = make_hook(
        monkeypatch,
        [
            folder_meta("dest"),
            page(blob("old", "x.csv", b"old bytes")),
            resumable_start("https://www.googleapis.com/upload/drive/v3/files/old?upload_id=U2"),
            ok({"id": "old", "md5Checksum": hashlib.md5(content).hexdigest()}),
        ],
        folder_id=None,
    )

    assert hook.upload_files([(local, "x.csv")], "dest") == ["old"]
    start_uri, start_method, *_ = http.request_sequence[2]
    assert (start_method, path_of(start_uri)) == ("PATCH", "/upload/drive/v3/files/old")
    assert http.bodies[3] == content


def test_upload_md5_mismatch_raises_integrity_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Fake Drive (HttpMockSequence): Drive reports an md5 that is not the local file's."""
    local = tmp_path / "x.csv"
    local.write_bytes(b"abc")
    hook, _ = make_hook(
        monkeypatch,
        [
            folder_meta("dest"),
            page(),
            resumable_start("https://www.googleapis.com/upload/drive/v3/files?upload_id=U3"),
            ok({"id": "bad", "md5Checksum": "0" * 32}),
        ],
        folder_id=None,
    )

    with pytest.raises(IntegrityError, match=f"expected md5 {hashlib.md5(b'abc').hexdigest()}"):
        hook.upload_files([(local, "x.csv")], "dest")


def test_upload_refuses_unsafe_remote_paths_before_any_request(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Fake Drive (HttpMockSequence) with no responses: any request would fail the test."""
    local = tmp_path / "x.csv"
    local.write_bytes(b"1")
    hook, http = make_hook(monkeypatch, [], folder_id=None)

    with pytest.raises(InvalidKeyError):
        hook.upload_files([(local, "../escape.csv")], "dest")
    assert http.request_sequence == []
