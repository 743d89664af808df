"""A child process for the concurrency and crash tests: build one Trilha operator and run it.

Usage: ``python ingest_child.py '<json job>'``. The job names the operator (``promote``, ``cleanup``,
``ingest``, ``curated``, ``split``), its keyword arguments, an optional ``batch`` size
(``trilha.operators.base.BATCH``), and optional ``ready_file`` / ``go_file`` paths: the child
writes the first once it is ready and waits for the second, so that two children start their work
at the same moment. ``delay_s`` adds a pause before each copy and each delete request (a slower
server), so that a test can kill the child in the middle of its work rather than after it. It
prints ``RESULT <json>`` (the operator's summary, or the error) on its last line. Connections come
from the ``AIRFLOW_CONN_*`` variables the parent test session exported.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any


def main() -> int:
    job = json.loads(sys.argv[1])
    import trilha.operators.base as base
    import trilha.operators.cleanup as cleanup
    import trilha.operators.curated as curated
    import trilha.operators.ingest as ingest
    import trilha.operators.promote as promote
    import trilha.operators.split as split
    from tests.helpers import run_operator

    if job.get("batch"):
        base.BATCH = int(job["batch"])
    if job.get("delay_s"):
        from trilha.hooks.minio import MinioHook

        delay = float(job["delay_s"])
        for name in ("copy_object_verified", "delete_keys"):
            real = getattr(MinioHook, name)

            def slow(self: Any, *args: Any, _real: Any = real, **kwargs: Any) -> Any:
                time.sleep(delay)
                return _real(self, *args, **kwargs)

            setattr(MinioHook, name, slow)
    ops = {
        "promote": promote.PromoteOperator,
        "cleanup": cleanup.CleanupOperator,
        "ingest": ingest.RawIngestOperator,
        "curated": curated.CuratedOperator,
        "split": split.DatasetSplitOperator,
    }
    op = ops[job["op"]](task_id=job["op"], **job["kwargs"])
    # Hooks and connections are built before the start signal, so both children race on the work only.
    op.minio.get_conn()
    _ = op.audit.db
    if job.get("ready_file"):
        Path(job["ready_file"]).write_text("ready")
    if job.get("go_file"):
        deadline = time.monotonic() + 60
        while not Path(job["go_file"]).exists():
            if time.monotonic() > deadline:
                print("RESULT " + json.dumps({"error": "no go signal"}), flush=True)
                return 2
            time.sleep(0.005)
    try:
        summary = run_operator(op, run_id=job.get("run_id"))
    except Exception as err:  # reported to the parent test, which asserts on it
        print("RESULT " + json.dumps({"error": f"{type(err).__name__}: {err}"}), flush=True)
        return 1
    print("RESULT " + json.dumps(summary, default=str), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
