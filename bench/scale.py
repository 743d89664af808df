"""Scale benchmark (issue #14): staging -> curated -> dataset_split at 1x, 4x and 10x one INMET year.

One private embedded stack (PostgreSQL, ``rclone serve s3``, mongod) in a temporary directory. For
each size, synthetic INMET-shaped station files (``bench/synth.py``: the real 2020+ layout) of
``--stations`` stations x N years (N = the size: 564 x 1, 4 and 10 = 564, 2,256 and 5,640
station-years, ~4.95 M, 19.8 M and 49.5 M hourly rows) go into a project of their own:

* ``load`` (not part of the figures): ``drive_capture`` -> ``raw_ingest`` -> ``reception_promote``
  through ``python -m trilha.ops.run``, so the files are stored raw objects with their audit rows;
* ``work`` (the figures): ``staging`` -> ``curated`` -> ``dataset_split`` through
  ``python -m trilha.ops.run`` (the entry point of ``make demo``: one process, ``dag.test()`` per DAG,
  the mapped ``stage`` and ``write`` tasks run one after another in that process).

Then, on the largest lake, an ``incremental`` run: one new station-year (a station the lake has not
seen, in the newest year) is loaded, and ``staging`` -> ``curated`` run again. ``dataset_split`` is
left out of the incremental figure, because a dataset version is a complete cut by definition (its
time is printed apart).

Figures per run:

* ``wall``: the ``ops.run`` process, start to exit (Airflow's start-up included);
* ``operators``: the sum of the operators' own ``execute`` times (run-log ``duration_s``), per DAG;
* ``rows/s``: the input's hourly rows over ``operators``;
* ``peak RSS``: ``ru_maxrss`` of the ``ops.run`` process (the largest process of its tree), and
  each DAG's largest task's own peak (``peak_rss_bytes`` of its run-log documents: the operator
  resets the process's high-water mark when it starts, as if each task ran in a process of its own,
  which is what a Celery worker does);
* ``written``: bytes of the objects the run added under the project's prefix in the staging,
  curated and datasets buckets (listed before and after).

Targets (issue #14): peak RSS < 1.5 GiB at every size; the 10x run at most 11x the 1x run
(operators); the incremental run < 2% of the 10x run's cost and < 2% of its bytes; 1x no slower
than ``bench/transform.py``'s staging+curated+split for the same work (``--transform`` runs it).

    .venv/bin/python bench/scale.py                       # 1x, 4x, 10x + incremental (long: ~1 h)
    .venv/bin/python bench/scale.py --sizes 1,4 --transform
    .venv/bin/python bench/scale.py --quick               # 24 stations: 1x, 4x + incremental
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "bench"
for _path in (BENCH, REPO / "plugins"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from pipeline import PYTHON, Stacks, run_log_docs, timed_run  # noqa: E402

LOAD = ("drive_capture", "raw_ingest", "reception_promote")
WORK = ("staging", "curated", "dataset_split")
INCREMENTAL = ("staging", "curated")
#: The buckets whose objects under a project's prefix are the work's output (the defaults).
OUTPUT_BUCKETS = ("staging-data", "curated-data", "datasets")
GIB = 1024**3
#: Targets of issue #14.
RSS_LIMIT = 1.5 * GIB
LINEAR = 11.0
INCREMENTAL_SHARE = 0.02


@dataclass
class Measured:
    """One ``ops.run`` of some DAGs on one project."""

    label: str
    rows: int
    wall: float
    rss: int  # bytes
    operators: dict[str, float]  # dag_id -> sum of its tasks' execute seconds
    written: int
    counters: dict[str, dict[str, int]] = field(default_factory=dict)
    by_bucket: dict[str, int] = field(default_factory=dict)
    task_rss: dict[str, int] = field(default_factory=dict)  # dag_id -> its tasks' largest own peak

    @property
    def cost(self) -> float:
        return sum(self.operators.values())


def ops_run(
    dag_ids: tuple[str, ...], conf: dict[str, Any], env: dict[str, str], log_path: Path, **own: Any
) -> tuple[float, int, str]:
    cmd = [str(PYTHON), "-m", "trilha.ops.run", *dag_ids, "--conf", json.dumps(conf), "--log", str(log_path)]
    for dag_id, params in own.items():
        cmd += ["--conf-for", f"{dag_id}={json.dumps(params)}"]
    wall, rss_mib, output = timed_run(cmd, env)
    return wall, int(rss_mib * 1024 * 1024), output


def bytes_under(st: Any, prefix: str) -> dict[str, int]:
    """Bytes of the objects under ``prefix/`` in each output bucket."""
    client = st.s3_client()
    total = dict.fromkeys(OUTPUT_BUCKETS, 0)
    for bucket in OUTPUT_BUCKETS:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{prefix}/"):
            total[bucket] += sum(int(o["Size"]) for o in page.get("Contents", []))
    return total


def operator_seconds(
    st: Any, seen: set[str]
) -> tuple[dict[str, float], dict[str, dict[str, int]], dict[str, int]]:
    """Execute seconds, counters and the largest task peak RSS per DAG of the run-log documents not
    in ``seen`` (added to it)."""
    seconds: dict[str, float] = {}
    counters: dict[str, dict[str, int]] = {}
    peaks: dict[str, int] = {}
    for doc in run_log_docs(st):
        ident = str(doc["_id"])
        if ident in seen:
            continue
        seen.add(ident)
        if doc.get("status") != "success":
            raise RuntimeError(f"run log: {ident} is {doc.get('status')}: {doc.get('error')}")
        dag_id = str(doc["dag_id"])
        seconds[dag_id] = seconds.get(dag_id, 0.0) + float(doc["duration_s"])
        peaks[dag_id] = max(peaks.get(dag_id, 0), int(doc.get("peak_rss_bytes") or 0))
        mine = counters.setdefault(dag_id, {})
        for key, value in (doc.get("counters") or {}).items():
            if value:
                mine[key] = mine.get(key, 0) + int(value)
    return seconds, counters, peaks


class Bench:
    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args, self.work = args, work
        self.stacks = Stacks(work)
        self.seen: set[str] = set()
        self.st: Any = None
        self.env: dict[str, str] = {}

    def log(self, msg: str) -> None:
        print(msg, flush=True)

    def up(self) -> None:
        self.st, self.env = self.stacks.up(self.log)
        self.logs = self.st.state_dir / "demo-logs"

    def load(self, project: str, folder: Path) -> float:
        wall, _, _ = ops_run(
            LOAD,
            {"project": project},
            self.env,
            self.logs / f"load-{project}.log",
            drive_capture={"source": str(folder), "project_prefix": project},
        )
        operator_seconds(self.st, self.seen)  # the load's documents are not the work's
        return wall

    def measure(self, label: str, project: str, dag_ids: tuple[str, ...], rows: int) -> Measured:
        before = bytes_under(self.st, project)
        wall, rss, _ = ops_run(dag_ids, {"project": project}, self.env, self.logs / f"{label}.log")
        seconds, counters, peaks = operator_seconds(self.st, self.seen)
        after = bytes_under(self.st, project)
        staged = counters.get("staging", {})
        if "staging" in dag_ids and staged.get("rows_ok", 0) + staged.get("rows_rejected", 0) != rows:
            # A figure over less than the whole input would flatter the run: refuse it.
            raise RuntimeError(f"{label}: staging read {staged} of {rows:,} input rows; see {self.logs}")
        return Measured(
            label=label,
            rows=rows,
            wall=wall,
            rss=rss,
            operators=seconds,
            written=sum(after.values()) - sum(before.values()),
            by_bucket={b: after[b] - before[b] for b in OUTPUT_BUCKETS},
            counters=counters,
            task_rss=peaks,
        )


def transform_figure(stations: int, hours: int | None) -> float | None:
    """``bench/transform.py``'s staging+curated+split seconds for one year of ``stations`` stations."""
    cmd = [str(PYTHON), str(BENCH / "transform.py"), "--stations", str(stations), "--skip-pandas"]
    cmd += ["--repeat", "1", "--hours", str(hours or 8784)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=REPO)  # noqa: S603
    match = re.search(r"^pipeline \(staging\+curated\+split hash\)\s+([\d.]+)", done.stdout, re.MULTILINE)
    if done.returncode != 0 or match is None:
        print(f"bench/transform.py failed ({done.returncode}):\n{(done.stdout + done.stderr)[-2000:]}")
        return None
    return float(match[1])


def report(
    results: list[Measured], incremental: Measured | None, split_after: float | None, transform: float | None
) -> list[tuple[bool, str]]:
    print()
    header = f"{'run':14s} {'rows':>12s} {'wall s':>8s} {'operators s':>11s}"
    header += (
        f" {'staging':>8s} {'curated':>8s} {'split':>7s} {'rows/s':>10s} {'peak RSS':>9s} {'written':>10s}"
    )
    print(header)
    print("-" * len(header))
    for m in [*results, *([incremental] if incremental else [])]:
        ops = m.operators
        print(
            f"{m.label:14s} {m.rows:12,d} {m.wall:8.1f} {m.cost:11.1f} {ops.get('staging', 0):8.1f} "
            f"{ops.get('curated', 0):8.1f} {ops.get('dataset_split', 0):7.1f} {m.rows / m.cost:10,.0f} "
            f"{m.rss / GIB:8.2f}G {m.written / 1e6:9.1f}M"
        )
    print("bytes written per bucket, MB:")
    for m in [*results, *([incremental] if incremental else [])]:
        print(f"  {m.label:12s} " + "  ".join(f"{b} {v / 1e6:.1f}" for b, v in m.by_bucket.items()))
    print("peak RSS of each DAG's largest task (run log, reset at each task's start), GiB:")
    for m in [*results, *([incremental] if incremental else [])]:
        print(f"  {m.label:12s} " + "  ".join(f"{d} {v / GIB:.2f}" for d, v in m.task_rss.items()))
    checks: list[tuple[bool, str]] = []
    for m in results:
        checks.append((m.rss < RSS_LIMIT, f"{m.label}: peak RSS < 1.5 GiB: {m.rss / GIB:.2f} GiB"))
    base = results[0]
    for m in results[1:]:
        factor = m.rows / base.rows
        ratio = m.cost / base.cost
        checks.append(
            (
                ratio <= LINEAR * factor / 10,
                f"{m.label}: cost {ratio:.2f}x the {base.label} run for {factor:.0f}x the rows "
                f"(limit {LINEAR * factor / 10:.1f}x)",
            )
        )
    if incremental is not None:
        full = results[-1]
        share = incremental.cost / full.cost
        checks.append(
            (
                share < INCREMENTAL_SHARE,
                f"incremental: {share:.2%} of the {full.label} run's operator time "
                f"({incremental.cost:.1f} s / {full.cost:.1f} s; wall {incremental.wall:.1f} s, "
                f"{incremental.wall / full.wall:.2%} of its wall)",
            )
        )
        written = incremental.written / full.written
        checks.append(
            (
                written < INCREMENTAL_SHARE,
                f"incremental: wrote {written:.2%} of the {full.label} run's bytes "
                f"({incremental.written / 1e6:.1f} MB / {full.written / 1e6:.1f} MB)",
            )
        )
        if split_after is not None:
            print(f"(a new dataset version cut after the incremental run: dataset_split {split_after:.1f} s)")
    if transform is not None:
        mine = base.operators.get("staging", 0) + base.operators.get("curated", 0)
        mine += base.operators.get("dataset_split", 0)
        checks.append(
            (
                mine <= transform,
                f"{base.label}: staging+curated+split operators {mine:.1f} s vs bench/transform.py "
                f"{transform:.1f} s for the same work ({mine / transform:.2f}x)",
            )
        )
    return checks


def run(args: argparse.Namespace) -> int:
    from synth import one_file, write

    work = Path(tempfile.mkdtemp(prefix="trilha-bench-scale-"))
    os.chmod(work, 0o711)  # the embedded PostgreSQL runs as an unprivileged user when we are root
    bench = Bench(args, work)
    print(
        f"bench/scale.py: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; "
        f"{args.stations} stations; sizes {args.sizes}; work dir {work}",
        flush=True,
    )
    results: list[Measured] = []
    incremental: Measured | None = None
    split_after: float | None = None
    try:
        transform = transform_figure(args.stations, args.hours) if args.transform else None
        bench.up()
        project = ""
        for size in args.sizes:
            project = f"scale{size}x"
            folder = work / f"input-{size}x"
            # A seed per size: the lake is content-addressed across projects, so the same station-
            # year generated twice would be a duplicate the larger size never stages.
            done = write(folder, args.stations, size, seed=args.seed + size, hours=args.hours, workers=2)
            bench.log(f"{project}: {done.files} files, {done.rows:,} rows, {done.bytes / 1e6:.0f} MB")
            load_s = bench.load(project, folder)
            shutil.rmtree(folder, ignore_errors=True)
            m = bench.measure(f"{size}x", project, WORK, done.rows)
            bench.log(
                f"  load {load_s:.1f}s; work wall {m.wall:.1f}s, operators {m.cost:.1f}s, "
                f"peak RSS {m.rss / GIB:.2f} GiB, wrote {m.written / 1e6:.1f} MB"
            )
            results.append(m)
        if not args.skip_incremental and results:
            folder = work / "input-incremental"
            folder.mkdir()
            extra = one_file(args.stations, 2024, args.seed, hours=args.hours)
            (folder / extra.name).write_bytes(extra.data)
            bench.load(project, folder)
            incremental = bench.measure("incremental", project, INCREMENTAL, extra.rows)
            split = bench.measure("split-after", project, ("dataset_split",), 0)
            split_after = split.cost
        checks = report(results, incremental, split_after, transform)
        print()
        for ok, text in checks:
            print(f"{'PASS' if ok else 'FAIL'}  {text}")
        return 1 if args.strict and not all(ok for ok, _ in checks) else 0
    finally:
        if bench.st is not None:
            bench.st.down()
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/scale.py", description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--sizes", default="1,4,10", help="years per station, comma separated (default 1,4,10)"
    )
    parser.add_argument("--stations", type=int, default=564, help="synthetic stations (default 564)")
    parser.add_argument("--hours", type=int, default=None, help="hours per file (default: the whole year)")
    parser.add_argument("--seed", type=int, default=7, help="seed of the synthetic files")
    parser.add_argument("--quick", action="store_true", help="24 stations, sizes 1,4")
    parser.add_argument("--transform", action="store_true", help="also run bench/transform.py at 1x")
    parser.add_argument("--skip-incremental", action="store_true", help="no incremental run")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args(argv)
    if args.quick:
        args.stations, args.sizes = 24, "1,4"
    try:
        args.sizes = sorted({int(s) for s in str(args.sizes).split(",") if s.strip()})
    except ValueError:
        parser.error(f"--sizes: expected whole numbers separated by commas, got {args.sizes!r}")
    if not args.sizes or min(args.sizes) < 1:
        parser.error(f"--sizes: expected sizes of 1 or more, got {args.sizes}")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
