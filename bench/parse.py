"""DAG parse cost: each DAG file's import next to ``import airflow.sdk`` alone, in the same run.

The scheduler's DAG processor imports every DAG file over and over; a DAG file must cost little more
than the ``airflow.sdk`` import it cannot avoid. Each measurement is a fresh interpreter (the cost a
DAG processor's child pays), timed inside it with ``time.perf_counter`` around the imports, and the
runs of the baseline and of every file alternate so that a change in machine load hits all alike.
The table shows the median of ``--repeat`` runs, the ratio to the baseline, and the heavy modules the
file pulled in (none may appear: pandas, pyarrow, boto3, pyiceberg, the Google client, Snowflake).

    .venv/bin/python bench/parse.py [--repeat 5] [--strict]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DAGS = REPO / "dags"
TARGET = 1.5
HEAVY = ("pandas", "pyarrow", "boto3", "botocore", "pyiceberg", "googleapiclient", "snowflake")

CHILD = """
import importlib.util, json, sys, time
heavy = {heavy!r}
start = time.perf_counter()
import airflow.sdk
sdk = time.perf_counter() - start
path = {path!r}
if path:
    spec = importlib.util.spec_from_file_location("dagfile", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
total = time.perf_counter() - start
loaded = sorted({{h for h in heavy for m in sys.modules if m == h or m.startswith(h + ".")}})
print(json.dumps({{"sdk": sdk, "total": total, "heavy": loaded}}))
"""


def measure(path: Path | None) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_CONN_", "AIRFLOW_VAR_"))}
    env["PYTHONPATH"] = str(REPO / "plugins")
    code = CHILD.format(heavy=HEAVY, path=str(path) if path else "")
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO, check=False
    )
    if res.returncode != 0:
        raise SystemExit(f"{path}: import failed:\n{res.stderr[-2000:]}")
    return dict(json.loads(res.stdout.strip().splitlines()[-1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="interleaved runs per file (median kept)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args()
    files = sorted(DAGS.glob("*.py"))
    times: dict[str, list[float]] = {"(import airflow.sdk)": []}
    heavy: dict[str, list[str]] = {}
    for _ in range(args.repeat):
        times["(import airflow.sdk)"].append(float(measure(None)["total"]))  # type: ignore[arg-type]
        for path in files:
            got = measure(path)
            times.setdefault(path.name, []).append(float(got["total"]))  # type: ignore[arg-type]
            heavy[path.name] = list(got["heavy"])  # type: ignore[call-overload]
    base = statistics.median(times["(import airflow.sdk)"])
    load = os.getloadavg()[0]
    print(f"DAG parse cost: median of {args.repeat} fresh interpreters each; load average {load:.2f}")
    print(f"{'file':<26} {'median s':>9} {'vs sdk':>7}  heavy modules")
    print("-" * 70)
    missed = []
    for name, runs in times.items():
        med = statistics.median(runs)
        ratio = med / base
        loaded = heavy.get(name, [])
        print(f"{name:<26} {med:9.3f} {ratio:6.2f}x  {', '.join(loaded) or '-'}")
        if name in heavy and (ratio > TARGET or loaded):
            missed.append(name)
    print("-" * 70)
    verdict = "MET" if not missed else "MISSED (" + ", ".join(missed) + ")"
    print(f"target: every DAG file < {TARGET}x import airflow.sdk, no heavy module: {verdict}")
    return 1 if (missed and args.strict) else 0


if __name__ == "__main__":
    sys.exit(main())
