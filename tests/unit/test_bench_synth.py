"""``bench/synth.py``: the synthetic INMET input of the pipeline and scale benchmarks is what
Trilha's own parser reads as INMET, with the rows, stations, years and missing values asked for.

If the generator drifted from the real layout, the benchmarks would time the generic CSV path (or
rejections) instead of the real one, and nobody would notice from the timings alone.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.compute as pc
import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

import synth  # noqa: E402  # bench/synth.py

from trilha.domain.formats import parse_file  # noqa: E402

REAL_2024 = (
    Path(__file__).resolve().parents[2]
    / "include"
    / "sample"
    / "inmet"
    / "INMET_SE_SP_A701_SAO PAULO - MIRANTE_01-01-2024_A_31-12-2024.CSV"
)


def test_a_full_year_parses_as_the_2020_layout_with_every_hour_of_the_year() -> None:
    f = synth.one_file(3, 2023, seed=7)
    parsed = parse_file(f.data, f.name)
    assert parsed.layout == "inmet_automatic_2020plus"
    assert parsed.dataset == "inmet_hourly"
    assert parsed.metadata["encoding"] == "cp1252"
    assert (f.rows, parsed.rows_in, parsed.table.num_rows, parsed.rejected.num_rows) == (8760, 8760, 8760, 0)
    assert (parsed.metadata["missing_columns"], parsed.metadata["extra_columns"]) == ("", "")
    assert pc.unique(parsed.table["wmo_code"]).to_pylist() == ["A004"] == [f.wmo_code]
    stamps = parsed.table["observed_at"]
    assert pc.min(stamps).as_py() == datetime(2023, 1, 1, tzinfo=UTC)
    assert pc.max(stamps).as_py() == datetime(2023, 12, 31, 23, tzinfo=UTC)
    assert synth.one_file(3, 2024, seed=7).rows == 8784  # a leap year


def test_the_header_and_the_number_format_are_the_real_files() -> None:
    real = REAL_2024.read_bytes().split(b"\n")
    fake = synth.one_file(0, 2024, seed=7).data.split(b"\n")
    # The same 9 header keys, in order, and the very same column line (cp1252 bytes).
    assert [line.split(b";")[0] for line in fake[:8]] == [line.split(b";")[0] for line in real[:8]]
    assert fake[8] == real[8]
    body = b"\n".join(fake[9:])
    assert b";," in body  # a leading zero dropped: ",8", as INMET writes it
    assert b"." not in body.replace(b" UTC", b"")  # decimal commas only
    assert b"-9999" not in body  # the 2020+ layout writes missing values as empty cells...
    assert b";;" in body
    assert (len(fake) - 10, fake[-1]) == (8784, b"")  # ...one line per hour, each ending in ';\n'
    assert all(line.endswith(b";") for line in fake[9:-1])


def test_files_are_deterministic_unique_and_parse_with_the_expected_counts(tmp_path: Path) -> None:
    done = synth.write(tmp_path / "a", stations=3, years=2, hours=48, seed=11, workers=1)
    again = synth.write(tmp_path / "b", stations=3, years=2, hours=48, seed=11, workers=2)
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "b").iterdir())
    assert all((tmp_path / "a" / n).read_bytes() == (tmp_path / "b" / n).read_bytes() for n in names)
    assert (done.files, done.rows, done.codes) == (6, 6 * 48, ("A001", "A002", "A003"))
    assert (again.files, again.bytes) == (done.files, done.bytes)
    assert done.bytes == sum((tmp_path / "a" / n).stat().st_size for n in names)
    found: dict[str, list[int]] = {}
    for name in names:
        parsed = parse_file((tmp_path / "a" / name).read_bytes(), name)
        assert (parsed.rows_in, parsed.table.num_rows, parsed.rejected.num_rows) == (48, 48, 0), name
        (code,) = pc.unique(parsed.table["wmo_code"]).to_pylist()
        found.setdefault(code, []).append(pc.min(parsed.table["observed_at"]).as_py().year)
    assert found == {"A001": [2023, 2024], "A002": [2023, 2024], "A003": [2023, 2024]}
    other = synth.write(tmp_path / "c", stations=1, years=1, hours=48, seed=12, workers=1)
    (name,) = [p.name for p in (tmp_path / "c").iterdir()]
    assert other.files == 1
    assert (tmp_path / "c" / name).read_bytes() != (tmp_path / "a" / name).read_bytes()


def test_years_end_with_the_last_year_and_by_year_uses_each_years_layout() -> None:
    assert synth.years_of(4) == [2021, 2022, 2023, 2024]
    assert synth.years_of(1, last_year=2019) == [2019]
    layouts = {
        year: parse_file(f.data, f.name).layout
        for year in (2018, 2019, 2020)
        for f in [synth.one_file(0, year, seed=7, layout="by-year", hours=24)]
    }
    assert layouts == {
        2018: "inmet_automatic_pre2019",
        2019: "inmet_automatic_2019only",
        2020: "inmet_automatic_2020plus",
    }
    with pytest.raises(ValueError, match="years: expected at least 1, got 0"):
        synth.years_of(0)
    with pytest.raises(ValueError, match="layout: expected one of 2020, by-year"):
        synth.one_file(0, 2024, seed=7, layout="2021")
