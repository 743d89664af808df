"""Helpers for the ingestion integration tests (``test_ingest_*.py``), against the real local stack.

Every test works under its own project name, project prefix and key prefix (a fresh uuid), so tests
that share the session's database and buckets never see each other's objects. Counting helpers look
at the whole database and every bucket, because "a re-run creates nothing" must hold everywhere.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg2
import psycopg2.extras

from tests.helpers import run_operator

REPO = Path(__file__).resolve().parents[2]
RECEPTION = "recepcao-raw"
STORAGE = "storage-unique"

#: Tables whose row count must not move when an operator re-runs over unchanged input.
INVENTORY_TABLES = (
    "raw.data_files",
    "projects_registry",
    "reception_audit",
    "storage_audit",
    "meta.version_history",
    "meta.cleanup_log",
    "staging_inventory",
    "curated_inventory",
    "dataset_inventory",
)


@dataclass
class Scope:
    """One test's private corner of the lake: a project and the reception prefix it owns."""

    name: str
    prefix: str

    @property
    def keys(self) -> str:
        return f"{self.prefix}/"

    def key(self, rel: str) -> str:
        return f"{self.prefix}/{rel}"


def new_scope(label: str = "t") -> Scope:
    tag = uuid.uuid4().hex[:10]
    return Scope(name=f"{label} {tag}", prefix=f"{label}-{tag}")


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


# --------------------------------------------------------------------------------------- database


def query(
    stack: Any, sql: str, params: dict[str, Any] | tuple[Any, ...] | None = None
) -> list[dict[str, Any]]:
    """Run one statement on the audit store (a separate connection: what an operator committed)."""
    conn = psycopg2.connect(stack.postgres_dsn())
    try:
        with conn, conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
            cur.execute(sql, params)
            return [dict(r) for r in cur.fetchall()] if cur.description else []
    finally:
        conn.close()


def table_counts(stack: Any) -> dict[str, int]:
    """Rows in every inventory table (``meta.audit_log``, the record that a task ran, is left out)."""
    sql = " UNION ALL ".join(f"SELECT '{t}' AS t, count(*) AS n FROM {t}" for t in INVENTORY_TABLES)
    return {r["t"]: int(r["n"]) for r in query(stack, sql)}


def reception_rows(stack: Any, prefix: str) -> list[dict[str, Any]]:
    return query(
        stack,
        "SELECT * FROM reception_audit WHERE bucket = %s AND left(object_key, length(%s)) = %s ORDER BY id",
        (RECEPTION, prefix, prefix),
    )


def storage_rows(stack: Any, project: str) -> list[dict[str, Any]]:
    return query(stack, "SELECT * FROM storage_audit WHERE project_name = %s ORDER BY id", (project,))


def audit_log_row(stack: Any, audit_log_id: int) -> dict[str, Any]:
    return query(stack, "SELECT * FROM meta.audit_log WHERE id = %s", (audit_log_id,))[0]


def last_audit_log(stack: Any, run_id: str) -> dict[str, Any]:
    return query(stack, "SELECT * FROM meta.audit_log WHERE run_id = %s ORDER BY id DESC LIMIT 1", (run_id,))[
        0
    ]


# --------------------------------------------------------------------------------------- objects

_CLIENTS: dict[int, Any] = {}


def s3(stack: Any) -> Any:
    """The stack's boto3 client, built once (building one costs tens of milliseconds)."""
    if id(stack) not in _CLIENTS:
        _CLIENTS[id(stack)] = stack.s3_client()
    return _CLIENTS[id(stack)]


def put(stack: Any, key: str, data: bytes, bucket: str = RECEPTION) -> str:
    """Upload like a user would (``mc cp``, the API): no Trilha metadata. Returns the ETag."""
    return str(s3(stack).put_object(Bucket=bucket, Key=key, Body=data)["ETag"]).strip('"')


def list_keys(stack: Any, bucket: str, prefix: str) -> dict[str, dict[str, Any]]:
    client = s3(stack)
    out: dict[str, dict[str, Any]] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            out[item["Key"]] = item
    return out


def bucket_counts(stack: Any) -> dict[str, int]:
    """Objects in every bucket of the server."""
    client = s3(stack)
    names = [b["Name"] for b in client.list_buckets()["Buckets"]]
    return {name: len(list_keys(stack, name, "")) for name in names}


def read(stack: Any, bucket: str, key: str) -> bytes:
    return s3(stack).get_object(Bucket=bucket, Key=key)["Body"].read()


def head(stack: Any, bucket: str, key: str) -> dict[str, Any] | None:
    from botocore.exceptions import ClientError

    try:
        return s3(stack).head_object(Bucket=bucket, Key=key)
    except ClientError as err:
        if err.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound"):
            return None
        raise


def snapshot(stack: Any) -> tuple[dict[str, int], dict[str, int]]:
    return table_counts(stack), bucket_counts(stack)


# --------------------------------------------------------------------------------------- operators


def ingest(**kwargs: Any) -> Any:
    from trilha.operators.ingest import RawIngestOperator

    return RawIngestOperator(task_id="register", **kwargs)


def promote(scope: Scope, **kwargs: Any) -> Any:
    from trilha.operators.promote import PromoteOperator

    kwargs.setdefault("project_prefix", scope.prefix)
    return PromoteOperator(task_id="promote", project=scope.name, **kwargs)


def cleanup(scope: Scope, **kwargs: Any) -> Any:
    from trilha.operators.cleanup import CleanupOperator

    kwargs.setdefault("key_prefix", scope.keys)
    return CleanupOperator(task_id="cleanup", **kwargs)


def run(op: Any, run_id: str | None = None) -> dict[str, Any]:
    return dict(run_operator(op, run_id=run_id))


class S3Calls:
    """Counts the S3 requests an operator's MinIO client sends, by operation (``GetObject``...).

    It listens on botocore's ``before-call.s3.<Operation>`` events of the very client the hook uses,
    so ``calls["GetObject"]`` is the number of object bodies the operator downloaded.
    """

    def __init__(self, op: Any) -> None:
        self.ops: list[str] = []
        op.minio.get_conn().meta.events.register("before-call.s3", self._seen)

    def _seen(self, model: Any, **_: Any) -> None:
        self.ops.append(str(model.name))

    def __getitem__(self, operation: str) -> int:
        return self.ops.count(operation)


# --------------------------------------------------------------------------------------- fake Drive


def install_fake_drive(monkeypatch: Any, http: Any) -> Any:
    """Serve Google Drive from ``http`` (an ``HttpMockSequence``): the real ``drive v3`` client, built
    from the bundled discovery document, replaces ``TrilhaDriveHook.get_conn``. Returns ``http``."""
    from googleapiclient.discovery import build

    from trilha.hooks.drive import TrilhaDriveHook

    monkeypatch.setenv(
        "AIRFLOW_CONN_TRILHA_GOOGLE",
        json.dumps({"conn_type": "google_cloud_platform", "extra": {"num_retries": 0}}),
    )
    service = build("drive", "v3", http=http, static_discovery=True)
    monkeypatch.setattr(TrilhaDriveHook, "get_conn", lambda self: service)
    return http


# --------------------------------------------------------------------------------------- processes


def child_env(**extra: str) -> dict[str, str]:
    """The environment of a child Python process: this session's connections and Airflow home."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "plugins"), str(REPO)])
    env.update(extra)
    return env


def spawn_child(args: dict[str, Any], out: Path) -> subprocess.Popen[bytes]:
    """Start ``tests/integration/ingest_child.py`` with a JSON job; its stdout/stderr go to ``out``."""
    handle = open(out, "wb")  # inherited by the child; closed here once it is handed over
    try:
        return subprocess.Popen(
            [sys.executable, str(REPO / "tests" / "integration" / "ingest_child.py"), json.dumps(args)],
            cwd=REPO,
            env=child_env(),
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
    finally:
        handle.close()


def child_result(out: Path) -> dict[str, Any]:
    """The JSON line the child printed last (``RESULT {...}``)."""
    lines = [ln for ln in out.read_text(errors="replace").splitlines() if ln.startswith("RESULT ")]
    assert lines, f"child printed no result; its output:\n{out.read_text(errors='replace')[-4000:]}"
    return dict(json.loads(lines[-1][len("RESULT ") :]))


def wait_until(check: Callable[[], bool], timeout: float, what: str, every: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


# --------------------------------------------------------------------------------------- a private S3 server


@dataclass
class PrivateS3:
    """An rclone S3 server of the test's own, which the test may kill and restart."""

    port: int
    data_dir: Path
    access_key: str
    secret_key: str
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        from trilha.ops.devstack import port_open, rclone_binary

        binary = rclone_binary()
        assert binary is not None, "rclone binary not found"
        handle = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(
                [
                    str(binary),
                    "serve",
                    "s3",
                    "--addr",
                    f"127.0.0.1:{self.port}",
                    "--auth-key",
                    f"{self.access_key},{self.secret_key}",
                    str(self.data_dir),
                ],
                env=dict(os.environ, RCLONE_CONFIG="/dev/null"),
                stdout=handle,
                stderr=subprocess.STDOUT,
            )
        finally:
            handle.close()
        wait_until(lambda: port_open(self.port), 20, f"private rclone on port {self.port}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def conn_json(self) -> str:
        """An ``aws`` connection to this server that does not retry (a dead server fails at once)."""
        from trilha.config import s3_connection_extra

        extra = s3_connection_extra(self.endpoint)
        extra["config_kwargs"]["retries"] = {"mode": "standard", "total_max_attempts": 1}
        extra["config_kwargs"]["connect_timeout"] = 2
        extra["config_kwargs"]["read_timeout"] = 5
        return json.dumps(
            {"conn_type": "aws", "login": self.access_key, "password": self.secret_key, "extra": extra}
        )

    def client(self) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name="us-east-1",
            config=Config(
                s3={"addressing_style": "path"},
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            ),
        )


@contextmanager
def private_s3(tmp_path: Path) -> Iterator[PrivateS3]:
    from trilha.ops.devstack import free_port

    data = tmp_path / "private-s3"
    data.mkdir()
    server = PrivateS3(
        port=free_port(),
        data_dir=data,
        access_key="private" + uuid.uuid4().hex[:8],
        secret_key=uuid.uuid4().hex,
        log_path=tmp_path / "private-s3.log",
    )
    server.start()
    try:
        yield server
    finally:
        server.kill()
