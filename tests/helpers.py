"""Helpers shared by the tests: run an operator's ``execute`` with a minimal task context, and a
state directory for a local stack."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any


def run_operator(
    op: Any,
    run_id: str | None = None,
    dag_id: str = "test_dag",
    try_number: int = 1,
    map_index: int = -1,
    **context: Any,
) -> Any:
    """Call ``op.execute`` the way the task runner does, with the context fields Trilha reads.

    Fields are passed already rendered (no Jinja), which is what a test wants to control. ``context``
    adds fields (``outlet_events``, ``triggering_asset_events``: see tests/integration/events_support.py).
    """
    run_id = run_id or f"test__{uuid.uuid4().hex[:12]}"
    ti = SimpleNamespace(
        dag_id=dag_id, run_id=run_id, task_id=op.task_id, map_index=map_index, try_number=try_number
    )
    return op.execute({"ti": ti, "run_id": run_id, "params": {}, **context})


@contextlib.contextmanager
def running_stack(prefix: str, what: str) -> Iterator[Any]:
    """A local stack of its own, migrated, in a :func:`stack_dir`, with its connections in
    ``os.environ`` while it runs; stopped and removed at the end. A stack that cannot start skips
    the tests that need it, or fails them with ``TRILHA_REQUIRE_SERVICES=1`` (CI)."""
    import os

    import psycopg2
    import pytest

    from trilha.hooks.migrations import migrate
    from trilha.ops.devstack import Stack, StackGroupError

    with stack_dir(prefix) as base:
        st = Stack(base, log=lambda _msg: None)
        try:
            st.up()
        except StackGroupError as err:
            st.down()
            if os.environ.get("TRILHA_REQUIRE_SERVICES") == "1":
                pytest.fail(f"{what} could not start (TRILHA_REQUIRE_SERVICES=1): {err}")
            pytest.skip(f"{what} could not start: {err}")
        conns = {k: v for k, v in st.env_vars().items() if k.startswith("AIRFLOW_CONN_")}
        try:
            with environ(conns):
                conn = psycopg2.connect(st.postgres_dsn())
                try:
                    migrate(conn)
                finally:
                    conn.close()
                yield st
        finally:
            st.down()


@contextlib.contextmanager
def environ(values: dict[str, str]) -> Iterator[None]:
    """``values`` in ``os.environ`` for the block; each variable's previous value (or absence) after."""
    import os

    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextlib.contextmanager
def stack_dir(prefix: str) -> Iterator[Path]:
    """A state directory for a local stack, outside pytest's basetemp, removed at the end.

    As root, PostgreSQL runs as an unprivileged user that must traverse every parent of its data
    directory. Every pytest process resets ``/tmp/pytest-of-<user>`` to 0700 when it starts, so a
    stack under it dies ("pg_control: Permission denied") as soon as a second test run begins.
    """
    base = Path(tempfile.mkdtemp(prefix=prefix))
    base.chmod(0o711)
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)
