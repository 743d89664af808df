"""reception_promote against the real stack: the double check, verified server-side copies, versions,
per-item failures, project parameters, re-runs and an S3 endpoint that dies mid-run.

Each test owns a fresh project (name and prefix from a uuid) and only promotes under that prefix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowException, AirflowFailException
from botocore.exceptions import EndpointConnectionError

from tests.integration.ingest_support import (
    RECEPTION,
    STORAGE,
    S3Calls,
    Scope,
    head,
    ingest,
    last_audit_log,
    list_keys,
    md5,
    new_scope,
    private_s3,
    promote,
    put,
    query,
    read,
    run,
    s3,
    sha,
    snapshot,
    storage_rows,
    table_counts,
)

pytestmark = pytest.mark.integration


def stage(stack: Any, s: Scope, files: dict[str, bytes]) -> None:
    """Upload ``files`` under the project's prefix and register them (raw_ingest)."""
    for rel, data in files.items():
        put(stack, s.key(rel), data)
    run(ingest(key_prefix=s.keys))


def stored_by_key(stack: Any, s: Scope) -> dict[str, dict[str, Any]]:
    return {r["dest_key"]: r for r in storage_rows(stack, s.name)}


def test_promote_copies_server_side_verifies_and_records(
    stack: Any, capfd: pytest.CaptureFixture[str]
) -> None:
    s = new_scope("prom")
    a, b = f"a;{s.prefix}\n".encode(), f"b;{s.prefix}\n".encode()
    stage(stack, s, {"a.csv": a, "2024/b.csv": b, "copia.csv": a})
    op = promote(s)
    calls = S3Calls(op)
    capfd.readouterr()

    summary = run(op)

    assert "promote: copied=2 duplicates=1 failed=0" in capfd.readouterr().out

    assert (summary["copied"], summary["duplicates"], summary["failed"]) == (2, 1, 0)
    assert summary["prefix"] == s.prefix
    assert sorted(list_keys(stack, STORAGE, s.keys)) == [s.key("2024/b.csv"), s.key("a.csv")]
    assert read(stack, STORAGE, s.key("a.csv")) == a
    metadata = {k.lower(): v for k, v in head(stack, STORAGE, s.key("2024/b.csv"))["Metadata"].items()}
    assert metadata["sha256"] == sha(b)
    # Server-side: no byte went through the worker.
    assert calls["GetObject"] == calls["PutObject"] == 0
    assert calls["CopyObject"] == 2
    rows = stored_by_key(stack, s)
    reception = {
        r["object_key"]: r
        for r in query(
            stack, "SELECT * FROM reception_audit WHERE left(object_key, %s) = %s", (len(s.keys), s.keys)
        )
    }
    row = rows[s.key("2024/b.csv")]
    assert (row["project_name"], row["project_prefix"], row["source_bucket"]) == (s.name, s.prefix, RECEPTION)
    assert (row["sha256"], row["md5"], row["size_bytes"], row["version"]) == (sha(b), md5(b), len(b), 1)
    assert (row["dest_bucket"], row["logical_name"]) == (STORAGE, "2024/b.csv")
    assert row["reception_audit_id"] == reception[s.key("2024/b.csv")]["id"]
    assert row["moved_at"] is not None
    project = query(stack, "SELECT * FROM projects_registry WHERE name = %s", (s.name,))
    assert [(p["prefix"], p["created_at"] is not None) for p in project] == [(s.prefix, True)]
    logged = last_audit_log(stack, row["run_id"])
    assert (logged["counters"]["copied"], logged["counters"]["duplicate"]) == (2, 1)


def test_double_check_needs_the_audit_row_and_the_physical_object(stack: Any) -> None:
    s = new_scope("dbl")
    files = {n: f"{n};{s.prefix}\n".encode() for n in ("ok.csv", "lost.csv", "tampered.csv")}
    stage(stack, s, files)
    run(promote(s))
    rows_before = stored_by_key(stack, s)
    client = s3(stack)
    client.delete_object(Bucket=STORAGE, Key=s.key("lost.csv"))
    client.put_object(Bucket=STORAGE, Key=s.key("tampered.csv"), Body=b"other bytes")

    summary = run(promote(s))

    # The audit row alone is not enough: both objects are copied again, to their audited keys.
    assert (summary["copied"], summary["duplicates"]) == (2, 1)
    for name, data in files.items():
        assert read(stack, STORAGE, s.key(name)) == data
    assert stored_by_key(stack, s) == rows_before, "a repair must not add or change storage_audit rows"


def test_same_name_with_new_content_becomes_a_new_version_never_an_overwrite(stack: Any) -> None:
    s = new_scope("ver")
    v1, v2, v3 = (f"versao {i};{s.prefix}\n".encode() for i in (1, 2, 3))
    stage(stack, s, {"dados.csv": v1})
    run(promote(s))
    stage(stack, s, {"dados.csv": v2})
    second = run(promote(s))
    stage(stack, s, {"dados.csv": v3})
    run(promote(s))

    assert second["copied"] == 1
    assert read(stack, STORAGE, s.key("dados.csv")) == v1
    assert read(stack, STORAGE, s.key("dados__v2.csv")) == v2
    assert read(stack, STORAGE, s.key("dados__v3.csv")) == v3
    history = query(
        stack,
        "SELECT h.version, h.sha256, h.previous_sha256, h.dest_key, s.dest_key AS row_key "
        "FROM meta.version_history h JOIN projects_registry p ON p.id = h.project_id "
        "LEFT JOIN storage_audit s ON s.id = h.storage_audit_id "
        "WHERE p.name = %s AND h.logical_name = 'dados.csv' ORDER BY h.version",
        (s.name,),
    )
    assert [(h["version"], h["sha256"], h["previous_sha256"], h["dest_key"]) for h in history] == [
        (1, sha(v1), None, s.key("dados.csv")),
        (2, sha(v2), sha(v1), s.key("dados__v2.csv")),
        (3, sha(v3), sha(v2), s.key("dados__v3.csv")),
    ]
    assert all(h["row_key"] == h["dest_key"] for h in history)


def test_a_new_version_never_lands_on_a_file_named_like_a_version(stack: Any) -> None:
    s = new_scope("clash")
    a, x, b = (f"{n};{s.prefix}\n".encode() for n in ("a", "x", "b"))
    stage(stack, s, {"dados.csv": a, "dados__v2.csv": x})
    run(promote(s))
    stage(stack, s, {"dados.csv": b})

    # Only dados.csv is promoted now: the clash must be found in the audit, not in the batch itself.
    summary = run(promote(s, key_prefix=s.key("dados.csv")))

    assert summary["copied"] == 1
    assert read(stack, STORAGE, s.key("dados__v2.csv")) == x, "another file was overwritten"
    rows = stored_by_key(stack, s)
    new = [r for r in rows.values() if r["sha256"] == sha(b)]
    assert [(r["logical_name"], r["version"]) for r in new] == [("dados.csv", 3)]
    assert read(stack, STORAGE, new[0]["dest_key"]) == b
    for row in rows.values():
        assert sha(read(stack, STORAGE, row["dest_key"])) == row["sha256"]


def test_rerun_copies_nothing_downloads_nothing_and_costs_constant_round_trips(stack: Any) -> None:
    def rerun(n: int) -> tuple[int, dict[str, Any], S3Calls]:
        s = new_scope(f"pr{n}")
        stage(stack, s, {f"f{i:03d}.csv": f"{s.prefix};{i}\n".encode() for i in range(n)})
        assert run(promote(s))["copied"] == n
        before = snapshot(stack)
        op = promote(s, project_prefix=None)
        calls = S3Calls(op)
        summary = run(op)
        assert snapshot(stack) == before, "a re-run over unchanged input created rows or objects"
        assert (summary["copied"], summary["duplicates"]) == (0, n)
        return op.audit.round_trips, summary, calls

    trips_10, _, calls_10 = rerun(10)
    trips_60, _, calls_60 = rerun(60)

    for calls in (calls_10, calls_60):
        assert calls["GetObject"] == calls["CopyObject"] == calls["HeadObject"] == 0
        assert calls["ListObjectsV2"] == 1
    assert trips_10 == trips_60, f"SQL round trips grew with N: {trips_10} for 10, {trips_60} for 60"


def test_vanished_and_changed_reception_objects_fail_alone(stack: Any) -> None:
    s = new_scope("gone")
    files = {n: f"{n};{s.prefix}\n".encode() for n in ("fica.csv", "some.csv", "muda.csv")}
    stage(stack, s, files)
    client = s3(stack)
    client.delete_object(Bucket=RECEPTION, Key=s.key("some.csv"))
    changed = f"outro conteudo;{s.prefix}\n".encode()
    client.put_object(Bucket=RECEPTION, Key=s.key("muda.csv"), Body=changed)

    with pytest.raises(AirflowException, match=r"2 item\(s\) failed"):
        run(promote(s), run_id=f"gone-{s.prefix}")

    # The batch went on: the good object is stored; nothing is stored or recorded for the two others.
    assert sorted(list_keys(stack, STORAGE, s.keys)) == [s.key("fica.csv")]
    assert sorted(stored_by_key(stack, s)) == [s.key("fica.csv")]
    logged = last_audit_log(stack, f"gone-{s.prefix}")
    assert (logged["counters"]["copied"], logged["counters"]["failed"]) == (1, 2)
    items = {p["item"]: p["reason"] for p in logged["problems"] if p["kind"] == "failed"}
    assert set(items) == {f"{RECEPTION}/{s.key('some.csv')}", f"{RECEPTION}/{s.key('muda.csv')}"}
    assert "gone or changed" in items[f"{RECEPTION}/{s.key('some.csv')}"]

    # Once raw_ingest registers the new content, the superseded row is no longer a candidate.
    run(ingest(key_prefix=s.keys))
    client.put_object(Bucket=RECEPTION, Key=s.key("some.csv"), Body=files["some.csv"])
    run(ingest(key_prefix=s.keys))
    summary = run(promote(s))
    assert summary["failed"] == 0
    assert read(stack, STORAGE, s.key("muda.csv")) == changed
    assert read(stack, STORAGE, s.key("some.csv")) == files["some.csv"]


def test_non_ascii_names_are_promoted_with_their_name_in_the_metadata(stack: Any) -> None:
    """Issue 13: a Brazilian file name stopped the whole promote (botocore refuses non-ASCII S3
    metadata: "Non ascii characters found in S3 metadata for key 'source-key'"). Now the name is
    RFC 2047-encoded in the metadata, read back decoded by MinioHook.stat, and the batch completes."""
    from trilha.hooks.minio import MinioHook

    s = new_scope("acento")
    name, plain = "São Paulo ü✓.csv", "plain.csv"
    files = {name: f"sp;{s.prefix}\n".encode(), plain: f"pl;{s.prefix}\n".encode()}
    stage(stack, s, files)

    summary = run(promote(s))

    assert (summary["copied"], summary["failed"]) == (2, 0)
    assert read(stack, STORAGE, s.key(name)) == files[name]
    raw = {k.lower(): v for k, v in head(stack, STORAGE, s.key(name))["Metadata"].items()}
    assert raw["source-key"].startswith("=?UTF-8?B?")  # what travels is ASCII
    info = MinioHook().stat(STORAGE, s.key(name))
    assert info is not None
    assert info.metadata is not None
    assert info.metadata["source-key"] == s.key(name)
    assert info.sha256 == sha(files[name])
    assert set(stored_by_key(stack, s)) == {s.key(name), s.key(plain)}


# ------------------------------------------------------------------------------- project parameters


def test_unknown_project_without_prefix_fails_at_once(stack: Any, capfd: pytest.CaptureFixture[str]) -> None:
    """The reason is one ERROR line of the task log (ahead of the runner's traceback) and the audit row."""
    s = new_scope("unk")
    before = table_counts(stack)
    run_id = f"unk__{s.prefix}"
    with pytest.raises(AirflowFailException, match="is not registered and no project_prefix was given"):
        run(promote(s, project_prefix=None), run_id=run_id)
    assert table_counts(stack) == before
    expected = f"project {s.name!r} is not registered and no project_prefix was given: set project_prefix"
    errors = [line for line in capfd.readouterr().out.splitlines() if "[error" in line]
    assert len(errors) == 1, errors
    assert expected in errors[0]
    row = last_audit_log(stack, run_id)
    assert (row["status"], row["error"][: len(expected)]) == ("failed", expected)


@pytest.mark.parametrize("prefix", ["Maiuscula", "com espaco", "../x", "-lead", "a" * 64])
def test_malformed_prefix_fails_at_once_saying_what_is_allowed(stack: Any, prefix: str) -> None:
    s = new_scope("mal")
    with pytest.raises(AirflowFailException, match=r"expected 1-63 characters of lowercase a-z, 0-9"):
        run(promote(s, project_prefix=prefix))
    assert not query(stack, "SELECT 1 FROM projects_registry WHERE name = %s", (s.name,))


def test_prefix_owned_by_another_project_fails_at_once(stack: Any) -> None:
    owner, intruder = new_scope("own"), new_scope("intr")
    run(promote(owner))
    with pytest.raises(AirflowFailException, match=f"already belongs to project '{owner.name}'"):
        run(promote(Scope(intruder.name, owner.prefix)))
    assert not query(stack, "SELECT 1 FROM projects_registry WHERE name = %s", (intruder.name,))
    # An existing project asked with another prefix is refused too, naming the prefix it has.
    with pytest.raises(AirflowFailException, match=f"already exists with prefix '{owner.prefix}'"):
        run(promote(Scope(owner.name, intruder.prefix)))


def test_project_name_with_sql_metacharacters_is_stored_literally(stack: Any) -> None:
    s = new_scope("sqli")
    name = f"x'); DROP TABLE projects_registry;-- {s.prefix}"
    stage(stack, s, {"a.csv": f"a;{s.prefix}\n".encode()})
    before = table_counts(stack)

    summary = run(promote(Scope(name, s.prefix)))

    assert summary["project"] == name
    assert query(stack, "SELECT name FROM projects_registry WHERE prefix = %s", (s.prefix,)) == [
        {"name": name}
    ]
    after = table_counts(stack)
    assert after["projects_registry"] == before["projects_registry"] + 1
    assert [r["project_name"] for r in storage_rows(stack, name)] == [name]


# ------------------------------------------------------------------------------- endpoint dies


def test_endpoint_dying_mid_run_leaves_no_row_for_a_copy_that_did_not_happen(
    stack: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A private rclone is killed during the second batch of copies: the task raises, and once the
    server is back every storage_audit row names an object that holds its sha256; the re-run converges."""
    import trilha.operators.base as ingest_module

    s = new_scope("pdie")
    contents = {s.key(f"f{i:02d}.csv"): f"conteudo {i};{s.prefix}\n".encode() for i in range(12)}
    with private_s3(tmp_path) as server:
        for bucket in (RECEPTION, STORAGE):
            server.client().create_bucket(Bucket=bucket)
        for key, data in contents.items():
            server.client().put_object(Bucket=RECEPTION, Key=key, Body=data)
        monkeypatch.setenv("AIRFLOW_CONN_TRILHA_MINIO_DYING", server.conn_json())
        run(ingest(key_prefix=s.keys, aws_conn_id="trilha_minio_dying"))
        monkeypatch.setattr(ingest_module, "BATCH", 5)
        op = promote(s, aws_conn_id="trilha_minio_dying", workers=1)
        real_copy = op.minio.copy_object_verified
        copies: list[str] = []

        def copy_then_die(*args: Any, **kwargs: Any) -> Any:
            copies.append(args[1])
            if len(copies) == 8:
                server.kill()
            return real_copy(*args, **kwargs)

        op.minio.copy_object_verified = copy_then_die
        with pytest.raises(EndpointConnectionError):
            run(op)

        rows = storage_rows(stack, s.name)
        assert [r["source_key"] for r in rows] == sorted(contents)[:5]
        server.start()  # same port, same disk: what the dead server had written
        client = server.client()
        for row in rows:
            body = client.get_object(Bucket=STORAGE, Key=row["dest_key"])["Body"].read()
            assert sha(body) == row["sha256"] == sha(contents[row["source_key"]])

        summary = run(promote(s, aws_conn_id="trilha_minio_dying"))
        assert summary["copied"] == 7
        rows = storage_rows(stack, s.name)
        assert sorted(r["source_key"] for r in rows) == sorted(contents)
        stored = {o["Key"] for o in client.list_objects_v2(Bucket=STORAGE, Prefix=s.keys)["Contents"]}
        assert stored == {r["dest_key"] for r in rows}


def test_a_copy_the_server_keeps_refusing_fails_that_file_alone(stack: Any) -> None:
    """Issue 13: one S3 call that keeps failing for one file must not stop the batch. A real refusal:
    a folder sits where the disk-backed server must write one stored copy. That file is a failed
    item naming the object and the server's answer, no storage_audit row claims it, the other files
    are promoted, and the re-run promotes it once the obstacle is gone."""
    import shutil
    from pathlib import Path

    s = new_scope("cpyref")
    files = {name: f"{name};{s.prefix}\n".encode() for name in ("a.csv", "b.csv", "c.csv")}
    stage(stack, s, files)
    obstacle = Path(stack.state_dir) / "s3" / STORAGE / s.key("b.csv")
    obstacle.mkdir(parents=True)
    (obstacle / "occupied").write_bytes(b"x")
    try:
        with pytest.raises(AirflowException, match=r"1 item\(s\) failed"):
            run(promote(s), run_id=f"cpy__{s.prefix}")
        record = last_audit_log(stack, f"cpy__{s.prefix}")
        assert (record["counters"]["copied"], record["counters"]["failed"]) == (2, 1)
        [problem] = [p for p in record["problems"] if p["kind"] == "failed"]
        assert problem["item"] == f"{RECEPTION}/{s.key('b.csv')}"
        assert problem["reason"].startswith(f"cannot write s3://{STORAGE}/{s.key('b.csv')}: ")
        assert "InternalError" in problem["reason"]
        assert sorted(stored_by_key(stack, s)) == [s.key("a.csv"), s.key("c.csv")]
    finally:
        shutil.rmtree(obstacle)
    again = run(promote(s))
    assert (again["copied"], again["failed"]) == (1, 0)
    assert read(stack, STORAGE, s.key("b.csv")) == files["b.csv"]
