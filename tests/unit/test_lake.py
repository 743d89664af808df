"""The pure rules of the ingestion half (:mod:`trilha.domain.lake`), on plain values."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from trilha.domain import lake
from trilha.exceptions import InvalidKeyError

A, B, C = "a" * 64, "b" * 64, "c" * 64
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
WEEK = timedelta(days=7)


# ------------------------------------------------------------------------------- keys and names


@pytest.mark.parametrize(
    ("name", "version", "expected"),
    [
        ("data.csv", 1, "p/data.csv"),
        ("data.csv", 2, "p/data__v2.csv"),
        ("data.csv", 11, "p/data__v11.csv"),
        ("2024/INMET_SE_SP_A701_SAO PAULO.CSV", 3, "p/2024/INMET_SE_SP_A701_SAO PAULO__v3.CSV"),
        ("arquivo.tar.gz", 2, "p/arquivo.tar__v2.gz"),
        ("sem_extensao", 2, "p/sem_extensao__v2"),
        # Names starting with a dot keep it, and stay in their own folder.
        (".env", 2, "p/.env__v2"),
        (".d/x.csv", 2, "p/.d/x__v2.csv"),
        ("..x.csv", 2, "p/..x__v2.csv"),
    ],
)
def test_stored_key_versions_never_reuse_the_name(name: str, version: int, expected: str) -> None:
    assert lake.stored_key("p", name, version) == expected


def test_stored_key_refuses_escaping_names() -> None:
    with pytest.raises(InvalidKeyError):
        lake.stored_key("p", "../x.csv", 1)
    with pytest.raises(InvalidKeyError):
        lake.stored_key("p", "a/../../x.csv", 2)


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("p/data.csv", "p/data__abc123def456.csv"),
        ("p/sub/noext", "p/sub/noext__abc123def456"),
        ("data.csv", "data__abc123def456.csv"),
        (".x", ".x__abc123def456"),
        ("p/.d/x.csv", "p/.d/x__abc123def456.csv"),
    ],
)
def test_disambiguated_key_is_a_sibling_tagged_by_content(key: str, expected: str) -> None:
    assert lake.disambiguated_key(key, "abc123def4567890ffff") == expected


def test_disambiguated_key_drops_non_alphanumerics_of_the_content_id() -> None:
    assert lake.disambiguated_key("p/a.csv", "1-AbC_dEf/../x") == "p/a__1AbCdEfx.csv"
    assert lake.disambiguated_key("p/a.csv", "--") == "p/a__x.csv"


def test_reception_key_and_logical_name_round_trip() -> None:
    key = lake.reception_key("proj", "2024/dados.csv")
    assert key == "proj/2024/dados.csv"
    assert lake.logical_name(key, "proj") == "2024/dados.csv"
    # A key outside the prefix keeps its whole path as its name.
    assert lake.logical_name("other/dados.csv", "proj") == "other/dados.csv"
    assert lake.logical_name("projx/dados.csv", "proj") == "projx/dados.csv"
    with pytest.raises(InvalidKeyError):
        lake.reception_key("proj", "bad\x07name.csv")


def test_lock_key_is_a_stable_signed_int32() -> None:
    keys = [lake.lock_key(kind, value) for kind in ("sha", "name") for value in (A, "dados.csv", "")]
    assert all(-(2**31) <= k < 2**31 for k in keys)
    assert len(set(keys)) == len(keys)
    # crc32 of "sha:" + A, as a signed int32 (checked against zlib.crc32 by hand).
    assert lake.lock_key("sha", A) == -1470675172
    assert lake.lock_key("name", "dados.csv") == 1071155579
    # Known values: the key must be the same in every process (no PYTHONHASHSEED dependence).
    code = "from trilha.domain.lake import lock_key; print(lock_key('sha', 'x'), lock_key('name', 'x'))"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(Path(lake.__file__).parents[1]), "PYTHONHASHSEED": "123"},
    ).stdout.split()
    assert [int(v) for v in out] == [lake.lock_key("sha", "x"), lake.lock_key("name", "x")]
    assert lake.lock_key("sha", "x") == -1264569202


# ------------------------------------------------------------------------------- promotion plan


def item(rid: int, sha: str, name: str = "data.csv") -> lake.PromotionItem:
    return lake.PromotionItem(
        reception_id=rid,
        source_key=f"p/{name}",
        sha256=sha,
        md5="0" * 32,
        size=10,
        etag="e",
        name=name,
    )


def stored(sha: str, dest_key: str) -> dict[str, Any]:
    return {"sha256": sha, "dest_key": dest_key, "dest_bucket": "storage-unique"}


def test_plan_new_content_is_version_one_of_its_name() -> None:
    plan = lake.plan_promotion([item(1, A)], {}, set(), {}, "p")
    assert [(i.action, i.version, i.dest_key, i.previous_sha256) for i in plan.copy] == [
        ("copy", 1, "p/data.csv", None)
    ]
    assert plan.duplicates == plan.repair == []


def test_plan_stored_and_present_content_is_a_duplicate() -> None:
    plan = lake.plan_promotion([item(1, A)], {A: stored(A, "p/data.csv")}, {"p/data.csv"}, {}, "p")
    assert [(i.action, i.dest_key) for i in plan.duplicates] == [("duplicate", "p/data.csv")]
    assert plan.copy == plan.repair == []


def test_plan_audit_row_without_object_is_repaired_once_to_the_audited_key() -> None:
    rows = {A: stored(A, "p/old-name.csv")}
    plan = lake.plan_promotion([item(2, A, "x.csv"), item(1, A, "y.csv")], rows, set(), {}, "p")
    assert [(i.reception_id, i.action, i.dest_key) for i in plan.repair] == [(1, "repair", "p/old-name.csv")]
    assert [(i.reception_id, i.action) for i in plan.duplicates] == [(2, "duplicate")]
    assert plan.copy == []


def test_plan_same_name_other_content_becomes_the_next_version() -> None:
    latest = {"data.csv": {"version": 2, "sha256": A}}
    plan = lake.plan_promotion([item(1, B)], {}, set(), latest, "p")
    (copy,) = plan.copy
    assert (copy.version, copy.dest_key, copy.previous_sha256) == (3, "p/data__v3.csv", A)


def test_plan_same_content_twice_in_a_batch_is_copied_once() -> None:
    plan = lake.plan_promotion([item(5, A, "b.csv"), item(4, A, "a.csv")], {}, set(), {}, "p")
    assert [(i.reception_id, i.dest_key) for i in plan.copy] == [(4, "p/a.csv")]
    assert [(i.reception_id, i.action) for i in plan.duplicates] == [(5, "duplicate")]


def test_plan_two_contents_of_one_name_in_a_batch_get_consecutive_versions() -> None:
    plan = lake.plan_promotion([item(2, B), item(1, A)], {}, set(), {}, "p")
    assert [(i.sha256, i.version, i.dest_key, i.previous_sha256) for i in plan.copy] == [
        (A, 1, "p/data.csv", None),
        (B, 2, "p/data__v2.csv", A),
    ]


def test_plan_never_reuses_a_key_another_content_holds() -> None:
    # "data__v2.csv" is a real file stored at v1; data.csv's second version must not land on it.
    latest = {"data.csv": {"version": 1, "sha256": A}}
    plan = lake.plan_promotion([item(1, B)], {}, set(), latest, "p", taken_keys={"p/data__v2.csv"})
    (copy,) = plan.copy
    assert (copy.version, copy.dest_key) == (3, "p/data__v3.csv")


def test_plan_keys_planned_in_one_batch_do_not_collide() -> None:
    latest = {"data.csv": {"version": 1, "sha256": A}}
    plan = lake.plan_promotion([item(1, C, "data__v2.csv"), item(2, B)], {}, set(), latest, "p")
    assert sorted(i.dest_key for i in plan.copy) == ["p/data__v2.csv", "p/data__v3.csv"]


# ------------------------------------------------------------------------------- cleanup rule


def audit_row(**over: Any) -> dict[str, Any]:
    row = {
        "id": 1,
        "status": "new",
        "reason": None,
        "size_bytes": 10,
        "etag": "e1",
        "sha256": A,
        "uploaded_at": NOW - timedelta(days=30),
    }
    row.update(over)
    return row


STORED = {"id": 9, "sha256": A, "dest_bucket": "storage-unique", "dest_key": "p/data.csv"}


def decide(audit: dict[str, Any] | None = None, **kw: Any) -> lake.CleanupDecision:
    args: dict[str, Any] = {
        "audit": audit_row() if audit is None else audit,
        "current_size": 10,
        "current_etag": "e1",
        "stored": STORED,
        "stored_verified": True,
        "now": NOW,
        "retention": WEEK,
    }
    args.update(kw)
    return lake.cleanup_decision(**args)


def test_cleanup_deletes_only_when_every_condition_holds() -> None:
    d = decide()
    assert d.action == "delete"
    assert "storage-unique/p/data.csv" in d.reason


def test_cleanup_keeps_an_object_without_audit_row() -> None:
    d = lake.cleanup_decision(None, 10, "e1", STORED, True, NOW, WEEK)
    assert (d.action, "no reception_audit row" in d.reason) == ("keep", True)


def test_cleanup_keeps_a_rejected_object_for_inspection() -> None:
    d = decide(audit_row(status="rejected", reason="empty file (0 bytes)"))
    assert d.action == "keep"
    assert "empty file" in d.reason


def test_cleanup_keeps_content_not_stored() -> None:
    d = decide(stored=None)
    assert (d.action, "not in storage_audit" in d.reason) == ("keep", True)


def test_cleanup_keeps_content_whose_stored_object_is_missing() -> None:
    d = decide(stored_verified=False)
    assert d.action == "keep"
    assert "p/data.csv" in d.reason
    assert "missing" in d.reason


@pytest.mark.parametrize(("size", "etag"), [(10, "e2"), (11, "e1")])
def test_cleanup_keeps_an_object_changed_since_audit(size: int, etag: str) -> None:
    d = decide(current_size=size, current_etag=etag)
    assert (d.action, "changed since audit" in d.reason) == ("keep", True)


def test_cleanup_keeps_objects_younger_than_retention() -> None:
    young = decide(audit_row(uploaded_at=NOW - timedelta(days=6, hours=23)))
    assert (young.action, "younger than the retention window (7 days)" in young.reason) == ("keep", True)
    assert decide(audit_row(uploaded_at=NOW - timedelta(days=7))).action == "delete"
    assert decide(audit_row(uploaded_at=None)).action == "keep"
    assert decide(audit_row(uploaded_at=NOW), retention=timedelta(0)).action == "delete"


def test_versioned_and_staged_keys_of_a_255_byte_name_fit_in_a_file_name() -> None:
    from trilha.domain.lineage import staged_key

    name = "n" * 251 + ".csv"
    for key in (
        lake.stored_key("proj", name, 2),
        lake.disambiguated_key(f"proj/{name}", "0123456789abcdef"),
        staged_key("proj", "generic", name, "ab" * 32, "c0ffee" * 2),
        staged_key("proj", "generic", f"sub/{name}", "ab" * 32, "c0ffee" * 2, quarantine=True),
    ):
        assert max(len(part.encode()) for part in key.split("/")) <= 255, key
    assert lake.stored_key("proj", name, 2).endswith("n__v2.csv")
    assert staged_key("proj", "generic", name, "ab" * 32, "c0ffee" * 2).endswith(
        "n__abababababab.c0ffeec0ffee.parquet"
    )


# cleanup's per-object reads, decided without the hooks ------------------------------------------
AUDITED_ROW = {"id": 7, "etag": "e1", "sha256": "a" * 64, "status": "new", "deleted_at": None}
STORED_ROW = {"id": 3, "sha256": "a" * 64, "md5": "m1", "size_bytes": 1200}
DELETED_AT = datetime(2026, 3, 1, 12, tzinfo=UTC)


def test_an_object_uploaded_again_after_its_recorded_deletion_has_no_audit_row() -> None:
    deleted = {**AUDITED_ROW, "deleted_at": DELETED_AT}
    assert lake.current_audit(deleted, DELETED_AT + timedelta(minutes=5)) is None
    # Older than the record: a deletion a killed run did not finish, still described by the row.
    assert lake.current_audit(deleted, DELETED_AT - timedelta(minutes=5)) is deleted
    assert lake.current_audit(AUDITED_ROW, DELETED_AT) is AUDITED_ROW


def test_only_an_audited_unchanged_stored_object_is_worth_a_head() -> None:
    assert lake.needs_storage_check(AUDITED_ROW, STORED_ROW, "e1")
    assert not lake.needs_storage_check(AUDITED_ROW, STORED_ROW, "e2")  # replaced since it was audited
    assert not lake.needs_storage_check({**AUDITED_ROW, "status": "rejected"}, STORED_ROW, "e1")
    assert not lake.needs_storage_check(AUDITED_ROW, None, "e1")
    assert not lake.needs_storage_check(None, STORED_ROW, "e1")


def test_the_stored_copy_must_hold_the_recorded_size_sha256_and_md5() -> None:
    assert lake.stored_copy_verified(STORED_ROW, 1200, "a" * 64, "m1")
    assert lake.stored_copy_verified(STORED_ROW, 1200, "a" * 64, None)  # no plain md5 ETag: not compared
    assert not lake.stored_copy_verified(STORED_ROW, None, "a" * 64, "m1")  # missing
    assert not lake.stored_copy_verified(STORED_ROW, 1199, "a" * 64, "m1")
    assert not lake.stored_copy_verified(STORED_ROW, 1200, "b" * 64, "m1")
    assert not lake.stored_copy_verified(STORED_ROW, 1200, "a" * 64, "m2")


def test_the_cleanup_record_names_the_action_and_keeps_the_sha256_only_for_the_audited_etag() -> None:
    delete = lake.CleanupDecision("delete", "stored and verified")
    record = lake.cleanup_record("inmet/a.csv", 1200, "e1", AUDITED_ROW, STORED_ROW, delete, dry_run=True)
    assert record == lake.CleanupRecord(
        7, "inmet/a.csv", "a" * 64, 1200, "e1", 3, "would_delete", delete.reason
    )
    assert (
        lake.cleanup_record("k", 1, "e1", AUDITED_ROW, STORED_ROW, delete, dry_run=False).action == "deleted"
    )
    keep = lake.CleanupDecision("keep", "changed since registered")
    changed = lake.cleanup_record("k", 5, "e9", AUDITED_ROW, None, keep, dry_run=False)
    assert (changed.action, changed.sha256, changed.storage_id) == ("kept", None, None)
