"""reception_cleanup against the real stack: each of the five conditions, dry-run, records, re-runs.

One scenario (module fixture) builds a reception prefix where every object fails a different
condition of the rule (or none), then runs the cleanup four times: dry-run, real with a one-day
retention, real with no retention, and the same again. Each test reads one outcome of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.integration.ingest_support import (
    RECEPTION,
    STORAGE,
    S3Calls,
    Scope,
    cleanup,
    ingest,
    list_keys,
    new_scope,
    promote,
    put,
    query,
    reception_rows,
    run,
    s3,
    sha,
    snapshot,
)

pytestmark = pytest.mark.integration

DELETABLE = ("ok.csv", "copia de ok.csv")


@dataclass
class Scenario:
    scope: Scope
    contents: dict[str, bytes]
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    keys_after: dict[str, list[str]] = field(default_factory=dict)
    snapshots: dict[str, Any] = field(default_factory=dict)
    calls: dict[str, S3Calls] = field(default_factory=dict)
    marked_deleted: dict[str, list[str]] = field(default_factory=dict)

    def decisions(self, run_name: str) -> dict[str, dict[str, Any]]:
        """cleanup_log rows of one run, by file name."""
        rows = query(
            self.stack,
            "SELECT * FROM meta.cleanup_log WHERE run_id = %s ORDER BY id",
            (self.run_id(run_name),),
        )
        return {r["object_key"].rsplit("/", 1)[1]: r for r in rows}

    def run_id(self, run_name: str) -> str:
        return f"cleanup-{run_name}-{self.scope.prefix}"

    stack: Any = None


@pytest.fixture(scope="module")
def scenario(stack: Any) -> Scenario:
    s = new_scope("clean")
    base = {name: f"{name};{s.prefix}\n".encode() for name in ("ok.csv", "missing.csv", "changed.csv")}
    contents = {**base, "copia de ok.csv": base["ok.csv"], "vazio.csv": b""}
    for name, data in contents.items():
        put(stack, s.key(name), data)
    run(ingest(key_prefix=s.keys))
    run(promote(s))
    # Registered but not promoted yet.
    contents["not stored.csv"] = f"not stored;{s.prefix}\n".encode()
    put(stack, s.key("not stored.csv"), contents["not stored.csv"])
    run(ingest(key_prefix=s.keys))
    # Never registered.
    contents["unregistered.csv"] = f"unregistered;{s.prefix}\n".encode()
    put(stack, s.key("unregistered.csv"), contents["unregistered.csv"])
    # Stored, but the stored object is gone.
    s3(stack).delete_object(Bucket=STORAGE, Key=s.key("missing.csv"))
    # Re-uploaded with other bytes under the same key since its audit.
    contents["changed.csv"] = f"changed since;{s.prefix}\n".encode()
    put(stack, s.key("changed.csv"), contents["changed.csv"])

    sc = Scenario(scope=s, contents=contents, stack=stack)
    plan = [
        ("dry", {}),  # dry_run is the default
        ("young", {"dry_run": False, "retention_days": 1}),
        ("real", {"dry_run": False, "retention_days": 0}),
        ("again", {"dry_run": False, "retention_days": 0}),
    ]
    for name, kwargs in plan:
        sc.snapshots[f"before-{name}"] = snapshot(stack)
        op = cleanup(s, retention_days=kwargs.pop("retention_days", 0), **kwargs)
        sc.calls[name] = S3Calls(op)
        sc.runs[name] = run(op, run_id=sc.run_id(name))
        sc.keys_after[name] = sorted(k.rsplit("/", 1)[1] for k in list_keys(stack, RECEPTION, s.keys))
        sc.snapshots[f"after-{name}"] = snapshot(stack)
        sc.marked_deleted[name] = [r["object_key"] for r in reception_rows(stack, s.keys) if r["deleted_at"]]
    return sc


def test_dry_run_deletes_nothing_and_lists_what_it_would_delete(scenario: Scenario) -> None:
    assert scenario.runs["dry"]["dry_run"] is True
    assert scenario.keys_after["dry"] == sorted(scenario.contents)
    decisions = scenario.decisions("dry")
    assert sorted(decisions) == sorted(scenario.contents)
    would = sorted(n for n, d in decisions.items() if d["action"] == "would_delete")
    assert would == sorted(DELETABLE)
    assert all(d["dry_run"] for d in decisions.values())
    assert all(d["action"] == "kept" and d["reason"] for n, d in decisions.items() if n not in DELETABLE), (
        "every object that is not deleted says why"
    )
    assert (scenario.runs["dry"]["would_delete"], scenario.runs["dry"]["deleted"]) == (2, 0)
    assert scenario.marked_deleted["dry"] == []


def test_dry_run_logs_each_decision(stack: Any, capfd: pytest.CaptureFixture[str]) -> None:
    s = new_scope("cleanlog")
    put(stack, s.key("stored.csv"), f"stored;{s.prefix}\n".encode())
    run(ingest(key_prefix=s.keys))
    run(promote(s))
    put(stack, s.key("stray.csv"), f"stray;{s.prefix}\n".encode())
    capfd.readouterr()

    run(cleanup(s, retention_days=0))

    out = capfd.readouterr().out
    assert f"would_delete {s.key('stored.csv')}: verified stored at {STORAGE}/{s.key('stored.csv')}" in out
    assert f"keep {s.key('stray.csv')}: no reception_audit row for this object" in out


def kept_reason(scenario: Scenario, name: str, run_name: str = "real") -> str:
    decision = scenario.decisions(run_name)[name]
    assert decision["action"] == "kept"
    assert name in scenario.keys_after[run_name]
    return str(decision["reason"])


def test_object_without_audit_row_is_kept(scenario: Scenario) -> None:
    assert "no reception_audit row" in kept_reason(scenario, "unregistered.csv")


def test_object_not_stored_yet_is_kept(scenario: Scenario) -> None:
    assert "not in storage_audit yet" in kept_reason(scenario, "not stored.csv")


def test_object_whose_stored_copy_is_missing_is_kept(scenario: Scenario) -> None:
    reason = kept_reason(scenario, "missing.csv")
    assert f"{STORAGE}/{scenario.scope.key('missing.csv')}" in reason
    assert "missing or holds other content" in reason


def test_object_changed_since_audit_is_kept(scenario: Scenario) -> None:
    assert "changed since audit" in kept_reason(scenario, "changed.csv")
    # The audited sha256 no longer describes the object, so the decision does not claim it.
    assert scenario.decisions("real")["changed.csv"]["sha256"] is None
    assert scenario.decisions("real")["ok.csv"]["sha256"] == sha(scenario.contents["ok.csv"])


def test_rejected_object_is_kept_for_inspection(scenario: Scenario) -> None:
    assert "rejected at ingestion" in kept_reason(scenario, "vazio.csv")


def test_objects_younger_than_retention_are_kept(scenario: Scenario) -> None:
    young = scenario.runs["young"]
    assert (young["deleted"], young["dry_run"]) == (0, False)
    assert scenario.keys_after["young"] == sorted(scenario.contents)
    for name in DELETABLE:
        assert "younger than the retention window (1 days)" in kept_reason(scenario, name, "young")


def test_verified_old_objects_are_deleted_and_every_deletion_recorded(scenario: Scenario) -> None:
    s = scenario.scope
    assert scenario.runs["real"]["deleted"] == 2
    assert scenario.keys_after["real"] == sorted(set(scenario.contents) - set(DELETABLE))
    (stored,) = query(
        scenario.stack,
        "SELECT id, dest_key FROM storage_audit WHERE project_name = %s AND sha256 = %s",
        (s.name, sha(scenario.contents["ok.csv"])),
    )
    audit = {r["object_key"]: r for r in reception_rows(scenario.stack, s.keys)}
    decisions = scenario.decisions("real")
    for name in DELETABLE:
        d = decisions[name]
        assert (d["action"], d["dry_run"], d["sha256"]) == ("deleted", False, sha(scenario.contents[name]))
        assert d["storage_audit_id"] == stored["id"]
        assert d["reception_audit_id"] == audit[s.key(name)]["id"]
        assert audit[s.key(name)]["deleted_at"] is not None
    assert [k for k, r in audit.items() if r["deleted_at"]] == sorted(s.key(n) for n in DELETABLE)
    # The stored copy the deletions relied on is still there.
    assert stored["dest_key"] in list_keys(scenario.stack, STORAGE, s.keys)


def test_rerun_deletes_nothing_and_only_records_its_decisions(scenario: Scenario) -> None:
    """The second real run changes nothing; its only new rows are its own 'kept' decisions (one per
    object still in reception: the run's record) and its meta.audit_log row, which is not counted."""
    again = scenario.runs["again"]
    assert (again["deleted"], again["kept"]) == (0, len(scenario.keys_after["real"]))
    (tables_before, buckets_before) = scenario.snapshots["before-again"]
    (tables_after, buckets_after) = scenario.snapshots["after-again"]
    assert buckets_after == buckets_before
    changed = {
        t: tables_after[t] - tables_before[t] for t in tables_after if tables_after[t] != tables_before[t]
    }
    assert changed == {"meta.cleanup_log": len(scenario.keys_after["real"])}
    assert {d["action"] for d in scenario.decisions("again").values()} == {"kept"}
    assert scenario.calls["again"]["GetObject"] == 0
    assert scenario.calls["again"]["DeleteObjects"] == 0


def test_rerun_costs_constant_round_trips_and_downloads_nothing(stack: Any) -> None:
    def rerun(n: int) -> tuple[int, S3Calls]:
        s = new_scope(f"cl{n}")
        for i in range(n):
            put(stack, s.key(f"f{i:03d}.csv"), f"{s.prefix};{i}\n".encode())
        run(ingest(key_prefix=s.keys))
        run(promote(s))
        run(cleanup(s, dry_run=False, retention_days=1))
        op = cleanup(s, dry_run=False, retention_days=1)
        calls = S3Calls(op)
        summary = run(op)
        assert (summary["deleted"], summary["kept"]) == (0, n)
        return op.audit.round_trips, calls

    trips_10, calls_10 = rerun(10)
    trips_60, calls_60 = rerun(60)
    for calls in (calls_10, calls_60):
        assert (calls["GetObject"], calls["ListObjectsV2"], calls["DeleteObjects"]) == (0, 1, 0)
    assert trips_10 == trips_60, f"SQL round trips grew with N: {trips_10} for 10, {trips_60} for 60"


def test_same_bytes_uploaded_again_after_cleanup_get_their_own_record(stack: Any) -> None:
    """Cleanup deleted an object; the same bytes come back under the same key (same ETag).

    The new upload is a new reception object: before raw_ingest registers it, cleanup keeps it
    (no audit row describes it yet); after, it has its own live reception_audit row, and its own
    deletion gets its own cleanup_log record.
    """
    s = new_scope("again")
    data = f"again;{s.prefix}\n".encode()
    key = s.key("again.csv")
    put(stack, key, data)
    run(ingest(key_prefix=s.keys))
    run(promote(s))
    run(cleanup(s, retention_days=0, dry_run=False))
    assert key not in list_keys(stack, RECEPTION, s.keys)

    put(stack, key, data)  # same key, same bytes, same ETag
    kept = run(cleanup(s, retention_days=0, dry_run=False))
    assert kept["deleted"] == 0
    assert key in list_keys(stack, RECEPTION, s.keys)

    run(ingest(key_prefix=s.keys))
    rows = reception_rows(stack, s.keys)
    assert [r["deleted_at"] is None for r in rows] == [False, True]
    gone = run(cleanup(s, retention_days=0, dry_run=False))
    assert gone["deleted"] == 1
    deletions = query(
        stack,
        "SELECT reception_audit_id FROM meta.cleanup_log "
        "WHERE object_key = %s AND action = 'deleted' ORDER BY id",
        (key,),
    )
    assert [d["reception_audit_id"] for d in deletions] == [r["id"] for r in rows]
