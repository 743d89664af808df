"""Reception objects about to be registered, and how content claims settle their status (pure logic).

The audit store claims content in ``raw.data_files``
(:meth:`trilha.hooks.audit.AuditHook.register_reception`); :func:`settle_claims` turns the claims into
each object's status.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any


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
