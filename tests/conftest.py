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
for _key in [k for k in os.environ if k.startswith(("AIRFLOW_CONN_", "AIRFLOW_VAR_", "OPENLINEAGE"))]:
    del os.environ[_key]
# No test sends lineage anywhere unless it sets a transport itself (tests/integration/test_openlineage.py).
os.environ["AIRFLOW__OPENLINEAGE__DISABLED"] = "True"

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def stack() -> Iterator[object]:
    """A running local stack with migrated audit schema; its connections are in ``os.environ``."""
    from tests.helpers import running_stack

    with running_stack("trilha-test-stack-", "local stack") as st:
        yield st
