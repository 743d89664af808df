"""trilha.ops.bootstrap against the real local services: a private local stack (real PostgreSQL,
rclone S3 server and mongod processes) started for this module and always stopped at the end.

The pure parts (policy document, mc commands, connections) are unit tests in
``tests/unit/test_bootstrap.py``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from trilha import config
from trilha.ops import bootstrap

REPO = Path(__file__).resolve().parents[2]
BUCKETS = ["recepcao-raw", "storage-unique", "staging-data", "curated-data", "datasets"]


@pytest.fixture(scope="module")
def own_stack() -> Iterator[Any]:
    """A private local stack for this module: fresh, unmigrated database; stopped at the end."""
    from trilha.ops.devstack import Stack, StackGroupError

    # Not under pytest's 0700 basetemp: as root, the stack runs PostgreSQL as an unprivileged user
    # whose group is still root's, so every parent directory needs the group traverse bit too.
    base = Path(tempfile.mkdtemp(prefix="trilha-bootstrap-stack-"))
    base.chmod(0o711)
    stack = Stack(base / "stack", log=lambda _msg: None)
    try:
        try:
            stack.up()
        except StackGroupError as err:
            if os.environ.get("TRILHA_REQUIRE_SERVICES") == "1":
                pytest.fail(f"local stack could not start (TRILHA_REQUIRE_SERVICES=1): {err}")
            pytest.skip(f"local stack could not start: {err}")
        yield stack
    finally:
        stack.down()
        shutil.rmtree(base, ignore_errors=True)


def stack_environ(stack: Any) -> dict[str, str]:
    """The compose variables, aimed at the local stack instead of the compose services."""
    conns = stack.connections()
    pg, s3 = conns[config.POSTGRES_CONN_ID], conns[config.S3_CONN_ID]
    return {
        "TRILHA_DB_HOST": pg["host"],
        "TRILHA_DB_PORT": str(pg["port"]),
        "TRILHA_DB_USER": pg["login"],
        "TRILHA_DB_NAME": pg["schema"],
        "TRILHA_DB_PASSWORD": pg["password"],
        "TRILHA_S3_ENDPOINT": s3["extra"]["endpoint_url"],
        "MINIO_ROOT_USER": s3["login"],
        "MINIO_ROOT_PASSWORD": s3["password"],
        "TRILHA_MINIO_ACCESS_KEY": "trilha-airflow",
        "TRILHA_MINIO_SECRET_KEY": "not-used-by-rclone",
        "TRILHA_MONGO_HOST": "127.0.0.1",
        "TRILHA_MONGO_PORT": str(stack.state["mongo"]["port"]),
        "TRILHA_MONGO_PASSWORD": "run-log-password",
        "MONGO_ROOT_USER": "bootstrap-root",
        "MONGO_ROOT_PASSWORD": "bootstrap-root-password",
    }


@pytest.mark.integration
def test_ensure_buckets_creates_missing_buckets_once(own_stack: Any) -> None:
    client = own_stack.s3_client()
    names = ["bootstrap-a", "bootstrap-b"]
    assert bootstrap.ensure_buckets(client, names) == names
    client.put_object(Bucket="bootstrap-a", Key="kept.txt", Body=b"kept")
    assert bootstrap.ensure_buckets(client, [*names, "bootstrap-c"]) == ["bootstrap-c"]
    existing = {b["Name"] for b in client.list_buckets()["Buckets"]}
    assert {"bootstrap-a", "bootstrap-b", "bootstrap-c"} <= existing
    assert client.get_object(Bucket="bootstrap-a", Key="kept.txt")["Body"].read() == b"kept"


@pytest.mark.integration
def test_migrate_step_brings_a_fresh_database_to_the_schema(own_stack: Any) -> None:
    import psycopg2

    from trilha.hooks.migrations import discover

    environ = stack_environ(own_stack)
    expected = [m.path.name for m in discover()]
    first = bootstrap.step_migrate(environ)
    assert bootstrap.step_migrate(environ) == []
    conn = psycopg2.connect(own_stack.postgres_dsn())
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM meta.schema_migrations")
            assert cur.fetchone()[0] == len(expected)
            cur.execute("SELECT to_regclass('raw.data_files') IS NOT NULL")
            assert cur.fetchone()[0] is True
    finally:
        conn.close()
    # Order-independent: another test in this module may have migrated first.
    assert first in (expected, [])


@pytest.mark.integration
def test_ensure_mongo_user_creates_then_updates(own_stack: Any) -> None:
    import pymongo
    from pymongo.errors import OperationFailure

    port = own_stack.state["mongo"]["port"]
    admin = pymongo.MongoClient("127.0.0.1", port, serverSelectionTimeoutMS=5000)
    try:
        assert bootstrap.ensure_mongo_user(admin, "runlog_test", "writer", "first-password") == "created"
        assert bootstrap.ensure_mongo_user(admin, "runlog_test", "writer", "second-password") == "updated"
        info = admin["runlog_test"].command("usersInfo", "writer")["users"][0]
        assert [(r["role"], r["db"]) for r in info["roles"]] == [("readWrite", "runlog_test")]
    finally:
        admin.close()

    def login(password: str) -> None:
        client = pymongo.MongoClient(
            "127.0.0.1",
            port,
            username="writer",
            password=password,
            authSource="runlog_test",
            serverSelectionTimeoutMS=5000,
        )
        try:
            client["runlog_test"].command("ping")
        finally:
            client.close()

    login("second-password")
    with pytest.raises(OperationFailure):
        login("first-password")


def cli_json(stdout: str) -> dict[str, Any]:
    """The one record of ``airflow connections get -o json`` (log lines may precede it)."""
    line = next(line for line in stdout.splitlines() if line.startswith("[{"))
    records = json.loads(line)
    assert len(records) == 1
    return dict(records[0])


@pytest.mark.integration
def test_main_bootstraps_the_stack_and_loads_the_settings(
    own_stack: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``python -m trilha.ops.bootstrap`` minus the mc step (rclone has no MinIO admin API)."""
    import pymongo

    environ = stack_environ(own_stack)
    # mongod runs without --auth locally; give it the root user compose creates with the container.
    port = own_stack.state["mongo"]["port"]
    admin = pymongo.MongoClient("127.0.0.1", port, serverSelectionTimeoutMS=5000)
    try:
        if not admin.admin.command("usersInfo", "bootstrap-root")["users"]:
            admin.admin.command("createUser", "bootstrap-root", pwd="bootstrap-root-password", roles=["root"])
    finally:
        admin.close()

    # Connections in the environment win over Airflow's database: the session stack's
    # AIRFLOW_CONN_* (set by the ``stack`` fixture) would shadow what bootstrap stored.
    for key in [k for k in os.environ if k.startswith(("AIRFLOW_CONN_", "AIRFLOW_VAR_"))]:
        monkeypatch.delenv(key)
    # A private Airflow metadata database for the settings loader (it calls the airflow CLI).
    home = tmp_path / "airflow"
    home.mkdir()
    monkeypatch.setenv("AIRFLOW_HOME", str(home))
    monkeypatch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{home}/airflow.db")
    # As in compose: one Fernet key for every process, or each CLI call generates its own and
    # cannot read what the previous one stored.
    monkeypatch.setenv("AIRFLOW__CORE__FERNET_KEY", Fernet.generate_key().decode())
    airflow = str(Path(sys.executable).parent / "airflow")
    res = subprocess.run([airflow, "db", "migrate"], capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stderr[-2000:]

    # Bucket names from the settings file, new to this stack (its `up` created the defaults).
    settings_file = tmp_path / "airflow_settings.yaml"
    text = (REPO / "airflow_settings.yaml").read_text()
    for name in BUCKETS:
        text = text.replace(f"variable_value: {name}\n", f"variable_value: main-{name}\n")
    settings_file.write_text(text)
    wanted = {f"main-{name}" for name in BUCKETS}
    s3 = own_stack.s3_client()
    assert not wanted & {b["Name"] for b in s3.list_buckets()["Buckets"]}

    argv = ["--steps", "buckets,migrate,mongo-user,settings", "--settings-file", str(settings_file)]
    assert bootstrap.main(argv, environ=environ) == 0
    assert wanted <= {b["Name"] for b in s3.list_buckets()["Buckets"]}

    # The deployer changes things in Airflow between two starts.
    def cli(*args: str) -> None:
        res = subprocess.run([airflow, *args], capture_output=True, text=True, check=False)
        assert res.returncode == 0, res.stderr[-2000:]

    cli("variables", "set", "trilha_default_project", "set-in-ui")
    cli("variables", "set", "trilha_bucket_curated", "ui-curated")
    for conn_id, host in (("trilha_google", "google-from-ui"), ("trilha_postgres", "edited-in-ui")):
        cli("connections", "delete", conn_id)
        cli("connections", "add", conn_id, "--conn-type", "generic", "--conn-host", host)

    # Idempotent: a second run (compose restart) succeeds and keeps what the deployer set.
    assert bootstrap.main(argv, environ=environ) == 0
    assert "ui-curated" in {b["Name"] for b in s3.list_buckets()["Buckets"]}
    res = subprocess.run(
        [airflow, "variables", "get", "trilha_default_project"], capture_output=True, text=True, check=False
    )
    assert res.stdout.strip().splitlines()[-1] == "set-in-ui"
    res = subprocess.run(
        [airflow, "connections", "get", "trilha_google", "-o", "json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert cli_json(res.stdout)["host"] == "google-from-ui"

    res = subprocess.run(
        [airflow, "connections", "get", "trilha_postgres", "-o", "json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    stored = cli_json(res.stdout)
    assert (stored["host"], stored["password"]) == ("127.0.0.1", environ["TRILHA_DB_PASSWORD"])
    res = subprocess.run(
        [airflow, "connections", "get", "trilha_minio", "-o", "json"],
        capture_output=True,
        text=True,
        check=False,
    )
    minio = cli_json(res.stdout)
    assert minio["login"] == "trilha-airflow"
    assert minio["extra_dejson"] == config.s3_connection_extra(environ["TRILHA_S3_ENDPOINT"])
    res = subprocess.run(
        [airflow, "variables", "get", "trilha_bucket_storage"], capture_output=True, text=True, check=False
    )
    assert res.stdout.strip().splitlines()[-1] == "main-storage-unique"

    # The stored Mongo connection works, as the run-log user, with the password from .env.
    client = pymongo.MongoClient(
        "127.0.0.1",
        port,
        username="trilha",
        password="run-log-password",
        authSource="trilha",
        serverSelectionTimeoutMS=5000,
    )
    try:
        client["trilha"]["bootstrap_probe"].insert_one({"ok": 1})
        assert client["trilha"]["bootstrap_probe"].count_documents({}) >= 1
    finally:
        client.close()
