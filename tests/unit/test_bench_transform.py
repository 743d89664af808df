"""``bench/transform.py`` still runs: a tiny full pass through every stage, checked on its counts.

The benchmark is how the speed targets are reported; a refactor that breaks it would go unnoticed
until someone needs the figures. Timings are not asserted (they belong to the benchmark, not to a
test); the row counts it prints are, since every stage asserts its own totals before printing.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "transform.py"


@pytest.mark.slow
def test_transform_bench_runs_every_stage_and_reports_the_targets() -> None:
    stations, hours = 3, 72
    done = subprocess.run(
        [sys.executable, str(BENCH), "--stations", str(stations), "--hours", str(hours), "--repeat", "1"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    table = done.stdout
    named = (re.match(r"(\S.*?)\s+\d+\.\d\d\s+\d+\.\d\d\s", line) for line in table.splitlines())
    rows = {match[1]: match.string for match in named if match}
    assert list(rows) == [
        "bare pyarrow.csv.read_csv",
        "floor: typed read + Parquet write",
        "staging (parse+validate+parquet)",
        "curated (read parts+curate+parquet)",
        "split hash 80/10/10 (read+split+parquet)",
        "split temporal (read+split+parquet)",
        "trilha parse+curate (the pandas work)",
        "pandas default (read_csv defaults + str.replace)",
        "pandas tuned (read_csv decimal=',')",
        "pipeline (staging+curated+split hash)",
    ]
    staged = re.search(
        r"(\d+) ok, (\d+) quarantined, (\d+) rejected", rows["staging (parse+validate+parquet)"]
    )
    assert staged is not None
    assert sum(int(n) for n in staged.groups()) == stations * hours
    curated = re.search(r"hourly (\d+) rows .* daily (\d+) rows .* stations (\d+) rows", table)
    assert curated is not None
    # Daily rows are local days: hours from UTC midnight begin with the tail of the local day before
    # (the synthetic stations are west of Greenwich), so 72 hours make 4 local days per station.
    assert (int(curated[1]), int(curated[2]), int(curated[3])) == (
        int(staged[1]),
        stations * (hours // 24 + 1),
        stations,
    )
    split = re.search(
        r"train (\d+), validation (\d+), test (\d+)", rows["split hash 80/10/10 (read+split+parquet)"]
    )
    assert split is not None
    assert sum(int(n) for n in split.groups()) == int(staged[1])
    for target in (
        "staging within 3x",
        "staging+curated+split < 60 s",
        "peak RSS < 2 GiB",
        "faster than pandas",
    ):
        assert re.search(rf"target: .*{re.escape(target)}.*\s(MET|NOT MET)\s", table), target
