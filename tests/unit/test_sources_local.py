"""LocalFolderSource against real files in a temporary folder (no mocks: the file system is the boundary)."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import pytest

from trilha.domain.digest import Digest
from trilha.exceptions import SourceError
from trilha.hooks import sources
from trilha.hooks.sources import CaptureSource, LocalFolderSource, SourceFile

INMET_NAME = "INMET_SE_SP_A701_SAO PAULO - MIRANTE_01-01-2024_A_31-12-2024.CSV"

FILES: dict[str, bytes] = {
    "b.csv": b"x;y\n1;2\n",
    "a.csv": b"a;b\n",
    INMET_NAME: "REGIAO:;SE\nUF:;SP\nESTACAO:;SAO PAULO - MIRANTE\n".encode("latin-1"),
    "Ação/relatório março.csv": "município;chuva\nSão Paulo;1,2\n".encode(),
    "sub/z.txt": b"zzz",
    "sub/deeper/y.bin": bytes(range(256)) * 3,
    # Tool and OS metadata: never listed.
    ".DS_Store": b"\x00\x00\x00\x01Bud1",
    ".git/config": b"[core]\n",
    "sub/.hidden.csv": b"secret;1\n",
}

VISIBLE = sorted(name for name in FILES if not any(part.startswith(".") for part in name.split("/")))

# Depth-first, entries sorted by name (code point) within each folder.
LISTING_ORDER = [
    "Ação/relatório março.csv",
    INMET_NAME,
    "a.csv",
    "b.csv",
    "sub/deeper/y.bin",
    "sub/z.txt",
]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    base = tmp_path / "landing"
    for rel, content in FILES.items():
        path = base / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return base


def listed(source: LocalFolderSource, prefix: str = "") -> list[SourceFile]:
    return list(source.list_files(prefix))


def test_lists_recursively_in_a_stable_sorted_order_without_hidden_entries(root: Path) -> None:
    paths = [f.relative_path for f in listed(LocalFolderSource(root))]

    assert paths == LISTING_ORDER
    assert sorted(paths) == VISIBLE
    assert paths == [f.relative_path for f in listed(LocalFolderSource(root))]


def test_records_carry_checksums_from_hashlib_and_local_metadata(root: Path) -> None:
    by_path = {f.relative_path: f for f in listed(LocalFolderSource(root))}

    for rel in VISIBLE:
        record = by_path[rel]
        content = FILES[rel]
        path = root / rel
        stat = path.stat()
        assert record.source_kind == "local"
        assert record.source_id == str(path.resolve())
        assert Path(record.source_id).is_absolute()
        assert record.size == len(content)
        assert record.sha256 == hashlib.sha256(content).hexdigest()
        assert record.md5 == hashlib.md5(content).hexdigest()
        assert record.revision == f"{stat.st_mtime_ns}-{stat.st_size}"
        assert record.export_mime_type is None
        assert record.drive_id is None
        assert record.modified_time is not None
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", record.modified_time)
    assert by_path[INMET_NAME].mime_type == "text/csv"


def test_checksums_come_from_one_pass_per_file(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = sources.digest_file

    def counting(path: str | Path, chunk_size: int = sources.CHUNK_SIZE) -> Digest:
        calls.append(str(path))
        return real(path, chunk_size)

    monkeypatch.setattr(sources, "digest_file", counting)
    records = listed(LocalFolderSource(root))

    assert sorted(calls) == sorted(f.source_id for f in records)


def test_without_checksums_nothing_is_read(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("digest_file must not be called")

    monkeypatch.setattr(sources, "digest_file", fail)
    records = listed(LocalFolderSource(root, compute_checksums=False))

    assert [r.relative_path for r in records] == LISTING_ORDER
    assert {(r.md5, r.sha256) for r in records} == {(None, None)}
    assert all(r.size == len(FILES[r.relative_path]) for r in records)


def test_modified_time_is_rfc3339_utc_with_milliseconds(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_bytes(b"1")
    # 2024-01-31T12:00:00.123456789Z
    os.utime(path, ns=(1_706_702_400_123_456_789, 1_706_702_400_123_456_789))

    (record,) = listed(LocalFolderSource(tmp_path))

    assert record.modified_time == "2024-01-31T12:00:00.123Z"
    assert record.revision == "1706702400123456789-1"


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        ("sub/", ["sub/deeper/y.bin", "sub/z.txt"]),
        ("sub/d", ["sub/deeper/y.bin"]),
        ("sub", ["sub/deeper/y.bin", "sub/z.txt"]),
        ("b", ["b.csv"]),
        ("Ação/rel", ["Ação/relatório março.csv"]),
        ("nothing-here", []),
    ],
)
def test_prefix_limits_by_relative_path(root: Path, prefix: str, expected: list[str]) -> None:
    assert [f.relative_path for f in listed(LocalFolderSource(root), prefix)] == expected


def test_prefix_does_not_list_folders_that_cannot_match(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    scanned: list[str] = []
    real_scandir = os.scandir

    def spy(path: str | os.PathLike[str]) -> object:
        scanned.append(os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(sources.os, "scandir", spy)
    list(LocalFolderSource(root).list_files("sub/deeper/"))

    resolved = root.resolve()
    assert scanned == [str(resolved), str(resolved / "sub"), str(resolved / "sub" / "deeper")]


def test_unicode_and_space_names_are_kept_verbatim_and_readable(root: Path) -> None:
    source = LocalFolderSource(root)
    by_path = {f.relative_path: f for f in listed(source)}

    for rel in (INMET_NAME, "Ação/relatório março.csv"):
        assert b"".join(source.iter_chunks(by_path[rel])) == FILES[rel]


def test_iter_chunks_streams_bounded_chunks_equal_to_the_file(root: Path) -> None:
    source = LocalFolderSource(root)
    record = next(f for f in listed(source) if f.relative_path == "sub/deeper/y.bin")

    chunks = list(source.iter_chunks(record, chunk_size=100))

    assert [len(c) for c in chunks] == [100] * 7 + [68]
    assert b"".join(chunks) == FILES["sub/deeper/y.bin"]


def test_iter_chunks_rejects_a_non_positive_chunk_size(root: Path) -> None:
    source = LocalFolderSource(root)
    record = listed(source)[0]
    with pytest.raises(ValueError, match="chunk_size"):
        list(source.iter_chunks(record, chunk_size=0))


def test_file_vanished_between_listing_and_reading_raises_source_error(root: Path) -> None:
    source = LocalFolderSource(root)
    record = next(f for f in listed(source) if f.relative_path == "b.csv")
    (root / "b.csv").unlink()

    with pytest.raises(SourceError, match=r"'b\.csv'.*vanished since it was listed"):
        list(source.iter_chunks(record))


def test_file_changed_since_listing_raises_source_error(root: Path) -> None:
    source = LocalFolderSource(root)
    record = next(f for f in listed(source) if f.relative_path == "a.csv")
    with open(root / "a.csv", "ab") as fh:
        fh.write(b"1;2\n")

    with pytest.raises(SourceError, match=r"'a\.csv'.*changed since it was listed"):
        list(source.iter_chunks(record))


def test_file_listed_from_elsewhere_is_refused(root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.csv"
    outside.write_bytes(b"x")
    source = LocalFolderSource(root)
    forged = SourceFile("local", str(outside), "outside.csv", 1, None, None, None, None, None)

    with pytest.raises(SourceError, match="outside the capture root"):
        list(source.iter_chunks(forged))


def test_missing_root_raises_a_source_error_that_says_what_to_fix(tmp_path: Path) -> None:
    missing = tmp_path / "not-mounted"
    with pytest.raises(SourceError) as info:
        LocalFolderSource(missing)
    message = str(info.value)
    assert str(missing) in message
    assert "does not exist" in message
    assert "mount" in message


def test_root_that_is_a_file_raises_a_source_error(tmp_path: Path) -> None:
    a_file = tmp_path / "data.csv"
    a_file.write_bytes(b"1")
    with pytest.raises(SourceError, match="expected a directory, got a file"):
        LocalFolderSource(a_file)


def test_hidden_root_itself_is_allowed(tmp_path: Path) -> None:
    base = tmp_path / ".trilha" / "landing"
    base.mkdir(parents=True)
    (base / "x.csv").write_bytes(b"1")

    assert [f.relative_path for f in listed(LocalFolderSource(base))] == ["x.csv"]


def test_symlinks_are_followed_only_to_files_inside_the_root(root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "secret.csv").write_bytes(b"do not capture")
    (root / "link-inside.csv").symlink_to(root / "a.csv")
    (root / "link-outside.csv").symlink_to(outside / "secret.csv")
    (root / "link-dir").symlink_to(root / "sub", target_is_directory=True)
    (root / "link-outside-dir").symlink_to(outside, target_is_directory=True)
    (root / "link-broken.csv").symlink_to(root / "gone.csv")

    records = {f.relative_path: f for f in listed(LocalFolderSource(root))}

    captured = sorted(r for r, f in records.items() if f.problem is None)
    assert captured == sorted([*VISIBLE, "link-inside.csv"])
    assert records["link-inside.csv"].sha256 == hashlib.sha256(FILES["a.csv"]).hexdigest()
    # What is not followed is offered as a refusal with its reason (recorded in the audit), never
    # read; folder links are skipped (the folder is not the link's to offer).
    refused = {r: f.problem for r, f in records.items() if f.problem is not None}
    assert refused == {
        "link-outside.csv": "symbolic link to a file outside the capture folder: not followed",
        "link-broken.csv": "broken symbolic link: its target does not exist",
    }
    assert records["link-outside.csv"].size is None


def test_a_fifo_is_refused_without_being_opened(root: Path) -> None:
    """Opening a FIFO would block the capture until a writer came; it is refused from its listing."""
    import os

    os.mkfifo(root / "pipe.csv")
    records = {f.relative_path: f for f in listed(LocalFolderSource(root))}
    assert records["pipe.csv"].problem == "not a regular file (a FIFO, socket or device)"


def test_describe_and_protocol(root: Path) -> None:
    source = LocalFolderSource(root)
    assert source.describe() == f"local folder {root.resolve()}"
    assert source.kind == "local"
    assert isinstance(source, CaptureSource)


def test_checksums_added_later_match_hashlib_and_refuse_a_file_changed_since_listing(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_bytes(b"estacao;chuva\n")
    source = LocalFolderSource(tmp_path, compute_checksums=False)
    (record,) = listed(source)
    hashed = source.with_checksums(record)
    assert (hashed.sha256, hashed.md5) == (
        hashlib.sha256(b"estacao;chuva\n").hexdigest(),
        hashlib.md5(b"estacao;chuva\n").hexdigest(),
    )
    assert hashed.revision == record.revision

    path.write_bytes(b"estacao;chuva;vento\n")  # rewritten after the listing
    changed = source.with_checksums(record)
    assert (changed.sha256, changed.md5) == (None, None)
    assert changed.size == len(b"estacao;chuva;vento\n")
    assert changed.revision != record.revision
    path.unlink()
    with pytest.raises(FileNotFoundError):
        source.with_checksums(record)
