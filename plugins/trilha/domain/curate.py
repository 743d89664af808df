"""Curated tables: conform the staged parts of a dataset into one deduplicated, sorted version.

``inmet_hourly`` gives four tables:

* ``hourly``: one row per ``(wmo_code, observed_at)``, sorted by ``wmo_code`` then ``observed_at``:
  ``observed_at``, ``wmo_code``, the 17 measurements, their quality flags (``<col>_qc``,
  ``<col>_qc_rule``, see :mod:`trilha.domain.qc`), then any extra column. Station descriptions
  (name, UF, region, coordinates) are not repeated on every hour; they are in ``stations``.
  **Dedup rule**: when several rows share a key, the row from the part that comes *last* in the
  ``parts`` list wins, and within one part the *last* row wins. Callers must pass parts in a
  deterministic order (for example by staging time, then object key), so that a newer staging of
  a corrected file replaces the older one hour by hour and a re-run gives the same bytes.
* ``daily``: per station and **local day** (the station's standard time, a fixed UTC offset from
  its UF and position: :mod:`trilha.domain.localtime`; ``date`` is the local date and
  ``utc_offset_hours`` the offset), sums/means/extremes plus the number of hours each one is based
  on (``hours_total``, ``hours_with_temp``...). The completeness rule (``min_hours``, the curated
  DAG's ``min_hours_for_daily``): a figure from fewer valid hours is null, its count kept (the
  radiation sum is exempt: INMET leaves night hours empty). Daily minimum/maximum temperature and
  humidity take the lowest/highest of the hourly reading and INMET's per-hour minimum/maximum
  columns, because the extremes within an hour are what INMET records there; means use the hourly
  readings. Sums and means are rounded to 1e-6.
* ``daily_utc``: the same by UTC day (``utc_offset_hours`` 0).
* ``stations``: one row per station and position (SCD type 2): a new row when latitude, longitude or
  altitude changes, with ``valid_from``/``valid_to`` (:func:`coordinates_at` gives each hour the
  coordinates valid then), plus first/last observation and hour count.

Every other dataset gives ``{"data": ...}``: exact duplicate rows removed, rows sorted by all
columns (so the result does not depend on part order).

Per partition (the curated Iceberg tables, see :mod:`trilha.domain.tables`): :func:`curate_inmet_hourly_year`
gives one UTC year of ``hourly`` and ``daily_utc``, the local days of that year in ``daily`` (which
take the first hours of the next UTC year: 31 December ends at 03:00 UTC on 1 January at UTC-3), and
that year's ``station_years`` (the ``stations`` runs of that year alone, with a ``year`` column),
from every part with rows in the year (:func:`part_years` counts the local days' years too);
:func:`stations_from_years` folds ``station_years`` into ``stations``. Since the dedup key
(station, hour) lies in one UTC year and a local day in one local year, the years concatenated are
exactly :func:`curate`'s tables (tests/unit/test_tables.py checks it).

Columns whose name starts with ``_`` (``_line_number``) are bookkeeping of one staged file and
are dropped. Memory: a station whose parts do not overlap and are already in time order (the normal
case: one file per station and year) is passed through as zero-copy slices; only overlapping or
unordered stations are sorted and copied, one station at a time.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from trilha.domain import qc as quality
from trilha.domain.formats.cells import constant
from trilha.domain.formats.measurements import (
    HOURLY_MEASUREMENTS,
    STATION_COLUMNS,
    STATION_TYPES,
    TIMESTAMP_TYPE,
)
from trilha.domain.localtime import MIN_OFFSET, utc_offsets
from trilha.domain.tables import MIN_HOURS_FOR_DAILY

INTERNAL_PREFIX = "_"
_MICROS_PER_DAY = 86_400_000_000

#: The quality flag and deciding rule of each measurement (:mod:`trilha.domain.qc`), after them.
QC_COLUMNS: tuple[str, ...] = tuple(
    name for c in HOURLY_MEASUREMENTS for name in (quality.flag_column(c), quality.rule_column(c))
)
_HOURLY_TYPES: dict[str, pa.DataType] = {
    "observed_at": TIMESTAMP_TYPE,
    "wmo_code": pa.string(),
    **{c: pa.float64() for c in HOURLY_MEASUREMENTS},
    **{c: quality.FLAG_TYPE if c.endswith(quality.FLAG_SUFFIX) else quality.RULE_TYPE for c in QC_COLUMNS},
}
_DESCRIPTIVE_TYPES: dict[str, pa.DataType] = {k: v for k, v in STATION_TYPES.items() if k != "wmo_code"}

#: Station descriptions: in the staged rows (one file = one station-year), in curated "stations" only.
_DESCRIPTIVE = frozenset(STATION_COLUMNS) - {"wmo_code"}
#: Columns of the curated ``hourly`` table before any extra column.
CURATED_HOURLY_COLUMNS: tuple[str, ...] = ("observed_at", "wmo_code", *HOURLY_MEASUREMENTS, *QC_COLUMNS)

#: Columns of the ``daily`` table, in order.
DAILY_COLUMNS: tuple[str, ...] = (
    "wmo_code",
    "date",
    "hours_total",
    "hours_with_precip",
    "precipitation_sum_mm",
    "hours_with_temp",
    "air_temp_min_c",
    "air_temp_mean_c",
    "air_temp_max_c",
    "hours_with_humidity",
    "rel_humidity_min_pct",
    "rel_humidity_mean_pct",
    "rel_humidity_max_pct",
    "hours_with_dew_point",
    "dew_point_mean_c",
    "hours_with_pressure",
    "pressure_station_mean_hpa",
    "hours_with_radiation",
    "radiation_sum_kj_m2",
    "hours_with_wind",
    "wind_speed_mean_ms",
    "wind_gust_max_ms",
    "hours_with_gust",
    "utc_offset_hours",
)
#: Columns of the ``stations`` table (one row per station and position), in order.
STATIONS_COLUMNS: tuple[str, ...] = (
    *STATION_COLUMNS,
    "first_observed_at",
    "last_observed_at",
    "hours",
    "valid_from",
    "valid_to",
    "utc_offset_hours",
)


def curate(dataset: str, parts: list[pa.Table], qc: quality.QcSpec | None = None) -> dict[str, pa.Table]:
    """Combine the staged parts of ``dataset`` into its curated tables.

    :param dataset: ``inmet_hourly`` gives ``hourly``, ``daily`` and ``stations``; any other
        dataset gives ``data``.
    :param parts: staged tables in a deterministic order; later parts win on duplicate keys.
    :param qc: ``inmet_hourly``: the contract's quality control, whose temporal rules run here.
    """
    if dataset == "inmet_hourly":
        return curate_inmet_hourly(parts, qc=qc)
    return {"data": curate_generic(parts)}


# --------------------------------------------------------------------------------------------------
# inmet_hourly
# --------------------------------------------------------------------------------------------------


def _public(table: pa.Table) -> pa.Table:
    return table.drop_columns([n for n in table.column_names if n.startswith(INTERNAL_PREFIX)])


def _wmo_strings(column: pa.ChunkedArray) -> tuple[pa.Array, str | None]:
    """The part's WMO codes as plain strings, and the code when the part has a single one.

    Staged parts carry the code dictionary-encoded with one entry (one file = one station):
    rebuilding it from buffers is ~30x cheaper than decoding the dictionary."""
    array = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    if pa.types.is_dictionary(array.type) and len(array.dictionary) == 1 and not array.null_count:
        code = array.dictionary[0].as_py()
        return constant(code, pa.string(), len(array)), code
    plain = pc.cast(array, pa.string())
    distinct = pc.unique(plain)
    single = distinct[0].as_py() if len(distinct) == 1 and not plain.null_count else None
    return plain, single


def _conform(parts: list[pa.Table]) -> tuple[list[tuple[pa.Table, str | None]], pa.Schema]:
    """Give every part the same columns (canonical first, then extras in order of first
    appearance), types and order; a column a part lacks becomes nulls. Station descriptions stay
    dictionary-encoded (they only feed the 564-row stations table); the WMO code becomes a plain
    string, as the curated tables publish it."""
    extras: dict[str, pa.DataType] = {}
    public = [_public(p) for p in parts]
    for index, part in enumerate(public):
        missing = [c for c in ("wmo_code", "observed_at") if c not in part.column_names]
        if missing:
            raise ValueError(
                f"inmet_hourly part {index}: expected columns {missing}, got {part.column_names}"
            )
        for field in part.schema:
            if field.name in _HOURLY_TYPES:
                continue
            known = extras.get(field.name)
            if known is None:
                extras[field.name] = field.type
            elif known != field.type:
                # The same unknown column numeric in one year and text in another: keep text.
                extras[field.name] = pa.string()
    types = {**_HOURLY_TYPES, **_DESCRIPTIVE_TYPES, **extras}
    schema = pa.schema([pa.field(n, t) for n, t in types.items()])
    conformed: list[tuple[pa.Table, str | None]] = []
    for index, part in enumerate(public):
        if part.column("wmo_code").null_count:
            raise ValueError(f"inmet_hourly part {index}: expected a wmo_code on every row, got nulls")
        if part.column("observed_at").null_count:
            raise ValueError(f"inmet_hourly part {index}: expected observed_at on every row, got nulls")
        codes, single = _wmo_strings(part.column("wmo_code"))
        columns: list[pa.Array | pa.ChunkedArray] = []
        for name, type_ in types.items():
            if name == "wmo_code":
                columns.append(codes)
            elif name not in part.column_names:
                columns.append(pa.nulls(part.num_rows, type_))
            else:
                column = part.column(name)
                if column.type == type_:
                    columns.append(column)
                elif name in QC_COLUMNS:  # flags read back as plain strings, or other index widths
                    columns.append(pc.cast(column, type_))
                elif pa.types.is_dictionary(type_) and column.type == type_.value_type:
                    columns.append(pc.dictionary_encode(column))
                else:
                    columns.append(pc.cast(column, type_))
        conformed.append((pa.Table.from_arrays(columns, schema=schema), single))
    return conformed, schema


@dataclass
class _Piece:
    part: int
    table: pa.Table
    micros: np.ndarray  # observed_at as int64 microseconds, for order checks


def _by_station(parts: list[tuple[pa.Table, str | None]]) -> dict[str, list[_Piece]]:
    """Split parts into per-station pieces; a part of a single station is not copied."""
    stations: dict[str, list[_Piece]] = defaultdict(list)
    for index, (part, single) in enumerate(parts):
        if part.num_rows == 0:
            continue
        if single is not None:
            groups = [(single, part)]
        else:
            codes = part.column("wmo_code")
            order = pc.sort_indices(codes)  # stable: rows keep their order within a station
            ordered = part.take(order)
            values = ordered.column("wmo_code").to_numpy()
            starts = np.flatnonzero(np.concatenate(([True], values[1:] != values[:-1])))
            ends = np.concatenate((starts[1:], [len(values)]))
            groups = [
                (str(values[s]), ordered.slice(int(s), int(e - s))) for s, e in zip(starts, ends, strict=True)
            ]
        for code, table in groups:
            micros = table.column("observed_at").cast(pa.int64()).to_numpy()
            stations[code].append(_Piece(index, table, micros))
    return stations


def _station_rows(pieces: list[_Piece]) -> pa.Table:
    """One station's rows: unique ``observed_at``, ascending, later part (then later row) winning."""
    increasing = all(len(p.micros) < 2 or bool(np.all(p.micros[1:] > p.micros[:-1])) for p in pieces)
    if increasing:
        ordered = sorted(pieces, key=lambda p: (int(p.micros[0]), p.part))
        if all(int(a.micros[-1]) < int(b.micros[0]) for a, b in zip(ordered, ordered[1:], strict=False)):
            # The normal case: disjoint, time-ordered parts. Zero-copy.
            return pa.concat_tables([p.table for p in ordered])
    combined = pa.concat_tables([p.table for p in pieces])
    micros = np.concatenate([p.micros for p in pieces])
    part = np.concatenate([np.full(len(p.micros), p.part, dtype=np.int64) for p in pieces])
    row = np.concatenate([np.arange(len(p.micros), dtype=np.int64) for p in pieces])
    # lexsort sorts by the last key first: time ascending, then part and row descending, so the
    # winner of each hour comes first among its duplicates.
    order = np.lexsort((-row, -part, micros))
    sorted_micros = micros[order]
    first = np.concatenate(([True], sorted_micros[1:] != sorted_micros[:-1]))
    return combined.take(pa.array(order[first]))


def _daily(
    hourly: pa.Table,
    station_starts: np.ndarray,
    codes: list[str],
    day: np.ndarray,
    offsets: np.ndarray | None,
    min_hours: int,
) -> pa.Table:
    """Daily aggregates with segmented numpy reductions: rows are already grouped by station and
    sorted by time, so each (station, day) is a contiguous run of rows (a local day too: the local
    time ``UTC + offset`` never goes back within a station, see :mod:`trilha.domain.localtime`).

    :param station_starts: first row of each station, in ``codes`` order.
    :param day: each row's day (days since 1970-01-01), local or UTC.
    :param offsets: each row's UTC offset in hours (``None``: UTC days, offset 0).
    :param min_hours: the completeness rule: a sum, mean or extreme from fewer valid hours is null
        (its ``hours_with_*`` count is kept); the radiation sum is exempt (INMET leaves the night
        hours empty).
    """
    n = hourly.num_rows
    if n == 0:
        return pa.table({c: pa.array([], t) for c, t in _daily_types().items()})
    boundary = np.zeros(n, dtype=bool)
    boundary[0] = True
    boundary[1:] = day[1:] != day[:-1]
    boundary[station_starts] = True
    starts = np.flatnonzero(boundary)
    lengths = np.diff(np.concatenate((starts, [n])))

    def values(name: str) -> np.ndarray:
        return np.asarray(hourly.column(name).to_numpy(), dtype=np.float64)  # nulls become NaN

    def zeroed(v: np.ndarray) -> np.ndarray:
        return np.where(np.isnan(v), 0.0, v)

    def count(v: np.ndarray) -> np.ndarray:
        return np.add.reduceat((~np.isnan(v)).astype(np.int32), starts)

    # Sums and means are rounded to 1e-6: INMET values have one decimal, and 0.1 + 0.2 should read
    # 0.3 in a daily table, not 0.30000000000000004.
    def total(v: np.ndarray, counts: np.ndarray, gated: bool = True) -> pa.Array:
        sums = np.add.reduceat(zeroed(v), starts)
        return pa.array(np.round(sums, 6), pa.float64(), mask=(counts < min_hours if gated else counts == 0))

    def mean(v: np.ndarray, counts: np.ndarray) -> pa.Array:
        sums = np.add.reduceat(zeroed(v), starts)
        with np.errstate(invalid="ignore", divide="ignore"):
            return pa.array(np.round(sums / counts, 6), pa.float64(), mask=counts < min_hours)

    def extreme(v: np.ndarray, ufunc: np.ufunc) -> pa.Array:
        result = ufunc.reduceat(v, starts)  # fmin/fmax ignore NaN unless the whole run is NaN
        return pa.array(result, pa.float64(), mask=np.isnan(result) | (count(v) < min_hours))

    out: dict[str, pa.Array] = {
        # The station of each day, from the station boundaries (a take on the chunked hourly
        # column would resolve chunks for 200k rows).
        "wmo_code": pc.take(
            pa.array(codes, pa.string()), pa.array(np.searchsorted(station_starts, starts, "right") - 1)
        ),
        "date": pa.array(day[starts].astype(np.int32), pa.int32()).cast(pa.date32()),
        "hours_total": pa.array(lengths.astype(np.int32), pa.int32()),
        "utc_offset_hours": pa.array(
            np.zeros(len(starts), np.int32) if offsets is None else offsets[starts].astype(np.int32),
            pa.int32(),
        ),
    }
    precip = values("precipitation_mm")
    counts = count(precip)
    out["hours_with_precip"] = pa.array(counts, pa.int32())
    out["precipitation_sum_mm"] = total(precip, counts)

    temp = values("air_temp_c")
    counts = count(temp)
    out["hours_with_temp"] = pa.array(counts, pa.int32())
    out["air_temp_min_c"] = extreme(np.fmin(values("air_temp_min_c"), temp), np.fmin)
    out["air_temp_mean_c"] = mean(temp, counts)
    out["air_temp_max_c"] = extreme(np.fmax(values("air_temp_max_c"), temp), np.fmax)
    del temp

    humidity = values("rel_humidity_pct")
    counts = count(humidity)
    out["hours_with_humidity"] = pa.array(counts, pa.int32())
    out["rel_humidity_min_pct"] = extreme(np.fmin(values("rel_humidity_min_pct"), humidity), np.fmin)
    out["rel_humidity_mean_pct"] = mean(humidity, counts)
    out["rel_humidity_max_pct"] = extreme(np.fmax(values("rel_humidity_max_pct"), humidity), np.fmax)
    del humidity

    for name, column, counter in (
        ("dew_point_mean_c", "dew_point_c", "hours_with_dew_point"),
        ("pressure_station_mean_hpa", "pressure_station_hpa", "hours_with_pressure"),
    ):
        v = values(column)
        counts = count(v)
        out[counter] = pa.array(counts, pa.int32())
        out[name] = mean(v, counts)

    radiation = values("radiation_kj_m2")
    counts = count(radiation)
    out["hours_with_radiation"] = pa.array(counts, pa.int32())
    out["radiation_sum_kj_m2"] = total(radiation, counts, gated=False)

    speed = values("wind_speed_ms")
    counts = count(speed)
    out["hours_with_wind"] = pa.array(counts, pa.int32())
    out["wind_speed_mean_ms"] = mean(speed, counts)
    gust = values("wind_gust_ms")
    out["hours_with_gust"] = pa.array(count(gust), pa.int32())
    out["wind_gust_max_ms"] = extreme(gust, np.fmax)
    return pa.table({c: out[c] for c in DAILY_COLUMNS})


def _daily_types() -> dict[str, pa.DataType]:
    types: dict[str, pa.DataType] = {}
    for column in DAILY_COLUMNS:
        if column == "wmo_code":
            types[column] = pa.string()
        elif column == "date":
            types[column] = pa.date32()
        elif column.startswith("hours") or column == "utc_offset_hours":
            types[column] = pa.int32()
        else:
            types[column] = pa.float64()
    return types


def _row_offsets(table: pa.Table) -> np.ndarray:
    """Each row's standard UTC offset (hours), from its station description (see localtime)."""

    def column(name: str) -> pa.ChunkedArray | None:
        return table.column(name) if name in table.column_names else None

    return utc_offsets(column("uf"), column("latitude"), column("longitude"), table.num_rows)


def _days(hourly: pa.Table, offsets: np.ndarray | None) -> np.ndarray:
    """Each row's day since 1970-01-01: UTC (``offsets`` ``None``) or local standard time."""
    micros = hourly.column("observed_at").cast(pa.int64()).to_numpy()
    if offsets is not None:
        micros = micros + offsets.astype(np.int64) * _MICROS_PER_HOUR
    return np.asarray(micros // _MICROS_PER_DAY, dtype=np.int64)


def _local_daily(
    combined: pa.Table, hourly: pa.Table, station_starts: np.ndarray, codes: list[str], min_hours: int
) -> pa.Table:
    """``daily`` (local standard days) of the rows of ``hourly``, whose station descriptions are in
    ``combined``, row for row (each hour takes the offset of its station's position then)."""
    offsets = _row_offsets(combined)
    return _daily(hourly, station_starts, codes, _days(hourly, offsets), offsets, min_hours)


def _utc_daily(hourly: pa.Table, station_starts: np.ndarray, codes: list[str], min_hours: int) -> pa.Table:
    """``daily_utc``: the same aggregates by UTC day (``utc_offset_hours`` 0)."""
    return _daily(hourly, station_starts, codes, _days(hourly, None), None, min_hours)


def _station_sorted(parts: list[pa.Table]) -> tuple[pa.Table, pa.Schema, list[str], np.ndarray]:
    """The parts' rows deduplicated and sorted by station then time (station descriptions
    included), the schema, the stations in order and the first row of each."""
    conformed, schema = _conform(parts)
    stations = _by_station(conformed)
    codes = sorted(stations)
    tables = [_station_rows(stations[code]) for code in codes]
    sizes = np.asarray([t.num_rows for t in tables], dtype=np.int64)
    combined = pa.concat_tables(tables) if tables else schema.empty_table()
    station_starts = np.concatenate(([0], np.cumsum(sizes)[:-1])).astype(np.int64)
    return combined, schema, codes, station_starts


def curate_inmet_hourly(
    parts: list[pa.Table], min_hours: int = MIN_HOURS_FOR_DAILY, qc: quality.QcSpec | None = None
) -> dict[str, pa.Table]:
    """``hourly``, ``daily``, ``daily_utc`` and ``stations`` tables (see the module docstring).

    :param min_hours: the daily completeness rule (see :func:`_daily`).
    :param qc: the dataset contract's quality control: its temporal rules (step, persistence) run
        over each station's deduplicated hours, across the staged parts, before the daily
        aggregates (which therefore leave out the values they find bad). ``None``: the parts'
        staging flags are kept as they are.
    """
    combined, schema, codes, station_starts = _station_sorted(parts)
    # The curated hourly table is normalized: station descriptions live once in "stations", so
    # hourly rows carry only the key and the measurements (and memory holds 30% less per row).
    hourly = _checked(combined.select([n for n in schema.names if n not in _DESCRIPTIVE]), qc, station_starts)
    return {
        "hourly": hourly,
        "daily": _local_daily(combined, hourly, station_starts, codes, min_hours),
        "daily_utc": _utc_daily(hourly, station_starts, codes, min_hours),
        "stations": stations_from_years(_station_runs(combined, station_starts, codes)),
    }


# --------------------------------------------------------------------------------------------------
# stations: one row per station and position (SCD type 2)
# --------------------------------------------------------------------------------------------------

_MICROS_PER_SECOND = 1_000_000
_MICROS_PER_HOUR = 3_600 * _MICROS_PER_SECOND
#: Columns of ``station_years``: the year, then the ``stations`` columns of one run of hours of one
#: station at one position within that UTC year (``valid_from``/``valid_to`` are set by
#: :func:`stations_from_years`).
STATION_YEARS_COLUMNS: tuple[str, ...] = ("year", *STATIONS_COLUMNS)
#: What makes a new ``stations`` row: a change of position or altitude (a renamed station keeps
#: its row, with the newest name).
POSITION_COLUMNS: tuple[str, ...] = ("latitude", "longitude", "altitude")


def _stations_types() -> dict[str, pa.DataType]:
    return {
        **{c: pa.string() for c in ("wmo_code", "station", "uf", "region")},
        **{c: pa.float64() for c in POSITION_COLUMNS},
        **{c: TIMESTAMP_TYPE for c in ("first_observed_at", "last_observed_at", "valid_from", "valid_to")},
        "hours": pa.int64(),
        "utc_offset_hours": pa.int32(),
    }


def _same_as_previous(values: np.ndarray) -> np.ndarray:
    """``out[i]`` (for ``i >= 1``) is True when ``values[i]`` equals ``values[i - 1]``, NaN equal to NaN."""
    out = np.zeros(len(values), dtype=bool)
    if len(values) > 1:
        a, b = values[1:], values[:-1]
        out[1:] = (a == b) | (np.isnan(a) & np.isnan(b))
    return out


def _positions(table: pa.Table) -> list[np.ndarray]:
    return [
        np.asarray(pc.cast(table.column(c), pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)
        for c in POSITION_COLUMNS
    ]


def _station_runs(combined: pa.Table, station_starts: np.ndarray, codes: list[str]) -> pa.Table:
    """``station_years`` rows of station-sorted rows: one per station, UTC year and run of
    consecutive hours at one position, with the descriptions of the run's last hour."""
    types = {"year": pa.int32(), **_stations_types()}
    n = combined.num_rows
    if n == 0:
        return pa.table({c: pa.array([], types[c]) for c in STATION_YEARS_COLUMNS})
    micros = combined.column("observed_at").cast(pa.int64()).to_numpy()
    years = _years_of(micros)
    boundary = np.ones(n, dtype=bool)
    same = _same_as_previous(years.astype(np.float64))
    for values in _positions(combined):
        same &= _same_as_previous(values)
    boundary[1:] = ~same[1:]
    boundary[station_starts] = True
    starts = np.flatnonzero(boundary)
    ends = np.concatenate((starts[1:], [n]))
    last = combined.take(pa.array(ends - 1))
    columns: dict[str, pa.Array | pa.ChunkedArray] = {
        "year": pa.array(years[starts].astype(np.int32), pa.int32()),
        "wmo_code": pc.take(
            pa.array(codes, pa.string()), pa.array(np.searchsorted(station_starts, starts, "right") - 1)
        ),
    }
    for c in STATION_COLUMNS[1:]:
        columns[c] = pc.cast(last.column(c), types[c])
    observed = combined.column("observed_at")
    columns["first_observed_at"] = observed.take(pa.array(starts))
    columns["last_observed_at"] = last.column("observed_at")
    columns["hours"] = pa.array((ends - starts).astype(np.int64), pa.int64())
    columns["valid_from"] = pa.nulls(len(starts), TIMESTAMP_TYPE)
    columns["valid_to"] = pa.nulls(len(starts), TIMESTAMP_TYPE)
    columns["utc_offset_hours"] = pa.array(_row_offsets(last).astype(np.int32), pa.int32())
    schema = pa.schema([(c, types[c]) for c in STATION_YEARS_COLUMNS])
    return pa.table({c: columns[c] for c in STATION_YEARS_COLUMNS}, schema=schema)


def stations_from_years(station_years: pa.Table) -> pa.Table:
    """``stations`` (SCD type 2) from ``station_years``: per station, one row per position
    (latitude, longitude, altitude) in time order; consecutive runs at one position, within a year
    or across years, are one row (descriptions of its last hour, its first and last hour, the sum of
    its hours). ``valid_from`` is the row's first hour and ``valid_to`` the next row's ``valid_from``
    (null on the station's current row): the coordinates of any hour ``t`` are the row with
    ``valid_from <= t < valid_to``. Sorted by WMO code, then ``valid_from``."""
    types = _stations_types()
    if station_years.num_rows == 0:
        return pa.table({c: pa.array([], types[c]) for c in STATIONS_COLUMNS})
    order = pc.sort_indices(
        station_years, sort_keys=[("wmo_code", "ascending"), ("first_observed_at", "ascending")]
    )
    rows = station_years.take(order).combine_chunks()
    n = rows.num_rows
    codes = rows.column("wmo_code").to_numpy(zero_copy_only=False)
    new_code = np.ones(n, dtype=bool)
    new_code[1:] = codes[1:] != codes[:-1]
    same = ~new_code
    for values in _positions(rows):
        same &= _same_as_previous(values)
    starts = np.flatnonzero(~same)
    ends = np.concatenate((starts[1:], [n]))
    last = rows.take(pa.array(ends - 1))
    columns: dict[str, pa.Array | pa.ChunkedArray] = {c: last.column(c) for c in STATION_COLUMNS}
    first_observed = rows.column("first_observed_at").take(pa.array(starts))
    columns["first_observed_at"] = first_observed
    columns["last_observed_at"] = last.column("last_observed_at")
    hours = np.asarray(rows.column("hours").to_numpy(), dtype=np.int64)
    columns["hours"] = pa.array(np.add.reduceat(hours, starts), pa.int64())
    columns["valid_from"] = first_observed
    # The next row's valid_from, when it is the same station's.
    following = np.concatenate((starts[1:], [n]))
    current = np.concatenate((new_code[starts[1:]], [True]))
    next_from = rows.column("first_observed_at").take(pa.array(np.minimum(following, n - 1)))
    columns["valid_to"] = pc.if_else(pa.array(current), pa.nulls(len(starts), TIMESTAMP_TYPE), next_from)
    columns["utc_offset_hours"] = last.column("utc_offset_hours")
    return pa.table({c: pc.cast(columns[c], types[c]) for c in STATIONS_COLUMNS})


def coordinates_at(hourly: pa.Table, stations: pa.Table) -> pa.Table:
    """``hourly`` (any rows with ``wmo_code`` and ``observed_at``) with the ``latitude``,
    ``longitude``, ``altitude`` and ``utc_offset_hours`` of the ``stations`` row valid at each hour
    (``valid_from <= observed_at < valid_to``; before a station's first row, its first row's), rows
    in their order; null for a station ``stations`` does not know. The SQL equivalent is in
    docs/data-model.md."""
    names = ("latitude", "longitude", "altitude", "utc_offset_hours")
    n = hourly.num_rows
    ordered = stations.sort_by([("wmo_code", "ascending"), ("valid_from", "ascending")])
    station_codes = ordered.column("wmo_code").to_numpy(zero_copy_only=False)
    valid_from = ordered.column("valid_from").cast(pa.int64()).to_numpy(zero_copy_only=False)
    codes = pc.cast(hourly.column("wmo_code"), pa.string()).to_numpy(zero_copy_only=False)
    micros = hourly.column("observed_at").cast(pa.int64()).to_numpy()
    pick = np.full(n, -1, dtype=np.int64)
    firsts = np.flatnonzero(np.concatenate(([True], station_codes[1:] != station_codes[:-1])))
    lasts = np.concatenate((firsts[1:], [len(station_codes)]))
    for first, last in zip(firsts, lasts, strict=True):
        rows = np.flatnonzero(codes == station_codes[first])
        found = np.searchsorted(valid_from[first:last], micros[rows], "right") - 1
        pick[rows] = first + np.maximum(found, 0)
    indices = pa.array(pick, mask=pick < 0)
    out = hourly
    for name in names:
        column = ordered.column(name).take(indices)
        if name in out.column_names:
            out = out.set_column(out.column_names.index(name), name, column)
        else:
            out = out.append_column(name, column)
    return out


# --------------------------------------------------------------------------------------------------
# inmet_hourly, one year at a time (the partitions of the curated Iceberg tables)
# --------------------------------------------------------------------------------------------------


def _years_of(micros: np.ndarray) -> np.ndarray:
    return (micros // _MICROS_PER_DAY).astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970


def _year_bounds(year: int) -> tuple[int, int]:
    from datetime import UTC, datetime

    start = int(datetime(year, 1, 1, tzinfo=UTC).timestamp()) * _MICROS_PER_SECOND
    end = int(datetime(year + 1, 1, 1, tzinfo=UTC).timestamp()) * _MICROS_PER_SECOND
    return start, end


def _micros(part: pa.Table, index: int | str) -> np.ndarray:
    if "observed_at" not in part.column_names:
        raise ValueError(
            f"inmet_hourly part {index}: expected columns ['observed_at'], got {part.column_names}"
        )
    column = part.column("observed_at")
    if column.null_count:
        raise ValueError(f"inmet_hourly part {index}: expected observed_at on every row, got nulls")
    return np.asarray(column.cast(TIMESTAMP_TYPE).cast(pa.int64()).to_numpy(), dtype=np.int64)


def part_years(part: pa.Table, index: int | str = 0) -> list[int]:
    """The years an ``inmet_hourly`` part has rows in, ascending: the UTC years of its hours and
    the years of their local (standard time) days. A part whose first hours of 1 January UTC are
    31 December local (UTC-3: 00:00 to 02:00) contributes to the year before too.

    :raises ValueError: the part has no ``observed_at``, or nulls in it (named by ``index``).
    """
    micros = _micros(part, index)
    if len(micros) == 0:
        return []
    local = micros + _row_offsets(part).astype(np.int64) * _MICROS_PER_HOUR
    return [int(y) for y in np.unique(np.concatenate((_years_of(micros), _years_of(local))))]


def part_stations(part: pa.Table) -> list[str]:
    """The WMO codes an ``inmet_hourly`` part has rows of, sorted (empty when it has no rows or no
    ``wmo_code``; a null code counts as the empty string, a station of its own)."""
    if part.num_rows == 0 or "wmo_code" not in part.column_names:
        return []
    column = part.column("wmo_code")
    array = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    if pa.types.is_dictionary(array.type):
        array = array.dictionary.take(pc.unique(array.indices).drop_null())
        codes = {"" if v is None else str(v) for v in array.to_pylist()}
        return sorted(codes | ({""} if column.null_count else set()))
    return sorted({"" if v is None else str(v) for v in pc.unique(array).to_pylist()})


def _rows_between(part: pa.Table, start: int, end: int, index: int | str) -> pa.Table:
    micros = _micros(part, index)
    inside = (micros >= start) & (micros < end)
    if bool(inside.all()):
        return part
    return part.filter(pa.array(inside))


def year_rows(part: pa.Table, year: int, index: int | str = 0) -> pa.Table:
    """The rows of ``part`` whose ``observed_at`` lies in UTC ``year`` (the part itself when all do)."""
    return _rows_between(part, *_year_bounds(year), index)


def _restrict(
    combined: pa.Table, codes: list[str], station_starts: np.ndarray, keep: np.ndarray
) -> tuple[pa.Table, list[str], np.ndarray]:
    """The rows ``keep`` selects of station-sorted rows, with their stations and station starts."""
    if bool(keep.all()):
        return combined, codes, station_starts
    owner = np.searchsorted(station_starts, np.arange(combined.num_rows), "right") - 1
    kept_owner = owner[keep]
    present = np.unique(kept_owner)
    starts = np.searchsorted(kept_owner, present).astype(np.int64)
    return combined.filter(pa.array(keep)), [codes[i] for i in present], starts


def _checked(hourly: pa.Table, qc: quality.QcSpec | None, station_starts: np.ndarray) -> pa.Table:
    """``hourly`` (station-sorted) after ``qc``'s curated (temporal) rules; as it is without ``qc``."""
    if qc is None or not hourly.num_rows:
        return hourly
    checked, _ = quality.apply(hourly, qc, quality.CURATED, station_starts)
    return checked


def curate_inmet_hourly_year(
    parts: list[pa.Table], year: int, min_hours: int = MIN_HOURS_FOR_DAILY, qc: quality.QcSpec | None = None
) -> dict[str, pa.Table]:
    """One year's partitions: ``hourly``, ``daily_utc`` and ``station_years`` of UTC ``year``, and
    ``daily`` of the local days of ``year``, from ``parts`` (in their order: later parts win).

    A local day of 31 December ends after UTC midnight (at 03:00 UTC on 1 January for UTC-3), so the
    ``daily`` of ``year`` also takes the first hours of the next UTC year: ``parts`` are those of
    :func:`part_years` ``year`` (which counts those hours), and each hour of a local day is in
    exactly one year's ``daily`` (the year of its local date), as in :func:`curate_inmet_hourly`.
    ``qc``'s temporal rules see a station's hours of that window (its first hour has no previous
    hour: they do not look across the start of the year).
    """
    start, end = _year_bounds(year)
    # UTC year `year` and the hours of next year's 1 January that are still 31 December locally.
    window = [_rows_between(p, start, end - MIN_OFFSET * _MICROS_PER_HOUR, i) for i, p in enumerate(parts)]
    combined, schema, codes, station_starts = _station_sorted(window)
    micros = combined.column("observed_at").cast(pa.int64()).to_numpy()
    every = _checked(combined.select([n for n in schema.names if n not in _DESCRIPTIVE]), qc, station_starts)
    local = _local_daily(combined, every, station_starts, codes, min_hours)
    local_years = _years_of(
        np.asarray(local.column("date").cast(pa.int32()).to_numpy(), dtype=np.int64) * _MICROS_PER_DAY
    )
    daily = local.filter(pa.array(local_years == year)) if local.num_rows else local
    in_year = micros < end
    combined, codes, station_starts = _restrict(combined, codes, station_starts, in_year)
    hourly = every if bool(in_year.all()) else every.filter(pa.array(in_year))
    daily_utc = _utc_daily(hourly, station_starts, codes, min_hours)
    station_years = _station_runs(combined, station_starts, codes)
    return {"hourly": hourly, "daily": daily, "daily_utc": daily_utc, "station_years": station_years}


# --------------------------------------------------------------------------------------------------
# Any other dataset
# --------------------------------------------------------------------------------------------------


def _equal_to_previous(column: pa.Array) -> np.ndarray:
    """``out[i]`` is True when row ``i + 1`` equals row ``i`` (two nulls are equal)."""
    current, previous = column.slice(1), column.slice(0, len(column) - 1)
    equal = pc.fill_null(pc.equal(current, previous), False)
    both_null = pc.and_(current.is_null(), previous.is_null())
    return np.asarray(pc.or_(equal, both_null).to_numpy(zero_copy_only=False), dtype=bool)


def curate_generic(parts: list[pa.Table]) -> pa.Table:
    """Union of the parts (missing columns become nulls), exact duplicates removed, rows sorted by
    every column in column order (nulls last), so the result does not depend on part order."""
    public = [_public(p) for p in parts]
    if not public:
        return pa.table({})
    try:
        table = pa.concat_tables(public, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise ValueError(f"curated: expected staged parts with compatible column types, got {exc}") from exc
    if table.num_rows == 0 or table.num_columns == 0:
        return table.combine_chunks()
    # Staged strings may be dictionary-encoded (see formats); Arrow cannot sort a table on those, and
    # the curated table publishes plain values anyway.
    table = pa.table(
        {
            name: (col.cast(col.type.value_type) if pa.types.is_dictionary(col.type) else col)
            for name, col in zip(table.column_names, table.columns, strict=True)
        }
    )
    try:
        keys = [(n, "ascending", "at_end") for n in table.column_names]
        order = pc.sort_indices(table, sort_keys=keys)
    except pa.ArrowNotImplementedError as exc:
        raise ValueError(f"curated: expected sortable column types, got {table.schema}: {exc}") from exc
    ordered = table.take(order).combine_chunks()
    duplicate = np.ones(ordered.num_rows - 1, dtype=bool)
    for column in ordered.columns:
        duplicate &= _equal_to_previous(
            column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
        )
    keep = np.concatenate(([True], ~duplicate))
    return ordered.filter(pa.array(keep))
