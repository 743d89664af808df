"""Benchmark of the pure transform path: staging, curated and split, on synthetic INMET files.

Generates realistic INMET yearly station files in memory (latin-1 header with accents, ``;`` with a
trailing ``;``, decimal commas with the leading zero dropped, empty or ``-9999`` missing values,
whole empty hours, a few implausible humidity readings that quality control flags bad), then times,
in one run:

* ``bare``: ``pyarrow.csv.read_csv`` of each file's bytes with the minimal options that read it
  (skip the 9 header lines, ``;`` delimiter), the reference for "how fast can these bytes parse";
* ``floor``: the same read with the 17 measurements typed as float64 (decimal comma), written with
  ``table_to_parquet_bytes``: what any staging that outputs typed Parquet pays, with no header,
  timestamp, station column or contract;
* ``staging``: ``parse_file`` + ``validate`` + ``table_to_parquet_bytes`` per file;
* ``curated``: read the staged Parquet parts back + ``curate`` + Parquet of hourly/daily/stations;
* ``split``: ``hash_split`` (and ``temporal_split``) of the curated hourly table + Parquet per split;
* ``pandas``: a straightforward pandas implementation (``read_csv`` per file, concat, dedup,
  groupby daily), with ``read_csv`` defaults (the brief's baseline) and tuned (``decimal=","``);
* ``trilha parse+curate``: the same work as the pandas baseline done with Trilha (no validation,
  no Parquet, no split), for a like-for-like comparison.

Every stage runs in its own process, like the Airflow task it stands for, so that each peak RSS
(sampled every 5 ms with psutil during the timed section) is that stage's own. Stages hand over
Parquet files through a scratch directory, as the tasks do through the object store; reading and
writing those files is not timed. ``--workers N`` runs per-file work on N threads, for the bare
reference, the floor and staging alike. The three alternate ``--repeat`` times (default 3)
and each reports its fastest run, so a slow spell of the machine does not land on one side of their
ratio only. Wall and CPU seconds are both reported: on a shared machine the CPU column is the
steadier one.

    .venv/bin/python bench/transform.py --stations 564 --hours 8784 --layout 2020
    .venv/bin/python bench/transform.py --stations 20 --hours 2000 --skip-pandas   # quick
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pv

from trilha.domain import qc
from trilha.domain.contracts import validate
from trilha.domain.curate import curate
from trilha.domain.formats import parse_file
from trilha.domain.parquet import parquet_bytes_to_table, table_to_parquet_bytes
from trilha.domain.splitting import hash_split, temporal_split
from trilha.hooks.include import load_contract

GIB = 1024**3

_MEASURES_2019 = (
    "PRECIPITAÇÃO TOTAL, HORÁRIO (mm);PRESSAO ATMOSFERICA AO NIVEL DA ESTACAO, HORARIA (mB);"
    "PRESSÃO ATMOSFERICA MAX.NA HORA ANT. (AUT) (mB);PRESSÃO ATMOSFERICA MIN. NA HORA ANT. (AUT) (mB);"
    "RADIACAO GLOBAL ({rad});TEMPERATURA DO AR - BULBO SECO, HORARIA (°C);"
    "TEMPERATURA DO PONTO DE ORVALHO (°C);TEMPERATURA MÁXIMA NA HORA ANT. (AUT) (°C);"
    "TEMPERATURA MÍNIMA NA HORA ANT. (AUT) (°C);TEMPERATURA ORVALHO MAX. NA HORA ANT. (AUT) (°C);"
    "TEMPERATURA ORVALHO MIN. NA HORA ANT. (AUT) (°C);UMIDADE REL. MAX. NA HORA ANT. (AUT) (%);"
    "UMIDADE REL. MIN. NA HORA ANT. (AUT) (%);UMIDADE RELATIVA DO AR, HORARIA (%);"
    "VENTO, DIREÇÃO HORARIA (gr) (° (gr));VENTO, RAJADA MAXIMA (m/s);VENTO, VELOCIDADE HORARIA (m/s);"
)
_UFS = [
    ("N", "AM"),
    ("N", "PA"),
    ("NE", "BA"),
    ("NE", "PE"),
    ("CO", "GO"),
    ("CO", "DF"),
    ("SE", "SP"),
    ("SE", "MG"),
    ("S", "PR"),
    ("S", "RS"),
]


@dataclass(frozen=True)
class Layout:
    name: str
    year: int
    region_key: str
    station_key: str
    founded_key: str
    founded: str
    columns: str
    date_format: str
    hour_format: str
    missing: str


LAYOUTS = {
    "pre2019": Layout(
        "pre2019",
        2016,
        "REGIÃO:",
        "ESTAÇÃO:",
        "DATA DE FUNDAÇÃO (YYYY-MM-DD):",
        "2007-05-11",
        "DATA (YYYY-MM-DD);HORA (UTC);" + _MEASURES_2019.format(rad="KJ/m²"),
        "%Y-%m-%d",
        "%H:%M",
        "-9999",
    ),
    "2019": Layout(
        "2019",
        2019,
        "REGI?O:",
        "ESTAC?O:",
        "DATA DE FUNDAC?O:",
        "11/05/07",
        "Data;Hora UTC;" + _MEASURES_2019.format(rad="KJ/m²"),
        "%Y/%m/%d",
        "%H%M UTC",
        "",
    ),
    "2020": Layout(
        "2020",
        2024,
        "REGIAO:",
        "ESTACAO:",
        "DATA DE FUNDACAO:",
        "11/05/07",
        "Data;Hora UTC;" + _MEASURES_2019.format(rad="Kj/m²"),
        "%Y/%m/%d",
        "%H%M UTC",
        "",
    ),
}


def _inmet_numbers(values: np.ndarray, decimals: int, missing: str) -> pa.Array:
    """Numbers the way INMET writes them: decimal comma, no leading zero (``,8``, ``-,2``)."""
    rounded = np.round(values, decimals)
    text = pc.cast(pa.array(rounded, pa.float64(), mask=np.isnan(rounded)), pa.string())
    text = pc.replace_substring(text, ".", ",")
    text = pc.replace_substring_regex(text, r"^(-?)0,", r"\1,")
    return pc.fill_null(text, missing)


def station_file(index: int, hours: int, layout: Layout, seed: int) -> tuple[str, bytes]:
    """One synthetic yearly station file (name, latin-1 bytes), deterministic for its arguments."""
    rng = np.random.default_rng(seed * 100_003 + index)
    region, uf = _UFS[index % len(_UFS)]
    code = f"A{index + 1:03d}" if index < 999 else f"B{index - 998:03d}"
    station = f"ESTACAO SINTETICA {index + 1}"
    latitude = rng.uniform(-33.0, 4.5)
    longitude = rng.uniform(-72.0, -35.0)
    altitude = rng.uniform(2.0, 1500.0)
    start = np.datetime64(f"{layout.year}-01-01T00:00", "us")
    stamps = start + np.arange(hours, dtype=np.int64) * np.int64(3_600_000_000)
    hour_of_day = np.arange(hours) % 24
    local = (hour_of_day - 3) % 24
    day_cycle = np.sin((local - 9) / 24 * 2 * np.pi)

    temp = 22 + 6 * day_cycle + rng.normal(0, 1.5, hours) - altitude / 300
    dew = temp - np.abs(rng.normal(5, 2, hours))
    humidity = np.clip(90 - 25 * day_cycle + rng.normal(0, 5, hours), 8, 100)
    pressure = 1013 - altitude / 8.3 + rng.normal(0, 2, hours)
    radiation = np.where(
        (local >= 6) & (local <= 18), np.maximum(0, 3000 * np.sin((local - 6) / 12 * np.pi)), np.nan
    )
    radiation = np.where(rng.random(hours) < 0.9, radiation * rng.uniform(0.3, 1.0, hours), radiation)
    rain = np.where(rng.random(hours) < 0.08, rng.exponential(2.0, hours), 0.0)
    direction = rng.integers(0, 361, hours).astype(np.float64)
    speed = np.abs(rng.normal(2.2, 1.2, hours))
    gust = speed + np.abs(rng.normal(3, 1.5, hours))
    columns = [
        (rain, 1),
        (pressure, 1),
        (pressure + np.abs(rng.normal(0.3, 0.2, hours)), 1),
        (pressure - np.abs(rng.normal(0.3, 0.2, hours)), 1),
        (radiation, 1),
        (temp, 1),
        (dew, 1),
        (temp + np.abs(rng.normal(0.4, 0.3, hours)), 1),
        (temp - np.abs(rng.normal(0.4, 0.3, hours)), 1),
        (dew + 0.3, 1),
        (dew - 0.3, 1),
        (np.minimum(humidity + 2, 100), 0),
        (humidity - 2, 0),
        (humidity, 0),
        (direction, 0),
        (gust, 1),
        (speed, 1),
    ]
    offline = rng.random(hours) < 0.01  # whole empty hours, as real stations have
    rows = []
    for values, decimals in columns:
        values = np.where(offline | (rng.random(hours) < 0.003), np.nan, values)
        rows.append(_inmet_numbers(values, decimals, layout.missing))
    # A rare implausible humidity reading: quality control nulls it and flags it bad (the hour stays).
    faulty = np.flatnonzero(rng.random(hours) < 1e-5)
    if len(faulty):
        humidity_text = rows[13].to_pylist()
        for i in faulty.tolist():
            humidity_text[i] = "110"
        rows[13] = pa.array(humidity_text, pa.string())
    stamp_array = pa.array(stamps, pa.timestamp("us"))
    dates = pc.strftime(stamp_array, format=layout.date_format)
    hours_text = pc.strftime(stamp_array, format=layout.hour_format)
    lines = pc.binary_join_element_wise(dates, hours_text, *rows, "", ";")

    def header_number(value: float) -> str:
        # INMET drops the leading zero: 0.035 is ",03499999" and -0.2 is "-,2".
        text = f"{value:.8f}".replace(".", ",")
        if text.startswith("0,"):
            return text[1:]
        if text.startswith("-0,"):
            return "-" + text[2:]
        return text

    header = "\n".join(
        [
            f"{layout.region_key};{region}",
            f"UF:;{uf}",
            f"{layout.station_key};{station}",
            f"CODIGO (WMO):;{code}",
            f"LATITUDE:;{header_number(latitude)}",
            f"LONGITUDE:;{header_number(longitude)}",
            f"ALTITUDE:;{f'{altitude:.2f}'.replace('.', ',')}",
            f"{layout.founded_key};{layout.founded}",
            layout.columns,
        ]
    )
    body = "\n".join(lines.to_pylist())
    name = f"INMET_{region}_{uf}_{code}_{station}_01-01-{layout.year}_A_31-12-{layout.year}.CSV"
    return name, (header + "\n" + body + "\n").encode("cp1252")


# --------------------------------------------------------------------------------------------------
# Measurement
# --------------------------------------------------------------------------------------------------


class PeakRss:
    """Samples this process's RSS in a thread; ``peak`` is the highest value seen."""

    def __init__(self, interval: float = 0.005) -> None:
        self._process = psutil.Process()
        self._interval = interval
        self._stop = threading.Event()
        self.peak = self._process.memory_info().rss
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._process.memory_info().rss)
            time.sleep(self._interval)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._process.memory_info().rss)


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Timer:
    """Accumulates wall and CPU seconds (all threads) of timed sections, and their peak RSS."""

    wall: float = 0.0
    cpu: float = 0.0
    peak: int = 0

    @contextmanager
    def section(self) -> Iterator[None]:
        with PeakRss() as rss:
            wall, cpu = time.perf_counter(), _cpu()
            yield
            self.wall += time.perf_counter() - wall
            self.cpu += _cpu() - cpu
        self.peak = max(self.peak, rss.peak)

    def result(self, rows: int, note: str = "") -> dict[str, Any]:
        return {"seconds": self.wall, "cpu": self.cpu, "rows": rows, "peak_rss": self.peak, "note": note}


def bare_read(data: bytes, convert_options: pv.ConvertOptions | None = None) -> pa.Table:
    return pv.read_csv(
        io.BytesIO(data),
        read_options=pv.ReadOptions(skip_rows=9, autogenerate_column_names=True),
        parse_options=pv.ParseOptions(delimiter=";"),
        convert_options=convert_options,
    )


#: The synthetic files' 17 measurement columns, as ``bare_read`` names them (f0/f1 are date/hour).
_MEASURE_FIELDS = {f"f{i}": pa.float64() for i in range(2, 19)}


def typed_floor(data: bytes) -> bytes:
    """The least any staging must do: read the numbers as float64 and write them as Parquet.

    No header, no timestamps, no station columns, no contract: the part of staging's cost that
    comes with its output (typed floats, deterministic Parquet) rather than with Trilha's code.
    """
    typed = pv.ConvertOptions(column_types=_MEASURE_FIELDS, decimal_point=",")
    return table_to_parquet_bytes(bare_read(data, typed))


# --------------------------------------------------------------------------------------------------
# Stages. Each runs in its own process, like the Airflow tasks they stand for, so that each peak
# RSS is that stage's own; stages hand over Parquet files through a scratch directory, as the
# tasks do through the object store (reading and writing those files is not timed).
# --------------------------------------------------------------------------------------------------


def stage_staging(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    layout = LAYOUTS[args.layout]
    files = [station_file(i, args.hours, layout, args.seed) for i in range(args.stations)]
    rows = args.stations * args.hours
    # Warm-up: imports, first-call costs and regex compilation are not what is being measured.
    parse_file(files[0][1], files[0][0])
    bare_read(files[0][1])
    typed_floor(files[0][1])
    gc.collect()

    # The same worker count for the reference and for staging: a fair comparison either way. The
    # two alternate --repeat times and each keeps its fastest run, so that a slow spell of this
    # shared machine does not fall on one side of the ratio only.
    pool = ThreadPoolExecutor(args.workers)
    contract = load_contract("inmet_hourly")

    def stage_one(item: tuple[str, bytes]) -> tuple[bytes, tuple[int, int, int, int]]:
        name, data = item
        parsed = parse_file(data, name)
        ok, quarantine = validate(parsed.table, contract, name)
        if contract.qc is not None:  # as staging does: field flags, bad values nulled
            ok, _ = qc.apply(ok, contract.qc, qc.STAGING)
        if quarantine.num_rows:
            table_to_parquet_bytes(quarantine)
        if parsed.rejected.num_rows:
            table_to_parquet_bytes(parsed.rejected)
        numbers = (parsed.rows_in, ok.num_rows, quarantine.num_rows, parsed.rejected.num_rows)
        return table_to_parquet_bytes(ok), numbers

    bare_runs: list[Timer] = []
    floor_runs: list[Timer] = []
    staging_runs: list[Timer] = []
    for _ in range(args.repeat):
        bare = Timer()
        with bare.section():
            seen = sum(table.num_rows for table in pool.map(bare_read, (data for _, data in files)))
        assert seen == rows, f"bare read: expected {rows} rows, got {seen}"
        bare_runs.append(bare)
        gc.collect()

        floor = Timer()
        with floor.section():
            floor_bytes = sum(len(part) for part in pool.map(typed_floor, (data for _, data in files)))
        floor_runs.append(floor)
        gc.collect()

        staging = Timer()
        counts = {"rows_in": 0, "ok": 0, "quarantined": 0, "rejected": 0}
        staged: list[bytes] = []
        with staging.section():
            for data, numbers in pool.map(stage_one, files):
                staged.append(data)
                for key, value in zip(counts, numbers, strict=True):
                    counts[key] += value
        staging_runs.append(staging)
        gc.collect()
    pool.shutdown()
    assert counts["rows_in"] == counts["ok"] + counts["quarantined"] + counts["rejected"] == rows
    for index, data in enumerate(staged):
        (workdir / f"staged-{index:05d}.parquet").write_bytes(data)
    megabytes = sum(len(d) for _, d in files) / 1e6
    note = (
        f"{counts['ok']} ok, {counts['quarantined']} quarantined, {counts['rejected']} rejected; "
        f"{sum(len(b) for b in staged) / 1e6:.0f} MB Parquet"
    )
    best = f"; best of {args.repeat}, interleaved" if args.repeat > 1 else ""
    return {
        "bare": _fastest(bare_runs).result(
            rows, f"{len(files)} files, {megabytes:.0f} MB of CSV held in memory{best}"
        ),
        "floor": _fastest(floor_runs).result(
            rows, f"float64 read + Parquet only; {floor_bytes / 1e6:.0f} MB Parquet{best}"
        ),
        "staging": _fastest(staging_runs).result(rows, note + best),
    }


def _fastest(runs: list[Timer]) -> Timer:
    """The run with the least wall time, reported with the highest peak RSS of all runs."""
    fastest = min(runs, key=lambda timer: timer.wall)
    return Timer(fastest.wall, fastest.cpu, max(timer.peak for timer in runs))


def stage_curated(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    staged = [path.read_bytes() for path in sorted(workdir.glob("staged-*.parquet"))]
    contract = load_contract("inmet_hourly")  # its temporal QC rules run in curated
    # Warm-up on 48 rows: first-call costs (kernel lookups, lazy imports) are not what is measured.
    for table in curate("inmet_hourly", [parquet_bytes_to_table(staged[0]).slice(0, 48)]).values():
        table_to_parquet_bytes(table)
    gc.collect()
    timer = Timer()
    with timer.section(), ThreadPoolExecutor(args.workers) as pool:
        parts = list(pool.map(parquet_bytes_to_table, staged))
        curated = curate("inmet_hourly", parts, contract.qc)
        del parts
        outputs = dict(zip(curated, pool.map(table_to_parquet_bytes, curated.values()), strict=True))
    for name, data in outputs.items():
        (workdir / f"curated-{name}.parquet").write_bytes(data)
    note = ", ".join(f"{n} {curated[n].num_rows} rows {len(d) / 1e6:.0f} MB" for n, d in outputs.items())
    return {"curated": timer.result(curated["hourly"].num_rows, note)}


def _split_stage(args: argparse.Namespace, workdir: Path, kind: str) -> dict[str, Any]:
    data = (workdir / "curated-hourly.parquet").read_bytes()
    year = LAYOUTS[args.layout].year
    sample = parquet_bytes_to_table(data).slice(0, 48)  # warm-up, as for the other stages
    for table in hash_split(sample, ["wmo_code", "observed_at"], (0.8, 0.1, 0.1)).values():
        table_to_parquet_bytes(table)
    temporal_split(sample, "observed_at", datetime(year, 10, 1), datetime(year, 11, 15))
    del sample
    gc.collect()
    timer = Timer()
    with timer.section():
        hourly = parquet_bytes_to_table(data)
        del data
        if kind == "hash":
            splits = hash_split(hourly, ["wmo_code", "observed_at"], (0.8, 0.1, 0.1), salt="bench")
        else:
            splits = temporal_split(hourly, "observed_at", datetime(year, 10, 1), datetime(year, 11, 15))
        with ThreadPoolExecutor(args.workers) as pool:
            for _ in pool.map(table_to_parquet_bytes, splits.values()):
                pass  # the bytes are not kept: the task would upload and drop them
    note = ", ".join(f"{n} {splits[n].num_rows}" for n in splits)
    return {kind: timer.result(hourly.num_rows, note)}


def stage_same_work(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """What the pandas baseline does, done with Trilha: parse every file, then curate (dedup,
    sort, daily). No validation, no Parquet, no split: the like-for-like comparison."""
    layout = LAYOUTS[args.layout]
    files = [station_file(i, args.hours, layout, args.seed) for i in range(args.stations)]
    parse_file(files[0][1], files[0][0])
    curate("inmet_hourly", [parse_file(files[0][1], files[0][0]).table.slice(0, 48)])
    gc.collect()
    timer = Timer()
    with timer.section(), ThreadPoolExecutor(args.workers) as pool:
        tables = list(pool.map(lambda item: parse_file(item[1], item[0]).table, files))
        curated = curate("inmet_hourly", tables)
    note = f"{curated['daily'].num_rows} daily rows; parse_file + curate only"
    return {"same": timer.result(curated["hourly"].num_rows, note)}


def stage_split_hash(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    return _split_stage(args, workdir, "hash")


def stage_split_temporal(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    return _split_stage(args, workdir, "temporal")


# --------------------------------------------------------------------------------------------------
# pandas baseline (child process)
# --------------------------------------------------------------------------------------------------


def pandas_baseline(stations: int, hours: int, layout_name: str, seed: int, tuned: bool) -> dict[str, Any]:
    """Straightforward pandas: read_csv per file, concat, clean, dedup by station+hour, daily groupby.

    ``tuned=False`` is the brief's baseline: ``read_csv`` with default settings (only what is needed
    to read the file at all: separator, header lines, encoding), then the usual cleaning with
    ``str.replace(",", ".")`` and ``-9999`` to NaN. ``tuned=True`` lets ``read_csv`` do that itself
    (``decimal=","``, ``na_values=["-9999"]``): the fastest plain-pandas version.
    """
    import pandas as pd

    layout = LAYOUTS[layout_name]
    frames = []
    elapsed = cpu = 0.0
    for index in range(stations):
        name, data = station_file(index, hours, layout, seed)
        start, cpu_start = time.perf_counter(), _cpu()
        code = data[:2000].decode("latin-1").split("\n")[3].split(";")[1]
        if tuned:
            frame = pd.read_csv(
                io.BytesIO(data), sep=";", skiprows=8, encoding="latin-1", decimal=",", na_values=["-9999"]
            )
        else:
            frame = pd.read_csv(io.BytesIO(data), sep=";", skiprows=8, encoding="latin-1")
        frame = frame.loc[:, ~frame.columns.str.startswith("Unnamed")]
        frame["wmo_code"] = code
        frames.append(frame)
        elapsed += time.perf_counter() - start
        cpu += _cpu() - cpu_start
    start, cpu_start = time.perf_counter(), _cpu()
    data_frame = pd.concat(frames, ignore_index=True)
    del frames
    columns = list(data_frame.columns)
    date_column, hour_column, measures = columns[0], columns[1], columns[2:19]
    if not tuned:
        for column in measures:
            if not pd.api.types.is_numeric_dtype(data_frame[column]):
                text = data_frame[column].str.replace(",", ".", regex=False)
                data_frame[column] = pd.to_numeric(text, errors="coerce")
        data_frame[measures] = data_frame[measures].replace(-9999, np.nan)
    hour_text = data_frame[hour_column].astype(str).str.replace(" UTC", "").str.replace(":", "")
    stamp_text = data_frame[date_column].astype(str).str.replace("/", "-") + " " + hour_text
    data_frame["observed_at"] = pd.to_datetime(stamp_text, format="%Y-%m-%d %H%M", utc=True)
    data_frame = data_frame.drop_duplicates(["wmo_code", "observed_at"], keep="last")
    data_frame = data_frame.sort_values(["wmo_code", "observed_at"], kind="stable")
    data_frame["date"] = data_frame["observed_at"].dt.date
    precipitation, temperature, humidity, gust = measures[0], measures[5], measures[13], measures[15]
    daily = data_frame.groupby(["wmo_code", "date"]).agg(
        precipitation_sum_mm=(precipitation, "sum"),
        air_temp_min_c=(temperature, "min"),
        air_temp_mean_c=(temperature, "mean"),
        air_temp_max_c=(temperature, "max"),
        rel_humidity_mean_pct=(humidity, "mean"),
        wind_gust_max_ms=(gust, "max"),
        hours_total=(temperature, "size"),
        hours_with_temp=(temperature, "count"),
    )
    elapsed += time.perf_counter() - start
    cpu += _cpu() - cpu_start
    return {
        "seconds": elapsed,
        "cpu": cpu,
        "rows": len(data_frame),
        "daily_rows": len(daily),
        "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }


# --------------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------------

STAGES = {
    "staging": stage_staging,
    "curated": stage_curated,
    "split-hash": stage_split_hash,
    "split-temporal": stage_split_temporal,
    "same-work": stage_same_work,
}


def child(args: argparse.Namespace, *extra: str) -> dict[str, dict[str, Any]]:
    command = [sys.executable, __file__, *extra, "--stations", str(args.stations)]
    command += ["--hours", str(args.hours), "--layout", args.layout, "--seed", str(args.seed)]
    command += ["--workers", str(args.workers), "--repeat", str(args.repeat)]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    result: dict[str, dict[str, Any]] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def run(args: argparse.Namespace) -> int:
    print(
        f"{args.stations} stations x {args.hours} hours, layout {args.layout}; "
        f"load average before: {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    stages: list[tuple[str, dict[str, Any]]] = []
    with tempfile.TemporaryDirectory(prefix="trilha-bench-") as scratch:
        for stage in STAGES:
            print(f"running {stage}...", flush=True)
            result = child(args, "--stage", stage, "--workdir", scratch)
            if stage == "staging":
                stages += [
                    ("bare pyarrow.csv.read_csv", result["bare"]),
                    ("floor: typed read + Parquet write", result["floor"]),
                    ("staging (parse+validate+parquet)", result["staging"]),
                ]
            elif stage == "curated":
                stages.append(("curated (read parts+curate+parquet)", result["curated"]))
            elif stage == "split-hash":
                stages.append(("split hash 80/10/10 (read+split+parquet)", result["hash"]))
            elif stage == "split-temporal":
                stages.append(("split temporal (read+split+parquet)", result["temporal"]))
            else:
                stages.append(("trilha parse+curate (the pandas work)", result["same"]))
    if not args.skip_pandas:
        for variant, label in (
            ("default", "read_csv defaults + str.replace"),
            ("tuned", "read_csv decimal=','"),
        ):
            print(f"running the pandas baseline ({variant})...", flush=True)
            baseline = child(args, "--pandas-child", variant)["pandas"]
            daily_rows = baseline.pop("daily_rows")
            baseline["note"] = f"{daily_rows} daily rows; no Parquet, no validation, no split"
            stages.append((f"pandas {variant} ({label})", baseline))
    report(stages, args)
    return 0


def report(stages: list[tuple[str, dict[str, Any]]], args: argparse.Namespace) -> None:
    by_name = dict(stages)

    def seconds(name: str) -> float:
        return float(by_name[name]["seconds"])

    bare = seconds("bare pyarrow.csv.read_csv")
    staging = seconds("staging (parse+validate+parquet)")
    pipeline_names = [
        "staging (parse+validate+parquet)",
        "curated (read parts+curate+parquet)",
        "split hash 80/10/10 (read+split+parquet)",
    ]
    pipeline = sum(seconds(n) for n in pipeline_names)
    pipeline_cpu = sum(float(by_name[n]["cpu"]) for n in pipeline_names)
    peak = max(int(by_name[n]["peak_rss"]) for n in pipeline_names)
    rows = [
        *stages,
        (
            "pipeline (staging+curated+split hash)",
            {
                "seconds": pipeline,
                "cpu": pipeline_cpu,
                "rows": args.stations * args.hours,
                "peak_rss": peak,
                "note": "peak of the three stages",
            },
        ),
    ]
    print()
    print(
        f"Trilha transform benchmark: {args.stations} stations x {args.hours} hours, layout {args.layout}, "
        f"{args.workers} worker(s), {os.cpu_count()} CPUs, load average after: {os.getloadavg()[0]:.2f}"
    )
    print(f"{'stage':44} {'wall s':>7} {'cpu s':>7} {'rows/s':>11} {'vs bare':>8} {'peak RSS':>9}  note")
    print("-" * 130)
    for name, r in rows:
        wall = float(r["seconds"])
        count = int(r["rows"])
        rate = count / wall if wall else 0
        print(
            f"{name:44} {wall:7.2f} {float(r['cpu']):7.2f} {rate:11,.0f} "
            f"{wall / bare:7.2f}x {int(r['peak_rss']) / GIB:8.2f}G  {r['note']}"
        )
    print("-" * 130)
    targets: list[tuple[str, bool, str]] = [
        ("staging within 3x of bare parse", staging <= 3 * bare, f"{staging / bare:.2f}x"),
        ("staging+curated+split < 60 s", pipeline < 60, f"{pipeline:.1f} s"),
        ("peak RSS < 2 GiB (each stage)", peak < 2 * GIB, f"{peak / GIB:.2f} GiB"),
    ]
    pandas_default = by_name.get("pandas default (read_csv defaults + str.replace)")
    pandas_tuned = by_name.get("pandas tuned (read_csv decimal=',')")
    if pandas_default is not None and pandas_tuned is not None:
        speedup = float(pandas_default["seconds"]) / pipeline
        tuned = float(pandas_tuned["seconds"]) / pipeline
        targets.append(
            (
                ">= 3x faster than pandas end to end",
                speedup >= 3,
                f"{speedup:.1f}x vs read_csv defaults; {tuned:.1f}x vs tuned pandas",
            )
        )
        same = seconds("trilha parse+curate (the pandas work)")
        targets.append(
            (
                ">= 3x faster than pandas, same work",
                float(pandas_default["seconds"]) / same >= 3,
                f"{float(pandas_default['seconds']) / same:.1f}x vs read_csv defaults; "
                f"{float(pandas_tuned['seconds']) / same:.1f}x vs tuned pandas",
            )
        )
    for label, met, value in targets:
        print(f"target: {label:40} {'MET' if met else 'NOT MET':8} ({value})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--stations", type=int, default=564, help="number of station files (default 564)")
    parser.add_argument("--hours", type=int, default=8784, help="hours per file (default 8784, a leap year)")
    parser.add_argument("--layout", choices=sorted(LAYOUTS), default="2020", help="INMET yearly layout")
    parser.add_argument("--seed", type=int, default=7, help="random seed of the synthetic data")
    parser.add_argument("--skip-pandas", action="store_true", help="do not run the pandas baselines")
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        help="threads for per-file work (bare read and staging alike; Parquet reads/writes); default 2, "
        "as StagingOperator's default",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="bare read and staging alternate this many times and each reports its fastest run (default 3)",
    )
    parser.add_argument("--stage", choices=sorted(STAGES), help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--pandas-child", choices=("default", "tuned"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error(f"--repeat: expected at least 1, got {args.repeat}")
    if args.stage:
        print(json.dumps(STAGES[args.stage](args, args.workdir)))
        return 0
    if args.pandas_child:
        tuned = args.pandas_child == "tuned"
        print(
            json.dumps({"pandas": pandas_baseline(args.stations, args.hours, args.layout, args.seed, tuned)})
        )
        return 0
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
