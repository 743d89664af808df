"""Benchmark of the pure transform path: staging, curated and split, on synthetic INMET files.

Generates realistic INMET yearly station files in memory (latin-1 header with accents, ``;`` with a
trailing ``;``, decimal commas with the leading zero dropped, empty or ``-9999`` missing values,
whole empty hours, a few implausible humidity readings that the contract quarantines), then times,
in one run:

* ``bare``: ``pyarrow.csv.read_csv`` of each file's bytes with the minimal options that read it
  (skip the 9 header lines, ``;`` delimiter), the reference for "how fast can these bytes parse";
* ``staging``: ``parse_file`` + ``validate`` + ``table_to_parquet_bytes`` per file;
* ``curated``: read the staged Parquet parts back + ``curate`` + Parquet of hourly/daily/stations;
* ``split``: ``hash_split`` (and ``temporal_split``) of the curated hourly table + Parquet per split;
* ``pandas``: a straightforward pandas implementation (``read_csv`` per file, concat, dedup,
  groupby daily), run in a child process so that its memory does not inflate ours.

Peak RSS per stage is sampled every 5 ms (psutil) while the stage runs.

    .venv/bin/python bench/transform.py --stations 564 --hours 8784 --layout 2020
    .venv/bin/python bench/transform.py --stations 20 --hours 2000          # quick
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import psutil
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pv

from trilha.contracts import load_contract, validate
from trilha.curate import curate
from trilha.formats import parse_file
from trilha.parquet import parquet_bytes_to_table, table_to_parquet_bytes
from trilha.splitting import hash_split, temporal_split

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
    # A rare implausible humidity reading: the contract sends these rows to quarantine.
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


@dataclass
class Stage:
    name: str
    seconds: float
    rows: int
    peak_rss: int
    note: str = ""


@dataclass
class Results:
    stages: list[Stage] = field(default_factory=list)

    def add(self, stage: Stage) -> Stage:
        self.stages.append(stage)
        return stage


@contextmanager
def measured(results: Results, name: str, rows: int) -> Iterator[None]:
    """Time the block and sample its peak RSS; the garbage of earlier stages is collected first."""
    gc.collect()
    with PeakRss() as rss:
        start = time.perf_counter()
        yield
        elapsed = time.perf_counter() - start
    results.add(Stage(name, elapsed, rows, rss.peak))


def bare_read(data: bytes) -> pa.Table:
    return pv.read_csv(
        io.BytesIO(data),
        read_options=pv.ReadOptions(skip_rows=9, autogenerate_column_names=True),
        parse_options=pv.ParseOptions(delimiter=";"),
    )


# --------------------------------------------------------------------------------------------------
# pandas baseline (child process)
# --------------------------------------------------------------------------------------------------


def pandas_baseline(stations: int, hours: int, layout_name: str, seed: int) -> dict[str, float]:
    """Straightforward pandas: read_csv per file, concat, dedup by station+hour, groupby daily."""
    import pandas as pd

    layout = LAYOUTS[layout_name]
    frames = []
    elapsed = 0.0
    for index in range(stations):
        name, data = station_file(index, hours, layout, seed)
        start = time.perf_counter()
        header = data[:2000].decode("latin-1").split("\n")
        code = header[3].split(";")[1]
        frame = pd.read_csv(
            io.BytesIO(data), sep=";", skiprows=8, encoding="latin-1", decimal=",", na_values=["-9999"]
        )
        frame = frame.loc[:, ~frame.columns.str.startswith("Unnamed")]
        frame["wmo_code"] = code
        frames.append(frame)
        elapsed += time.perf_counter() - start
    start = time.perf_counter()
    data_frame = pd.concat(frames, ignore_index=True)
    del frames
    date_column, hour_column = data_frame.columns[0], data_frame.columns[1]
    hour_text = data_frame[hour_column].astype(str).str.replace(" UTC", "").str.replace(":", "")
    stamp_text = data_frame[date_column].astype(str).str.replace("/", "-") + " " + hour_text
    data_frame["observed_at"] = pd.to_datetime(stamp_text, format="%Y-%m-%d %H%M", utc=True)
    data_frame = data_frame.drop_duplicates(["wmo_code", "observed_at"], keep="last")
    data_frame = data_frame.sort_values(["wmo_code", "observed_at"], kind="stable")
    data_frame["date"] = data_frame["observed_at"].dt.date
    columns = list(data_frame.columns)
    precipitation, temperature, humidity, gust = columns[2], columns[7], columns[15], columns[17]
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
    import resource

    return {
        "seconds": elapsed,
        "rows": float(len(data_frame)),
        "daily_rows": float(len(daily)),
        "peak_rss": float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024),
    }


# --------------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    layout = LAYOUTS[args.layout]
    results = Results()
    print(
        f"generating {args.stations} stations x {args.hours} hours ({args.layout} layout) in memory...",
        flush=True,
    )
    start = time.perf_counter()
    files = [station_file(i, args.hours, layout, args.seed) for i in range(args.stations)]
    total_bytes = sum(len(d) for _, d in files)
    print(
        f"  {len(files)} files, {total_bytes / 1e6:.1f} MB, in {time.perf_counter() - start:.1f} s",
        flush=True,
    )
    expected_rows = args.stations * args.hours

    # Warm-up: imports, first-call costs and regex compilation are not what is being measured.
    parse_file(files[0][1], files[0][0])
    bare_read(files[0][1])

    with measured(results, "bare pyarrow.csv.read_csv", expected_rows):
        rows = 0
        for _, data in files:
            rows += bare_read(data).num_rows
    assert rows == expected_rows, f"bare read: expected {expected_rows} rows, got {rows}"

    contract = load_contract("inmet_hourly")
    staged: list[bytes] = []
    counts = {"rows_in": 0, "ok": 0, "quarantined": 0, "rejected": 0}
    with measured(results, "staging (parse+validate+parquet)", expected_rows):
        for name, data in files:
            parsed = parse_file(data, name)
            ok, quarantine = validate(parsed.table, contract, name)
            staged.append(table_to_parquet_bytes(ok))
            if quarantine.num_rows:
                table_to_parquet_bytes(quarantine)
            if parsed.rejected.num_rows:
                table_to_parquet_bytes(parsed.rejected)
            counts["rows_in"] += parsed.rows_in
            counts["ok"] += ok.num_rows
            counts["quarantined"] += quarantine.num_rows
            counts["rejected"] += parsed.rejected.num_rows
    staged_bytes = sum(len(b) for b in staged)
    results.stages[-1].note = (
        f"{counts['ok']} ok, {counts['quarantined']} quarantined, {counts['rejected']} rejected; "
        f"{staged_bytes / 1e6:.0f} MB Parquet"
    )
    assert counts["rows_in"] == counts["ok"] + counts["quarantined"] + counts["rejected"] == expected_rows

    del files  # the raw bytes are the staging task's input, not the curated task's
    gc.collect()

    with measured(results, "curated (read parts+curate+parquet)", counts["ok"]):
        parts = [parquet_bytes_to_table(b) for b in staged]
        curated = curate("inmet_hourly", parts)
        del parts
        outputs = {name: table_to_parquet_bytes(table) for name, table in curated.items()}
    results.stages[-1].note = ", ".join(
        f"{name} {curated[name].num_rows} rows {len(data) / 1e6:.0f} MB" for name, data in outputs.items()
    )
    hourly = curated["hourly"]
    del staged, outputs
    gc.collect()

    with measured(results, "split hash 80/10/10 (+parquet)", hourly.num_rows):
        splits = hash_split(hourly, ["wmo_code", "observed_at"], (0.8, 0.1, 0.1), salt="bench")
        split_bytes = {name: table_to_parquet_bytes(t) for name, t in splits.items()}
    results.stages[-1].note = ", ".join(f"{n} {splits[n].num_rows}" for n in splits)
    del splits, split_bytes

    first = datetime(layout.year, 1, 1)
    validation_start = first.replace(month=10)
    test_start = first.replace(month=11, day=15)
    with measured(results, "split temporal (+parquet)", hourly.num_rows):
        splits = temporal_split(hourly, "observed_at", validation_start, test_start)
        split_bytes = {name: table_to_parquet_bytes(t) for name, t in splits.items()}
    results.stages[-1].note = ", ".join(f"{n} {splits[n].num_rows}" for n in splits)
    del splits, split_bytes, hourly, curated

    pandas: dict[str, float] | None = None
    if not args.skip_pandas:
        print("running the pandas baseline in a child process...", flush=True)
        child = subprocess.run(
            [
                sys.executable,
                __file__,
                "--pandas-child",
                "--stations",
                str(args.stations),
                "--hours",
                str(args.hours),
                "--layout",
                args.layout,
                "--seed",
                str(args.seed),
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        pandas = json.loads(child.stdout.strip().splitlines()[-1])
        results.add(
            Stage(
                "pandas (read_csv+concat+dedup+groupby)",
                pandas["seconds"],
                int(pandas["rows"]),
                int(pandas["peak_rss"]),
                f"{int(pandas['daily_rows'])} daily rows; own process",
            )
        )
    report(results, args, pandas)
    return 0


def report(results: Results, args: argparse.Namespace, pandas: dict[str, float] | None) -> None:
    by_name = {s.name.split(" ")[0]: s for s in results.stages}
    bare = by_name["bare"].seconds
    staging, curated = by_name["staging"], by_name["curated"]
    split = next(s for s in results.stages if s.name.startswith("split hash"))
    pipeline = staging.seconds + curated.seconds + split.seconds
    peak = max(s.peak_rss for s in results.stages if not s.name.startswith("pandas"))

    print()
    print(f"Trilha transform benchmark: {args.stations} stations x {args.hours} hours, layout {args.layout}")
    print(f"{'stage':42} {'seconds':>8} {'rows/s':>12} {'vs bare':>8} {'peak RSS':>9}  note")
    print("-" * 120)
    rows = [*results.stages, Stage("pipeline total (staging+curated+split)", pipeline, staging.rows, peak)]
    for s in rows:
        print(
            f"{s.name:42} {s.seconds:8.2f} {s.rows / s.seconds if s.seconds else 0:12,.0f} "
            f"{s.seconds / bare:7.2f}x {s.peak_rss / GIB:8.2f}G  {s.note}"
        )
    print("-" * 120)
    targets: list[tuple[str, bool, str]] = [
        ("staging within 3x of bare parse", staging.seconds <= 3 * bare, f"{staging.seconds / bare:.2f}x"),
        ("staging+curated+split < 60 s", pipeline < 60, f"{pipeline:.1f} s"),
        ("peak RSS < 2 GiB", peak < 2 * GIB, f"{peak / GIB:.2f} GiB"),
    ]
    if pandas is not None:
        speedup = pandas["seconds"] / pipeline
        targets.append((">= 3x faster than pandas end to end", speedup >= 3, f"{speedup:.1f}x"))
    for label, met, value in targets:
        print(f"target: {label:40} {'MET' if met else 'NOT MET':8} ({value})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stations", type=int, default=564, help="number of station files (default 564)")
    parser.add_argument("--hours", type=int, default=8784, help="hours per file (default 8784, a leap year)")
    parser.add_argument("--layout", choices=sorted(LAYOUTS), default="2020", help="INMET yearly layout")
    parser.add_argument("--seed", type=int, default=7, help="random seed of the synthetic data")
    parser.add_argument("--skip-pandas", action="store_true", help="do not run the pandas baseline")
    parser.add_argument("--pandas-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.pandas_child:
        print(json.dumps(pandas_baseline(args.stations, args.hours, args.layout, args.seed)))
        return 0
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
