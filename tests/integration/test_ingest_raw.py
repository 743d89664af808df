"""raw_ingest against the real stack: registration, uniqueness, landing directory, bad input, re-runs.

Each test owns a fresh key prefix (uuid) in the shared reception bucket and passes it as
``key_prefix``, so it only ever sees its own objects.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError

from tests.integration.ingest_support import (
    RECEPTION,
    S3Calls,
    ingest,
    last_audit_log,
    list_keys,
    md5,
    new_scope,
    private_s3,
    put,
    query,
    reception_rows,
    run,
    s3,
    sha,
    snapshot,
)

pytestmark = pytest.mark.integration


def by_key(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["object_key"]: r for r in rows}


def test_every_object_is_registered_once_with_checksums_and_its_duplicate(stack: Any) -> None:
    s = new_scope("raw")
    a = f"estacao;chuva\nA701;0,2\n{s.prefix}\n".encode()
    b = f"estacao;chuva\nA702;1,0\n{s.prefix}\n".encode()
    etags = {
        s.key("a.csv"): put(stack, s.key("a.csv"), a),
        s.key("b.csv"): put(stack, s.key("b.csv"), b),
        s.key("sub/copia de a.csv"): put(stack, s.key("sub/copia de a.csv"), a),
    }
    listed = list_keys(stack, RECEPTION, s.keys)
    op = ingest(key_prefix=s.keys)
    calls = S3Calls(op)

    summary = run(op)

    rows = by_key(reception_rows(stack, s.keys))
    assert sorted(rows) == sorted(etags)
    for key, row in rows.items():
        content = b if key.endswith("b.csv") else a
        assert (row["sha256"], row["md5"], row["size_bytes"]) == (sha(content), md5(content), len(content))
        assert row["etag"] == etags[key]
        assert row["source_kind"] == "upload"
        assert row["file_name"] == key.rsplit("/", 1)[1]
        # The upload time is the server's, from the listing, not the time of registration.
        assert abs(row["uploaded_at"] - listed[key]["LastModified"]) < timedelta(seconds=1)
    assert rows[s.key("a.csv")]["status"] == "new"
    assert rows[s.key("b.csv")]["status"] == "new"
    dup = rows[s.key("sub/copia de a.csv")]
    assert (dup["status"], dup["duplicate_of"]) == ("duplicate", sha(a))
    assert s.key("a.csv") in dup["reason"]
    claims = query(
        stack, "SELECT sha256, first_key FROM raw.data_files WHERE sha256 = ANY(%s)", ([sha(a), sha(b)],)
    )
    assert {r["sha256"]: r["first_key"] for r in claims} == {sha(a): s.key("a.csv"), sha(b): s.key("b.csv")}
    # Each object was streamed exactly once (sha256 and md5 from the same pass).
    assert calls["GetObject"] == 3
    counters = summary["counters"]
    assert (counters["seen"], counters["new"], counters["duplicate"], counters["rejected"]) == (3, 2, 1, 0)
    assert counters["bytes"] == 2 * len(a) + len(b)
    logged = last_audit_log(stack, rows[s.key("a.csv")]["run_id"])
    assert (logged["status"], logged["counters"]["new"]) == ("success", 2)


def test_run_log_document_carries_the_counters(stack: Any) -> None:
    from pymongo import MongoClient

    s = new_scope("rawlog")
    put(stack, s.key("x.csv"), f"x;y\n{s.prefix}\n".encode())
    summary = run(ingest(key_prefix=s.keys))

    client = MongoClient(stack.mongo_uri(), serverSelectionTimeoutMS=3000)
    try:
        doc = client.get_database("trilha").run_log.find_one({"_id": summary["run_log_id"]})
    finally:
        client.close()
    assert doc is not None
    assert doc["status"] == "success"
    assert doc["counters"]["new"] == 1
    assert doc["audit_log_id"] == summary["audit_log_id"]


def _rerun_cost(stack: Any, n: int) -> tuple[int, int, dict[str, int]]:
    """Register ``n`` objects, then re-run: return (round trips, GetObject calls, counters) of the re-run."""
    s = new_scope(f"rerun{n}")
    for i in range(n):
        put(stack, s.key(f"f{i:03d}.csv"), f"{s.prefix};{i}\n".encode())
    first = run(ingest(key_prefix=s.keys))
    assert first["counters"]["new"] == n
    before = snapshot(stack)

    op = ingest(key_prefix=s.keys)
    calls = S3Calls(op)
    again = run(op)

    assert snapshot(stack) == before, "a re-run over unchanged input created rows or objects"
    assert (again["counters"]["new"], again["counters"]["duplicate"], again["registered"]) == (0, 0, 0)
    assert again["counters"]["seen"] == n
    assert calls["ListObjectsV2"] == 1
    return op.audit.round_trips, calls["GetObject"], again["counters"]


def test_rerun_downloads_nothing_and_costs_constant_round_trips(stack: Any) -> None:
    trips_10, gets_10, _ = _rerun_cost(stack, 10)
    trips_60, gets_60, _ = _rerun_cost(stack, 60)

    assert gets_10 == gets_60 == 0
    assert trips_10 == trips_60, f"SQL round trips grew with N: {trips_10} for 10, {trips_60} for 60"


def test_landing_directory_checks_uniqueness_before_uploading(stack: Any, tmp_path: Path) -> None:
    s = new_scope("land")
    known = f"ja;registrado\n{s.prefix}\n".encode()
    put(stack, s.key("earlier/known.csv"), known)
    run(ingest(key_prefix=s.keys))
    landing = tmp_path / "landing"
    (landing / "2024").mkdir(parents=True)
    fresh = f"novo;arquivo\n{s.prefix}\n".encode()
    (landing / "2024" / "novo.csv").write_bytes(fresh)
    (landing / "copia.csv").write_bytes(fresh)  # same bytes as novo.csv, in the same run
    (landing / "ja.csv").write_bytes(known)  # bytes the inventory already holds
    (landing / "vazio.csv").write_bytes(b"")

    op = ingest(key_prefix=s.keys, landing_dir=str(landing), landing_prefix=s.key("landing"))
    calls = S3Calls(op)
    summary = run(op)

    keys = list_keys(stack, RECEPTION, s.keys)
    assert sorted(keys) == [s.key("earlier/known.csv"), s.key("landing/2024/novo.csv")]
    # Duplicate bytes never travelled: one upload, and nothing read back to be hashed.
    assert calls["PutObject"] == 1
    assert calls["GetObject"] == 0
    row = by_key(reception_rows(stack, s.keys))[s.key("landing/2024/novo.csv")]
    assert (row["status"], row["sha256"], row["md5"]) == ("new", sha(fresh), md5(fresh))
    assert (row["source_kind"], row["source_ref"]) == (
        "local",
        str((landing / "2024" / "novo.csv").resolve()),
    )
    assert row["source_revision"]
    counters = summary["counters"]
    assert (counters["new"], counters["duplicate"], counters["rejected"]) == (1, 2, 1)
    problems = last_audit_log(stack, row["run_id"])["problems"]
    assert any(p["item"] == "vazio.csv" and "empty" in p["reason"] for p in problems)

    before = snapshot(stack)
    op = ingest(key_prefix=s.keys, landing_dir=str(landing), landing_prefix=s.key("landing"))
    calls = S3Calls(op)
    again = run(op)
    assert snapshot(stack) == before
    assert (calls["PutObject"], calls["GetObject"], again["counters"]["new"]) == (0, 0, 0)


def test_bad_objects_are_rejected_with_a_reason_and_the_batch_goes_on(stack: Any) -> None:
    s = new_scope("bad")
    good = f"ok;{s.prefix}\n".encode()
    put(stack, s.key("bom.csv"), good)
    put(stack, s.key("vazio.csv"), b"")
    put(stack, s.key("bad\x07name.csv"), b"sino;1\n")
    put(stack, s.key("tab\tname.csv"), b"tab;1\n")

    summary = run(ingest(key_prefix=s.keys))

    rows = by_key(reception_rows(stack, s.keys))
    assert rows[s.key("bom.csv")]["status"] == "new"
    empty = rows[s.key("vazio.csv")]
    assert (empty["status"], empty["size_bytes"]) == ("rejected", 0)
    assert "empty" in empty["reason"]
    for name in ("bad\x07name.csv", "tab\tname.csv"):
        row = rows[s.key(name)]
        assert row["status"] == "rejected"
        assert "control characters" in row["reason"]
    counters = summary["counters"]
    assert (counters["new"], counters["rejected"], counters["failed"]) == (1, 3, 0)
    # Rejected content is not claimed: raw.data_files never names a rejected object.
    assert not query(
        stack, "SELECT 1 FROM raw.data_files WHERE first_key = ANY(%s)", ([s.key("bad\x07name.csv")],)
    )


def test_the_server_refuses_dot_dot_keys_so_they_never_reach_the_lake(stack: Any) -> None:
    """rclone refuses ``..`` segments outright; such names are tested at the capture path instead."""
    from botocore.exceptions import ClientError

    s = new_scope("dots")
    with pytest.raises(ClientError, match="unsupported characters"):
        put(stack, s.key("../escape.csv"), b"x")
    assert list_keys(stack, RECEPTION, s.keys) == {}


def test_object_vanishing_between_listing_and_reading_is_skipped(stack: Any) -> None:
    s = new_scope("vanish")
    for name in ("a.csv", "b.csv", "c.csv"):
        put(stack, s.key(name), f"{name};{s.prefix}\n".encode())
    op = ingest(key_prefix=s.keys, workers=1)
    real_listing = op.minio.iter_objects

    def listing_then_delete(bucket: str, prefix: str = "", **kw: Any) -> Any:
        objects = list(real_listing(bucket, prefix, **kw))
        s3(stack).delete_object(Bucket=bucket, Key=s.key("b.csv"))
        yield from objects

    op.minio.iter_objects = listing_then_delete
    summary = run(op)

    rows = by_key(reception_rows(stack, s.keys))
    assert sorted(rows) == [s.key("a.csv"), s.key("c.csv")]
    assert summary["counters"]["skipped"] == 1
    problems = last_audit_log(stack, rows[s.key("a.csv")]["run_id"])["problems"]
    assert problems == [
        {
            "kind": "skipped",
            "item": f"{RECEPTION}/{s.key('b.csv')}",
            "reason": "vanished between listing and reading",
        }
    ]


def test_endpoint_dying_mid_run_fails_and_registers_only_what_was_read(
    stack: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A private rclone is killed while the second batch is being read: the task raises, the first
    batch (committed) is registered with the right checksums, and nothing of the second batch is."""
    import trilha.operators.base as ingest_module

    s = new_scope("dying")
    with private_s3(tmp_path) as server:
        server.client().create_bucket(Bucket=RECEPTION)
        contents = {s.key(f"f{i:02d}.csv"): f"conteudo {i} {s.prefix}\n".encode() for i in range(12)}
        for key, data in contents.items():
            server.client().put_object(Bucket=RECEPTION, Key=key, Body=data)
        monkeypatch.setenv("AIRFLOW_CONN_TRILHA_MINIO_DYING", server.conn_json())
        monkeypatch.setattr(ingest_module, "BATCH", 5)
        op = ingest(key_prefix=s.keys, aws_conn_id="trilha_minio_dying", workers=1)
        real_digest = op.minio.digest_object
        reads: list[str] = []

        def digest_then_die(bucket: str, key: str) -> Any:
            reads.append(key)
            if len(reads) == 8:
                server.kill()
            return real_digest(bucket, key)

        op.minio.digest_object = digest_then_die
        with pytest.raises(EndpointConnectionError):
            run(op)

    rows = reception_rows(stack, s.keys)
    assert [r["object_key"] for r in rows] == sorted(contents)[:5]
    for row in rows:
        assert row["sha256"] == sha(contents[row["object_key"]])
    failed = query(stack, "SELECT status, error FROM meta.audit_log WHERE run_id = %s", (rows[0]["run_id"],))
    assert failed[0]["status"] == "failed"
    assert "EndpointConnectionError" in failed[0]["error"]
