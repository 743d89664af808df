"""Hostile inputs as a regression suite (issue 13): one folder of bad files, captured, registered,
promoted and staged together with good ones, against the real stack.

Each case asserts its exact outcome (staged, quarantined with a reason, rejected with a reason,
recognised as a duplicate, or not captured with the reason in the audit), and the good files of the
same run are staged whole, so a bad file can never take the batch down with it.
"""

from __future__ import annotations

import io
import os
import uuid
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests.integration.ingest_support import Scope, ingest, new_scope, promote, query, run
from tests.integration.process_support import NAME_2019, data_lines, sample, staged_by_name, staging

pytestmark = [pytest.mark.integration, pytest.mark.slow]

GOOD_CSV = b"station;value\nA;1.5\nB;2.5\n"
LONG_NAME = "n" * 251 + ".csv"  # 255 bytes: the most a Linux file name may have
SHELL_NAME = "$(touch pwned); `id` | & > x.csv"
ACCENTED = "São Paulo ü✓.csv"
LATIN1_NAME = b"caf\xe9.csv"


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buf.getvalue()


def truncated(inmet: bytes) -> bytes:
    """The first half of the year, then a row cut after its fourth field (a download that stopped)."""
    cut = inmet.rindex(b"\n", 0, len(inmet) // 2) + 1
    return inmet[:cut] + b"2019/07/02;0300 UTC;1,5;2"


TRUNCATED_ROWS = data_lines(truncated(sample(NAME_2019))) - 1  # all but the cut row, which is quarantined
TRUNCATED_LINE = truncated(sample(NAME_2019)).count(b"\n") + 1


def hostile_files() -> dict[str, bytes]:
    # Unique bytes per run: capture skips content the lake holds anywhere, and other tests of the
    # session load the same sample.
    inmet = sample(NAME_2019).replace(b"CURITIBA", f"CURITIBA {uuid.uuid4().hex[:8]}".encode(), 1)
    return {
        NAME_2019: inmet,
        "copia-do-2019.csv": inmet,  # the same bytes under another name
        "crlf.csv": inmet.replace(b"\n", b"\r\n"),
        "empty.csv": b"",
        "whitespace.csv": b"   \n\t\n  \n",
        "header-only.csv": b"station;value\n",
        "truncated.csv": truncated(inmet),
        "utf16.csv": GOOD_CSV.decode().replace("A;", "U16;").encode("utf-16"),
        "bom.csv": b"\xef\xbb\xbf" + GOOD_CSV.replace(b"A;", b"BOM;"),
        "nul.csv": b"station;value\nN;1\x00\x00;2\nM;3\n",
        "giant-line.csv": b"x;" * (30 * 1024 * 1024),  # one 60 MB line, no newline
        "wide.csv": (
            ";".join(f"c{i}" for i in range(10_000)) + "\n" + ";".join("1" * 10_000) + "\n"
        ).encode(),
        "blank-lines.csv": b"station;value\n" + b"\n" * 1_000_000 + b"Z;9\n",
        "archive.csv": zip_bytes({"data.csv": GOOD_CSV}),
        "sheet.csv": zip_bytes({"[Content_Types].xml": b"<Types/>", "xl/workbook.xml": b"<workbook/>"}),
        ACCENTED: GOOD_CSV.replace(b"A;", b"SP;"),
        SHELL_NAME: GOOD_CSV.replace(b"A;", b"SH;"),
        LONG_NAME: GOOD_CSV.replace(b"A;", b"LONG;"),
    }


def build_folder(root: Path, outside: Path) -> None:
    for name, data in hostile_files().items():
        (root / name).write_bytes(data)
    with open(os.path.join(os.fsencode(root), LATIN1_NAME), "wb") as handle:
        handle.write(GOOD_CSV.replace(b"A;", b"LATIN;"))
    (outside / "secret.txt").write_bytes(b"root:x:0:0\n")
    (root / "link-out.csv").symlink_to(outside / "secret.txt")
    (root / "link-in.csv").symlink_to(root / "bom.csv")
    os.mkfifo(root / "pipe.csv")


@pytest.fixture(scope="module")
def outcome(stack: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from trilha.operators.capture import CaptureOperator

    s = new_scope("hostil")
    root, outside = tmp_path_factory.mktemp("hostile"), tmp_path_factory.mktemp("outside")
    build_folder(root, outside)
    capture = run(
        CaptureOperator(task_id="capture", source=str(root), project=s.name, project_prefix=s.prefix)
    )
    registered = run(ingest(key_prefix=s.keys))
    promoted = run(promote(s))
    staged = run(staging(s))
    return {
        "scope": s,
        "capture": capture,
        "registered": registered,
        "promoted": promoted,
        "staged": staged,
        "inventory": staged_by_name(stack, s),
        "capture_problems": problems(stack, capture),
    }


def problems(stack: Any, summary: dict[str, Any]) -> dict[str, dict[str, str]]:
    row = query(stack, "SELECT problems FROM meta.audit_log WHERE id = %s", (summary["audit_log_id"],))[0]
    return {Path(p["item"]).name: p for p in row["problems"]}


#: What staging makes of each stored file: status, layout, rows ok, rows quarantined, reason (a part).
STAGED_AS: dict[str, tuple[str, str | None, int, int, str | None]] = {
    NAME_2019: ("staged", "inmet_automatic_2019only", 8760, 0, None),
    "crlf.csv": ("staged", "inmet_automatic_2019only", 8760, 0, None),
    "truncated.csv": (
        "staged",
        "inmet_automatic_2019only",
        TRUNCATED_ROWS,
        1,
        f"line {TRUNCATED_LINE}: expected 20 fields (with the trailing ';'), got 4 "
        "(truncated or malformed line)",
    ),
    "utf16.csv": ("staged", "generic_csv", 2, 0, None),
    "bom.csv": ("staged", "generic_csv", 2, 0, None),
    "blank-lines.csv": ("staged", "generic_csv", 1, 0, None),
    "wide.csv": ("staged", "generic_csv", 1, 0, None),
    ACCENTED: ("staged", "generic_csv", 2, 0, None),
    SHELL_NAME: ("staged", "generic_csv", 2, 0, None),
    LONG_NAME: ("staged", "generic_csv", 2, 0, None),
    "whitespace.csv": (
        "rejected",
        None,
        0,
        0,
        "whitespace.csv: file holds only whitespace (9 bytes); expected data",
    ),
    "header-only.csv": (
        "rejected",
        "generic_csv",
        0,
        0,
        "header-only.csv: no data lines: expected rows after the header (line 1), got none",
    ),
    "nul.csv": ("rejected", None, 0, 0, "nul.csv: binary file: expected delimited text, got NUL bytes"),
    "giant-line.csv": (
        "rejected",
        None,
        0,
        0,
        "giant-line.csv: line 1: expected at most 1048576 bytes per line, got a longer line "
        "(62914560 bytes without a line break)",
    ),
    "archive.csv": (
        "rejected",
        None,
        0,
        0,
        "archive.csv: binary file: expected delimited text, got a ZIP archive (or XLSX/ODS spreadsheet)",
    ),
    "sheet.csv": (
        "rejected",
        None,
        0,
        0,
        "sheet.csv: binary file: expected delimited text, got a ZIP archive (or XLSX/ODS spreadsheet)",
    ),
}


@pytest.mark.parametrize("name", sorted(STAGED_AS))
def test_each_stored_file_is_staged_quarantined_or_rejected_with_its_reason(
    outcome: dict[str, Any], name: str
) -> None:
    status, layout, rows_ok, rows_rejected, reason = STAGED_AS[name]
    row = outcome["inventory"][name]
    assert (row["status"], row["layout"], row["rows_ok"], row["rows_rejected"]) == (
        status,
        layout,
        rows_ok,
        rows_rejected,
    )
    if reason is None:
        assert row["reason"] is None
    else:
        assert reason in row["reason"]


def test_the_good_files_of_the_same_run_are_staged_whole(stack: Any, outcome: dict[str, Any]) -> None:
    """Every file is accounted for, the batch completed, and the real INMET year lost no row."""
    assert set(outcome["inventory"]) == set(STAGED_AS)
    assert outcome["staged"]["counters"]["failed"] == 0
    assert outcome["staged"]["counters"]["new"] == sum(1 for v in STAGED_AS.values() if v[0] == "staged")
    assert outcome["staged"]["counters"]["rejected"] == sum(
        1 for v in STAGED_AS.values() if v[0] == "rejected"
    )
    assert outcome["inventory"][NAME_2019]["rows_ok"] == data_lines(sample(NAME_2019))
    assert outcome["promoted"]["counters"]["failed"] == 0


def test_what_never_enters_is_named_in_the_capture_audit(outcome: dict[str, Any]) -> None:
    capture = outcome["capture"]["counters"]
    assert (capture["new"], capture["duplicate"], capture["failed"]) == (len(STAGED_AS), 2, 0)
    got = {name: (p["kind"], p["reason"]) for name, p in outcome["capture_problems"].items()}
    assert got == {
        "empty.csv": ("rejected", "empty file (0 bytes): nothing to capture"),
        "link-out.csv": ("rejected", "symbolic link to a file outside the capture folder: not followed"),
        "pipe.csv": ("rejected", "not a regular file (a FIFO, socket or device)"),
        "caf\\xe9.csv": (
            "rejected",
            "source path 'caf\\xe9.csv': the name is not valid UTF-8 (its other bytes are shown as \\xNN); "
            "rename the file with a UTF-8 name (for example with convmv) and capture it again",
        ),
    }


def test_links_pipes_and_copies_are_not_captured_as_new_content(stack: Any, outcome: dict[str, Any]) -> None:
    """The link out of the folder never leaks the file it points at; the FIFO is not opened (the run
    would hang); a copy and a link to a captured file are duplicates, stored once."""
    s: Scope = outcome["scope"]
    keys = {
        r["object_key"]
        for r in query(
            stack,
            "SELECT object_key FROM reception_audit WHERE left(object_key, %s) = %s",
            (len(s.keys), s.keys),
        )
    }
    names = {Path(k).name for k in keys}
    assert "link-out.csv" not in names
    assert "pipe.csv" not in names
    assert {"link-in.csv", "copia-do-2019.csv"}.isdisjoint(names)
    stored = query(stack, "SELECT dest_key FROM storage_audit WHERE project_name = %s", (s.name,))
    assert {Path(r["dest_key"]).name for r in stored} == set(STAGED_AS)


def test_names_are_stored_literally(stack: Any, outcome: dict[str, Any]) -> None:
    s: Scope = outcome["scope"]
    stored = {
        r["dest_key"]
        for r in query(stack, "SELECT dest_key FROM storage_audit WHERE project_name = %s", (s.name,))
    }
    assert {s.key(SHELL_NAME), s.key(ACCENTED), s.key(LONG_NAME)} <= stored
    assert not Path("pwned").exists()
