"""Benchmark of the ingestion half: landing → reception (hash + audit), then promotion to storage.

Generates N synthetic files shaped like INMET yearly station files (cp1252, ``;`` separated with a
trailing ``;``, 8 ``KEY:;value`` header lines, one row per hour with decimal commas and the leading
zero dropped; every file unique), starts a private local stack (PostgreSQL, ``rclone serve s3``,
mongod) in a temporary directory, and times three contestants on the same S3 server, each in its own
buckets:

* ``trilha``: ``RawIngestOperator`` (landing dir → reception bucket: hash, uniqueness check before
  upload, verified upload, ``raw.data_files`` + ``reception_audit`` + ``meta.audit_log`` + run log),
  then ``PromoteOperator`` (double check, verified server-side copy, ``storage_audit`` +
  ``meta.version_history``);
* ``seed``: the seed notebooks' way (``bench/_baseline_seed.py``): ``put_object`` per file, then per
  object download to a temp file + sha256 + INSERT + commit; then per object SELECT + HEAD + copy +
  INSERT + commit;
* ``rclone``: the peer tool, ``rclone copy --checksum`` for the upload and for the bucket-to-bucket
  copy (server-side on the same remote). It audits nothing.

Each of the four phases (first ingest, first promote, no-change ingest re-run, no-change promote
re-run) of each contestant runs in a fresh process, so that peak RSS is per phase: Python contestants
in a ``multiprocessing`` spawn child (``ru_maxrss`` of the child, whole process, imports included,
and the RSS right before the timed part as the floor), rclone as a subprocess (``ru_maxrss`` from
``wait4``). The timed part excludes the Python imports (an Airflow worker has them loaded already) but
includes hook and client set-up, connections, the ``meta.audit_log`` rows and the run-log document.

    .venv/bin/python bench/ingest.py                  # 564 files of ~700 KB (a year of stations)
    .venv/bin/python bench/ingest.py --quick          # 60 files
    .venv/bin/python bench/ingest.py --files 100 --rows 2000 --workers 8
"""

from __future__ import annotations

import argparse
import importlib
import multiprocessing as mp
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import unicodedata
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
for _path in (REPO / "bench", REPO / "plugins", REPO):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

MIB = 1024 * 1024
PHASES = ("ingest", "promote", "ingest re-run", "promote re-run")
CONTESTANTS = ("trilha", "rclone", "seed")

# --------------------------------------------------------------------------------------------------
# synthetic INMET files

_UFS = [
    ("N", "AM", "SÃO GABRIEL DA CACHOEIRA"),
    ("N", "PA", "BELÉM"),
    ("NE", "BA", "SALVADOR"),
    ("NE", "PE", "RECIFE"),
    ("CO", "GO", "GOIÂNIA"),
    ("CO", "DF", "BRASÍLIA"),
    ("SE", "SP", "SÃO PAULO - MIRANTE"),
    ("SE", "MG", "BELO HORIZONTE - PAMPULHA"),
    ("S", "PR", "CURITIBA"),
    ("S", "RS", "PORTO ALEGRE - JARDIM BOTÂNICO"),
]
_COLUMNS = (
    "Data;Hora UTC;PRECIPITAÇÃO TOTAL, HORÁRIO (mm);PRESSAO ATMOSFERICA AO NIVEL DA ESTACAO, HORARIA (mB);"
    "PRESSÃO ATMOSFERICA MAX.NA HORA ANT. (AUT) (mB);PRESSÃO ATMOSFERICA MIN. NA HORA ANT. (AUT) (mB);"
    "RADIACAO GLOBAL (Kj/m²);TEMPERATURA DO AR - BULBO SECO, HORARIA (°C);"
    "TEMPERATURA DO PONTO DE ORVALHO (°C);TEMPERATURA MÁXIMA NA HORA ANT. (AUT) (°C);"
    "TEMPERATURA MÍNIMA NA HORA ANT. (AUT) (°C);TEMPERATURA ORVALHO MAX. NA HORA ANT. (AUT) (°C);"
    "TEMPERATURA ORVALHO MIN. NA HORA ANT. (AUT) (°C);UMIDADE REL. MAX. NA HORA ANT. (AUT) (%);"
    "UMIDADE REL. MIN. NA HORA ANT. (AUT) (%);UMIDADE RELATIVA DO AR, HORARIA (%);"
    "VENTO, DIREÇÃO HORARIA (gr) (° (gr));VENTO, RAJADA MAXIMA (m/s);VENTO, VELOCIDADE HORARIA (m/s);"
)


def inmet_number(value: float, decimals: int = 1) -> str:
    """A number the way INMET writes it: decimal comma, no trailing zeros, no leading zero (``,8``)."""
    text = f"{value:.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    if text in ("-0", ""):
        text = "0"
    text = text.replace(".", ",")
    if text.startswith("0,"):
        return text[1:]
    if text.startswith("-0,"):
        return "-" + text[2:]
    return text


def _measure_pool(rng: random.Random, size: int) -> list[str]:
    """Distinct hourly measurement tails (17 fields and the trailing ``;``) to draw rows from."""
    pool = []
    for _ in range(size):
        if rng.random() < 0.01:  # an hour the station did not report: every field empty
            pool.append(";" * 17)
            continue
        temp = rng.uniform(8.0, 36.0)
        dew = temp - rng.uniform(0.5, 12.0)
        pressure = rng.uniform(880.0, 1015.0)
        humidity = rng.randint(20, 100)
        night = rng.random() < 0.45
        fields = [
            inmet_number(rng.choice((0.0, 0.0, 0.0, rng.uniform(0.2, 30.0)))),
            inmet_number(pressure),
            inmet_number(pressure + rng.uniform(0.0, 0.9)),
            inmet_number(pressure - rng.uniform(0.0, 0.9)),
            "" if night else inmet_number(rng.uniform(0.0, 3800.0)),
            inmet_number(temp),
            inmet_number(dew),
            inmet_number(temp + rng.uniform(0.0, 1.5)),
            inmet_number(temp - rng.uniform(0.0, 1.5)),
            inmet_number(dew + rng.uniform(0.0, 1.0)),
            inmet_number(dew - rng.uniform(0.0, 1.0)),
            str(min(100, humidity + rng.randint(0, 5))),
            str(max(0, humidity - rng.randint(0, 5))),
            str(humidity),
            str(rng.randint(0, 360)),
            inmet_number(rng.uniform(0.0, 15.0)),
            inmet_number(rng.uniform(0.0, 6.0)),
        ]
        pool.append(";".join(fields) + ";")
    return pool


def generate(landing: Path, files: int, rows: int, seed: int = 2024) -> tuple[int, int]:
    """Write ``files`` unique INMET-like yearly files into ``landing``; return (count, total bytes)."""
    rng = random.Random(seed)
    pool = _measure_pool(rng, 8192)
    start = datetime(2024, 1, 1)
    stamps = [start + timedelta(hours=h) for h in range(rows)]
    prefixes = [f"{t:%Y/%m/%d};{t:%H%M} UTC;" for t in stamps]
    end = stamps[-1] if stamps else start
    total = 0
    landing.mkdir(parents=True, exist_ok=True)
    for index in range(files):
        region, uf, city = _UFS[index % len(_UFS)]
        code = f"A{index + 1:03d}" if index < 999 else f"B{index - 998:03d}"
        station = f"{city} {index + 1}"
        header = [
            f"REGIAO:;{region}",
            f"UF:;{uf}",
            f"ESTACAO:;{station}",
            f"CODIGO (WMO):;{code}",
            f"LATITUDE:;{inmet_number(rng.uniform(-33.0, 4.5), 8)}",
            f"LONGITUDE:;{inmet_number(rng.uniform(-72.0, -35.0), 8)}",
            f"ALTITUDE:;{inmet_number(rng.uniform(2.0, 1500.0), 2)}",
            f"DATA DE FUNDACAO:;{rng.randint(1, 28):02d}/{rng.randint(1, 12):02d}/{rng.randint(0, 23):02d}",
            _COLUMNS,
        ]
        body = map(str.__add__, prefixes, rng.choices(pool, k=rows))
        text = "\n".join([*header, *body]) + "\n"
        data = text.encode("cp1252")
        name = (
            f"INMET_{region}_{uf}_{code}_{city.split(' - ')[0].replace(' ', '_')}_"
            f"{start:%d-%m-%Y}_A_{end:%d-%m-%Y}.CSV"
        )
        name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
        (landing / name).write_bytes(data)
        total += len(data)
    return files, total


# --------------------------------------------------------------------------------------------------
# phases (each runs in a fresh process)


@dataclass(frozen=True)
class Round:
    """One round: its own content, key prefix and buckets, so that rounds never see each other."""

    index: int
    landing: Path

    @property
    def prefix(self) -> str:
        return f"inmet2024r{self.index}"

    def buckets(self, contestant: str) -> tuple[str, str]:
        return f"bench-{contestant}-recv-r{self.index}", f"bench-{contestant}-store-r{self.index}"


@dataclass
class Result:
    contestant: str
    phase: str
    seconds: float
    round_trips: int | None
    rss_peak_mib: float
    rss_floor_mib: float | None
    detail: dict[str, Any] = field(default_factory=dict)


def _rss_mib() -> float:
    import psutil

    return float(psutil.Process().memory_info().rss) / MIB


def _maxrss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def quiet(log_path: str | None) -> None:
    """Send this process's stdout and stderr (Airflow's task logs) to ``log_path``."""
    if log_path:
        fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)


def trilha_phase(
    phase: str, landing: str, prefix: str, recv: str, store: str, workers: int, log_path: str | None
) -> dict[str, Any]:
    """One Trilha operator run (spawn child): RawIngestOperator or PromoteOperator, via run_operator.

    Airflow and the operator module are imported before the clock starts; the hook modules, which the
    operator imports lazily on first use, are imported before it too, and their import time is
    reported apart (``import_s``): a fresh task process pays it once.
    """
    quiet(log_path)
    from tests.helpers import run_operator
    from trilha.operators.ingest import RawIngestOperator
    from trilha.operators.promote import PromoteOperator

    t0 = time.perf_counter()
    for module in ("trilha.hooks.audit", "trilha.hooks.minio", "trilha.hooks.runlog", "trilha.hooks.sources"):
        importlib.import_module(module)

    imports = time.perf_counter() - t0
    if phase.startswith("ingest"):
        op: Any = RawIngestOperator(
            task_id="raw_ingest",
            landing_dir=landing,
            landing_prefix=prefix,
            key_prefix=f"{prefix}/",
            reception_bucket=recv,
            workers=workers,
        )
    else:
        op = PromoteOperator(
            task_id="reception_promote",
            project=f"bench-{prefix}",
            project_prefix=prefix,
            key_prefix=f"{prefix}/",
            reception_bucket=recv,
            storage_bucket=store,
            workers=workers,
        )
    floor = _rss_mib()
    t0 = time.perf_counter()
    summary = run_operator(op, dag_id="bench_ingest")
    seconds = time.perf_counter() - t0
    counters = {k: v for k, v in summary["counters"].items() if v and k != "bytes"}
    return {
        "seconds": seconds,
        "round_trips": op.__dict__["audit"].round_trips,
        "rss_peak_mib": _maxrss_mib(),
        "rss_floor_mib": floor,
        "detail": {**counters, "import_s": round(imports, 2)},
    }


def seed_phase(
    phase: str, landing: str, prefix: str, recv: str, store: str, dsn: str, s3: dict[str, str]
) -> dict[str, Any]:
    """One seed-style baseline run (spawn child); imports happen before the clock starts."""
    import _baseline_seed as seed
    import boto3
    import botocore.exceptions  # noqa: F401
    import psycopg2  # noqa: F401
    from botocore.config import Config

    floor = _rss_mib()
    t0 = time.perf_counter()
    client = boto3.client(
        "s3",
        endpoint_url=s3["endpoint"],
        aws_access_key_id=s3["access_key"],
        aws_secret_access_key=s3["secret_key"],
        region_name="us-east-1",
        config=Config(
            s3={"addressing_style": "path"},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        ),
    )
    if phase.startswith("ingest"):
        out = seed.ingest(client, dsn, Path(landing), recv, prefix)
    else:
        out = seed.promote(client, dsn, recv, store, f"bench-{prefix}", prefix)
    seconds = time.perf_counter() - t0
    trips = out.pop("round_trips")
    return {
        "seconds": seconds,
        "round_trips": trips,
        "rss_peak_mib": _maxrss_mib(),
        "rss_floor_mib": floor,
        "detail": out,
    }


def in_child(fn: Any, *args: Any) -> dict[str, Any]:
    """Run ``fn(*args)`` in a fresh spawned process, so that its peak RSS is its own."""
    with ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context("spawn")) as pool:
        return dict(pool.submit(fn, *args).result())


def rclone_phase(
    phase: str, landing: Path, prefix: str, recv: str, store: str, config_path: Path, workers: int
) -> dict[str, Any]:
    """``rclone copy --checksum``: landing → bucket for ingest, bucket → bucket (server-side) for promote."""
    binary = Path(sys.prefix) / "bin" / "rclone"
    if not binary.exists():
        binary = Path(shutil.which("rclone") or "rclone")
    if phase.startswith("ingest"):
        src, dst = str(landing), f"bench:{recv}/{prefix}"
    else:
        src, dst = f"bench:{recv}/{prefix}", f"bench:{store}/{prefix}"
    cmd = [
        str(binary),
        "--config",
        str(config_path),
        "copy",
        "--checksum",
        "--transfers",
        str(workers),
        "--stats",
        "1h",
        "--stats-log-level",
        "NOTICE",
        src,
        dst,
    ]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # noqa: S603
    output = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"rclone failed ({proc.returncode}): {' '.join(cmd)}\n{output[-2000:]}")
    stats = {}
    for line in output.splitlines():
        name, _, value = line.partition(":")
        if name in ("Transferred", "Checks", "Server Side Copies") and "B /" not in value:
            stats[name.lower().replace(" ", "_")] = value.split(",")[0].strip().replace(" ", "")
    return {
        "seconds": seconds,
        "round_trips": None,
        "rss_peak_mib": usage.ru_maxrss / 1024,
        "rss_floor_mib": None,
        "detail": stats,
    }


# --------------------------------------------------------------------------------------------------
# report


def count_objects(client: Any, bucket: str, prefix: str) -> int:
    n = 0
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{prefix}/"):
        n += len(page.get("Contents", []))
    return n


def aggregate(results: list[Result]) -> dict[tuple[str, str], Result]:
    """Per (contestant, phase) over the rounds: median seconds, round trips and floor, max peak RSS."""
    groups: dict[tuple[str, str], list[Result]] = {}
    for r in results:
        groups.setdefault((r.contestant, r.phase), []).append(r)
    out = {}
    for key, rs in groups.items():
        trips = [r.round_trips for r in rs if r.round_trips is not None]
        floors = [r.rss_floor_mib for r in rs if r.rss_floor_mib is not None]
        detail = dict(rs[-1].detail)
        if len(rs) > 1:
            detail["runs_s"] = "/".join(f"{r.seconds:.2f}" for r in rs)
        out[key] = Result(
            key[0],
            key[1],
            statistics.median(r.seconds for r in rs),
            int(statistics.median(trips)) if trips else None,
            max(r.rss_peak_mib for r in rs),
            statistics.median(floors) if floors else None,
            detail,
        )
    return out


def report(results: list[Result], files: int, nbytes: int, args: argparse.Namespace) -> int:
    """Print the table and the target checks; return 1 when ``--strict`` and a target is missed."""
    by = aggregate(results)
    mb = nbytes / 1e6
    print()
    print(
        f"bench/ingest.py: {files} files, {mb:.1f} MB ({nbytes / files / 1000:.0f} kB/file, "
        f"{args.rows} rows), workers={args.workers}, {os.cpu_count()} CPUs, rounds={args.rounds}"
        + (" (median seconds; runs_s lists every round)" if args.rounds > 1 else "")
    )
    print(
        "ratios of seconds: t/rclone = t / t_rclone (target <= 1.5 first runs, <= 2 re-runs); "
        "seed/t = t_seed / t (speed-up over the seed; target >= 2.5 on the first runs, ingest + promote "
        "together)"
    )
    print(
        "peak RSS (MiB): ru_maxrss of the process that ran the phase (Python: the whole spawn child, "
        "imports included; floor = its RSS after imports, before the timed part; rclone: its process)"
    )
    print("re-runs: files/s and MB/s are the data covered per second (nothing is transferred)")
    head = (
        f"{'phase':15s} {'contestant':10s} {'seconds':>8s} {'files/s':>8s} {'MB/s':>7s} {'SQL rt':>7s} "
        f"{'peak RSS':>8s} {'floor':>6s} {'t/rclone':>8s} {'seed/t':>7s}  detail"
    )
    print(head)
    print("-" * len(head))
    for phase in PHASES:
        ref = by.get(("rclone", phase))
        base = by.get(("seed", phase))
        for contestant in CONTESTANTS:
            r = by.get((contestant, phase))
            if r is None:
                continue
            vs_rclone = r.seconds / ref.seconds if ref else float("nan")
            vs_seed = base.seconds / r.seconds if base else float("nan")
            trips = "-" if r.round_trips is None else str(r.round_trips)
            floor = "-" if r.rss_floor_mib is None else f"{r.rss_floor_mib:.0f}"
            detail = " ".join(f"{k}={v}" for k, v in r.detail.items())
            print(
                f"{phase:15s} {contestant:10s} {r.seconds:8.2f} {files / r.seconds:8.1f} "
                f"{mb / r.seconds:7.1f} {trips:>7s} {r.rss_peak_mib:8.0f} {floor:>6s} {vs_rclone:8.2f} "
                f"{vs_seed:7.2f}  {detail}"
            )
        print()
    if len(by) != len(PHASES) * len(CONTESTANTS):
        print("the target checks need all three contestants")
        return 0

    def ratio(a: str, b: str, phase: str) -> float:
        return by[(a, phase)].seconds / by[(b, phase)].seconds

    ingest, promote = ratio("trilha", "rclone", "ingest"), ratio("trilha", "rclone", "promote")
    re_ingest = ratio("trilha", "rclone", "ingest re-run")
    re_promote = ratio("trilha", "rclone", "promote re-run")
    seed_ingest, seed_promote = ratio("seed", "trilha", "ingest"), ratio("seed", "trilha", "promote")
    seed_both = (by[("seed", "ingest")].seconds + by[("seed", "promote")].seconds) / (
        by[("trilha", "ingest")].seconds + by[("trilha", "promote")].seconds
    )
    checks = [
        (ingest <= 1.5, f"first ingestion <= 1.5x rclone's upload: {ingest:.2f}x"),
        (promote <= 1.5, f"first promotion <= 1.5x rclone's server-side copy: {promote:.2f}x"),
        (
            max(re_ingest, re_promote) <= 2.0,
            f"no-change re-runs <= 2x rclone's: ingest {re_ingest:.2f}x, promote {re_promote:.2f}x",
        ),
        (
            seed_both >= 2.5,
            f"first runs (ingest + promote) >= 2.5x faster than the seed: {seed_both:.2f}x (ingest "
            f"{seed_ingest:.2f}x, promote {seed_promote:.2f}x)",
        ),
    ]
    for ok, text in checks:
        print(f"{'PASS' if ok else 'FAIL'}  {text}")
    return 1 if args.strict and not all(ok for ok, _ in checks) else 0


# --------------------------------------------------------------------------------------------------
# main


def write_rclone_config(path: Path, s3: dict[str, str]) -> None:
    path.write_text(
        "[bench]\n"
        "type = s3\n"
        "provider = Other\n"
        f"endpoint = {s3['endpoint']}\n"
        f"access_key_id = {s3['access_key']}\n"
        f"secret_access_key = {s3['secret_key']}\n"
        "region = us-east-1\n"
        "force_path_style = true\n"
    )
    os.chmod(path, 0o600)


def run(args: argparse.Namespace) -> int:
    import _baseline_seed as seed
    import psycopg2

    from trilha.hooks.migrations import migrate
    from trilha.ops.devstack import Stack

    work = Path(tempfile.mkdtemp(prefix="trilha-bench-ingest-"))
    os.chmod(work, 0o711)  # the embedded PostgreSQL runs as an unprivileged user when we are root
    st = Stack(work / "stack", log=lambda _msg: None)
    contestants = list(dict.fromkeys(args.only or CONTESTANTS))
    results: list[Result] = []
    try:
        t0 = time.perf_counter()
        st.up()
        print(f"stack up in {time.perf_counter() - t0:.1f}s: {st.state_dir}")
        os.environ.update(st.env_vars())
        dsn = st.postgres_dsn()
        conn = psycopg2.connect(dsn)
        try:
            migrate(conn)
        finally:
            conn.close()
        seed.setup_schema(dsn)
        client = st.s3_client()
        s3conn = st.connections()["trilha_minio"]
        s3 = {
            "endpoint": s3conn["extra"]["endpoint_url"],
            "access_key": s3conn["login"],
            "secret_key": s3conn["password"],
        }
        rclone_conf = work / "rclone.conf"
        write_rclone_config(rclone_conf, s3)
        log = None if args.verbose else str(work / "trilha-task.log")
        files = nbytes = 0
        for index in range(1, args.rounds + 1):
            rnd = Round(index, work / f"landing-r{index}")
            t0 = time.perf_counter()
            files, nbytes = generate(rnd.landing, args.files, args.rows, seed=2024 + index)
            print(
                f"round {index}: generated {files} files, {nbytes / 1e6:.1f} MB in "
                f"{time.perf_counter() - t0:.1f}s"
            )
            for contestant in contestants:
                for bucket in rnd.buckets(contestant):
                    client.create_bucket(Bucket=bucket)
            # Rotate who goes first, so that no contestant always runs right after another's writes.
            order = contestants[index - 1 :] + contestants[: index - 1] if args.rotate else contestants
            for phase in PHASES:
                for contestant in order:
                    recv, store = rnd.buckets(contestant)
                    where = (rnd.prefix, recv, store)
                    if contestant == "trilha":
                        out = in_child(trilha_phase, phase, str(rnd.landing), *where, args.workers, log)
                    elif contestant == "seed":
                        out = in_child(seed_phase, phase, str(rnd.landing), *where, dsn, s3)
                    else:
                        out = rclone_phase(phase, rnd.landing, *where, rclone_conf, args.workers)
                    res = Result(contestant, phase, **out)
                    results.append(res)
                    print(f"  {phase:15s} {contestant:8s} {res.seconds:7.2f}s  {res.detail}", flush=True)
            for contestant in contestants:
                recv, store = rnd.buckets(contestant)
                got = (count_objects(client, recv, rnd.prefix), count_objects(client, store, rnd.prefix))
                if got != (files, files):
                    print(f"WARNING: {contestant} left {got} objects in ({recv}, {store}), expected {files}")
            shutil.rmtree(rnd.landing, ignore_errors=True)
        return report(results, files, nbytes, args)
    finally:
        st.down()
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="bench/ingest.py",
        description="Time Trilha's raw ingest + promotion against a seed-style baseline and rclone.",
    )
    parser.add_argument("--files", type=int, default=564, help="synthetic INMET files (default 564)")
    parser.add_argument("--rows", type=int, default=8784, help="hourly rows per file (default 8784)")
    parser.add_argument("--workers", type=int, default=4, help="parallel transfers, Trilha and rclone")
    parser.add_argument("--quick", action="store_true", help="60 files")
    parser.add_argument("--only", action="append", choices=CONTESTANTS, help="run only these contestants")
    parser.add_argument(
        "--rounds", type=int, default=1, help="repeat everything on fresh content and buckets; report medians"
    )
    parser.add_argument(
        "--no-rotate",
        dest="rotate",
        action="store_false",
        help="keep the contestants' order fixed across rounds (default: rotate who goes first)",
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--verbose", action="store_true", help="show the operators' INFO logs")
    args = parser.parse_args(argv)
    if args.quick:
        args.files = 60
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
