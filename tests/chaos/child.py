"""A child process of the chaos suite: build one Trilha operator, run it, and maybe die on purpose.

Usage: ``python tests/chaos/child.py '<json job>'``. The job names the operator (``ingest``,
``promote``, ``cleanup``, ``staging``, ``curated``, ``split``) and its keyword arguments, and may
carry a ``kill`` point: ``{"target": "<Class.method>" or "sql:<statement>", "call": N, "when":
"before"|"after"}``. At the N-th call of that method (or the N-th execution of that named SQL
statement, inside its still-open transaction), the process sends itself SIGKILL, before or after the
call: no ``finally`` block, no rollback, no audit update runs, exactly as with ``kill -9`` or the
OOM killer. Without a kill point the parent may still kill the child at a random time.

It prints ``RESULT <json>`` (the operator's summary, or the error) on its last line. Connections
come from the ``AIRFLOW_CONN_*`` variables of the parent.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from typing import Any


def die() -> None:
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def arm(kill: dict[str, Any]) -> None:
    """Patch the kill point's target so that its N-th call kills the process."""
    from trilha.hooks.audit import AuditHook
    from trilha.hooks.minio import MinioHook

    target, call, when = str(kill["target"]), int(kill["call"]), str(kill["when"])
    seen = {"n": 0}

    if target.startswith("sql:"):
        statement = target[len("sql:") :]
        real_execute = AuditHook._execute

        def execute(self: Any, cur: Any, name: str, params: dict[str, Any]) -> Any:
            if name == statement:
                seen["n"] += 1
                if seen["n"] == call and when == "before":
                    die()
            rows = real_execute(self, cur, name, params)
            if name == statement and seen["n"] == call and when == "after":
                die()  # the statement ran; its transaction is open and never commits
            return rows

        AuditHook._execute = execute  # type: ignore[method-assign]
        return

    owner, method = target.split(".")
    cls = {"MinioHook": MinioHook, "AuditHook": AuditHook}[owner]
    real = getattr(cls, method)

    def patched(self: Any, *args: Any, **kwargs: Any) -> Any:
        seen["n"] += 1
        if seen["n"] == call and when == "before":
            die()
        result = real(self, *args, **kwargs)
        if seen["n"] == call and when == "after":
            die()
        return result

    setattr(cls, method, patched)


def build(step: str, kwargs: dict[str, Any]) -> Any:
    """The operator of a chaos step, by the step's name."""
    import trilha.operators.cleanup as cleanup
    import trilha.operators.curated as curated
    import trilha.operators.ingest as ingest
    import trilha.operators.promote as promote
    import trilha.operators.split as split
    import trilha.operators.staging as staging

    ops = {
        "ingest": ingest.RawIngestOperator,
        "promote": promote.PromoteOperator,
        "cleanup": cleanup.CleanupOperator,
        "staging": staging.StagingOperator,
        "curated": curated.CuratedOperator,
        "split": split.DatasetSplitOperator,
    }
    return ops[step](task_id=step, **kwargs)


def main() -> int:
    job = json.loads(sys.argv[1])
    import trilha.operators.base as ingest
    from tests.helpers import run_operator

    if job.get("batch"):
        ingest.BATCH = int(job["batch"])
    op = build(job["op"], job["kwargs"])
    if job.get("kill"):
        arm(job["kill"])
    print("STARTED", flush=True)
    try:
        summary = run_operator(op, run_id=job.get("run_id"))
    except Exception as err:  # reported to the parent, which asserts on it
        print("RESULT " + json.dumps({"error": f"{type(err).__name__}: {err}"}), flush=True)
        return 1
    print("RESULT " + json.dumps(summary, default=str), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
