"""The pure comparison of the reconcile DAG (:mod:`trilha.domain.drift`), on plain values."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from trilha.domain import drift
from trilha.domain.drift import Expected, Found

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
OLD = NOW - timedelta(days=2)
GRACE = timedelta(minutes=60)
B = "storage-unique"


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


DATA, OTHER = b"a,b\n1,2\n", b"a,b\n1,3\n"


def claim(key: str = "p/a.csv", data: bytes = DATA, **kw: Any) -> Expected:
    values: dict[str, Any] = {
        "bucket": B,
        "key": key,
        "size": len(data),
        "md5": md5(data),
        "sha256": sha(data),
        "recorded_at": OLD,
        "source": "storage_audit:1",
    }
    values.update(kw)
    return Expected(**values)


def obj(key: str = "p/a.csv", data: bytes = DATA, **kw: Any) -> Found:
    values: dict[str, Any] = {
        "bucket": B,
        "key": key,
        "size": len(data),
        "etag": md5(data),
        "last_modified": OLD,
    }
    values.update(kw)
    return Found(**values)


def only(report: drift.Report, bucket: str = B) -> drift.Item:
    items = report.buckets[bucket].items
    assert len(items) == 1, items
    return items[0]


def test_an_object_as_recorded_is_a_match() -> None:
    report = drift.compare([claim()], [obj()], NOW, GRACE)
    assert report.buckets[B].counts == {
        "match": 1,
        "missing_in_lake": 0,
        "missing_in_audit": 0,
        "differ": 0,
        "pending": 0,
    }
    assert report.buckets[B].items == []
    assert report.drift_total == 0
    assert report.buckets[B].by_project == {"p": {**dict.fromkeys(drift.STATUSES, 0), "match": 1}}


def test_a_claim_without_its_object_is_missing_in_lake() -> None:
    item = only(drift.compare([claim()], [], NOW, GRACE))
    assert (item.status, item.key) == ("missing_in_lake", "p/a.csv")
    assert item.reason == "storage_audit:1 records it, the bucket has no such object"
    assert item.expected is not None
    assert item.expected["sha256"] == sha(DATA)


def test_an_object_no_claim_explains_is_missing_in_audit() -> None:
    report = drift.compare([], [obj("p/orphan.csv")], NOW, GRACE)
    item = only(report)
    assert item.status == "missing_in_audit"
    assert item.reason == f"no audit row claims this object ({len(DATA)} bytes, written {OLD.isoformat()})"
    assert report.drift_total == 1


def test_other_bytes_under_the_key_differ_by_size_and_etag() -> None:
    item = only(drift.compare([claim()], [obj(data=b"a,b\n1,20\n")], NOW, GRACE))
    assert item.status == "differ"
    assert item.fields == ("size", "etag")
    assert item.reason.startswith(
        f"size: expected {len(DATA)} bytes, found 9; etag: expected md5 {md5(DATA)}"
    )
    assert item.reason.endswith("(storage_audit:1)")


def test_same_size_other_bytes_differ_by_etag_only() -> None:
    item = only(drift.compare([claim()], [obj(data=OTHER)], NOW, GRACE))
    assert (item.status, item.fields) == ("differ", ("etag",))
    assert item.found == {"size": len(OTHER), "etag": md5(OTHER), "last_modified": OLD.isoformat()}


def test_the_recorded_etag_decides_a_reception_object_even_multipart() -> None:
    multipart = "0123456789abcdef0123456789abcdef-3"
    rec = claim(etag=multipart, md5="f" * 32, source="reception_audit:7")
    assert drift.compare([rec], [obj(etag=multipart)], NOW, GRACE).buckets[B].counts["match"] == 1
    assert not drift.needs_content([rec], obj(etag=multipart))
    item = only(drift.compare([rec], [obj(etag="9" * 32 + "-3")], NOW, GRACE))
    assert (item.status, item.fields) == ("differ", ("etag",))
    assert item.reason.startswith(f"etag: expected ETag {multipart}, found {'9' * 32}-3")


def test_a_multipart_etag_is_not_an_md5_and_the_sha256_metadata_decides() -> None:
    multipart = "0123456789abcdef0123456789abcdef-2"
    listed = obj(etag=multipart)
    assert drift.plain_md5(multipart) is None
    assert drift.needs_content([claim()], listed)
    # Before a HEAD nothing tells it: a match would be a guess, so it is not one.
    assert only(drift.compare([claim()], [listed], NOW, GRACE)).fields == ("sha256",)
    headed = obj(etag=multipart, sha256=sha(DATA))
    assert drift.compare([claim()], [headed], NOW, GRACE).buckets[B].counts["match"] == 1
    item = only(drift.compare([claim()], [obj(etag=multipart, sha256=sha(OTHER))], NOW, GRACE))
    assert (item.status, item.fields) == ("differ", ("sha256",))
    assert f"sha256: expected {sha(DATA)}, found sha256 metadata {sha(OTHER)}" in item.reason


def test_without_sha256_metadata_a_multipart_object_differs_and_says_why() -> None:
    item = only(drift.compare([claim()], [obj(etag="a" * 32 + "-2", sha256=None)], NOW, GRACE))
    assert (item.status, item.fields) == ("differ", ("sha256",))
    assert "carries no sha256 metadata" in item.reason
    assert "rehash" in item.reason


def test_no_size_and_no_md5_recorded_the_sha256_decides() -> None:
    staged = claim(size=None, md5=None, source="staging_inventory:3")
    assert drift.needs_content([staged], obj())  # a plain md5 ETag, but nothing to compare it with
    assert drift.compare([staged], [obj(sha256=sha(DATA))], NOW, GRACE).buckets[B].counts["match"] == 1
    item = only(drift.compare([staged], [obj(data=b"longer content", sha256=sha(OTHER))], NOW, GRACE))
    assert item.fields == ("sha256",)  # no size recorded: the size is not a field that differs


def test_a_size_that_differs_needs_no_head() -> None:
    staged = claim(md5=None)
    assert not drift.needs_content([staged], obj(data=b"12345"))
    assert only(drift.compare([staged], [obj(data=b"12345")], NOW, GRACE)).fields == ("size",)


def test_content_read_by_rehash_is_named_as_read() -> None:
    item = only(drift.compare([claim()], [obj(sha256=sha(OTHER), sha256_read=True)], NOW, GRACE))
    assert item.fields == ("sha256",)
    assert f"found content sha256 (read) {sha(OTHER)}" in item.reason
    assert item.found is not None
    assert item.found["sha256_read"] == sha(OTHER)


def test_a_claim_with_no_digest_at_all_matches_on_presence_and_size() -> None:
    bare = claim(md5=None, sha256=None)
    assert not drift.needs_content([bare], obj(etag="b" * 32 + "-4"))
    assert drift.compare([bare], [obj(etag="b" * 32 + "-4")], NOW, GRACE).buckets[B].counts["match"] == 1


# ------------------------------------------------------------------------------ superseded claims


def test_the_latest_claim_wins_and_older_ones_are_superseded() -> None:
    """An overwritten reception key: the old row is history, not drift."""
    old = claim(data=DATA, etag=md5(DATA), seq=1, source="reception_audit:1")
    new = claim(data=OTHER, etag=md5(OTHER), seq=2, source="reception_audit:2")
    report = drift.compare([new, old], [obj(data=OTHER)], NOW, GRACE)
    assert report.buckets[B].counts["match"] == 1
    assert report.buckets[B].superseded == 1
    assert report.drift_total == 0


def test_an_object_back_to_an_older_recorded_version_matches_that_claim() -> None:
    old = claim(data=DATA, etag=md5(DATA), seq=1, source="reception_audit:1")
    new = claim(data=OTHER, etag=md5(OTHER), seq=2, source="reception_audit:2")
    assert drift.compare([old, new], [obj(data=DATA)], NOW, GRACE).buckets[B].counts["match"] == 1


def test_when_no_claim_matches_the_latest_one_is_reported() -> None:
    old = claim(data=DATA, seq=1, source="staging_inventory:1")
    new = claim(data=OTHER, seq=2, source="staging_inventory:2")
    item = only(drift.compare([old, new], [obj(data=b"third!!!")], NOW, GRACE))
    assert item.status == "differ"
    assert item.reason.endswith("(staging_inventory:2)")


def test_a_superseded_claim_whose_key_is_gone_reports_the_latest() -> None:
    old = claim(seq=1, source="storage_audit:1")
    new = claim(seq=5, source="storage_audit:5")
    report = drift.compare([new, old], [], NOW, GRACE)
    assert only(report).reason.startswith("storage_audit:5 records it")
    assert report.buckets[B].superseded == 1


# ------------------------------------------------------------------------------ deletions


def test_a_recorded_deletion_of_an_absent_object_is_nothing_to_report() -> None:
    gone = claim(deleted=True, recorded_at=OLD, seq=2, source="reception_audit:2")
    report = drift.compare([claim(seq=1), gone], [], NOW, GRACE, buckets=[B])
    assert report.buckets[B].counts == dict.fromkeys(drift.STATUSES, 0)
    assert report.buckets[B].items == []


def test_an_object_whose_deletion_was_recorded_long_ago_is_missing_in_audit() -> None:
    gone = claim(deleted=True, recorded_at=OLD, source="reception_audit:9")
    item = only(drift.compare([gone], [obj(last_modified=OLD - timedelta(days=9))], NOW, GRACE))
    assert item.status == "missing_in_audit"
    assert item.reason.startswith(f"its deletion was recorded at {OLD.isoformat()} (reception_audit:9)")
    assert item.reason.endswith("a cleanup that did not finish")


def test_a_deletion_recorded_within_the_grace_period_is_pending() -> None:
    gone = claim(deleted=True, recorded_at=NOW - timedelta(minutes=5))
    assert only(drift.compare([gone], [obj(last_modified=OLD)], NOW, GRACE)).status == "pending"


def test_an_object_uploaded_again_after_its_deletion_is_an_unregistered_orphan() -> None:
    deleted_at = NOW - timedelta(days=1)
    gone = claim(deleted=True, recorded_at=deleted_at)
    item = only(drift.compare([gone], [obj(last_modified=NOW - timedelta(hours=3))], NOW, GRACE))
    assert item.status == "missing_in_audit"
    assert item.reason.startswith(
        f"uploaded again after its deletion was recorded at {deleted_at.isoformat()}"
    )
    young = only(drift.compare([gone], [obj(last_modified=NOW - timedelta(minutes=3))], NOW, GRACE))
    assert young.status == "pending"


# ------------------------------------------------------------------------------ grace period


@pytest.mark.parametrize(
    ("age", "status"),
    [
        (timedelta(minutes=59, seconds=59), "pending"),
        (timedelta(minutes=60), "missing_in_audit"),  # exactly the grace period: judged
        (timedelta(minutes=61), "missing_in_audit"),
    ],
)
def test_grace_boundary_for_an_orphan(age: timedelta, status: str) -> None:
    assert only(drift.compare([], [obj(last_modified=NOW - age)], NOW, GRACE)).status == status


@pytest.mark.parametrize(
    ("age", "status"),
    [(timedelta(seconds=3599), "pending"), (timedelta(seconds=3600), "missing_in_lake")],
)
def test_grace_boundary_for_a_claim_without_its_object(age: timedelta, status: str) -> None:
    assert only(drift.compare([claim(recorded_at=NOW - age)], [], NOW, GRACE)).status == status


def test_a_young_difference_is_pending_not_drift() -> None:
    """A key rewritten by a run in flight (bytes first, row after) is not drift yet."""
    report = drift.compare([claim()], [obj(data=OTHER, last_modified=NOW - timedelta(minutes=2))], NOW, GRACE)
    item = only(report)
    assert (item.status, item.fields) == ("pending", ("etag",))
    assert item.reason.startswith("written 2 min ago, within the grace period; etag: expected md5")
    assert report.drift_total == 0


def test_zero_grace_judges_everything_and_an_unknown_time_is_never_young() -> None:
    assert only(drift.compare([], [obj(last_modified=NOW)], NOW, timedelta(0))).status == "missing_in_audit"
    assert only(drift.compare([], [obj(last_modified=None)], NOW, GRACE)).status == "missing_in_audit"


# ------------------------------------------------------------------------------ report shape


def test_buckets_are_kept_apart_and_listed_even_when_empty() -> None:
    other = Found("datasets", "p/a.csv", len(DATA), md5(DATA), OLD)
    report = drift.compare([claim()], [obj(), other], NOW, GRACE, buckets=["empty-bucket"])
    assert list(report.buckets) == ["datasets", "empty-bucket", B]
    assert report.buckets["datasets"].counts["missing_in_audit"] == 1
    assert report.buckets[B].counts["match"] == 1
    assert report.buckets["empty-bucket"].drift_total == 0
    assert report.counts() == {**dict.fromkeys(drift.STATUSES, 0), "match": 1, "missing_in_audit": 1}


def test_a_mixed_bucket_counts_every_status_once() -> None:
    claims = [
        claim("p/match.csv"),
        claim("p/gone.csv"),
        claim("p/changed.csv"),
        claim("q/young.csv", recorded_at=NOW - timedelta(minutes=1)),
    ]
    objects = [obj("p/match.csv"), obj("p/changed.csv", data=OTHER), obj("_reconcile/orphan.json")]
    b = drift.compare(claims, objects, NOW, GRACE).buckets[B]
    assert b.counts == {"match": 1, "missing_in_lake": 1, "missing_in_audit": 1, "differ": 1, "pending": 1}
    assert b.drift_total == 3
    assert [(i.status, i.key) for i in b.drift] == [
        ("missing_in_audit", "_reconcile/orphan.json"),
        ("differ", "p/changed.csv"),
        ("missing_in_lake", "p/gone.csv"),
    ]
    assert [i.key for i in b.pending] == ["q/young.csv"]
    assert b.by_project["q"]["pending"] == 1
    assert b.by_project["_reconcile"]["missing_in_audit"] == 1
    assert b.drift[1].as_dict()["fields"] == ["etag"]


# ------------------------------------------------------------------------------ abandoned runs


def row(i: int, **kw: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "id": i,
        "dag_id": "raw_ingest",
        "run_id": f"manual__{i}",
        "task_id": "register",
        "try_number": 1,
        "status": "running",
        "hostname": "worker-1",
        "pid": 1000 + i,
        "started_at": NOW - timedelta(minutes=10),
    }
    values.update(kw)
    return values


def test_a_running_row_of_a_dead_process_on_this_host_is_abandoned() -> None:
    rows = [row(1), row(2), row(3, hostname="worker-2"), row(4, status="success")]
    found = drift.abandoned(
        rows, hostname="worker-1", alive=lambda pid: pid == 1002, now=NOW, max_age=timedelta(hours=24)
    )
    assert [(a.id, a.reason) for a in found] == [(1, "process 1001 on worker-1 is gone")]


def test_a_row_older_than_max_age_is_abandoned_whatever_its_host() -> None:
    started = NOW - timedelta(hours=25)
    rows = [
        row(1, hostname="worker-2", started_at=started),
        row(2, hostname=None, pid=None, started_at=started),
    ]
    found = drift.abandoned(
        rows, hostname="worker-1", alive=lambda _p: True, now=NOW, max_age=timedelta(hours=24)
    )
    assert [a.id for a in found] == [1, 2]
    assert found[0].reason == (
        f"running since {started.isoformat()} on worker-2, more than 24 h: its process is presumed gone"
    )
    assert found[1].as_dict() == {
        "id": 2,
        "dag_id": "raw_ingest",
        "run_id": "manual__2",
        "task_id": "register",
        "try_number": 1,
        "reason": f"running since {started.isoformat()}, more than 24 h: its process is presumed gone",
    }


def test_the_rows_of_the_own_run_are_never_abandoned() -> None:
    rows = [row(1, dag_id="reconcile", run_id="r1", started_at=NOW - timedelta(days=3)), row(2)]
    found = drift.abandoned(
        rows,
        hostname="worker-1",
        alive=lambda _p: False,
        now=NOW,
        max_age=timedelta(hours=24),
        own_run=("reconcile", "r1"),
    )
    assert [a.id for a in found] == [2]
