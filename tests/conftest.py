"""Shared test setup.

Integration tests get a private local stack (real PostgreSQL, rclone S3 server and mongod processes)
started once per session on free ports in a temporary directory, migrated, and stopped at the end.
With ``TRILHA_REQUIRE_SERVICES=1`` (CI) a stack that cannot start fails the run instead of skipping.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

# Airflow reads its configuration at import: point it at a private home before anything imports it.
_AIRFLOW_HOME = tempfile.mkdtemp(prefix="trilha-test-airflow-")
os.environ["AIRFLOW_HOME"] = _AIRFLOW_HOME
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_AIRFLOW_HOME}/airflow.db"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(Path(__file__).resolve().parents[1] / "dags")
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "True"
for _key in [k for k in os.environ if k.startswith(("AIRFLOW_CONN_", "AIRFLOW_VAR_"))]:
    del os.environ[_key]

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
REQUIRE_SERVICES = os.environ.get("TRILHA_REQUIRE_SERVICES") == "1"


@pytest.fixture(scope="session")
def stack_state() -> Iterator[Path]:
    from tests.helpers import stack_dir

    with stack_dir("trilha-test-stack-") as base:
        yield base


@pytest.fixture(scope="session")
def stack(stack_state: Path) -> Iterator[object]:
    """A running local stack with migrated audit schema; its connections are in ``os.environ``."""
    import psycopg2

    from trilha.devstack import Stack, StackGroupError
    from trilha.migrate import migrate

    st = Stack(stack_state, log=lambda _msg: None)
    try:
        st.up()
    except StackGroupError as err:
        st.down()
        if REQUIRE_SERVICES:
            pytest.fail(f"local stack could not start (TRILHA_REQUIRE_SERVICES=1): {err}")
        pytest.skip(f"local stack could not start: {err}")
    saved = {k: os.environ.get(k) for k in st.env_vars() if k.startswith("AIRFLOW_CONN_")}
    os.environ.update({k: v for k, v in st.env_vars().items() if k.startswith("AIRFLOW_CONN_")})
    conn = psycopg2.connect(st.postgres_dsn())
    try:
        migrate(conn)
    finally:
        conn.close()
    try:
        yield st
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        st.down()
