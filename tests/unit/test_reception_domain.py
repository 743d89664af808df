"""The reception decisions of trilha.domain.reception, alone: which offered files a capture moves
(key, revision, content dedup), how a transfer's error is counted, why a listed object is refused,
and how content claims settle the statuses."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from trilha.domain import reception
from trilha.domain.reception import Entry
from trilha.exceptions import (
    ExportTooLargeError,
    IntegrityError,
    InvalidKeyError,
    ObjectMissingError,
    ObjectWriteError,
    SourceError,
)

YEARLY = "INMET_CO_DF_A001_BRASILIA_01-01-2024_A_31-12-2024.CSV"
SHA_A = "a" * 64
SHA_B = "b" * 64


@dataclass
class Offer:
    """A file as a capture source offers it (the fields of trilha.hooks.sources.SourceFile read here)."""

    relative_path: str
    size: int | None = 1_234
    sha256: str | None = None
    md5: str | None = None
    revision: str | None = None
    source_id: str = "1AbCdEfGhIjKlMnOp"
    problem: str | None = None


def test_capture_key_puts_the_file_under_the_project_prefix() -> None:
    assert reception.capture_key(Offer(f"2024/{YEARLY}"), "inmet") == f"inmet/2024/{YEARLY}"
    assert reception.capture_key(Offer(f"inmet/{YEARLY}"), "") == f"inmet/{YEARLY}"


@pytest.mark.parametrize(
    ("offer", "why"),
    [
        (Offer(YEARLY, problem="a symbolic link that leaves the folder"), "symbolic link"),
        (Offer("../etc/passwd"), "source path"),
        (Offer(YEARLY, size=0), "empty file"),
    ],
)
def test_capture_key_refuses_with_the_reason(offer: Offer, why: str) -> None:
    with pytest.raises(InvalidKeyError, match=why):
        reception.capture_key(offer, "inmet")


def test_a_source_problem_is_reported_before_the_path_and_the_size() -> None:
    offer = Offer("../x", size=0, problem="a FIFO, not a regular file")
    with pytest.raises(InvalidKeyError, match="FIFO"):
        reception.capture_key(offer, "inmet")


def test_only_files_without_a_checksum_are_looked_up_by_revision() -> None:
    google_doc = Offer("notes.gdoc", size=None, revision="2026-11-30T12:00:00.000Z")
    drive_csv = Offer(YEARLY, md5="0" * 32, revision="0B7rev")
    local = Offer(YEARLY, revision="1733230000000000000-1234")
    no_revision = Offer(YEARLY)
    assert reception.needs_revision_lookup(google_doc)
    assert reception.needs_revision_lookup(local)
    assert not reception.needs_revision_lookup(drive_csv)
    assert not reception.needs_revision_lookup(no_revision)
    known = {(google_doc.source_id, "2026-11-30T12:00:00.000Z")}
    assert reception.captured_at_this_revision(google_doc, known)
    edited = Offer("notes.gdoc", size=None, revision="2026-12-01T08:00:00.000Z")
    assert not reception.captured_at_this_revision(edited, known)
    # A checksum is the better witness: a file that has one is never skipped by revision.
    assert not reception.captured_at_this_revision(
        Offer("x.csv", md5="0" * 32, revision="2026-11-30T12:00:00.000Z"), known
    )


def test_new_content_drops_known_checksums_and_repeats_within_the_batch() -> None:
    known_sha = Offer("a.csv", sha256=SHA_A)
    new = Offer("b.csv", sha256=SHA_B)
    same_again = Offer("copy-of-b.csv", sha256=SHA_B)
    md5_known = Offer("drive.csv", md5="1" * 32)
    md5_new = Offer("drive2.csv", md5="2" * 32)
    md5_again = Offer("drive3.csv", md5="2" * 32)
    unknown = Offer("doc.gdoc")  # a Google document: its content is known only once exported
    unknown_too = Offer("doc2.gdoc")
    files = [
        (f, f"inmet/{f.relative_path}")
        for f in (known_sha, new, same_again, md5_known, md5_new, md5_again, unknown, unknown_too)
    ]
    todo, duplicates = reception.new_content(files, {SHA_A}, {"1" * 32})
    assert [f.relative_path for f, _ in todo] == ["b.csv", "drive2.csv", "doc.gdoc", "doc2.gdoc"]
    assert duplicates == 4
    assert todo[0][1] == "inmet/b.csv"


def test_an_md5_known_does_not_hide_a_file_that_has_a_sha256() -> None:
    """The sha256 decides when there is one: a matching md5 in the md5 set does not make it known."""
    f = Offer("a.csv", sha256=SHA_A, md5="1" * 32)
    todo, duplicates = reception.new_content([(f, "k")], set(), {"1" * 32})
    assert (len(todo), duplicates) == (1, 0)


@pytest.mark.parametrize(
    ("err", "kind"),
    [
        (ExportTooLargeError("export of notes.gdoc exceeds 10 MB"), "rejected"),
        (SourceError("Drive answered 403 for file 1AbC"), "skipped"),
        (IntegrityError("uploaded md5 differs"), "failed"),
        (ObjectWriteError("upload of inmet/a.csv failed"), "failed"),
        (ObjectMissingError("s3://trilha-reception/inmet/a.csv vanished"), "failed"),
        (ConnectionError("endpoint down"), None),
        (KeyError("bug"), None),
    ],
)
def test_transfer_problem_kind(err: BaseException, kind: str | None) -> None:
    assert reception.transfer_problem(err) == kind


def test_listed_refusal_names_empty_objects_first_then_bad_keys() -> None:
    assert reception.listed_refusal(f"inmet/{YEARLY}", 700_000) is None
    assert reception.listed_refusal(f"inmet/{YEARLY}", 0) == "empty file (0 bytes)"
    assert reception.listed_refusal("inmet/../x.csv", 0) == "empty file (0 bytes)"
    why = reception.listed_refusal("inmet/../x.csv", 10)
    assert why is not None
    assert "reception key" in why


def test_read_refusal_when_the_object_changed_while_read() -> None:
    assert reception.read_refusal(700_000, 700_000) is None
    assert reception.read_refusal(699_000, 700_000) == (
        "read 699000 bytes, listed 700000: the object changed while read"
    )


def entry(key: str, sha256: str, status: str = "") -> Entry:
    return Entry(key, "etag", 10, datetime(2026, 12, 3, tzinfo=UTC), sha256, "m" * 32, status=status)


def test_claims_settle_first_key_new_others_duplicate_of_it() -> None:
    entries = [
        entry("inmet/b.csv", SHA_A),
        entry("inmet/a.csv", SHA_A),
        entry("inmet/z.csv", "bad", "rejected"),
    ]
    ordered = reception.claimable(entries)
    assert [e.key for e in ordered] == ["inmet/a.csv", "inmet/b.csv"]
    claims = {SHA_A: {"is_new": True, "first_key": "inmet/a.csv", "first_bucket": "trilha-reception"}}
    reception.settle_claims(ordered, claims)
    assert [(e.key, e.status) for e in entries] == [
        ("inmet/b.csv", "duplicate"),
        ("inmet/a.csv", "new"),
        ("inmet/z.csv", "rejected"),
    ]
    assert entries[0].reason == "same content as trilha-reception/inmet/a.csv"


def test_content_claimed_by_an_earlier_run_makes_every_object_a_duplicate() -> None:
    e = entry("inmet/a.csv", SHA_A)
    claims = {SHA_A: {"is_new": False, "first_key": "inmet/a.csv", "first_bucket": "trilha-reception"}}
    reception.settle_claims([e], claims)
    assert e.status == "duplicate"
