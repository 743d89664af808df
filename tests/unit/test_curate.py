"""Curated tables (trilha.domain.curate) and deterministic Parquet (trilha.domain.parquet)."""

from __future__ import annotations

import hashlib
import random
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from trilha.domain.contracts import validate
from trilha.domain.curate import (
    CURATED_HOURLY_COLUMNS,
    DAILY_COLUMNS,
    STATIONS_COLUMNS,
    coordinates_at,
    curate,
    curate_inmet_hourly,
)
from trilha.domain.formats import HOURLY_MEASUREMENTS, parse_file
from trilha.domain.parquet import parquet_bytes_to_table, table_to_parquet_bytes
from trilha.hooks.include import load_contract

SAMPLES = Path(__file__).parents[2] / "include" / "sample" / "inmet"
YEARLY = (
    "INMET_S_PR_A807_CURITIBA_28-01-2003_A_31-12-2003.CSV",
    "INMET_S_PR_A807_CURITIBA_01-01-2019_A_31-12-2019.CSV",
    "INMET_SE_SP_A701_SAO PAULO - MIRANTE_01-01-2024_A_31-12-2024.CSV",
)
TS = pa.timestamp("us", tz="UTC")


def at(day: int, hour: int, month: int = 1, year: int = 2024) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)


def part(
    code: str,
    stamps: list[datetime],
    *,
    station: str = "STATION",
    latitude: float = -23.5,
    longitude: float = -46.6,
    altitude: float = 785.0,
    uf: str | None = "SP",
    **measures: list[float | None],
) -> pa.Table:
    """A staged inmet_hourly part (as the staging task writes it), measurements default null."""
    n = len(stamps)
    columns: dict[str, pa.Array] = {
        "observed_at": pa.array(stamps, TS),
        "wmo_code": pa.array([code] * n).dictionary_encode(),
        "station": pa.array([station] * n).dictionary_encode(),
        "uf": pa.array([uf] * n, pa.string()).dictionary_encode(),
        "region": pa.array(["SE"] * n).dictionary_encode(),
        "latitude": pa.array([latitude] * n, pa.float64()),
        "longitude": pa.array([longitude] * n, pa.float64()),
        "altitude": pa.array([altitude] * n, pa.float64()),
    }
    for name in HOURLY_MEASUREMENTS:
        columns[name] = pa.array(measures.get(name, [None] * n), pa.float64())
    columns["_line_number"] = pa.array(range(10, 10 + n), pa.int64())
    return pa.table(columns)


# --------------------------------------------------------------------------------------------------
# hourly: dedup and order
# --------------------------------------------------------------------------------------------------


def test_overlapping_parts_later_part_wins_then_later_row() -> None:
    first = part("A701", [at(1, 0), at(1, 1), at(1, 2)], air_temp_c=[10.0, 11.0, 12.0])
    # A re-staged, corrected file: overlaps hours 1 and 2, adds hour 3, and repeats hour 2.
    second = part("A701", [at(1, 1), at(1, 2), at(1, 3), at(1, 2)], air_temp_c=[21.0, 22.0, 23.0, 22.5])
    hourly = curate("inmet_hourly", [first, second])["hourly"]
    assert hourly.column("observed_at").to_pylist() == [at(1, 0), at(1, 1), at(1, 2), at(1, 3)]
    assert hourly.column("air_temp_c").to_pylist() == [10.0, 21.0, 22.5, 23.0]
    # Swapping the parts swaps the winner: the rule is positional, not "newest value".
    swapped = curate("inmet_hourly", [second, first])["hourly"]
    assert swapped.column("air_temp_c").to_pylist() == [10.0, 11.0, 12.0, 23.0]


def test_hourly_is_sorted_by_station_then_time_and_drops_bookkeeping() -> None:
    parts = [
        part("A807", [at(2, 0), at(2, 1)]),
        part("A701", [at(1, 5), at(1, 6)]),
        part("A701", [at(1, 0), at(1, 1)]),
    ]
    hourly = curate("inmet_hourly", parts)["hourly"]
    assert hourly.column_names == list(CURATED_HOURLY_COLUMNS)
    assert hourly.schema.field("wmo_code").type == pa.string()
    keys = list(
        zip(hourly.column("wmo_code").to_pylist(), hourly.column("observed_at").to_pylist(), strict=True)
    )
    assert keys == [
        ("A701", at(1, 0)),
        ("A701", at(1, 1)),
        ("A701", at(1, 5)),
        ("A701", at(1, 6)),
        ("A807", at(2, 0)),
        ("A807", at(2, 1)),
    ]


def test_part_order_does_not_matter_without_overlap() -> None:
    parts = [
        part(code, [at(d, h) for h in range(24)]) for code in ("A001", "A002", "B003") for d in (1, 2, 3)
    ]
    expected = {name: table_to_parquet_bytes(t) for name, t in curate("inmet_hourly", parts).items()}
    shuffled = parts[:]
    random.Random(4).shuffle(shuffled)
    again = {name: table_to_parquet_bytes(t) for name, t in curate("inmet_hourly", shuffled).items()}
    assert again == expected


def test_a_part_with_several_stations_and_unsorted_rows() -> None:
    mixed = pa.concat_tables(
        [
            part("A807", [at(1, 3)], air_temp_c=[3.0]),
            part("A701", [at(1, 2), at(1, 1)], air_temp_c=[2.0, 1.0]),
        ]
    )
    hourly = curate("inmet_hourly", [mixed])["hourly"]
    assert hourly.column("wmo_code").to_pylist() == ["A701", "A701", "A807"]
    assert hourly.column("air_temp_c").to_pylist() == [1.0, 2.0, 3.0]


def test_null_keys_are_refused() -> None:
    broken = part("A701", [at(1, 0)])
    broken = broken.set_column(0, "observed_at", pa.array([None], TS))
    with pytest.raises(ValueError, match="part 0: expected observed_at on every row"):
        curate("inmet_hourly", [broken])


def test_an_extra_column_of_one_year_is_kept_with_nulls_elsewhere() -> None:
    plain = part("A701", [at(1, 0)])
    extra = part("A701", [at(1, 1)]).append_column("pressao_nivel_mar_mb", pa.array([1013.0]))
    hourly = curate("inmet_hourly", [plain, extra])["hourly"]
    assert hourly.column_names == [*CURATED_HOURLY_COLUMNS, "pressao_nivel_mar_mb"]
    assert hourly.column("pressao_nivel_mar_mb").to_pylist() == [None, 1013.0]


# --------------------------------------------------------------------------------------------------
# daily and stations
# --------------------------------------------------------------------------------------------------


def test_daily_aggregates_on_a_hand_made_table() -> None:
    # Day 1: only 3 hours reported. Day 2: 24 hours, some values missing. By UTC day (daily_utc),
    # with the completeness rule at 1 hour, so that the arithmetic shows.
    day1 = part(
        "A701",
        [at(1, 0), at(1, 1), at(1, 2)],
        precipitation_mm=[0.1, 0.2, None],
        air_temp_c=[20.0, 22.0, 24.0],
        air_temp_min_c=[19.5, None, 23.0],
        air_temp_max_c=[20.5, 22.5, 25.0],
        rel_humidity_pct=[80.0, 70.0, 60.0],
        wind_gust_ms=[5.0, None, 7.5],
        radiation_kj_m2=[None, None, None],
    )
    hours = list(range(24))
    day2 = part(
        "A701",
        [at(2, h) for h in hours],
        precipitation_mm=[1.0 if h < 10 else None for h in hours],
        air_temp_c=[float(h) if h % 2 == 0 else None for h in hours],
        wind_gust_ms=[None] * 24,
        radiation_kj_m2=[100.0] * 24,
    )
    daily = curate_inmet_hourly([day1, day2], min_hours=1)["daily_utc"]
    assert daily.column_names == list(DAILY_COLUMNS)
    first, second = daily.to_pylist()
    assert (first["wmo_code"], first["date"], second["date"]) == ("A701", date(2024, 1, 1), date(2024, 1, 2))
    assert (first["utc_offset_hours"], second["utc_offset_hours"]) == (0, 0)
    assert (first["hours_total"], first["hours_with_precip"], first["hours_with_temp"]) == (3, 2, 3)
    assert first["precipitation_sum_mm"] == 0.3  # rounded: not 0.30000000000000004
    assert (first["air_temp_min_c"], first["air_temp_mean_c"], first["air_temp_max_c"]) == (19.5, 22.0, 25.0)
    assert (first["rel_humidity_mean_pct"], first["hours_with_humidity"]) == (70.0, 3)
    assert (first["wind_gust_max_ms"], first["hours_with_gust"]) == (7.5, 2)
    assert (first["radiation_sum_kj_m2"], first["hours_with_radiation"]) == (None, 0)

    assert (second["hours_total"], second["hours_with_precip"], second["hours_with_temp"]) == (24, 10, 12)
    assert second["precipitation_sum_mm"] == 10.0
    assert (second["air_temp_min_c"], second["air_temp_mean_c"], second["air_temp_max_c"]) == (
        0.0,
        11.0,
        22.0,
    )
    assert (second["wind_gust_max_ms"], second["rel_humidity_mean_pct"], second["hours_with_humidity"]) == (
        None,
        None,
        0,
    )
    assert second["radiation_sum_kj_m2"] == 2400.0


def test_completeness_rule_nulls_figures_from_too_few_hours_and_keeps_the_counts() -> None:
    hours = list(range(24))
    # 18 hours of temperature, 17 of humidity, 6 of radiation (INMET leaves the night empty).
    day = part(
        "A701",
        [at(2, h) for h in hours],
        air_temp_c=[20.0 if h < 18 else None for h in hours],
        rel_humidity_pct=[50.0 if h < 17 else None for h in hours],
        radiation_kj_m2=[100.0 if 12 <= h < 18 else None for h in hours],
        precipitation_mm=[0.5] * 24,
    )
    (row,) = curate_inmet_hourly([day])["daily_utc"].to_pylist()  # the default rule: 18 of 24
    assert (row["hours_with_temp"], row["air_temp_mean_c"], row["air_temp_min_c"]) == (18, 20.0, 20.0)
    assert (row["hours_with_humidity"], row["rel_humidity_mean_pct"], row["rel_humidity_max_pct"]) == (
        17,
        None,
        None,
    )
    assert (row["hours_with_precip"], row["precipitation_sum_mm"]) == (24, 12.0)
    # Radiation is exempt: its night hours are blank by design, the count says what it rests on.
    assert (row["hours_with_radiation"], row["radiation_sum_kj_m2"]) == (6, 600.0)
    (strict,) = curate_inmet_hourly([day], min_hours=24)["daily_utc"].to_pylist()
    assert (strict["air_temp_mean_c"], strict["precipitation_sum_mm"], strict["hours_with_temp"]) == (
        None,
        12.0,
        18,
    )


def test_daily_days_are_local_standard_time_per_station() -> None:
    # 02:00 UTC on 2 January is 23:00 on 1 January in Sao Paulo (UTC-3); 03:00 UTC is 2 January.
    sp = part("A701", [at(2, 2), at(2, 3)], air_temp_c=[1.0, 2.0])
    # Acre (UTC-5): 04:00 UTC is still 1 January, 05:00 UTC is 2 January.
    ac = part("A104", [at(2, 4), at(2, 5)], uf="AC", longitude=-67.8, latitude=-9.9, air_temp_c=[3.0, 4.0])
    # Fernando de Noronha (PE, UTC-2): 01:00 UTC is 1 January, 02:00 UTC is 2 January.
    fn = part("A330", [at(2, 1), at(2, 2)], uf="PE", longitude=-32.4, latitude=-3.85, air_temp_c=[5.0, 6.0])
    # Amazonas: Eirunepe is west of the Tabatinga-Porto Acre line (UTC-5), Manaus east (UTC-4).
    west = part("A109", [at(2, 4)], uf="AM", longitude=-69.87, latitude=-6.65, air_temp_c=[7.0])
    manaus = part("A101", [at(2, 4)], uf="AM", longitude=-60.02, latitude=-3.1, air_temp_c=[8.0])
    daily = curate_inmet_hourly([sp, ac, fn, west, manaus], min_hours=1)["daily"]
    got = [(r["wmo_code"], r["date"], r["utc_offset_hours"], r["air_temp_mean_c"]) for r in daily.to_pylist()]
    assert got == [
        ("A101", date(2024, 1, 2), -4, 8.0),
        ("A104", date(2024, 1, 1), -5, 3.0),
        ("A104", date(2024, 1, 2), -5, 4.0),
        ("A109", date(2024, 1, 1), -5, 7.0),
        ("A330", date(2024, 1, 1), -2, 5.0),
        ("A330", date(2024, 1, 2), -2, 6.0),
        ("A701", date(2024, 1, 1), -3, 1.0),
        ("A701", date(2024, 1, 2), -3, 2.0),
    ]
    # The same hours by UTC day: one day each.
    utc = curate_inmet_hourly([sp, ac, fn, west, manaus], min_hours=1)["daily_utc"]
    assert set(utc.column("date").to_pylist()) == {date(2024, 1, 2)}


def test_a_local_day_is_the_24_hours_from_local_midnight() -> None:
    hours = [datetime(2024, 1, 1, 0, tzinfo=UTC) + timedelta(hours=h) for h in range(72)]
    daily = curate_inmet_hourly([part("A701", hours, air_temp_c=[float(h) for h in range(72)])])["daily"]
    rows = daily.to_pylist()
    # UTC-3: 00:00-02:00 UTC on the 1st are 31 December; 2 January runs from 03:00 UTC on the 2nd
    # to 02:00 UTC on the 3rd.
    assert [(r["date"], r["hours_total"]) for r in rows] == [
        (date(2023, 12, 31), 3),
        (date(2024, 1, 1), 24),
        (date(2024, 1, 2), 24),
        (date(2024, 1, 3), 21),
    ]
    assert rows[2]["air_temp_mean_c"] == sum(range(27, 51)) / 24
    assert rows[0]["air_temp_mean_c"] is None  # 3 of 24 hours: below the completeness rule


def test_stations_keep_every_position_with_its_validity() -> None:
    old = part("A807", [at(1, 0, year=2003)], station="CURITIBA", latitude=-25.43333333)
    # Same position over two years (one row), then a move, then a rename at the new position.
    mid = part("A807", [at(1, 0, year=2018), at(1, 1, year=2018)], station="CURITIBA", latitude=-25.43333333)
    new = part("A807", [at(1, 0, year=2019), at(1, 1, year=2019)], station="CURITIBA", latitude=-25.448688)
    renamed = part("A807", [at(1, 0, year=2020)], station="CURITIBA - PR", latitude=-25.448688)
    raised = part("A807", [at(1, 0, year=2021)], station="CURITIBA - PR", latitude=-25.448688, altitude=790.0)
    other = part("A701", [at(5, 0)], station="SAO PAULO - MIRANTE", latitude=-23.5)
    stations = curate("inmet_hourly", [new, other, old, raised, renamed, mid])["stations"]
    assert stations.column_names == list(STATIONS_COLUMNS)
    rows = [r for r in stations.to_pylist() if r["wmo_code"] == "A807"]
    assert [(r["latitude"], r["altitude"], r["station"], r["hours"]) for r in rows] == [
        (-25.43333333, 785.0, "CURITIBA", 3),
        (-25.448688, 785.0, "CURITIBA - PR", 3),
        (-25.448688, 790.0, "CURITIBA - PR", 1),
    ]
    assert [(r["valid_from"], r["valid_to"]) for r in rows] == [
        (at(1, 0, year=2003), at(1, 0, year=2019)),
        (at(1, 0, year=2019), at(1, 0, year=2021)),
        (at(1, 0, year=2021), None),
    ]
    assert (rows[0]["first_observed_at"], rows[0]["last_observed_at"]) == (
        at(1, 0, year=2003),
        at(1, 1, year=2018),
    )
    assert [r["utc_offset_hours"] for r in rows] == [-3, -3, -3]
    (sp,) = [r for r in stations.to_pylist() if r["wmo_code"] == "A701"]
    assert (sp["valid_to"], sp["hours"]) == (None, 1)


def test_each_hour_gets_the_coordinates_valid_then() -> None:
    old = part("A807", [at(1, 0, year=2003), at(1, 1, year=2003)], latitude=-25.43333333)
    new = part("A807", [at(1, 0, year=2019)], latitude=-25.448688, altitude=790.0)
    tables = curate("inmet_hourly", [old, new])
    located = coordinates_at(tables["hourly"], tables["stations"])
    assert located.num_rows == 3
    assert located.column("observed_at").to_pylist() == [
        at(1, 0, year=2003),
        at(1, 1, year=2003),
        at(1, 0, year=2019),
    ]
    assert located.column("latitude").to_pylist() == [-25.43333333, -25.43333333, -25.448688]
    assert located.column("altitude").to_pylist() == [785.0, 785.0, 790.0]


def test_real_files_curate_into_consistent_tables() -> None:
    contract = load_contract("inmet_hourly")
    parts = []
    for name in YEARLY:
        parsed = parse_file((SAMPLES / name).read_bytes(), name)
        ok, _ = validate(parsed.table, contract, name)
        parts.append(parquet_bytes_to_table(table_to_parquet_bytes(ok)))
    curated = curate("inmet_hourly", parts)
    hourly, daily, stations = curated["hourly"], curated["daily"], curated["stations"]
    assert hourly.num_rows == 8112 + 8760 + 8784
    # Every hour is in exactly one local day and one UTC day.
    assert sum(daily.column("hours_total").to_pylist()) == hourly.num_rows
    assert sum(curated["daily_utc"].column("hours_total").to_pylist()) == hourly.num_rows
    # Curitiba moved between 2003 and 2019: two rows, the first closed when the second begins.
    assert stations.column("wmo_code").to_pylist() == ["A701", "A807", "A807"]
    assert stations.column("hours").to_pylist() == [8784, 8112, 8760]
    assert stations.column("latitude").to_pylist() == [-23.49638888, -25.43333333, -25.448688]
    assert stations.column("valid_to").to_pylist() == [None, datetime(2019, 1, 1, tzinfo=UTC), None]
    # 2003-03-17 at A807: 24 hours of data, temperatures known from the file.
    day = [r for r in daily.to_pylist() if r["wmo_code"] == "A807" and r["date"] == date(2003, 3, 17)][0]
    assert (day["hours_total"], day["hours_with_temp"]) == (24, 24)
    assert day["precipitation_sum_mm"] == 0.4  # only 19:00 rained (",4")
    # 2003-01-28 had no data at all: 24 rows, nothing measured.
    empty = [r for r in daily.to_pylist() if r["wmo_code"] == "A807" and r["date"] == date(2003, 1, 28)][0]
    assert (empty["hours_total"], empty["hours_with_temp"], empty["air_temp_mean_c"]) == (24, 0, None)


# --------------------------------------------------------------------------------------------------
# other datasets
# --------------------------------------------------------------------------------------------------


def test_generic_dedup_exact_rows_and_sort() -> None:
    first = pa.table({"b": ["x", "y", None], "a": [2, 1, 3], "_line_number": [1, 2, 3]})
    second = pa.table(
        {"b": ["y", None, "z"], "a": [1, 3, 0], "c": [1.5, None, None], "_line_number": [7, 8, 9]}
    )
    data = curate("generic", [first, second])["data"]
    assert data.column_names == ["b", "a", "c"]
    assert data.to_pylist() == [
        {"b": "x", "a": 2, "c": None},
        {"b": "y", "a": 1, "c": 1.5},  # differs in c: not a duplicate (nulls sort last)
        {"b": "y", "a": 1, "c": None},
        {"b": "z", "a": 0, "c": None},
        {"b": None, "a": 3, "c": None},
    ]
    assert curate("generic", [second, first])["data"].equals(data)


def test_generic_incompatible_parts_are_refused() -> None:
    with pytest.raises(ValueError, match="compatible column types"):
        curate("generic", [pa.table({"a": [1]}), pa.table({"a": ["x"]})])


# --------------------------------------------------------------------------------------------------
# Parquet
# --------------------------------------------------------------------------------------------------


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_parquet_is_byte_identical_on_rerun_and_for_any_chunking() -> None:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    n = 20_000
    table = pa.table(
        {
            "observed_at": pa.array([start + timedelta(hours=i) for i in range(n)], TS),
            "wmo_code": pa.array([f"A{i % 7:03d}" for i in range(n)]),
            "value": pa.array([(i % 101) / 10 if i % 13 else None for i in range(n)], pa.float64()),
        }
    )
    first = table_to_parquet_bytes(table)
    assert table_to_parquet_bytes(table) == first
    rechunked = pa.concat_tables([table.slice(0, 7), table.slice(7, 12_000), table.slice(12_007)])
    assert rechunked.column(0).num_chunks == 3
    assert table_to_parquet_bytes(rechunked) == first
    assert parquet_bytes_to_table(first).equals(table)


def test_parquet_has_no_pandas_metadata_and_fixed_codec() -> None:
    table = pa.Table.from_pydict({"a": [1, 2]}).replace_schema_metadata({b"pandas": b"{}", b"x": b"y"})
    data = table_to_parquet_bytes(table)
    metadata = pq.ParquetFile(pa.BufferReader(data)).metadata
    assert b"pandas" not in (metadata.metadata or {})
    assert parquet_bytes_to_table(data).schema.metadata in (None, {})
    assert metadata.row_group(0).column(0).compression == "SNAPPY"


def test_curated_rerun_gives_identical_bytes() -> None:
    parts = [part("A701", [at(1, h) for h in range(24)], air_temp_c=[float(h) for h in range(24)])]
    runs = [
        {k: _digest(table_to_parquet_bytes(v)) for k, v in curate("inmet_hourly", parts).items()}
        for _ in range(2)
    ]
    assert runs[0] == runs[1]
    assert set(runs[0]) == {"hourly", "daily", "daily_utc", "stations"}


def test_generic_curate_sorts_dictionary_encoded_strings_and_publishes_plain_ones() -> None:
    """Staged BDMEP/generic parts read back from Parquet carry dictionary-encoded strings."""
    import pyarrow as pa

    from trilha.domain.curate import curate

    part = pa.table(
        {
            "station": pa.array(["b", "a", "b"]).dictionary_encode(),
            "value": pa.array([2.0, 1.0, 2.0]),
        }
    )
    data = curate("inmet_bdmep_daily", [part])["data"]
    assert data.column("station").type == pa.string()
    assert data.column("station").to_pylist() == ["a", "b"]
    assert data.column("value").to_pylist() == [1.0, 2.0]


def test_a_station_without_uf_gets_its_zone_from_its_longitude() -> None:
    from trilha.domain.localtime import utc_offset

    assert [utc_offset(uf, -10.0, lon) for uf, lon in (("RS", -51.2), ("rs ", -51.2), ("MT", -56.1))] == [
        -3,
        -3,
        -4,
    ]
    assert [utc_offset(None, -3.0, lon) for lon in (-60.0, -72.0, -47.9, None)] == [-4, -5, -3, -3]
    # Trindade (ES's island, UTC-2) whatever its UF; Tabatinga (on the line's end: UTC-5 west of it).
    assert (utc_offset("ES", -20.5, -29.3), utc_offset("AM", -4.25, -69.95)) == (-2, -5)
