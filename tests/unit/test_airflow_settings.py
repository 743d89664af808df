"""trilha.ops.settings: the Astro-format settings file, validated strictly and applied through Airflow.

The unit tests parse the real ``airflow_settings.yaml`` and malformed variants (every error must name the
entry and the field). One integration test applies the settings to a private Airflow metadata database
with the real ``airflow`` CLI, in subprocesses, and reads the result back with the same CLI.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from trilha.exceptions import SettingsError
from trilha.ops.settings import (
    Settings,
    default_path,
    load_settings,
    parse_settings,
    with_environment_overrides,
)

REPO = Path(__file__).resolve().parents[2]
CONN_IDS = {"trilha_postgres", "trilha_minio", "trilha_mongo", "trilha_google", "trilha_snowflake"}
VARIABLES = {
    "trilha_bucket_reception": "recepcao-raw",
    "trilha_bucket_storage": "storage-unique",
    "trilha_bucket_staging": "staging-data",
    "trilha_bucket_curated": "curated-data",
    "trilha_bucket_datasets": "datasets",
    "trilha_capture_source": "",
    "trilha_landing_dir": "",
}


def conn_yaml(*entries: str) -> str:
    return "airflow:\n  connections:\n" + "".join(entries)


OK_CONN = "    - conn_id: ok_conn\n      conn_type: postgres\n"


# --------------------------------------------------------------------------------------------------
# the real file


def _short_strings(value: Any, path: str) -> list[str]:
    """Every non-empty string under ``value`` shorter than Airflow's masking minimum (5 chars)."""
    if isinstance(value, dict):
        return [hit for k, v in value.items() for hit in _short_strings(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [hit for i, v in enumerate(value) for hit in _short_strings(v, f"{path}[{i}]")]
    return [f"{path}={value!r}"] if isinstance(value, str) and 0 < len(value) < 5 else []


def test_no_connection_value_is_too_short_to_mask(tmp_path: Path) -> None:
    """Airflow masks every string of a connection's extra (and its password) in task logs; a value
    under 5 characters cannot be masked, and each task log then warns "Skipping masking for a secret
    as it's too short". The settings we ship, and the local stack's connections, have none."""
    from trilha.ops.devstack import Stack

    shipped = load_settings().connections
    hits = [h for cid, c in shipped.items() for h in _short_strings(c.get("extra", {}), f"{cid}.extra")]
    hits += [f"{cid}.password" for cid, c in shipped.items() if 0 < len(c.get("password") or "") < 5]
    stack = Stack(tmp_path)
    stack.state = {
        "postgres": {"port": 5432, "user": "trilha", "database": "trilha"},
        "s3": {"endpoint": "http://127.0.0.1:9000"},
        "mongo": {"port": 27017},
        "secrets": {"postgres_password": "p" * 24, "s3_access_key": "a" * 20, "s3_secret_key": "s" * 40},
    }
    local = stack.connections()
    hits += [h for cid, c in local.items() for h in _short_strings(c.get("extra", {}), f"local {cid}.extra")]
    assert hits == []


def test_real_file_parses_to_the_expected_settings() -> None:
    assert default_path() == REPO / "airflow_settings.yaml"
    settings = load_settings()
    assert set(settings.connections) == CONN_IDS
    conns = settings.connections
    assert {cid: c["conn_type"] for cid, c in conns.items()} == {
        "trilha_postgres": "postgres",
        "trilha_minio": "aws",
        "trilha_mongo": "mongo",
        "trilha_google": "google_cloud_platform",
        "trilha_snowflake": "snowflake",
    }
    pg = conns["trilha_postgres"]
    assert pg["host"] == "localhost"
    assert pg["port"] == 5432
    assert isinstance(pg["port"], int)
    assert pg["schema"] == "trilha"
    assert pg["login"] == "trilha"
    # Empty placeholders are dropped, so they never overwrite a real value in Airflow.
    assert "password" not in pg
    minio = conns["trilha_minio"]
    assert "login" not in minio
    assert "password" not in minio
    assert minio["extra"]["endpoint_url"] == "http://localhost:9000"
    assert "s3" not in minio["extra"]["config_kwargs"]  # path style is MinioHook's default
    assert minio["extra"]["config_kwargs"]["request_checksum_calculation"] == "when_required"
    assert conns["trilha_mongo"]["port"] == 27017
    assert conns["trilha_mongo"]["extra"] == {"srv": False}
    assert conns["trilha_google"]["extra"] == {"scope": "https://www.googleapis.com/auth/drive"}
    assert conns["trilha_snowflake"]["extra"] == {}
    assert settings.pools == {
        "trilha_s3": {
            "slots": 4,
            "description": "Bounds concurrent S3-heavy Trilha tasks.",
            "include_deferred": False,
        }
    }
    assert settings.variables == VARIABLES


def test_load_settings_names_an_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="missing.yaml: cannot read"):
        load_settings(tmp_path / "missing.yaml")


# --------------------------------------------------------------------------------------------------
# malformed input: each error names the entry and the field


@pytest.mark.parametrize(
    ("text", "must_contain"),
    [
        pytest.param(
            conn_yaml(OK_CONN, "    - conn_type: postgres\n      conn_host: db\n"),
            ["airflow.connections[1]", "conn_id", "None"],
            id="missing-conn_id",
        ),
        pytest.param(
            conn_yaml("    - conn_id: 42\n      conn_type: postgres\n"),
            ["airflow.connections[0]", "conn_id", "42"],
            id="non-string-conn_id",
        ),
        pytest.param(
            conn_yaml(OK_CONN, "    - conn_id: pg\n      conn_type: postgres\n      conn_hots: db\n"),
            ["airflow.connections[1]", "'pg'", "unknown field 'conn_hots'"],
            id="unknown-key",
        ),
        pytest.param(
            conn_yaml("    - conn_id: pg\n      conn_type: postgres\n      conn_port: fivefour\n"),
            ["airflow.connections[0]", "'pg'", "conn_port", "expected an integer", "fivefour"],
            id="non-integer-port",
        ),
        pytest.param(
            conn_yaml("    - conn_id: pg\n      conn_type: postgres\n      conn_port: 54.32\n"),
            ["'pg'", "conn_port", "54.32"],
            id="float-port",
        ),
        pytest.param(
            conn_yaml("    - conn_id: pg\n      conn_type: postgres\n      conn_port: true\n"),
            ["'pg'", "conn_port", "True"],
            id="bool-port",
        ),
        pytest.param(
            conn_yaml(OK_CONN, "    - conn_id: ok_conn\n      conn_type: aws\n"),
            ["airflow.connections[1]", "'ok_conn'", "conn_id", "defined twice"],
            id="duplicate-conn_id",
        ),
        pytest.param(
            conn_yaml("    - conn_id: pg\n      conn_host: db\n"),
            ["'pg'", "conn_type"],
            id="missing-conn_type",
        ),
        pytest.param(
            conn_yaml("    - conn_id: pg\n      conn_type: aws\n      conn_extra: '{not json'\n"),
            ["'pg'", "conn_extra", "JSON"],
            id="extra-bad-json",
        ),
        pytest.param(
            conn_yaml("    - conn_id: pg\n      conn_type: aws\n      conn_extra: [1, 2]\n"),
            ["'pg'", "conn_extra", "mapping"],
            id="extra-list",
        ),
        pytest.param(
            "airflow:\n  pools:\n    - pool_name: p1\n      pool_slot: 2\n"
            "    - pool_name: trilha_s3\n      pool_slot: -1\n",
            ["airflow.pools[1]", "'trilha_s3'", "pool_slot", "non-negative", "-1"],
            id="pool_slot-negative",
        ),
        pytest.param(
            "airflow:\n  pools:\n    - pool_name: p1\n",
            ["airflow.pools[0]", "'p1'", "pool_slot", "None"],
            id="pool_slot-missing",
        ),
        pytest.param(
            "airflow:\n  pools:\n    - pool_name: p1\n      pool_slot: lots\n",
            ["'p1'", "pool_slot", "expected an integer", "lots"],
            id="pool_slot-non-integer",
        ),
        pytest.param(
            "airflow:\n  pools:\n    - pool_name: p1\n      pool_slot: 1\n      pool_slots: 2\n",
            ["'p1'", "unknown field 'pool_slots'"],
            id="pool-unknown-key",
        ),
        pytest.param(
            "airflow:\n  variables:\n    - variable_name: v\n      value: x\n",
            ["airflow.variables[0]", "'v'", "unknown field 'value'"],
            id="variable-unknown-key",
        ),
        pytest.param(
            "airflow:\n  variables:\n    - variable_value: x\n",
            ["airflow.variables[0]", "variable_name"],
            id="variable-missing-name",
        ),
        pytest.param(
            "airflow:\n  connections:\n    - conn_id: pg\n   conn_type: [unclosed\n",
            ["settings.yaml", "not valid YAML"],
            id="bad-yaml",
        ),
        pytest.param("- a\n- b\n", ["top-level 'airflow:' mapping"], id="not-a-mapping"),
        pytest.param("airflow: [1]\n", ["top-level 'airflow:' mapping"], id="airflow-not-a-mapping"),
        pytest.param("airflow:\n  conections: []\n", ["unknown field 'conections'"], id="unknown-section"),
        pytest.param(
            "airflow:\n  connections:\n    conn_id: x\n",
            ["airflow.connections", "expected a list"],
            id="not-list",
        ),
        pytest.param(
            "airflow:\n  connections:\n    - just-a-string\n",
            ["airflow.connections[0]", "expected a mapping", "just-a-string"],
            id="entry-not-mapping",
        ),
    ],
)
def test_malformed_settings_name_entry_and_field(text: str, must_contain: list[str]) -> None:
    with pytest.raises(SettingsError) as exc:
        parse_settings(text, source="settings.yaml")
    message = str(exc.value)
    assert message.startswith("settings.yaml: ")
    for part in must_contain:
        assert part in message, f"{part!r} not in {message!r}"


def test_valid_variants_are_accepted() -> None:
    text = (
        "airflow:\n"
        "  connections:\n"
        "    - conn_id: pg\n"
        "      conn_type: postgres\n"
        "      conn_port: '6543'\n"  # a quoted integer is an integer
        '      conn_extra: \'{"sslmode": "require"}\'\n'  # extra as a JSON string
        "    - conn_id: by_uri\n"
        "      conn_uri: postgresql://u@h/db\n"
        "  variables:\n"
        "    - variable_name: structured\n"
        "      variable_value: {a: 1}\n"
        "  pools:\n"
        "    - pool_name: zero\n"
        "      pool_slot: 0\n"
        "      include_deferred: true\n"
    )
    settings = parse_settings(text)
    assert settings.connections["pg"] == {
        "conn_type": "postgres",
        "port": 6543,
        "extra": {"sslmode": "require"},
    }
    assert "by_uri" in settings.connections
    assert settings.variables == {"structured": '{"a": 1}'}
    assert settings.pools == {"zero": {"slots": 0, "description": "", "include_deferred": True}}
    assert parse_settings("") == Settings()
    assert parse_settings("airflow:\n") == Settings()


# --------------------------------------------------------------------------------------------------
# environment overrides


def test_environment_json_wins_field_by_field() -> None:
    settings = load_settings()
    env = {
        "AIRFLOW_CONN_TRILHA_POSTGRES": json.dumps(
            {"conn_type": "postgres", "host": "127.0.0.1", "port": 6543, "password": "s3cret", "login": None}
        ),
        "AIRFLOW_CONN_TRILHA_MINIO": json.dumps(
            {
                "login": "AKIA-test",
                "password": "secret-key",
                "extra": {"endpoint_url": "http://127.0.0.1:9999"},
            }
        ),
        # A URI-form variable is not JSON: the file's entry is kept as it is.
        "AIRFLOW_CONN_TRILHA_MONGO": "mongodb://elsewhere:1/x",
        # Connections not in the file are not invented.
        "AIRFLOW_CONN_SOMETHING_ELSE": json.dumps({"conn_type": "http"}),
    }
    merged = with_environment_overrides(settings, env)
    pg = merged.connections["trilha_postgres"]
    assert pg["host"] == "127.0.0.1"
    assert pg["port"] == 6543
    assert pg["password"] == "s3cret"
    # Fields the environment does not give (or gives as null) keep the file's value.
    assert pg["login"] == "trilha"
    assert pg["schema"] == "trilha"
    assert pg["description"].startswith("Audit store")
    minio = merged.connections["trilha_minio"]
    assert (minio["login"], minio["password"]) == ("AKIA-test", "secret-key")
    assert minio["extra"] == {"endpoint_url": "http://127.0.0.1:9999"}
    assert minio["conn_type"] == "aws"
    assert merged.connections["trilha_mongo"] == settings.connections["trilha_mongo"]
    assert set(merged.connections) == CONN_IDS
    # The input is not modified, and variables and pools pass through.
    assert settings.connections["trilha_postgres"]["host"] == "localhost"
    assert "password" not in settings.connections["trilha_postgres"]
    assert merged.variables == settings.variables
    assert merged.pools == settings.pools


def test_environment_override_with_broken_json_names_the_variable() -> None:
    with pytest.raises(SettingsError, match="AIRFLOW_CONN_TRILHA_MINIO: expected connection JSON"):
        with_environment_overrides(load_settings(), {"AIRFLOW_CONN_TRILHA_MINIO": "{broken"})


def test_check_mode_validates_without_applying(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(conn_yaml("    - conn_id: pg\n      conn_type: postgres\n      conn_port: x\n"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_CONN_")}
    ok = subprocess.run(
        [sys.executable, "-m", "trilha.ops.settings", "--check"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        check=False,
        timeout=120,
    )
    assert ok.returncode == 0, ok.stderr
    assert "ok: 5 connections, 7 variables, 1 pools" in ok.stdout
    res = subprocess.run(
        [sys.executable, "-m", "trilha.ops.settings", "--check", "--file", str(bad)],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        check=False,
        timeout=120,
    )
    assert res.returncode == 2
    assert "settings error: bad.yaml: airflow.connections[0] (conn_id 'pg'): conn_port" in res.stderr


# --------------------------------------------------------------------------------------------------
# applied to a real (private) Airflow metadata database


@pytest.mark.integration
@pytest.mark.slow
def test_apply_to_a_private_airflow_metadata_db(tmp_path: Path) -> None:
    """``airflow db migrate`` + ``python -m trilha.ops.settings`` in subprocesses, then read back.

    The environment's ``AIRFLOW_CONN_TRILHA_MINIO`` JSON (as the local stack writes it) must win over the
    file's placeholders in what ends up stored in Airflow.
    """
    home = tmp_path / "airflow"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_", "AIRFLOW__"))}
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home}/airflow.db",
        AIRFLOW__CORE__FERNET_KEY=Fernet.generate_key().decode(),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__DAGS_FOLDER=str(tmp_path / "no-dags"),
        AIRFLOW_CONN_TRILHA_MINIO=json.dumps(
            {
                "conn_type": "aws",
                "login": "test-access-key",
                "password": "test-secret-key-123",
                "extra": {
                    "endpoint_url": "http://127.0.0.1:19000",
                    "config_kwargs": {"s3": {"addressing_style": "path"}},
                },
            }
        ),
    )
    airflow = str(Path(sys.executable).parent / "airflow")

    def run(*cmds: list[str]) -> list[str]:
        """Run the commands at the same time (each airflow CLI call costs seconds of start-up)."""
        procs = [
            subprocess.Popen(
                cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path
            )
            for cmd in cmds
        ]
        outs = []
        for cmd, proc in zip(cmds, procs, strict=True):
            out, err = proc.communicate(timeout=300)
            assert proc.returncode == 0, f"{cmd}: {out[-1500:]}\n{err[-1500:]}"
            outs.append(out)
        return outs

    run([airflow, "db", "migrate"])
    [out] = run([sys.executable, "-m", "trilha.ops.settings"])
    assert "loaded 5 connections, 7 variables, 1 pools" in out

    # The CLI reads connections from the database here, not from the environment: drop the variable.
    del env["AIRFLOW_CONN_TRILHA_MINIO"]
    minio_out, pg_out, pools_out, _ = run(
        [airflow, "connections", "get", "trilha_minio", "-o", "json"],
        [airflow, "connections", "get", "trilha_postgres", "-o", "json"],
        [airflow, "pools", "list", "-o", "json"],
        [airflow, "variables", "export", str(tmp_path / "variables.json")],
    )
    minio = json.loads(minio_out)
    minio = minio[0] if isinstance(minio, list) else minio
    assert minio["conn_type"] == "aws"
    assert minio["login"] == "test-access-key"
    assert minio["password"] == "test-secret-key-123"
    extra = minio["extra_dejson"] if "extra_dejson" in minio else json.loads(minio["extra"])
    assert extra["endpoint_url"] == "http://127.0.0.1:19000"
    assert extra["config_kwargs"] == {"s3": {"addressing_style": "path"}}

    pg = json.loads(pg_out)
    pg = pg[0] if isinstance(pg, list) else pg
    assert (pg["conn_type"], pg["host"], int(pg["port"]), pg["schema"]) == (
        "postgres",
        "localhost",
        5432,
        "trilha",
    )

    pools = {p["pool"]: p for p in json.loads(pools_out)}
    assert int(pools["trilha_s3"]["slots"]) == 4
    assert pools["trilha_s3"]["description"] == "Bounds concurrent S3-heavy Trilha tasks."

    assert json.loads((tmp_path / "variables.json").read_text()) == VARIABLES

    # Applying again is harmless: entries are overwritten, not duplicated, and the import does not fail.
    run([sys.executable, "-m", "trilha.ops.settings"])
    [conns_out] = run([airflow, "connections", "list", "-o", "json"])
    assert sorted(c["conn_id"] for c in json.loads(conns_out)) == sorted(CONN_IDS)
