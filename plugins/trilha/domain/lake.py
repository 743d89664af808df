"""Pure decisions of the ingestion half of the lake: keys, versions, promotion and cleanup rules.

No Airflow, no I/O: operators gather facts (audit rows, listings) and ask these functions what to do,
so each rule is tested on its own with plain values.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import PurePosixPath
from typing import Any

from trilha.domain.keys import fit_name, join_key, validate_key


def reception_key(project_prefix: str, relative_path: str) -> str:
    """Where a captured file lands in the reception bucket: under its project's prefix."""
    return join_key(project_prefix, validate_key(relative_path, what="source path"))


def logical_name(object_key: str, project_prefix: str) -> str:
    """The name a reception object keeps in storage: its key relative to the project prefix."""
    head = project_prefix.rstrip("/") + "/"
    return object_key[len(head) :] if object_key.startswith(head) else object_key


def stored_key(project_prefix: str, name: str, version: int) -> str:
    """``<prefix>/<name>`` for version 1, ``<prefix>/<stem>__v<N><suffix>`` after: never an overwrite."""
    if version <= 1:
        return join_key(project_prefix, validate_key(name, what="stored name"))
    return join_key(project_prefix, _tagged(validate_key(name, what="stored name"), f"v{version}"))


def _tagged(key: str, tag: str) -> str:
    """``dir/stem__<tag>.ext``: a sibling of ``key`` in the same folder, with its last extension kept.

    Built from the key's own text, not ``str(PurePosixPath)`` plus ``lstrip("./")``: that stripped the
    leading dots of names such as ``.env`` or ``.d/x.csv`` and moved the sibling to another folder.
    """
    folder, slash, base = key.rpartition("/")
    suffix = PurePosixPath(base).suffix
    stem = base[: len(base) - len(suffix)] if suffix else base
    # A name already at the 255-byte limit gives up the end of its stem, not its tag.
    return f"{folder}{slash}{fit_name(stem, f'__{tag}{suffix}')}"


def disambiguated_key(key: str, content_id: str) -> str:
    """A sibling key for different content that arrives under a name already taken in reception."""
    tag = "".join(ch for ch in content_id if ch.isalnum())[:12] or "x"
    return validate_key(_tagged(key, tag))


def lock_key(kind: str, value: str) -> int:
    """A stable signed 32-bit advisory-lock key for ``kind:value`` (crc32, the same in every process)."""
    crc = zlib.crc32(f"{kind}:{value}".encode())
    return crc - (1 << 32) if crc >= (1 << 31) else crc


@dataclass
class PromotionItem:
    """One reception object to promote, and what the plan decided for it."""

    reception_id: int
    source_key: str
    sha256: str
    md5: str
    size: int
    etag: str
    name: str
    action: str = ""  # "copy" | "duplicate" | "repair"
    version: int = 1
    dest_key: str = ""
    previous_sha256: str | None = None
    reason: str = ""


@dataclass
class PromotionPlan:
    copy: list[PromotionItem] = field(default_factory=list)
    duplicates: list[PromotionItem] = field(default_factory=list)
    repair: list[PromotionItem] = field(default_factory=list)


def plan_promotion(
    items: Iterable[PromotionItem],
    stored_by_sha: dict[str, dict[str, Any]],
    physically_present: set[str],
    latest_versions: dict[str, dict[str, Any]],
    project_prefix: str,
    taken_keys: Iterable[str] = (),
) -> PromotionPlan:
    """Decide, for a batch, what to copy, what is a duplicate and what must be repaired.

    The double check: content with a ``storage_audit`` row **and** a physical object holding it
    (``physically_present`` has its stored key) is a duplicate. An audit row whose object is missing is
    repaired (copied again to the audited key, no new row). Otherwise the content is new for the
    project: version 1 of its name, or the next version when the name already holds other content.

    :param stored_by_sha: audit rows of this project's stored content, by sha256.
    :param physically_present: stored keys verified present with the right content.
    :param latest_versions: latest stored version per logical name (``version``, ``sha256``).
    :param taken_keys: stored keys that already hold other content (``storage_audit`` rows). A new
        version never lands on one of them, nor on a key planned earlier in the batch: a file really
        named ``data__v2.csv`` is not overwritten by the second version of ``data.csv``; that version
        takes the next free number instead.
    """
    plan = PromotionPlan()
    next_version = {n: (int(v["version"]), v["sha256"]) for n, v in latest_versions.items()}
    planned_sha: set[str] = set()
    used_keys = set(taken_keys) | {str(s["dest_key"]) for s in stored_by_sha.values()}
    for item in sorted(items, key=lambda i: i.reception_id):
        stored = stored_by_sha.get(item.sha256)
        if stored is not None:
            if stored["dest_key"] in physically_present:
                item.action, item.dest_key = "duplicate", stored["dest_key"]
                item.reason = f"content already stored at {stored['dest_key']}"
                plan.duplicates.append(item)
            elif item.sha256 not in planned_sha:
                item.action, item.dest_key = "repair", stored["dest_key"]
                item.reason = "audit row present but the stored object is missing or differs"
                plan.repair.append(item)
                planned_sha.add(item.sha256)
            else:
                item.action, item.dest_key = "duplicate", stored["dest_key"]
                item.reason = "same content as another object of this batch"
                plan.duplicates.append(item)
            continue
        if item.sha256 in planned_sha:
            item.action = "duplicate"
            item.reason = "same content as another object of this batch"
            plan.duplicates.append(item)
            continue
        previous = next_version.get(item.name)
        if previous is None:
            item.version, item.previous_sha256 = 1, None
        else:
            item.version, item.previous_sha256 = previous[0] + 1, previous[1]
        item.dest_key = stored_key(project_prefix, item.name, item.version)
        while item.dest_key in used_keys:
            item.version += 1
            item.dest_key = stored_key(project_prefix, item.name, item.version)
        used_keys.add(item.dest_key)
        next_version[item.name] = (item.version, item.sha256)
        item.action = "copy"
        planned_sha.add(item.sha256)
        plan.copy.append(item)
    return plan


@dataclass(frozen=True)
class CleanupDecision:
    action: str  # "delete" | "keep"
    reason: str


def cleanup_decision(
    audit: dict[str, Any] | None,
    current_size: int,
    current_etag: str,
    stored: dict[str, Any] | None,
    stored_verified: bool,
    now: datetime,
    retention: timedelta,
) -> CleanupDecision:
    """May this reception object be deleted? Only when every condition of the cleanup rule holds.

    1. a ``reception_audit`` row describes it; 2. its content is stored (audit row) 3. and verified
    present in storage; 4. it is still the audited content (size and ETag unchanged); 5. it is older
    than the retention window.
    """
    if audit is None:
        return CleanupDecision("keep", "no reception_audit row for this object (run raw_ingest first)")
    if audit.get("status") == "rejected":
        return CleanupDecision("keep", f"rejected at ingestion ({audit.get('reason')}); kept for inspection")
    if int(audit["size_bytes"]) != current_size or str(audit["etag"]) != current_etag:
        return CleanupDecision(
            "keep",
            f"object changed since audit (size {audit['size_bytes']} -> {current_size}, "
            f"ETag {audit['etag']} -> {current_etag})",
        )
    if stored is None:
        return CleanupDecision("keep", "content not in storage_audit yet (run reception_promote first)")
    if not stored_verified:
        return CleanupDecision(
            "keep",
            f"storage_audit names {stored['dest_bucket']}/{stored['dest_key']} but that object is "
            "missing or holds other content",
        )
    uploaded = audit.get("uploaded_at")
    if uploaded is None or now - uploaded < retention:
        return CleanupDecision("keep", f"younger than the retention window ({retention.days} days)")
    return CleanupDecision(
        "delete",
        f"verified stored at {stored['dest_bucket']}/{stored['dest_key']}; older than {retention.days} days",
    )


def current_audit(audit: dict[str, Any] | None, last_modified: datetime | None) -> dict[str, Any] | None:
    """The audit row that describes a reception object, or ``None``.

    An object uploaded again after its deletion was recorded is a new object raw_ingest has not
    registered yet. (An older object with that record is a deletion a killed run did not finish: it
    is deleted now, under the record already written.)
    """
    if audit and audit.get("deleted_at") and last_modified and last_modified > audit["deleted_at"]:
        return None
    return audit


def needs_storage_check(audit: dict[str, Any] | None, stored: dict[str, Any] | None, etag: str) -> bool:
    """Is the stored copy worth a HEAD? Only for an audited, not rejected object whose ETag is the
    audited one and whose content ``storage_audit`` holds."""
    return (
        stored is not None
        and audit is not None
        and audit.get("status") != "rejected"
        and audit["etag"] == etag
    )


def stored_copy_verified(
    stored: dict[str, Any], size: int | None, sha256: str | None, md5_etag: str | None
) -> bool:
    """Does the stored object (``None`` size: missing) hold the recorded content? The md5 ETag is
    compared only when the server gave one."""
    return (
        size is not None
        and size == int(stored["size_bytes"])
        and sha256 == stored["sha256"]
        and md5_etag in (None, stored["md5"])
    )


@dataclass(frozen=True)
class CleanupRecord:
    """One ``reception_cleanup`` row: what was decided about one reception object."""

    reception_id: int | None
    key: str
    sha256: str | None
    size: int
    etag: str
    storage_id: int | None
    action: str  # "kept" | "would_delete" | "deleted"
    reason: str


def cleanup_record(
    key: str,
    size: int,
    etag: str,
    audit: dict[str, Any] | None,
    stored: dict[str, Any] | None,
    decision: CleanupDecision,
    dry_run: bool,
) -> CleanupRecord:
    """What is recorded of a decision. The audited sha256 describes the object only while its ETag
    is the audited one."""
    action = "kept" if decision.action == "keep" else ("would_delete" if dry_run else "deleted")
    return CleanupRecord(
        reception_id=audit["id"] if audit else None,
        key=key,
        sha256=audit["sha256"] if audit and audit["etag"] == etag else None,
        size=size,
        etag=etag,
        storage_id=stored["id"] if stored else None,
        action=action,
        reason=decision.reason,
    )
