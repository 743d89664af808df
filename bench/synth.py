"""Synthetic INMET input: N automatic stations' yearly files, as the INMET portal ships them.

Each file is one station's year in a yearly layout (by default the 2020+ one, as in
``include/sample/inmet/INMET_SE_SP_A701_...2024.CSV``): a cp1252 header of 8 ``KEY:;value`` lines
(``REGIAO:``, ``ESTACAO:``, ``CODIGO (WMO):``, latitude/longitude with the leading zero dropped,
``DATA DE FUNDACAO:`` as ``DD/MM/YY``), the ``Data;Hora UTC;...`` column line with its accents and
``Kj/m²``, then one ``;``-separated line per hour with a trailing ``;``: decimal commas without the
leading zero (``,8``, ``-,2``), empty cells where a sensor did not report, whole empty hours, no
night-time radiation, and now and then an implausible humidity that quality control flags bad.

The rows come from ``bench/transform.py``'s :func:`station_file` (diurnal cycles, altitude-dependent
pressure, numpy-vectorised); this module adds what a pipeline run needs: several years per station
(``years``, for the 1x / 4x / 10x scale runs of ``bench/scale.py``), every file written to a folder,
the expected row count and station code of each file, and the guarantee that every file is unique
(the lake stores content once, so two equal files would make a smaller run than asked for).

Deterministic: the same arguments give byte-identical files.

    .venv/bin/python bench/synth.py OUT_DIR                      # 564 stations x 1 year (2024)
    .venv/bin/python bench/synth.py OUT_DIR --stations 60 --years 4
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import os
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

from transform import LAYOUTS, station_file  # noqa: E402  # bench/transform.py, beside this file

#: The number of automatic stations in INMET's yearly archive (2024), and the last full year.
STATIONS = 564
LAST_YEAR = 2024
#: ``2020`` writes every year in the 2020+ layout; ``by-year`` gives each year the layout INMET
#: used that year (before 2019: ``-9999`` and ``YYYY-MM-DD``; 2019: ``REGI?O:``; 2020 on).
LAYOUT_CHOICES = ("2020", "by-year")


@dataclass(frozen=True)
class SynthFile:
    """One generated file and what a parser must find in it."""

    name: str
    data: bytes
    wmo_code: str
    year: int
    rows: int


@dataclass(frozen=True)
class Written:
    """What :func:`write` put in the folder."""

    folder: Path
    files: int
    bytes: int
    rows: int
    codes: tuple[str, ...]
    seconds: float


def hours_in(year: int) -> int:
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    return 8784 if leap else 8760


def station_code(index: int) -> str:
    """The WMO code of station ``index`` (0-based): A001..A999, then B001..; as in bench/transform.py."""
    return f"A{index + 1:03d}" if index < 999 else f"B{index - 998:03d}"


def years_of(years: int, last_year: int = LAST_YEAR) -> list[int]:
    """The ``years`` full years ending with ``last_year`` (never a future year), oldest first."""
    if years < 1:
        raise ValueError(f"years: expected at least 1, got {years}")
    return list(range(last_year - years + 1, last_year + 1))


def layout_for(year: int, layout: str) -> str:
    if layout not in LAYOUT_CHOICES:
        raise ValueError(f"layout: expected one of {', '.join(LAYOUT_CHOICES)}, got {layout!r}")
    if layout == "2020" or year >= 2020:
        return "2020"
    return "2019" if year == 2019 else "pre2019"


def one_file(index: int, year: int, seed: int, layout: str = "2020", hours: int | None = None) -> SynthFile:
    """Station ``index``'s file for ``year``; ``hours`` shortens it (tests), default the whole year."""
    rows = hours_in(year) if hours is None else hours
    base = dataclasses.replace(LAYOUTS[layout_for(year, layout)], year=year)
    # One random stream per (seed, year, station): station_file seeds with seed * 100_003 + index.
    name, data = station_file(index, rows, base, seed * 10_007 + year)
    return SynthFile(name=name, data=data, wmo_code=station_code(index), year=year, rows=rows)


def generate(
    stations: int = STATIONS,
    years: int = 1,
    *,
    seed: int = 7,
    last_year: int = LAST_YEAR,
    layout: str = "2020",
    hours: int | None = None,
) -> Iterator[SynthFile]:
    """Every file of ``stations`` stations x ``years`` years, station by station, oldest year first."""
    if stations < 1:
        raise ValueError(f"stations: expected at least 1, got {stations}")
    for index in range(stations):
        for year in years_of(years, last_year):
            yield one_file(index, year, seed, layout, hours)


_Job = tuple[Path, int, list[int], int, str, int | None]


def _write_station(args: _Job) -> list[tuple[str, int, int, str]]:
    folder, index, year_list, seed, layout, hours = args
    out = []
    for year in year_list:
        f = one_file(index, year, seed, layout, hours)
        (folder / f.name).write_bytes(f.data)
        out.append((f.name, len(f.data), f.rows, hashlib.sha256(f.data).hexdigest()))
    return out


def write(
    folder: Path,
    stations: int = STATIONS,
    years: int = 1,
    *,
    seed: int = 7,
    last_year: int = LAST_YEAR,
    layout: str = "2020",
    hours: int | None = None,
    workers: int = 2,
) -> Written:
    """Write the files of :func:`generate` into ``folder`` (created), on ``workers`` processes.

    Raises ``ValueError`` if two files came out equal (a content-addressed lake would keep one).
    """
    if stations < 1:
        raise ValueError(f"stations: expected at least 1, got {stations}")
    start = time.perf_counter()
    folder.mkdir(parents=True, exist_ok=True)
    year_list = years_of(years, last_year)
    jobs = [(folder, index, year_list, seed, layout, hours) for index in range(stations)]
    if workers > 1 and stations > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            results = [item for chunk in pool.map(_write_station, jobs, chunksize=8) for item in chunk]
    else:
        results = [item for job in jobs for item in _write_station(job)]
    digests = {digest for *_, digest in results}
    if len(digests) != len(results):
        raise ValueError(f"{len(results) - len(digests)} generated file(s) are byte-identical to another")
    return Written(
        folder=folder,
        files=len(results),
        bytes=sum(size for _, size, _, _ in results),
        rows=sum(rows for _, _, rows, _ in results),
        codes=tuple(station_code(i) for i in range(stations)),
        seconds=time.perf_counter() - start,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/synth.py", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("folder", type=Path, help="where the files go (created)")
    parser.add_argument("--stations", type=int, default=STATIONS, help=f"default {STATIONS}")
    parser.add_argument("--years", type=int, default=1, help="years per station, ending with --last-year")
    parser.add_argument("--last-year", type=int, default=LAST_YEAR, help=f"default {LAST_YEAR}")
    parser.add_argument("--layout", choices=LAYOUT_CHOICES, default="2020", help="default 2020")
    parser.add_argument("--hours", type=int, default=None, help="hours per file (default: the whole year)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    args = parser.parse_args(argv)
    try:
        done = write(
            args.folder,
            args.stations,
            args.years,
            seed=args.seed,
            last_year=args.last_year,
            layout=args.layout,
            hours=args.hours,
            workers=args.workers,
        )
    except ValueError as err:
        parser.error(str(err))
    print(
        f"{done.files} files ({args.stations} stations x {args.years} year(s)), {done.rows:,} rows, "
        f"{done.bytes / 1e6:.1f} MB in {done.folder} ({done.seconds:.1f}s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
