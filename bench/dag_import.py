"""DAG parse cost (issue #15): ``python -X importtime`` of each DAG file against ``airflow.sdk`` alone.

For each file in ``dags/`` and for the baseline, a fresh interpreter runs with ``-X importtime``:

* ``airflow.sdk``: ``import airflow.sdk`` only;
* each DAG file: ``import airflow.sdk`` and then the file itself (``runpy.run_path``, as a
  parser executes it), so the DAG's imports on top of the SDK are what differs.

The import time of a run is the sum of the cumulative times of its top-level imports (the lines of
``-X importtime``'s output that are not nested). The runs are interleaved, ``--repeat`` times
(default 5), and each figure is the median. Target: each DAG file < 1.5x the baseline. The
wall time of each interpreter (start to exit) is shown beside it.

    .venv/bin/python bench/dag_import.py
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DAGS = REPO / "dags"
TARGET = 1.5


def import_micros(stderr: str) -> int:
    """The sum of the cumulative microseconds of the top-level imports in ``-X importtime`` output."""
    total = 0
    for line in stderr.splitlines():
        fields = line.split("|")
        if not line.startswith("import time:") or len(fields) != 3 or "cumulative" in line:
            continue
        name = fields[2]
        if name[:1] == " " and name[1:2] != " ":  # one space after the bar: a top-level import
            total += int(fields[1].strip())
    return total


def one_run(code: str, env: dict[str, str]) -> tuple[int, float]:
    start = time.perf_counter()
    done = subprocess.run(  # noqa: S603  # argv built here, no shell
        [sys.executable, "-X", "importtime", "-c", code],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
    )
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{code!r} failed:\n{done.stderr[-2000:]}")
    return import_micros(done.stderr), wall


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/dag_import.py", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="interleaved runs of each (default 5)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a file misses the target")
    args = parser.parse_args(argv)
    home = tempfile.mkdtemp(prefix="trilha-bench-import-")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "TRILHA_"))}
    env.update(
        AIRFLOW_HOME=home,
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home}/airflow.db",
        PYTHONPATH=str(REPO / "plugins"),
    )
    cases = {"airflow.sdk": "import airflow.sdk"}
    for path in sorted(DAGS.glob("*.py")):
        cases[path.name] = f"import airflow.sdk, runpy; runpy.run_path({str(path)!r})"
    one_run(cases["airflow.sdk"], env)  # warm the file cache: the first run reads every .pyc from disk
    figures: dict[str, list[tuple[int, float]]] = {name: [] for name in cases}
    for _ in range(args.repeat):
        for name, code in cases.items():
            figures[name].append(one_run(code, env))
    base = statistics.median(us for us, _ in figures["airflow.sdk"])
    print(f"{'import of':28s} {'import ms':>10s} {'x sdk':>6s} {'wall ms':>8s}   (median of {args.repeat})")
    failed = []
    for name, runs in figures.items():
        us = statistics.median(u for u, _ in runs)
        wall = statistics.median(w for _, w in runs)
        ratio = us / base
        mark = "" if name == "airflow.sdk" else ("  ok" if ratio < TARGET else "  OVER")
        if mark == "  OVER":
            failed.append(name)
        print(f"{name:28s} {us / 1000:10.1f} {ratio:6.2f} {wall * 1000:8.0f}{mark}")
    print(
        f"target: every DAG file < {TARGET:g}x airflow.sdk's import time: "
        + ("MET" if not failed else f"NOT MET ({', '.join(failed)})")
    )
    return 1 if failed and args.strict else 0


if __name__ == "__main__":
    sys.exit(main())
