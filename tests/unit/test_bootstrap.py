"""trilha.ops.bootstrap: the compose init step, its pure parts (policy document, mc commands,
connections, settings). The parts that touch services are in
``tests/integration/test_bootstrap_stack.py``, against a private local stack.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

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
