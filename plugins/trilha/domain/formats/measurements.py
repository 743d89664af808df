"""The measurement kernel of INMET data, shared by the yearly station files (:mod:`.inmet`) and
the BDMEP portal exports (:mod:`.bdmep`): the canonical measurement names, the keyword rules that map
a header to them, the column plan, the typed read of the measurement columns, and the dates, hours
and station columns that finish the table.

Columns are mapped by their (folded) header text, never by position; dates ``YYYY-MM-DD`` and
``YYYY/MM/DD``, hours ``HH:MM`` and ``HHMM UTC`` all parse; decimal commas (``,8``, ``-,2``) and
points both parse; ``-9999`` and empty cells are null.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from trilha.domain.formats.cells import constant, map_unique, or_masks, reject_cells, to_float
from trilha.domain.formats.csvread import CsvDialect, DelimitedRead, read_delimited
from trilha.domain.formats.encoding import SNIFF_BYTES, data_body
from trilha.domain.formats.naming import snake_case, tokens, unique_names
from trilha.domain.formats.parsed import LINE_NUMBER_COLUMN, Rejects
from trilha.exceptions import ParseError

#: Hourly measurements, in output order, identical for every year and layout.
HOURLY_MEASUREMENTS: tuple[str, ...] = (
    "precipitation_mm",
    "pressure_station_hpa",
    "pressure_max_hpa",
    "pressure_min_hpa",
    "radiation_kj_m2",
    "air_temp_c",
    "dew_point_c",
    "air_temp_max_c",
    "air_temp_min_c",
    "dew_point_max_c",
    "dew_point_min_c",
    "rel_humidity_max_pct",
    "rel_humidity_min_pct",
    "rel_humidity_pct",
    "wind_dir_deg",
    "wind_gust_ms",
    "wind_speed_ms",
)
#: Station metadata repeated on every row: the WMO code is the station's identity.
STATION_COLUMNS: tuple[str, ...] = (
    "wmo_code",
    "station",
    "uf",
    "region",
    "latitude",
    "longitude",
    "altitude",
)
#: The columns of the ``inmet_hourly`` table, before any extra column and ``_line_number``.
HOURLY_COLUMNS: tuple[str, ...] = ("observed_at", *STATION_COLUMNS, *HOURLY_MEASUREMENTS)

TIMESTAMP_TYPE = pa.timestamp("us", tz="UTC")
#: Station descriptions repeat one value on every row of a file: dictionary-encoded.
STATION_STRING = pa.dictionary(pa.int32(), pa.string())
#: The station columns of every parsed row, with their types (yearly files; curate reuses them).
STATION_TYPES: dict[str, pa.DataType] = {
    "wmo_code": STATION_STRING,
    "station": STATION_STRING,
    "uf": STATION_STRING,
    "region": STATION_STRING,
    "latitude": pa.float64(),
    "longitude": pa.float64(),
    "altitude": pa.float64(),
}

#: (canonical name, required token prefixes, forbidden token prefixes), first match wins.
Rules = tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...]

# (canonical name, every one of these token prefixes, none of these token prefixes). Order matters:
# the dew-point rules come before the air-temperature ones because "TEMPERATURA ORVALHO MAX" also
# says TEMPERATURA and MAX. Prefixes (not whole words) survive "MAX." vs "MÁXIMA" and the 2019
# files' "?" in place of accented letters.
HOURLY_RULES: Rules = (
    ("precipitation_mm", ("PRECIPITA",), ()),
    ("pressure_max_hpa", ("PRESS", "MAX"), ()),
    ("pressure_min_hpa", ("PRESS", "MIN"), ()),
    ("pressure_station_hpa", ("PRESS", "ESTA"), ("MAR",)),
    ("radiation_kj_m2", ("RADIA",), ()),
    ("dew_point_max_c", ("ORVALHO", "MAX"), ()),
    ("dew_point_min_c", ("ORVALHO", "MIN"), ()),
    ("dew_point_c", ("ORVALHO",), ()),
    ("air_temp_max_c", ("TEMPERATURA", "MAX"), ()),
    ("air_temp_min_c", ("TEMPERATURA", "MIN"), ()),
    ("air_temp_c", ("TEMPERATURA", "BULBO"), ()),
    ("rel_humidity_max_pct", ("UMIDADE", "MAX"), ()),
    ("rel_humidity_min_pct", ("UMIDADE", "MIN"), ()),
    ("rel_humidity_pct", ("UMIDADE",), ()),
    ("wind_dir_deg", ("VENTO", "DIRE"), ()),
    ("wind_gust_ms", ("RAJADA",), ()),
    ("wind_speed_ms", ("VELOCIDADE",), ("MAX",)),
)

#: Cells that mean "missing": empty (2019+) and the -9999 sentinel (up to 2018) in its spellings.
NULL_VALUES: tuple[str, ...] = ("", "-9999", "-9999,0", "-9999.0", "-9999,00", "-9999.00", "null", "NULL")

_HOUR_RE = re.compile(r"^\s*(\d{1,2}):?(\d{2})(?::\d{2})?\s*(?:UTC)?\s*$", re.IGNORECASE)
_DATE_RE = re.compile(r"^\s*(\d{4})[-/](\d{1,2})[-/](\d{1,2})\s*$")


@functools.lru_cache(maxsize=4096)
def match_rules(header: str, rules: Rules) -> str | None:
    """Canonical name of a column header according to keyword ``rules``, or ``None``.

    Cached: a run over hundreds of station files sees the same few dozen headers.
    """
    words = tokens(header)

    def has(prefix: str) -> bool:
        return any(word.startswith(prefix) for word in words)

    for canonical, required, forbidden in rules:
        if all(has(p) for p in required) and not any(has(p) for p in forbidden):
            return canonical
    return None


@dataclass(frozen=True)
class ColumnPlan:
    """How the fields of a data line map onto output columns."""

    arrow_names: list[str]  # positional names given to Arrow, one per field
    date_field: str
    hour_field: str | None
    measures: dict[str, tuple[str, str]]  # canonical -> (arrow name, source header)
    extras: dict[str, tuple[str, str]]  # snake_case name -> (arrow name, source header)
    trailing_field: str | None  # the empty field after the final ';'

    def column_map(self) -> str:
        mapping = {header: name for name, (_, header) in {**self.measures, **self.extras}.items()}
        return json.dumps(mapping, ensure_ascii=False, sort_keys=True)


def plan_columns(
    headers: list[str],
    *,
    rules: Rules,
    trailing: bool,
    name: str,
    header_line: int,
    need_hour: bool,
) -> ColumnPlan:
    """Map header fields to output columns by their (folded) text, never by position.

    Cached by header: a run over hundreds of station files sees a handful of distinct headers.
    ``name`` and ``header_line`` only word error messages, and errors are never cached.
    """
    return _plan_columns(tuple(headers), rules, trailing, need_hour, name, header_line)


@functools.lru_cache(maxsize=256)
def _cached_plan(headers: tuple[str, ...], rules: Rules, trailing: bool, need_hour: bool) -> ColumnPlan:
    return _build_plan(list(headers), rules=rules, trailing=trailing, need_hour=need_hour)


def plan_body(
    data: bytes,
    *,
    body_start: int,
    header: str,
    headers: list[str],
    encoding: str,
    metadata: dict[str, str],
    rules: Rules,
    name: str,
    header_line: int,
    need_hour: bool,
) -> tuple[bytes | memoryview, ColumnPlan]:
    """The data lines after the header (``body_start`` on) and the column plan that reads them.

    A body in another encoding than the header's is noted in ``metadata["data_encoding"]``. A field
    separator at the end of each line (a trailing ``;``) is read from the first data line, or from
    the header when there is no data.
    """
    body, body_encoding, first_data = data_body(data, body_start)
    if body_encoding not in ("ascii", encoding):
        metadata["data_encoding"] = body_encoding
    trailing = first_data.rstrip().endswith(b";") if first_data.strip() else header.endswith(";")
    plan = plan_columns(
        headers, rules=rules, trailing=trailing, name=name, header_line=header_line, need_hour=need_hour
    )
    return body, plan


def _plan_columns(
    headers: tuple[str, ...], rules: Rules, trailing: bool, need_hour: bool, name: str, header_line: int
) -> ColumnPlan:
    try:
        return _cached_plan(headers, rules, trailing, need_hour)
    except _PlanError as exc:
        raise ParseError(f"{name}: line {header_line}: {exc}") from None


class _PlanError(ValueError):
    """A header that cannot be mapped (raised without file context, so it can be cached around)."""


def _build_plan(headers: list[str], *, rules: Rules, trailing: bool, need_hour: bool) -> ColumnPlan:
    arrow_names = [f"f{i}" for i in range(len(headers))]
    date_field: str | None = None
    hour_field: str | None = None
    measures: dict[str, tuple[str, str]] = {}
    extra_headers: list[tuple[str, str]] = []
    for arrow_name, header in zip(arrow_names, headers, strict=True):
        words = tokens(header)
        if words and words[0] == "DATA" and date_field is None:
            date_field = arrow_name
            continue
        if words and words[0] == "HORA" and hour_field is None:
            hour_field = arrow_name
            continue
        canonical = match_rules(header, rules)
        if canonical is None:
            extra_headers.append((arrow_name, header))
        elif canonical in measures:
            raise _PlanError(
                f"expected one column for {canonical}, got two: {measures[canonical][1]!r} and {header!r}"
            )
        else:
            measures[canonical] = (arrow_name, header)
    if date_field is None:
        raise _PlanError(f"expected a date column ('Data...'), got {headers!r}")
    if need_hour and hour_field is None:
        raise _PlanError(f"expected an hour column ('Hora...'), got {headers!r}")
    taken = set(HOURLY_COLUMNS) | set(measures) | {LINE_NUMBER_COLUMN}
    extra_names = unique_names(
        [snake_case(h, f"column_{i + 1}") for i, (_, h) in enumerate(extra_headers)], taken
    )
    extras = {n: pair for n, pair in zip(extra_names, extra_headers, strict=True)}
    trailing_field = None
    if trailing:
        trailing_field = f"f{len(headers)}"
        arrow_names.append(trailing_field)
    return ColumnPlan(arrow_names, date_field, hour_field, measures, extras, trailing_field)


def _parse_hour(text: str) -> int | None:
    """Seconds after midnight for ``HH:MM``, ``HHMM UTC``, ``HHMM`` or ``HH:MM:SS``."""
    match = _HOUR_RE.match(text)
    if not match:
        return None
    hours, minutes = int(match.group(1)), int(match.group(2))
    if hours > 23 or minutes > 59:
        return None
    return hours * 3600 + minutes * 60


def _parse_date_days(text: str) -> int | None:
    """Days since 1970-01-01 for ``YYYY-MM-DD`` or ``YYYY/MM/DD``; ``None`` when invalid."""
    match = _DATE_RE.match(text)
    if not match:
        return None
    try:
        return (date(int(match.group(1)), int(match.group(2)), int(match.group(3))) - date(1970, 1, 1)).days
    except ValueError:
        return None


def _fixed_width(values: pa.Array, width: int) -> np.ndarray | None:
    """The bytes of a string array as an ``(n, width)`` matrix when every value is exactly
    ``width`` bytes and none is null (the shape of INMET dates and hours), else ``None``."""
    n = len(values)
    if n == 0 or values.null_count or not pa.types.is_string(values.type):
        return None
    buffers = values.buffers()
    offsets = np.frombuffer(buffers[1], dtype=np.int32)[values.offset : values.offset + n + 1]
    if int(offsets[-1] - offsets[0]) != n * width or not np.all(np.diff(offsets) == width):
        return None
    data = np.frombuffer(buffers[2], dtype=np.uint8)[int(offsets[0]) : int(offsets[-1])]
    return data.reshape(n, width)


def _digits(matrix: np.ndarray, positions: Sequence[int]) -> np.ndarray | None:
    """The decimal number spelled by the given byte columns, or ``None`` if one is not a digit."""
    columns = matrix[:, positions].astype(np.int32) - 48
    if columns.min() < 0 or columns.max() > 9:
        return None
    result = np.zeros(len(matrix), dtype=np.int32)
    for index in range(len(positions)):
        result = result * 10 + columns[:, index]
    return result


_UTC_SUFFIX = int.from_bytes(b" UTC", "little")


def _fast_hours(values: pa.Array) -> np.ndarray | None:
    """Seconds after midnight for ``HHMM UTC`` (2019+) or ``HH:MM`` (up to 2018) columns."""
    matrix = _fixed_width(values, 8)
    if matrix is not None:
        # Each "HHMM UTC" is exactly one little-endian uint64: check the suffix in one comparison.
        packed = matrix.reshape(-1).view("<u8")
        if not np.all((packed >> np.uint64(32)) == np.uint64(_UTC_SUFFIX)):
            return None
    else:
        matrix = _fixed_width(values, 5)
        if matrix is None or not np.all(matrix[:, 2] == ord(":")):
            return None
        matrix = matrix[:, [0, 1, 3, 4]]
    hours, minutes = _digits(matrix, [0, 1]), _digits(matrix, [2, 3])
    if hours is None or minutes is None or hours.max() > 23 or minutes.max() > 59:
        return None
    return hours * 3600 + minutes * 60


def parse_dates(values: pa.Array | pa.ChunkedArray) -> tuple[pa.Array, pa.Array | None]:
    """``YYYY-MM-DD`` / ``YYYY/MM/DD`` strings to date32, with a mask of the invalid cells.

    A year has at most 366 distinct dates, so the work is done on the dictionary of distinct
    values and spread back with ``take`` (measured faster than reading the digits of all 8784
    rows with numpy). Arrow's string-to-date cast is strict ISO (it refuses 2019-02-30, unlike
    ``strptime``); only when it fails is each distinct value checked in Python.
    """
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    encoded = pc.dictionary_encode(values)
    try:
        days = pc.cast(pc.replace_substring(encoded.dictionary, "/", "-"), pa.date32())
    except pa.ArrowInvalid:
        return map_unique(values, _parse_date_days, pa.int32(), pa.date32())
    return pc.take(days, encoded.indices), None


def parse_hours(values: pa.Array | pa.ChunkedArray) -> tuple[pa.Array, pa.Array | None]:
    """Hour strings to seconds after midnight (int32), with a mask of the invalid cells.

    Fast path: fixed-width ``HHMM UTC`` / ``HH:MM`` read with numpy. Otherwise each distinct
    value (24 in a year) is parsed in Python and spread back with ``take``.
    """
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    fast = _fast_hours(values)
    if fast is not None:
        return pa.array(fast, pa.int32()), None
    return map_unique(values, _parse_hour, pa.int32())


def build_timestamps(days: pa.Array, seconds: pa.Array | None) -> pa.Array:
    """UTC timestamps (microseconds) from date32 days and seconds after midnight (nulls propagate)."""
    if days.null_count == 0 and (seconds is None or seconds.null_count == 0):
        micros = days.view(pa.int32()).to_numpy().astype(np.int64) * 86_400_000_000
        if seconds is not None:
            micros += seconds.to_numpy().astype(np.int64) * 1_000_000
        return pa.array(micros, pa.int64()).view(TIMESTAMP_TYPE)
    micros = pc.multiply(pc.cast(days.view(pa.int32()), pa.int64()), 86_400_000_000)
    if seconds is not None:
        micros = pc.add(micros, pc.multiply(pc.cast(seconds, pa.int64()), 1_000_000))
    return pc.cast(micros, TIMESTAMP_TYPE)


def sniff_decimal(body: bytes | memoryview) -> str | None:
    """``","`` or ``"."`` for the data's decimal separator; ``None`` when both appear.

    In INMET data lines neither character has another use (dates use ``-``/``/``, hours ``:``),
    so a comma anywhere means decimal comma, and a file re-saved with points has no comma at all.
    """
    # The first 64 KiB (~300 lines) decide; a different separator further down only makes the
    # typed read fail, and the string path then handles both separators.
    sample = bytes(body[:SNIFF_BYTES])
    has_comma = b"," in sample
    has_point = b"." in sample
    if has_comma and has_point:
        return None
    return "," if has_comma else "."


def read_measurements(
    body: bytes | memoryview,
    *,
    plan: ColumnPlan,
    first_line: int,
    source_file: str,
    null_values: tuple[str, ...] = NULL_VALUES,
    force_strings: bool = False,
) -> tuple[DelimitedRead, Rejects, dict[str, pa.Array], list[pa.Array | None]]:
    """Read the data lines and convert the measurement columns to float64.

    Fast path: Arrow converts the numbers itself (with the sniffed decimal separator). If any cell
    is not a number, or separators are mixed, the lines are read again as strings and converted
    column by column, and only the cells that are not numbers reject their rows.
    """
    field_hint = " (with the trailing ';')" if plan.trailing_field else ""
    decimal = None if force_strings else sniff_decimal(body)
    if decimal is not None:
        rejects = Rejects(source_file)
        types = {f: pa.string() for f in plan.arrow_names}
        types.update({arrow: pa.float64() for arrow, _ in plan.measures.values()})
        dialect = CsvDialect(";", False, decimal, null_values)
        try:
            read = read_delimited(
                body,
                first_line=first_line,
                column_names=plan.arrow_names,
                column_types=types,
                dialect=dialect,
                rejects=rejects,
                field_hint=field_hint,
            )
        except pa.ArrowInvalid:
            pass  # a cell that is not a number: redo with strings to find and reject its row
        else:
            values = {c: _single(read.table.column(arrow)) for c, (arrow, _) in plan.measures.items()}
            return read, rejects, values, []

    rejects = Rejects(source_file)
    read = read_delimited(
        body,
        first_line=first_line,
        column_names=plan.arrow_names,
        column_types={f: pa.string() for f in plan.arrow_names},
        dialect=CsvDialect(";", False, ".", null_values),
        rejects=rejects,
        field_hint=field_hint,
    )
    values = {}
    masks: list[pa.Array | None] = []
    for canonical, (arrow, header) in plan.measures.items():
        raw = read.table.column(arrow)
        floats, bad = to_float(raw)
        values[canonical] = floats
        if bad is not None:
            reject_cells(
                rejects, read, bad, raw, f"column {canonical} ({header.strip()!r}): expected a number"
            )
            masks.append(bad)
    return read, rejects, values, masks


def _single(column: pa.ChunkedArray) -> pa.Array:
    """The column as one array (no copy when it already is a single chunk)."""
    return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()


def finish_table(
    read: DelimitedRead,
    rejects: Rejects,
    *,
    plan: ColumnPlan,
    time_column: str,
    measures_order: Sequence[str],
    values: dict[str, pa.Array],
    masks: list[pa.Array | None],
    station: dict[str, object],
    station_types: dict[str, pa.DataType],
) -> pa.Table:
    """Dates, hours, extras and station columns; drop the rejected rows; fixed column order."""
    table = read.table
    n = table.num_rows
    raw_dates = _single(table.column(plan.date_field))
    days, bad_date = parse_dates(raw_dates)
    missing_date = raw_dates.is_null() if raw_dates.null_count else None
    reject_cells(rejects, read, bad_date, raw_dates, "expected a date YYYY-MM-DD or YYYY/MM/DD")
    reject_cells(rejects, read, missing_date, None, "expected a date, got an empty cell")
    masks = [*masks, bad_date, missing_date]
    seconds = None
    if plan.hour_field is not None:
        raw_hours = _single(table.column(plan.hour_field))
        seconds, bad_hour = parse_hours(raw_hours)
        missing_hour = raw_hours.is_null() if raw_hours.null_count else None
        reject_cells(rejects, read, bad_hour, raw_hours, "expected an hour HH:MM or HHMM UTC")
        reject_cells(rejects, read, missing_hour, None, "expected an hour, got an empty cell")
        masks += [bad_hour, missing_hour]
    if plan.trailing_field is not None:
        trailing = table.column(plan.trailing_field)
        if trailing.null_count != n:
            extra = trailing.is_valid()
            reject_cells(rejects, read, extra, trailing, "expected nothing after the last ';'")
            masks.append(extra)

    if plan.hour_field is not None:
        time_values = build_timestamps(days, seconds)
    else:
        time_values = days
    columns: dict[str, pa.Array] = {time_column: time_values}
    for column, type_ in station_types.items():
        columns[column] = constant(station.get(column), type_, n)
    for canonical in measures_order:
        columns[canonical] = values.get(canonical, pa.nulls(n, pa.float64()))
    for canonical, array in values.items():
        if canonical not in columns:
            columns[canonical] = array
    for extra, (arrow, _) in plan.extras.items():
        raw = table.column(arrow)
        floats, bad = to_float(raw)
        # An unknown column is numeric only when every value is a number; otherwise it stays text.
        columns[extra] = raw.combine_chunks() if bad is not None and pc.any(bad).as_py() else floats
    columns[LINE_NUMBER_COLUMN] = pa.array(read.line_numbers, pa.int64())
    result = pa.table(columns)
    rejected = or_masks(masks)
    if rejected is not None and pc.any(rejected).as_py():
        result = result.filter(pc.invert(rejected))
    return result
