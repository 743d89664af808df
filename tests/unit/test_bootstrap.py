"""trilha.ops.bootstrap: the compose init step.

The pure parts (policy document, mc commands, connections) are unit tests. The parts that touch
services run against a private local stack (real PostgreSQL, rclone S3 server and mongod processes)
started for this module and always stopped at the end.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
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
from trilha.ops.bootstrap import BootstrapError, McStep
from trilha.ops.settings import load_settings, parse_settings, with_environment_overrides

REPO = Path(__file__).resolve().parents[2]
BUCKETS = ["recepcao-raw", "storage-unique", "staging-data", "curated-data", "datasets"]
APP_ENV = {
    "TRILHA_DB_PASSWORD": "pg-pass\"with'quotes\\",
    "TRILHA_MINIO_ACCESS_KEY": "trilha-airflow",
    "TRILHA_MINIO_SECRET_KEY": "s3-secret-key-123",
    "TRILHA_MONGO_PASSWORD": "mongo:pass@/x",
}


# --------------------------------------------------------------------------------------------------
# policy


def test_policy_grants_only_trilha_buckets_and_needed_actions() -> None:
    policy = bootstrap.minio_policy(BUCKETS)
    assert policy["Version"] == "2012-10-17"
    statements = {s["Sid"]: s for s in policy["Statement"]}
    assert set(statements) == {"TrilhaBuckets", "TrilhaObjects"}
    assert all(s["Effect"] == "Allow" for s in statements.values())
    assert statements["TrilhaBuckets"]["Resource"] == [f"arn:aws:s3:::{b}" for b in BUCKETS]
    assert statements["TrilhaObjects"]["Resource"] == [f"arn:aws:s3:::{b}/*" for b in BUCKETS]
    assert statements["TrilhaBuckets"]["Action"] == [
        "s3:GetBucketLocation",
        "s3:ListBucket",
        "s3:ListBucketMultipartUploads",
    ]
    assert statements["TrilhaObjects"]["Action"] == [
        "s3:GetObject",
        "s3:PutObject",
        "s3:DeleteObject",
        "s3:AbortMultipartUpload",
        "s3:ListMultipartUploadParts",
    ]


def test_policy_has_no_wildcards_and_no_admin_actions() -> None:
    text = json.dumps(bootstrap.minio_policy(BUCKETS))
    actions = [a for s in bootstrap.minio_policy(BUCKETS)["Statement"] for a in s["Action"]]
    assert not [a for a in actions if "*" in a]
    for forbidden in ("s3:CreateBucket", "s3:DeleteBucket", "s3:PutBucketPolicy", "s3:ListAllMyBuckets"):
        assert forbidden not in actions
    assert "arn:aws:s3:::*" not in text
    assert "admin:" not in text


def test_policy_deduplicates_and_follows_the_given_buckets() -> None:
    policy = bootstrap.minio_policy(["one-bucket", "two.bucket", "one-bucket"])
    assert policy["Statement"][0]["Resource"] == ["arn:aws:s3:::one-bucket", "arn:aws:s3:::two.bucket"]


@pytest.mark.parametrize("bad", ["", "ab", "Upper", "under_score", "-dash", "dash-", "a..b", "x" * 64, "a/b"])
def test_policy_rejects_invalid_bucket_names(bad: str) -> None:
    with pytest.raises(BootstrapError, match="expected 3-63 characters"):
        bootstrap.minio_policy([bad])


def test_policy_rejects_no_buckets() -> None:
    with pytest.raises(BootstrapError, match="at least one bucket"):
        bootstrap.minio_policy([])


# --------------------------------------------------------------------------------------------------
# mc commands


def test_mc_user_steps_keep_the_secret_out_of_argv() -> None:
    steps = bootstrap.mc_user_steps("trilha-airflow", "s3cr3t-value", "/tmp/p.json")
    assert [s.argv for s in steps] == [
        ("mc", "admin", "policy", "create", "trilha", "trilha-airflow", "/tmp/p.json"),
        ("mc", "admin", "user", "add", "trilha"),
        ("mc", "--json", "admin", "user", "info", "trilha", "trilha-airflow"),
    ]
    assert steps[1].stdin == "trilha-airflow\ns3cr3t-value\n"
    assert all("s3cr3t-value" not in " ".join(s.argv) for s in steps)
    assert [s.stdin for s in steps if s.what != "add user"] == [None, None]


def test_mc_policy_steps_attach_only_when_missing() -> None:
    attach = ("mc", "admin", "policy", "attach", "trilha", "trilha-airflow", "--user", "u1")
    assert [s.argv for s in bootstrap.mc_policy_steps("u1", set())] == [attach]
    assert bootstrap.mc_policy_steps("u1", {"trilha-airflow"}) == []


def test_mc_policy_steps_detach_policies_attached_by_hand() -> None:
    steps = bootstrap.mc_policy_steps("u1", {"trilha-airflow", "readwrite", "consoleAdmin"})
    assert [s.argv for s in steps] == [
        ("mc", "admin", "policy", "detach", "trilha", "consoleAdmin", "readwrite", "--user", "u1")
    ]
    steps = bootstrap.mc_policy_steps("u1", {"readwrite"})
    assert [s.what for s in steps] == ["attach policy", "detach other policies"]


def test_attached_policies_parses_mc_json() -> None:
    out = json.dumps({"status": "success", "accessKey": "u1", "policyName": "trilha-airflow, readwrite"})
    assert bootstrap.attached_policies(out) == {"trilha-airflow", "readwrite"}
    assert bootstrap.attached_policies(json.dumps({"status": "success", "accessKey": "u1"})) == set()
    with pytest.raises(BootstrapError, match="expected status success"):
        bootstrap.attached_policies(json.dumps({"status": "error", "error": {"message": "no such user"}}))
    with pytest.raises(BootstrapError, match="expected JSON"):
        bootstrap.attached_policies("mc: <ERROR> Unable to initialize admin connection.")


def test_mc_env_carries_root_credentials_url_encoded() -> None:
    env = bootstrap.mc_env("http://minio:9000", "root", "p@ss:w/rd")
    assert env == {"MC_HOST_trilha": "http://root:p%40ss%3Aw%2Frd@minio:9000"}


class FakeMc:
    """Records steps; answers ``user info`` with the given attached policies."""

    def __init__(self, attached: str = "") -> None:
        self.steps: list[McStep] = []
        self.attached = attached
        self.policy_file: dict[str, Any] | None = None

    def __call__(self, step: McStep) -> str:
        self.steps.append(step)
        if step.what == "create policy":
            self.policy_file = json.loads(Path(step.argv[-1]).read_text())
        if step.what == "user info":
            return json.dumps({"status": "success", "accessKey": step.argv[-1], "policyName": self.attached})
        return ""


def test_ensure_minio_user_runs_the_steps_in_order(tmp_path: Path) -> None:
    fake = FakeMc(attached="")
    before = bootstrap.ensure_minio_user(fake, BUCKETS, "trilha-airflow", "secret-123", "root", tmp_path)
    assert before == set()
    assert [s.what for s in fake.steps] == ["create policy", "add user", "user info", "attach policy"]
    assert fake.policy_file == bootstrap.minio_policy(BUCKETS)


def test_ensure_minio_user_is_idempotent(tmp_path: Path) -> None:
    fake = FakeMc(attached="trilha-airflow")
    assert bootstrap.ensure_minio_user(fake, BUCKETS, "user1", "secret-123", "root", tmp_path) == {
        "trilha-airflow"
    }
    assert [s.what for s in fake.steps] == ["create policy", "add user", "user info"]


def test_ensure_minio_user_refuses_the_root_user(tmp_path: Path) -> None:
    fake = FakeMc()
    with pytest.raises(BootstrapError, match="other than MINIO_ROOT_USER"):
        bootstrap.ensure_minio_user(fake, BUCKETS, "admin", "secret-123", "admin", tmp_path)
    with pytest.raises(BootstrapError, match="at least 3 and 8 characters, got 2 and 5"):
        bootstrap.ensure_minio_user(fake, BUCKETS, "ab", "short", "admin", tmp_path)
    assert fake.steps == []


FAKE_MC = """#!/bin/sh
# Records how it was called; answers `user info` like mc --json does.
{ printf 'ARGV'; for a in "$@"; do printf ' %s' "$a"; done; printf '\\n'
  printf 'HOST %s\\n' "$MC_HOST_trilha"; printf 'CONFIG %s\\n' "$MC_CONFIG_DIR"
  printf 'STDIN '; cat; printf '\\n'; } >> "$FAKE_MC_LOG"
case "$*" in
  *"user info"*) echo '{"status": "success", "accessKey": "trilha-airflow", "policyName": "readwrite"}' ;;
  *"policy detach"*) echo "mc: <ERROR> detach refused" >&2; exit 1 ;;
esac
"""


def test_subprocess_runner_feeds_secrets_on_stdin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real runner and the real step: an ``mc`` stand-in on PATH records what it receives."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    mc = bindir / "mc"
    mc.write_text(FAKE_MC)
    mc.chmod(mc.stat().st_mode | stat.S_IXUSR)
    log = tmp_path / "mc.log"
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_MC_LOG", str(log))
    environ = {
        **APP_ENV,
        "MINIO_ROOT_USER": "root",
        "MINIO_ROOT_PASSWORD": "root-password",
        "TRILHA_S3_ENDPOINT": "http://minio:9000",
    }
    with pytest.raises(BootstrapError, match="detach other policies failed .*detach refused"):
        bootstrap.step_minio_user(environ, BUCKETS)
    calls = log.read_text()
    assert "ARGV admin user add trilha\n" in calls
    assert "STDIN trilha-airflow\ns3-secret-key-123\n" in calls
    assert "HOST http://root:root-password@minio:9000" in calls
    assert "s3-secret-key-123" not in "".join(line for line in calls.splitlines() if line.startswith("ARGV"))
    assert "ARGV admin policy attach trilha trilha-airflow --user trilha-airflow" in calls
    # The private mc config directory is gone with the run.
    config_dir = next(line.split(" ", 1)[1] for line in calls.splitlines() if line.startswith("CONFIG"))
    assert not Path(config_dir).parent.exists()


# --------------------------------------------------------------------------------------------------
# connections and settings


def test_connections_from_env_use_compose_service_names() -> None:
    conns = {k: json.loads(v) for k, v in bootstrap.connections_from_env(APP_ENV).items()}
    assert set(conns) == {
        "AIRFLOW_CONN_TRILHA_POSTGRES",
        "AIRFLOW_CONN_TRILHA_MINIO",
        "AIRFLOW_CONN_TRILHA_MONGO",
    }
    assert conns["AIRFLOW_CONN_TRILHA_POSTGRES"] == {
        "conn_type": "postgres",
        "host": "trilha-postgres",
        "port": 5432,
        "login": "trilha",
        "password": APP_ENV["TRILHA_DB_PASSWORD"],
        "schema": "trilha",
    }
    assert conns["AIRFLOW_CONN_TRILHA_MINIO"] == {
        "conn_type": "aws",
        "login": "trilha-airflow",
        "password": "s3-secret-key-123",
        "extra": config.s3_connection_extra("http://minio:9000"),
    }
    assert conns["AIRFLOW_CONN_TRILHA_MINIO"]["extra"]["endpoint_url"] == "http://minio:9000"
    assert conns["AIRFLOW_CONN_TRILHA_MONGO"] == {
        "conn_type": "mongo",
        "host": "mongo",
        "port": 27017,
        "login": "trilha",
        "password": "mongo:pass@/x",
        "schema": "trilha",
        "extra": {"srv": False, "authSource": "trilha"},
    }


def test_connections_from_env_never_use_root_credentials() -> None:
    environ = {**APP_ENV, "MINIO_ROOT_USER": "rootuser", "MINIO_ROOT_PASSWORD": "rootpassword"}
    text = "".join(bootstrap.connections_from_env(environ).values())
    assert "rootuser" not in text
    assert "rootpassword" not in text


def test_connections_from_env_name_every_missing_variable() -> None:
    environ = {**APP_ENV, "TRILHA_DB_PASSWORD": "", "TRILHA_MINIO_SECRET_KEY": ""}
    del environ["TRILHA_MONGO_PASSWORD"]
    with pytest.raises(BootstrapError) as err:
        bootstrap.connections_from_env(environ)
    assert "TRILHA_DB_PASSWORD, TRILHA_MINIO_SECRET_KEY, TRILHA_MONGO_PASSWORD" in str(err.value)


def test_connections_from_env_overrides_are_validated() -> None:
    conns = bootstrap.connections_from_env(
        {**APP_ENV, "TRILHA_DB_HOST": "db.example", "TRILHA_DB_PORT": "6543"}
    )
    pg = json.loads(conns["AIRFLOW_CONN_TRILHA_POSTGRES"])
    assert (pg["host"], pg["port"]) == ("db.example", 6543)
    with pytest.raises(BootstrapError, match="TRILHA_DB_PORT: expected a TCP port number, got 'x'"):
        bootstrap.connections_from_env({**APP_ENV, "TRILHA_DB_PORT": "x"})
    with pytest.raises(BootstrapError, match="TRILHA_S3_ENDPOINT"):
        bootstrap.connections_from_env({**APP_ENV, "TRILHA_S3_ENDPOINT": "minio:9000"})


def test_connections_replace_the_settings_placeholders() -> None:
    """What the settings loader will store: the file's placeholders replaced, descriptions kept."""
    settings = load_settings(REPO / "airflow_settings.yaml")
    merged = with_environment_overrides(settings, bootstrap.connections_from_env(APP_ENV))
    pg = merged.connections["trilha_postgres"]
    assert pg["host"] == "trilha-postgres"
    assert pg["password"] == APP_ENV["TRILHA_DB_PASSWORD"]
    assert pg["description"] == settings.connections["trilha_postgres"]["description"]
    assert merged.connections["trilha_minio"]["extra"]["endpoint_url"] == "http://minio:9000"
    assert merged.connections["trilha_mongo"]["login"] == "trilha"
    # Connections the bootstrap does not manage are left as the file has them.
    assert merged.connections["trilha_google"] == settings.connections["trilha_google"]


def test_buckets_follow_the_settings_variables() -> None:
    text = """
airflow:
  variables:
    - variable_name: trilha_bucket_reception
      variable_value: my-reception
"""
    buckets = bootstrap.buckets_from_settings(parse_settings(text))
    assert buckets == ["my-reception", *BUCKETS[1:]]
    assert bootstrap.buckets_from_settings(load_settings(REPO / "airflow_settings.yaml")) == BUCKETS


def test_settings_step_requires_the_managed_connections() -> None:
    empty = bootstrap.AirflowState(frozenset(), {}, frozenset())
    with pytest.raises(BootstrapError, match="expected connections"):
        bootstrap.step_settings(APP_ENV, parse_settings("airflow: {}"), empty)


def test_settings_to_apply_keeps_what_airflow_already_has() -> None:
    settings = with_environment_overrides(
        load_settings(REPO / "airflow_settings.yaml"), bootstrap.connections_from_env(APP_ENV)
    )
    fresh = bootstrap.settings_to_apply(settings, bootstrap.AirflowState(frozenset(), {}, frozenset()))
    assert fresh == settings
    state = bootstrap.AirflowState(
        connections=frozenset({"trilha_postgres", "trilha_minio", "trilha_google", "other"}),
        variables={"trilha_default_project": "set-in-ui"},
        pools=frozenset({"trilha_s3", "default_pool"}),
    )
    todo = bootstrap.settings_to_apply(settings, state)
    # .env is the truth of the managed connections: always rewritten.
    assert set(todo.connections) == {"trilha_postgres", "trilha_minio", "trilha_mongo", "trilha_snowflake"}
    assert todo.connections["trilha_postgres"]["host"] == "trilha-postgres"
    assert "trilha_default_project" not in todo.variables
    assert todo.variables["trilha_bucket_storage"] == "storage-unique"
    assert todo.pools == {}


def test_effective_settings_let_airflow_variables_win() -> None:
    settings = load_settings(REPO / "airflow_settings.yaml")
    state = bootstrap.AirflowState(frozenset(), {"trilha_bucket_curated": "curated-v2"}, frozenset())
    buckets = bootstrap.buckets_from_settings(bootstrap.effective_settings(settings, state))
    assert buckets == ["recepcao-raw", "storage-unique", "staging-data", "curated-v2", "datasets"]
    assert bootstrap.effective_settings(settings, None) is settings


def test_unknown_step_is_rejected_before_anything_runs() -> None:
    with pytest.raises(BootstrapError, match="unknown step 'bukets'"):
        bootstrap.run_steps(["bukets"], APP_ENV, parse_settings("airflow: {}"))


def test_main_reports_a_missing_variable_and_exits_1(caplog: pytest.LogCaptureFixture) -> None:
    assert bootstrap.main(["--steps", "buckets"], environ={}) == 1
    assert "TRILHA_DB_PASSWORD" in caplog.text


# --------------------------------------------------------------------------------------------------
# against the real local services


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

    from trilha.ops.migrate import discover

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
