"""Reception decisions (pure logic): which offered files a capture moves, why a listed object is
refused, and how content claims settle the status of the objects about to be registered.

The audit store claims content in ``raw.data_files``
(:meth:`trilha.hooks.audit.AuditHook.register_reception`); :func:`settle_claims` turns the claims into
each object's status.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar

from trilha.domain import lake
from trilha.domain.keys import validate_key
from trilha.exceptions import (
    ExportTooLargeError,
    IntegrityError,
    InvalidKeyError,
    ObjectMissingError,
    ObjectWriteError,
    SourceError,
)


@dataclass
class Entry:
    """A reception object about to be registered in ``reception_audit``."""

    key: str
    etag: str
    size: int
    uploaded_at: datetime | None
    sha256: str | None
    md5: str | None
    source_kind: str = "upload"
    source_ref: str | None = None
    source_revision: str | None = None
    status: str = ""
    reason: str | None = None


def claimable(entries: Sequence[Entry]) -> list[Entry]:
    """The entries that claim content (not rejected), by key: the order claims are made in."""
    return sorted((e for e in entries if e.status != "rejected"), key=lambda e: e.key)


def settle_claims(ordered: Sequence[Entry], claims: Mapping[str, Mapping[str, Any]]) -> None:
    """Set each claiming entry's status from the claims (by sha256) of ``data_files_claim``.

    Of several objects with the same new content, the first by key is ``new`` and the others are
    ``duplicate`` of its sha256; content claimed earlier (or by a concurrent run) makes a duplicate.
    """
    for e in ordered:
        claim = claims[str(e.sha256)]
        if claim["is_new"] and claim["first_key"] == e.key:
            e.status = "new"
        else:
            e.status = "duplicate"
            e.reason = f"same content as {claim['first_bucket']}/{claim['first_key']}"


# --------------------------------------------------------------------------------------------------
# capture: which offered files move, decided before any byte does


class Offered(Protocol):
    """What the capture decisions read of a file a source offers (``trilha.hooks.sources.SourceFile``)."""

    @property
    def source_id(self) -> str: ...
    @property
    def relative_path(self) -> str: ...
    @property
    def size(self) -> int | None: ...
    @property
    def md5(self) -> str | None: ...
    @property
    def sha256(self) -> str | None: ...
    @property
    def revision(self) -> str | None: ...
    @property
    def problem(self) -> str | None: ...


F = TypeVar("F", bound=Offered)


def capture_key(f: Offered, dest_prefix: str) -> str:
    """The reception key ``f`` is captured under; raises :class:`InvalidKeyError` (why it is refused)
    for a file the source refused, a path that is no valid key, or an empty file."""
    if f.problem:
        raise InvalidKeyError(f.problem)
    key = (
        lake.reception_key(dest_prefix, f.relative_path)
        if dest_prefix
        else validate_key(f.relative_path, what="source path")
    )
    if f.size == 0:
        raise InvalidKeyError("empty file (0 bytes): nothing to capture")
    return key


def needs_revision_lookup(f: Offered) -> bool:
    """Whether only its revision can tell that ``f`` was captured before: it has no checksum (a Google
    document, a local file before hashing) but a revision."""
    return not f.sha256 and not f.md5 and bool(f.revision)


def captured_at_this_revision(f: Offered, known_revisions: set[tuple[str, str]]) -> bool:
    """Whether ``f`` was captured before at this very revision (a local file untouched since, a Google
    document not edited since): nothing to read, hash or export. Google documents need this most: they
    carry no checksum and export to new bytes each time."""
    return needs_revision_lookup(f) and (f.source_id, str(f.revision)) in known_revisions


def new_content(
    files: Sequence[tuple[F, str]], known_sha256: set[str], known_md5: set[str]
) -> tuple[list[tuple[F, str]], int]:
    """The ``(file, key)`` pairs whose content the inventory does not hold, and how many are duplicates.

    A file's content is its sha256, or its md5 when the source knows no sha256. Of several files with
    the same new content in one batch, the first is kept and the others are duplicates. A file with
    no checksum at all (a Google document to export) is always kept: its content is known only once
    exported."""
    todo: list[tuple[F, str]] = []
    seen: set[str] = set()
    for f, key in files:
        content = f.sha256 or f.md5
        known = (f.sha256 in known_sha256) if f.sha256 else bool(f.md5) and f.md5 in known_md5
        if known or (content and content in seen):
            continue
        if content:
            seen.add(content)
        todo.append((f, key))
    return todo, len(files) - len(todo)


def transfer_problem(err: BaseException) -> str | None:
    """The per-item kind of a transfer's exception (``rejected``, ``skipped`` or ``failed``), or
    ``None`` when it is no per-item problem (endpoint down, wrong keys: the task fails and retries).

    Too large to export is bad input that no retry fixes (rejected); a source that could not be read
    is skipped (a later run tries again); an upload that did not verify failed."""
    if isinstance(err, ExportTooLargeError):
        return "rejected"
    if isinstance(err, SourceError):
        return "skipped"
    if isinstance(err, IntegrityError | ObjectWriteError | ObjectMissingError):
        return "failed"
    return None


# --------------------------------------------------------------------------------------------------
# registration of objects found in the bucket


def listed_refusal(key: str, size: int) -> str | None:
    """Why a listed reception object is registered as rejected before it is read, or ``None``."""
    if size == 0:
        return "empty file (0 bytes)"
    try:
        validate_key(key, what="reception key")
    except InvalidKeyError as err:
        return str(err)
    return None


def read_refusal(read_size: int, listed_size: int) -> str | None:
    """Why an object whose bytes were read is rejected (it changed while read), or ``None``."""
    if read_size != listed_size:
        return f"read {read_size} bytes, listed {listed_size}: the object changed while read"
    return None
