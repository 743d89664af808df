"""Pure comparison of what the audit expects with what the lake holds: the decisions of ``reconcile``.

:func:`compare` takes the audit's claims (:class:`Expected`, one per object an audit row says
exists, or was deleted) and the listing (:class:`Found`, one per object), and classifies every
(bucket, key):

* ``match``: the object is there, with the size and content its claim records;
* ``missing_in_lake``: a claim, no object;
* ``missing_in_audit``: an object no claim explains (an orphan), or one whose latest claim records
  its deletion;
* ``differ``: the object is there with another size, ETag or sha256 (the item names which);
* ``pending``: an object with no claim, a claim with no object, or an object that differs from its
  claim, younger than the grace period: a run in flight writes bytes first and the row after, so
  it is not drift yet.

Content is decided by the cheapest evidence that proves it: the ETag the audit recorded (reception
rows carry the server's ETag, multipart ones included), else the md5 the audit recorded against a
plain md5 ETag (the server computes it over the stored bytes), else the sha256 (user metadata from a
HEAD, or the content itself when the caller read it: ``rehash``). :func:`needs_content` says which
objects the listing alone cannot decide, so the caller HEADs only those.

Of several claims on one key (an overwritten reception key, a re-staged output), a claim that the
object matches wins, else the latest (highest ``seq``): older claims are superseded, not drift.

:func:`abandoned` decides which ``meta.audit_log`` rows still marked ``running`` belong to a process
that is gone. No Airflow, no I/O: every value comes in as an argument.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

MATCH = "match"
MISSING_IN_LAKE = "missing_in_lake"
MISSING_IN_AUDIT = "missing_in_audit"
DIFFER = "differ"
PENDING = "pending"
#: Every status, in report order.
STATUSES = (MATCH, MISSING_IN_LAKE, MISSING_IN_AUDIT, DIFFER, PENDING)
#: The statuses that are drift (the task fails on any of them).
DRIFT = (MISSING_IN_LAKE, MISSING_IN_AUDIT, DIFFER)


@dataclass(frozen=True)
class Expected:
    """An audit row's claim about one object.

    :param size: bytes the row records (``None``: the row does not record a size).
    :param md5: hex md5 of the content the row records, if any.
    :param sha256: hex sha256 of the content the row records, if any.
    :param recorded_at: when the claim was made (for a deletion: when it was recorded).
    :param source: the row, as ``<table>:<id>`` (``storage_audit:123``).
    :param etag: the ETag the row recorded for the object (reception rows), if any.
    :param deleted: the row records the object's deletion: it is expected to be gone.
    :param seq: order among the claims on the same key (higher is later: the row's id).
    """

    bucket: str
    key: str
    size: int | None
    md5: str | None
    sha256: str | None
    recorded_at: datetime
    source: str
    etag: str | None = None
    deleted: bool = False
    seq: int = 0

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"source": self.source, "recorded_at": self.recorded_at.isoformat()}
        for name in ("size", "etag", "md5", "sha256"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        if self.deleted:
            out["deleted"] = True
        return out


@dataclass(frozen=True)
class Found:
    """An object as the lake lists it (and, when it was asked, as a HEAD or a read tells).

    :param sha256: the object's sha256: its user metadata (from a HEAD), or its content when
        ``sha256_read``; ``None`` when not known.
    :param sha256_read: ``sha256`` was computed from the bytes (``rehash``), not read from metadata.
    """

    bucket: str
    key: str
    size: int
    etag: str
    last_modified: datetime | None
    sha256: str | None = None
    sha256_read: bool = False

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"size": self.size, "etag": self.etag}
        if self.last_modified is not None:
            out["last_modified"] = self.last_modified.isoformat()
        if self.sha256 is not None:
            out["sha256_read" if self.sha256_read else "sha256"] = self.sha256
        return out


@dataclass(frozen=True)
class Item:
    """One key that is not a plain match: what it is and why."""

    status: str
    bucket: str
    key: str
    reason: str
    #: For ``differ`` (and a ``pending`` difference): which of size, etag, sha256 differ.
    fields: tuple[str, ...] = ()
    expected: dict[str, Any] | None = None
    found: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.status, "key": self.key, "reason": self.reason}
        if self.fields:
            out["fields"] = list(self.fields)
        if self.expected is not None:
            out["expected"] = self.expected
        if self.found is not None:
            out["found"] = self.found
        return out


@dataclass
class BucketReport:
    """The outcome for one bucket: counts per status, and every key that is not a match."""

    bucket: str
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STATUSES, 0))
    items: list[Item] = field(default_factory=list)
    #: Counts per status per project (the key's first segment).
    by_project: dict[str, dict[str, int]] = field(default_factory=dict)
    #: Claims that lost to a later (or matching) claim on the same key: history, not drift.
    superseded: int = 0

    @property
    def drift_total(self) -> int:
        return sum(self.counts[s] for s in DRIFT)

    @property
    def drift(self) -> list[Item]:
        return [i for i in self.items if i.status in DRIFT]

    @property
    def pending(self) -> list[Item]:
        return [i for i in self.items if i.status == PENDING]

    def note(
        self,
        key: str,
        status: str,
        reason: str,
        fields: Iterable[str] = (),
        expected: Expected | None = None,
        found: Found | None = None,
    ) -> None:
        """Count ``key`` under ``status`` and keep why (an :class:`Item`)."""
        item = Item(
            status,
            self.bucket,
            key,
            reason,
            tuple(fields),
            None if expected is None else expected.describe(),
            None if found is None else found.describe(),
        )
        self._add(key, status, item)

    def _add(self, key: str, status: str, item: Item | None = None) -> None:
        self.counts[status] += 1
        project = key.split("/", 1)[0] if "/" in key else ""
        per = self.by_project.setdefault(project, dict.fromkeys(STATUSES, 0))
        per[status] += 1
        if item is not None:
            self.items.append(item)


@dataclass
class Report:
    """:func:`compare`'s result: one :class:`BucketReport` per bucket, in bucket order."""

    buckets: dict[str, BucketReport]

    @property
    def drift_total(self) -> int:
        return sum(b.drift_total for b in self.buckets.values())

    def counts(self) -> dict[str, int]:
        return {s: sum(b.counts[s] for b in self.buckets.values()) for s in STATUSES}


def plain_md5(etag: str) -> str | None:
    """The ETag when it is a plain md5 of the content (single-part uploads and copies), else ``None``
    (a multipart ETag ``<md5 of the part md5s>-<parts>`` is not the content's md5)."""
    etag = etag.strip('"').lower()
    if len(etag) == 32 and all(c in "0123456789abcdef" for c in etag):
        return etag
    return None


def _check(e: Expected, f: Found) -> tuple[list[str], bool]:
    """The fields in which ``f`` differs from ``e``, and whether the content was verified at all."""
    fields: list[str] = []
    verified = False
    if e.size is not None and e.size != f.size:
        fields.append("size")
    if e.etag is not None:
        verified = True
        if e.etag.strip('"') != f.etag.strip('"'):
            fields.append("etag")
    elif e.md5 is not None and plain_md5(f.etag) is not None:
        verified = True
        if e.md5.lower() != plain_md5(f.etag):
            fields.append("etag")
    if e.sha256 is not None and f.sha256 is not None:
        verified = True
        if e.sha256.lower() != f.sha256.lower():
            fields.append("sha256")
    return fields, verified


def _verdict(e: Expected, f: Found) -> str:
    """``match``, ``differ``, or ``undecided`` (only a sha256 of the object can tell)."""
    fields, verified = _check(e, f)
    if fields:
        return DIFFER
    return MATCH if verified or e.sha256 is None else "undecided"


def needs_content(claims: Iterable[Expected], found: Found) -> bool:
    """Whether deciding ``found`` needs its sha256 (a HEAD for the metadata, or a read): no claim on
    it is decided by the listing alone (no recorded ETag, no md5 against a plain md5 ETag, and the
    size does not already tell it apart)."""
    verdicts = {_verdict(c, found) for c in claims if not c.deleted}
    return MATCH not in verdicts and "undecided" in verdicts


def _age(now: datetime, at: datetime | None) -> timedelta | None:
    return None if at is None else now - at


def _young(now: datetime, at: datetime | None, grace: timedelta) -> bool:
    """Strictly younger than ``grace``: an object exactly ``grace`` old is judged."""
    return _young_age(now, at, grace) is not None


def _young_age(now: datetime, at: datetime | None, grace: timedelta) -> timedelta | None:
    """The age of something strictly younger than ``grace``; ``None`` when older or undated."""
    age = _age(now, at)
    return age if age is not None and age < grace else None


def _minutes(delta: timedelta) -> str:
    seconds = max(delta.total_seconds(), 0.0)
    return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"


def _diff_reason(e: Expected, f: Found, fields: list[str]) -> str:
    parts = []
    if "size" in fields:
        parts.append(f"size: expected {e.size} bytes, found {f.size}")
    if "etag" in fields:
        want = f"ETag {e.etag}" if e.etag is not None else f"md5 {e.md5}"
        parts.append(f"etag: expected {want}, found {f.etag}")
    if "sha256" in fields:
        what = "content sha256 (read)" if f.sha256_read else "sha256 metadata"
        if f.sha256 is None:
            parts.append(
                f"sha256: expected {e.sha256}, the object carries no sha256 metadata (written outside "
                "Trilha?); run with rehash to read its content"
            )
        else:
            parts.append(f"sha256: expected {e.sha256}, found {what} {f.sha256}")
    return "; ".join(parts) + f" ({e.source})"


def compare(
    expected: Iterable[Expected],
    found: Iterable[Found],
    now: datetime,
    grace: timedelta,
    buckets: Iterable[str] = (),
) -> Report:
    """Classify every (bucket, key) of ``expected`` and ``found`` (see the module docstring).

    :param now: the time ages are measured at (timezone-aware, like the other datetimes).
    :param grace: younger than this, a difference is ``pending`` rather than drift.
    :param buckets: buckets to report even when neither side has anything in them.
    """
    claims: dict[tuple[str, str], list[Expected]] = {}
    for e in expected:
        claims.setdefault((e.bucket, e.key), []).append(e)
    for group in claims.values():
        group.sort(key=lambda c: c.seq)  # stable: equal seq keeps input order, the last wins
    objects: dict[tuple[str, str], Found] = {(f.bucket, f.key): f for f in found}
    names = set(buckets) | {b for b, _ in claims} | {b for b, _ in objects}
    reports = {b: BucketReport(b) for b in sorted(names)}
    for where in sorted(claims.keys() | objects.keys()):
        bucket, key = where
        _classify(reports[bucket], key, claims.get(where, []), objects.get(where), now, grace)
    return Report(reports)


def _classify(
    report: BucketReport,
    key: str,
    claims: list[Expected],
    f: Found | None,
    now: datetime,
    grace: timedelta,
) -> None:
    report.superseded += max(len(claims) - 1, 0)
    if f is None:
        latest = claims[-1]
        if latest.deleted:
            return  # deleted, as recorded: history, not a status
        if _young(now, latest.recorded_at, grace):
            age = _minutes(now - latest.recorded_at)
            why = f"recorded {age} ago, within the grace period; not in the bucket yet ({latest.source})"
            report.note(key, PENDING, why, expected=latest)
        else:
            why = f"{latest.source} records it, the bucket has no such object"
            report.note(key, MISSING_IN_LAKE, why, expected=latest)
        return
    if not claims:
        _orphan(report, key, f, now, grace, "no audit row claims this object")
        return
    if any(_verdict(c, f) == MATCH for c in claims if not c.deleted):
        report._add(key, MATCH)
        return
    latest = claims[-1]
    if latest.deleted:
        when = latest.recorded_at.isoformat(timespec="seconds")
        if f.last_modified is not None and f.last_modified > latest.recorded_at:
            why = f"uploaded again after its deletion was recorded at {when} ({latest.source}); "
            why += "not registered since"
            _orphan(report, key, f, now, grace, why)
        elif _young(now, latest.recorded_at, grace):
            why = f"its deletion was recorded at {when}, within the grace period: a cleanup in flight "
            why += f"({latest.source})"
            report.note(key, PENDING, why, expected=latest, found=f)
        else:
            why = (
                f"its deletion was recorded at {when} ({latest.source}), but the object is still there: "
                "a cleanup that did not finish"
            )
            report.note(key, MISSING_IN_AUDIT, why, expected=latest, found=f)
        return
    fields, verified = _check(latest, f)
    if not fields and latest.sha256 is not None and f.sha256 is None and not verified:
        fields = ["sha256"]
    reason = _diff_reason(latest, f, fields)
    young = _young_age(now, f.last_modified, grace)
    if young is not None:
        age = _minutes(young)
        report.note(key, PENDING, f"written {age} ago, within the grace period; {reason}", fields, latest, f)
    else:
        report.note(key, DIFFER, reason, fields, latest, f)


def _orphan(report: BucketReport, key: str, f: Found, now: datetime, grace: timedelta, why: str) -> None:
    young = _young_age(now, f.last_modified, grace)
    if young is not None:
        age = _minutes(young)
        report.note(key, PENDING, f"written {age} ago, within the grace period; {why} yet", found=f)
    else:
        written = f.last_modified.isoformat(timespec="seconds") if f.last_modified else "at an unknown time"
        report.note(key, MISSING_IN_AUDIT, f"{why} ({f.size} bytes, written {written})", found=f)


# ------------------------------------------------------------------------------------ abandoned runs


@dataclass(frozen=True)
class Abandoned:
    """A ``meta.audit_log`` row whose task process is gone, and why it is judged so."""

    id: int
    dag_id: str
    run_id: str
    task_id: str
    try_number: int
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "dag_id": self.dag_id,
            "run_id": self.run_id,
            "task_id": self.task_id,
            "try_number": self.try_number,
            "reason": self.reason,
        }


def abandoned(
    rows: Iterable[Mapping[str, Any]],
    *,
    hostname: str,
    alive: Callable[[int], bool],
    now: datetime,
    max_age: timedelta,
    own_run: tuple[str, str] | None = None,
) -> list[Abandoned]:
    """The rows (``meta.audit_log`` columns) still ``running`` whose process is gone.

    A row is abandoned when it was written on ``hostname`` by a process that is no longer
    ``alive``, or when it started ``max_age`` ago or more (a process on another host, or one whose
    pid was reused, is judged by age only). Rows of ``own_run`` (``(dag_id, run_id)``) are never
    abandoned.
    """
    out = []
    for r in rows:
        if r["status"] != "running" or (own_run is not None and (r["dag_id"], r["run_id"]) == own_run):
            continue
        started: datetime = r["started_at"]
        pid = r.get("pid")
        if r.get("hostname") == hostname and pid is not None and not alive(int(pid)):
            reason = f"process {pid} on {hostname} is gone"
        elif now - started >= max_age:
            host = f" on {r['hostname']}" if r.get("hostname") else ""
            hours = max_age.total_seconds() / 3600
            reason = (
                f"running since {started.isoformat(timespec='seconds')}{host}, more than {hours:g} h: "
                "its process is presumed gone"
            )
        else:
            continue
        out.append(
            Abandoned(int(r["id"]), r["dag_id"], r["run_id"], r["task_id"], int(r["try_number"]), reason)
        )
    return out
