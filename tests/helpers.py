"""Helpers shared by the tests: run an operator's ``execute`` with a minimal task context."""

from __future__ import annotations

import uuid
from types import SimpleNamespace
from typing import Any


def run_operator(
    op: Any, run_id: str | None = None, dag_id: str = "test_dag", try_number: int = 1, **context: Any
) -> Any:
    """Call ``op.execute`` the way the task runner does, with the context fields Trilha reads.

    Fields are passed already rendered (no Jinja), which is what a test wants to control. ``context``
    adds fields (``outlet_events``, ``triggering_asset_events``: see tests/integration/events_support.py).
    """
    run_id = run_id or f"test__{uuid.uuid4().hex[:12]}"
    ti = SimpleNamespace(
        dag_id=dag_id, run_id=run_id, task_id=op.task_id, map_index=-1, try_number=try_number
    )
    return op.execute({"ti": ti, "run_id": run_id, "params": {}, **context})
