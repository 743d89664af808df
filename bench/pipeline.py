"""Benchmark of the whole pipeline through Airflow, the way ``make demo`` runs it (issue #15).

Runs the seven DAGs with the same entry point as ``make demo`` (``python -m trilha.ops.run``, one
process, ``dag.test()`` per DAG, asset events handed on; the arguments of ``scripts/demo.sh``) on

* ``sample``: the bundled sample (``include/sample/inmet``, 4 files, the ``make demo`` input);
* ``year``: a synthetic full year (``bench/synth.py``: 564 station files of 8,784 hours, 2020+
  layout; ``--quick``: 60 stations),

each run on a private embedded stack of its own (PostgreSQL, ``rclone serve s3``, mongod) in a
temporary directory, so that every run is a first run on an empty lake. The Airflow metadata DB is
migrated and ``airflow_settings.yaml`` loaded once (as ``make up`` does), then copied to each stack.

In the same run, on the same stack, it times the bare parts of the same work:

* ``rclone upload``: ``rclone copy --checksum`` of the input folder into a bucket (4 transfers, as
  the capture operator), ``bench/ingest.py``'s :func:`rclone_phase`;
* ``rclone copy``: the same bucket to another, server-side (what promotion does);
* ``transform floor``: ``bench/transform.py``'s :func:`typed_floor` of every file (typed read of the
  17 measures + Parquet write) on 2 threads, as staging's default; files it cannot read (the
  sample's BDMEP export) are left out and counted.

Figures per run:

* ``wall``: the ``python -m trilha.ops.run`` process, start to exit (what a user waits for);
* ``Airflow start-up``: until ops.run prints "Airflow ready" (imports, settings, DAG parse);
* ``sum of operator execute``: ``duration_s`` of every task's run-log document (MongoDB
  ``trilha.run_log``, written by ``operators/base.py``: from after ``ensure_schema`` to the end of
  the operator's work, audit row included);
* ``Airflow overhead``: wall minus the sum of operator times; split into start-up, task runner
  (each task instance's duration in the Airflow DB minus its operator's) and the rest (dag.test's
  scheduling loop, asset events, XCom reads: each DAG's dag.test seconds minus its task instance's);
* ``peak RSS``: ``ru_maxrss`` of the ops.run process (``wait4``), the largest process of its tree.

Targets (issue #15): sample: wall <= 2x the sum of operator times; full year: wall <= 120 s and
<= 1.5x the sum of the bare parts. ``--repeat N`` reports the median of N runs of each case.

    .venv/bin/python bench/pipeline.py --quick            # sample + 60 stations, once
    .venv/bin/python bench/pipeline.py --repeat 3         # sample + 564 stations, median of 3
    .venv/bin/python bench/pipeline.py --only year --profile /tmp/prof   # py-spy of the ops.run process
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "bench"
for _path in (BENCH, REPO / "plugins"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

PYTHON = Path(sys.executable)
SAMPLE = REPO / "include" / "sample" / "inmet"
PROJECT = "inmet"
PIPELINE = (
    "drive_capture",
    "raw_ingest",
    "reception_promote",
    "staging",
    "curated",
    "dataset_split",
    "reception_cleanup",
)
#: Targets of issue #15.
SAMPLE_WALL_VS_OPS = 2.0
YEAR_WALL_S = 120.0
YEAR_WALL_VS_BARE = 1.5
MIB = 1024 * 1024


@dataclass
class Run:
    """One pipeline run and the bare parts timed beside it."""

    case: str
    wall: float
    startup: float
    inside: float  # what ops.run itself timed: start of its chain to its last line
    peak_rss_mib: float
    dag_seconds: dict[str, float]
    operator_seconds: dict[str, float]  # by dag_id (one task each), from the run log
    ti_seconds: dict[str, float]  # by dag_id, task instance duration in the Airflow DB
    counters: dict[str, dict[str, int]]
    bare: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def operators(self) -> float:
        return sum(self.operator_seconds.values())

    @property
    def bare_sum(self) -> float:
        return sum(self.bare.values())


# --------------------------------------------------------------------------------------------------
# environment


def clean_env(extra: dict[str, str]) -> dict[str, str]:
    """This shell's environment without its Airflow/Trilha settings, plus the stack's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "TRILHA_"))}
    env.update(extra)
    env["PATH"] = f"{PYTHON.parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def run_quiet(cmd: list[str], env: dict[str, str], log: Path, what: str, timeout: float = 600) -> float:
    """Run a set-up command with its output in ``log``; raise with the log's tail if it fails."""
    start = time.perf_counter()
    with open(log, "ab") as out:
        done = subprocess.run(  # noqa: S603  # argv built here, no shell
            cmd, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=timeout, check=False, cwd=REPO
        )
    if done.returncode != 0:
        tail = log.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"{what} failed ({done.returncode}), see {log}:\n{tail}")
    return time.perf_counter() - start


class Stacks:
    """Private stacks under ``work``, each a first run; the Airflow DB is prepared once and copied."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.template: Path | None = None  # a migrated airflow.db with the settings loaded
        self.fernet_key: str | None = None
        self.count = 0

    def up(self, log: Any) -> tuple[Any, dict[str, str]]:
        from trilha.ops.devstack import Stack

        self.count += 1
        state = self.work / f"stack-{self.count}"
        st = Stack(state, log=lambda _msg: None)
        if self.fernet_key:
            st.state.setdefault("secrets", {})["fernet_key"] = self.fernet_key
        self.current = st
        start = time.perf_counter()
        st.up()
        env = clean_env(st.env_vars())
        airflow_home = Path(env["AIRFLOW_HOME"])
        airflow_home.mkdir(parents=True, exist_ok=True)
        setup_log = state / "setup.log"
        if self.template is None:
            run_quiet([str(PYTHON.parent / "airflow"), "db", "migrate"], env, setup_log, "airflow db migrate")
            run_quiet([str(PYTHON), "-m", "trilha.ops.settings"], env, setup_log, "trilha.ops.settings")
            self.template = self.work / "airflow-template.db"
            shutil.copy(airflow_home / "airflow.db", self.template)
            self.fernet_key = st.state["secrets"]["fernet_key"]
        else:
            shutil.copy(self.template, airflow_home / "airflow.db")
        run_quiet(
            [str(PYTHON), "-m", "trilha.ops.migrate", "--dsn", st.postgres_dsn()],
            env,
            setup_log,
            "trilha.ops.migrate",
        )
        log(f"  stack {self.count} up and set up in {time.perf_counter() - start:.1f}s: {state}")
        return st, env


# --------------------------------------------------------------------------------------------------
# one pipeline run


def demo_command(source: Path, log_path: Path) -> list[str]:
    """``scripts/demo.sh``'s call of ``python -m trilha.ops.run``, for project ``inmet``."""
    return [
        str(PYTHON),
        "-m",
        "trilha.ops.run",
        *PIPELINE,
        "--conf",
        json.dumps({"project": PROJECT}),
        "--conf-for",
        "drive_capture=" + json.dumps({"source": str(source), "project_prefix": PROJECT}),
        "--conf-for",
        'reception_cleanup={"dry_run": true}',
        "--log",
        str(log_path),
    ]


_DAG_LINE = re.compile(r"^(\w+)\s+ok\s+([\d.]+)s")
_READY = re.compile(r"Airflow ready in ([\d.]+)s")
_DONE = re.compile(r"DAG\(s\) in ([\d.]+)s, one Airflow start-up")


def timed_run(cmd: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Run ``cmd``; return (wall seconds, peak RSS MiB of its tree, stdout). Killed by PID on error."""
    start = time.perf_counter()
    proc = subprocess.Popen(  # noqa: S603  # argv built here, no shell
        cmd,
        env=env,
        cwd=env.get("TRILHA_HOME", REPO),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        output = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
        _, status, usage = os.wait4(proc.pid, 0)
    except BaseException:
        # Only the process group this bench started: ops.run and whatever it spawned.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:  # dag.test() may outlive a SIGTERM: no process left behind
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(30)
        raise
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])} ... exited {proc.returncode}:\n{output[-3000:]}")
    return wall, usage.ru_maxrss / 1024, output


def run_log_docs(st: Any) -> list[dict[str, Any]]:
    import pymongo

    client: Any = pymongo.MongoClient(st.mongo_uri(), serverSelectionTimeoutMS=5000)
    try:
        return list(client["trilha"]["run_log"].find({}, {"problems": 0, "keys_touched": 0}))
    finally:
        client.close()


def task_instance_seconds(airflow_home: Path) -> dict[str, float]:
    """Each DAG's task instance duration (start to end, as the task runner recorded it)."""
    conn = sqlite3.connect(airflow_home / "airflow.db")
    try:
        rows = conn.execute("SELECT dag_id, start_date, end_date FROM task_instance").fetchall()
    finally:
        conn.close()
    out: dict[str, float] = {}
    for dag_id, started, ended in rows:
        if started and ended:
            seconds = (datetime.fromisoformat(ended) - datetime.fromisoformat(started)).total_seconds()
            out[dag_id] = out.get(dag_id, 0.0) + seconds
    return out


def code_env(env: dict[str, str], code: Path | None) -> dict[str, str]:
    """``env`` for running the pipeline from the checkout ``code`` (default: this one)."""
    if code is None:
        return env
    return {
        **env,
        "PYTHONPATH": str(code / "plugins"),
        "TRILHA_HOME": str(code),
        "AIRFLOW__CORE__DAGS_FOLDER": str(code / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(code / "plugins"),
    }


def pipeline_run(
    case: str, source: Path, st: Any, env: dict[str, str], profile: Path | None, code: Path | None = None
) -> Run:
    log_path = st.state_dir / "demo-logs" / "run.log"
    cmd = demo_command(source, log_path)
    env = code_env(env, code)
    if profile is not None:
        profile.mkdir(parents=True, exist_ok=True)
        out = profile / f"{case}-{st.state_dir.name}.txt"
        spy = PYTHON.parent / "py-spy"
        cmd = [str(spy), "record", "--format", "raw", "--rate", "50", "--idle", "-o", str(out), "--", *cmd]
    wall, rss, output = timed_run(cmd, env)
    ready, done = _READY.search(output), _DONE.search(output)
    dag_seconds = {m[1]: float(m[2]) for m in map(_DAG_LINE.match, output.splitlines()) if m}
    if list(dag_seconds) != list(PIPELINE):
        raise RuntimeError(f"ops.run did not report every DAG ok:\n{output[-3000:]}")
    docs = run_log_docs(st)
    operator_seconds: dict[str, float] = {}
    counters: dict[str, dict[str, int]] = {}
    for doc in docs:
        if doc.get("status") != "success":
            raise RuntimeError(f"run log: {doc['_id']} is {doc.get('status')}: {doc.get('error')}")
        dag_id = str(doc["dag_id"])
        operator_seconds[dag_id] = operator_seconds.get(dag_id, 0.0) + float(doc["duration_s"])
        mine = counters.setdefault(dag_id, {})  # a mapped task: the sum of its task instances
        for key, value in (doc.get("counters") or {}).items():
            if value:
                mine[key] = mine.get(key, 0) + int(value)
    missing = [d for d in PIPELINE if d not in operator_seconds]
    if missing:
        raise RuntimeError(f"run log: no document for {', '.join(missing)}")
    return Run(
        case=case,
        wall=wall,
        startup=float(ready[1]) if ready else float("nan"),
        inside=float(done[1]) if done else float("nan"),
        peak_rss_mib=rss,
        dag_seconds=dag_seconds,
        operator_seconds=operator_seconds,
        ti_seconds=task_instance_seconds(Path(env["AIRFLOW_HOME"])),
        counters=counters,
        notes=["py-spy attached"] if profile is not None else [],
    )


# --------------------------------------------------------------------------------------------------
# bare parts


def bare_parts(source: Path, st: Any, work: Path, index: int) -> tuple[dict[str, float], list[str]]:
    """rclone upload + rclone server-side copy + the transform floor, on this stack, fresh buckets."""
    from ingest import rclone_phase, write_rclone_config
    from transform import typed_floor

    conn = st.connections()["trilha_minio"]
    s3 = {
        "endpoint": conn["extra"]["endpoint_url"],
        "access_key": conn["login"],
        "secret_key": conn["password"],
    }
    config = work / f"rclone-{index}.conf"
    write_rclone_config(config, s3)
    client = st.s3_client()
    recv, store = f"bench-bare-recv-{index}", f"bench-bare-store-{index}"
    for bucket in (recv, store):
        client.create_bucket(Bucket=bucket)
    upload = rclone_phase("ingest", source, PROJECT, recv, store, config, 4)
    copy = rclone_phase("promote", source, PROJECT, recv, store, config, 4)

    files = sorted(p for p in source.iterdir() if p.is_file())
    datas = [p.read_bytes() for p in files]

    def floor(data: bytes) -> int:
        try:
            return len(typed_floor(data))
        except Exception:  # a file the bare typed read cannot read (BDMEP export): left out
            return -1

    floor(datas[0])  # warm-up: first-call costs are not what is measured (as bench/transform.py)
    start = time.perf_counter()
    with ThreadPoolExecutor(2) as pool:
        sizes = list(pool.map(floor, datas))
    floor_s = time.perf_counter() - start
    notes = []
    skipped = [f.name for f, n in zip(files, sizes, strict=True) if n < 0]
    if skipped:
        notes.append(f"floor left out {len(skipped)} file(s) it cannot read: {', '.join(skipped)}")
    return {"rclone upload": upload["seconds"], "rclone copy": copy["seconds"], "floor": floor_s}, notes


# --------------------------------------------------------------------------------------------------
# report


def median_run(runs: list[Run]) -> Run:
    """Every figure the median of the runs (peak RSS: the highest)."""

    def med(values: list[float]) -> float:
        return float(statistics.median(values))

    def med_map(maps: list[dict[str, float]]) -> dict[str, float]:
        return {k: med([m.get(k, 0.0) for m in maps]) for k in maps[0]}

    return Run(
        case=runs[0].case,
        wall=med([r.wall for r in runs]),
        startup=med([r.startup for r in runs]),
        inside=med([r.inside for r in runs]),
        peak_rss_mib=max(r.peak_rss_mib for r in runs),
        dag_seconds=med_map([r.dag_seconds for r in runs]),
        operator_seconds=med_map([r.operator_seconds for r in runs]),
        ti_seconds=med_map([r.ti_seconds for r in runs]),
        counters=runs[-1].counters,
        bare=med_map([r.bare for r in runs]) if runs[0].bare else {},
        notes=sorted({n for r in runs for n in r.notes}),
    )


def report(case: str, label: str, runs: list[Run]) -> list[tuple[bool, str]]:
    r = median_run(runs)
    n = len(runs)
    walls = "/".join(f"{x.wall:.1f}" for x in runs)
    print()
    print(f"== {case}: {label}; {'median of ' + str(n) + ' runs (' + walls + ' s)' if n > 1 else '1 run'}")
    print(f"{'DAG':18s} {'dag.test s':>10s} {'task s':>7s} {'operator s':>10s} ", end="")
    print(f"{'runner s':>8s} {'loop s':>7s}  counters")
    for dag_id in PIPELINE:
        dag_s, ti_s, op_s = r.dag_seconds[dag_id], r.ti_seconds.get(dag_id, 0.0), r.operator_seconds[dag_id]
        counters = " ".join(f"{k}={v}" for k, v in r.counters.get(dag_id, {}).items() if k != "bytes")
        print(f"{dag_id:18s} {dag_s:10.2f} {ti_s:7.2f} {op_s:10.2f} ", end="")
        print(f"{ti_s - op_s:8.2f} {dag_s - ti_s:7.2f}  {counters}")
    ops, chain = r.operators, sum(r.dag_seconds.values())
    overhead = r.wall - ops
    runner = sum(r.ti_seconds.get(d, 0.0) - r.operator_seconds[d] for d in PIPELINE)
    rows: list[tuple[str, float | None, str]] = [
        ("wall (python -m trilha.ops.run)", r.wall, "process start to exit"),
        ("  Airflow start-up", r.startup, "until 'Airflow ready'"),
        ("  the 7 dag.test() calls", chain, ""),
        ("  between the DAGs", r.inside - r.startup - chain, "ops.run's own time less the above"),
        ("  interpreter start and exit", r.wall - r.inside, "wall less what ops.run timed"),
        ("sum of operator execute", ops, "run-log duration_s"),
        ("Airflow overhead", overhead, "wall - operators"),
        ("  start-up", r.startup, ""),
        ("  task runner", runner, "task instance - operator"),
        ("  dag.test loop and the rest", overhead - r.startup - runner, ""),
    ]
    if r.bare:
        rows += [(f"bare: {k}", v, "") for k, v in r.bare.items()]
        rows.append(("sum of bare parts", r.bare_sum, "rclone upload + copy + floor"))
    print()
    print(f"{'figure':34s} {'seconds':>8s} {'x ops':>6s} {'x bare':>7s}  note")
    for name, value, note in rows:
        if value is None:
            continue
        vs_bare = f"{value / r.bare_sum:7.2f}" if r.bare else "      -"
        print(f"{name:34s} {value:8.2f} {value / ops:6.2f} {vs_bare}  {note}")
    print(f"{'peak RSS (MiB)':34s} {r.peak_rss_mib:8.0f}  ru_maxrss of the ops.run process tree")
    for note in r.notes:
        print(f"note: {note}")
    checks: list[tuple[bool, str]] = []
    if case == "sample":
        checks.append(
            (
                r.wall <= SAMPLE_WALL_VS_OPS * ops,
                f"sample: wall <= {SAMPLE_WALL_VS_OPS:g}x the sum of operator times: {r.wall / ops:.2f}x "
                f"({r.wall:.1f} s / {ops:.1f} s; without the start-up {(r.wall - r.startup) / ops:.2f}x)",
            )
        )
    else:
        checks.append((r.wall <= YEAR_WALL_S, f"{case}: wall <= {YEAR_WALL_S:g} s: {r.wall:.1f} s"))
        checks.append(
            (
                r.wall <= YEAR_WALL_VS_BARE * r.bare_sum,
                f"{case}: wall <= {YEAR_WALL_VS_BARE:g}x the sum of the bare parts: "
                f"{r.wall / r.bare_sum:.2f}x "
                f"({r.wall:.1f} s / {r.bare_sum:.1f} s); operators alone {ops / r.bare_sum:.2f}x",
            )
        )
    return checks


# --------------------------------------------------------------------------------------------------
# main


def run(args: argparse.Namespace) -> int:
    from synth import write

    work = Path(tempfile.mkdtemp(prefix="trilha-bench-pipeline-"))
    os.chmod(work, 0o711)  # the embedded PostgreSQL runs as an unprivileged user when we are root
    stacks = Stacks(work)

    def log(msg: str) -> None:
        print(msg, flush=True)

    cases: list[tuple[str, Path, str]] = []
    if "sample" in args.only:
        sizes = sum(p.stat().st_size for p in SAMPLE.iterdir() if p.is_file())
        count = sum(1 for p in SAMPLE.iterdir() if p.is_file())
        cases.append(("sample", SAMPLE, f"include/sample/inmet, {count} files, {sizes / 1e6:.1f} MB"))
    checks: list[tuple[bool, str]] = []
    code = args.code.resolve() if args.code else REPO
    log(
        f"bench/pipeline.py: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; code {code}; "
        f"work dir {work}"
    )
    try:
        if "year" in args.only:
            landing = work / "synthetic"
            done = write(landing, args.stations, args.years, seed=args.seed, workers=2)
            what = f"{args.stations} stations x {args.years} year(s)"
            log(f"generated {done.files} files ({what}), {done.bytes / 1e6:.0f} MB in {done.seconds:.1f}s")
            cases.append(
                ("year", landing, f"synthetic, {what}, {done.files} files, {done.bytes / 1e6:.0f} MB")
            )
        results: dict[str, list[Run]] = {}
        for index in range(1, args.repeat + 1):
            for case, source, _ in cases:  # the cases alternate, so a slow spell hits both alike
                st, env = stacks.up(log)
                try:
                    result = pipeline_run(case, source, st, env, args.profile, args.code)
                    log(
                        f"  {case} run {index}: wall {result.wall:.1f}s, operators {result.operators:.1f}s, "
                        f"start-up {result.startup:.1f}s, peak RSS {result.peak_rss_mib:.0f} MiB"
                    )
                    result.bare, notes = bare_parts(source, st, work, stacks.count)
                    result.notes += notes
                    log(f"  {case} bare parts: " + ", ".join(f"{k} {v:.1f}s" for k, v in result.bare.items()))
                    results.setdefault(case, []).append(result)
                finally:
                    st.down()
                    if not args.keep:
                        shutil.rmtree(st.state_dir, ignore_errors=True)
        for case, _, label in cases:
            checks += report(case, label, results[case])
        print()
        for ok, text in checks:
            print(f"{'PASS' if ok else 'FAIL'}  {text}")
        return 1 if args.strict and not all(ok for ok, _ in checks) else 0
    finally:
        current = getattr(stacks, "current", None)
        if current is not None:
            current.down()  # by the PIDs in its state file; a no-op when already down
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/pipeline.py", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="runs of each case; the table shows medians")
    parser.add_argument("--quick", action="store_true", help="a small synthetic year: 60 stations")
    parser.add_argument("--stations", type=int, default=564, help="synthetic stations (default 564)")
    parser.add_argument("--years", type=int, default=1, help="synthetic years per station (default 1)")
    parser.add_argument("--seed", type=int, default=7, help="seed of the synthetic files")
    parser.add_argument(
        "--only", action="append", choices=("sample", "year"), help="run only this case (repeatable)"
    )
    parser.add_argument("--profile", type=Path, default=None, help="py-spy raw profiles of ops.run go here")
    parser.add_argument(
        "--code",
        type=Path,
        default=None,
        help="run the pipeline from this checkout (`git archive HEAD | tar -x -C DIR`); default: this one",
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--keep", action="store_true", help="keep the work directory and the stacks' files")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error(f"--repeat: expected at least 1, got {args.repeat}")
    if args.quick:
        args.stations = 60
    args.only = args.only or ["sample", "year"]
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
