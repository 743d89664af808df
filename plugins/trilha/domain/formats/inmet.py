"""INMET yearly automatic-station files (``INMET_<region>_<UF>_<WMO>_<STATION>_<from>_A_<to>.CSV``).

Three layouts exist; one parser handles them all because every difference is resolved by content,
never by position or year:

* header keys are recognised after accent folding (``REGIÃO:``, ``REGI?O:`` and ``REGIAO:`` agree);
* measurement columns are mapped to :data:`HOURLY_MEASUREMENTS` by keyword rules over the folded
  header text (``PRECIPITAÇÃO`` and ``PRECIPITACAO`` agree; ``KJ/m²`` and ``Kj/m²`` agree);
* dates ``YYYY-MM-DD`` and ``YYYY/MM/DD``, hours ``HH:MM`` and ``HHMM UTC`` all parse;
* decimal commas (``,8``, ``-,2``) and points both parse; ``-9999`` and empty cells are null.

A canonical column that a file lacks becomes an all-null column. A column that matches no rule is
kept under its snake_case name (numeric when every value is a number) and listed in the metadata
key ``extra_columns``, so nothing the station sent is dropped.

The measurement kernel (rules, column plan, typed read, dates and hours) is in
:mod:`trilha.domain.formats.measurements`, shared with the BDMEP exports.
"""

from __future__ import annotations

import re
from datetime import date

from trilha.domain.formats.cells import parse_decimal
from trilha.domain.formats.encoding import decode_bytes, sample_lines
from trilha.domain.formats.measurements import (
    HOURLY_MEASUREMENTS,
    HOURLY_RULES,
    STATION_TYPES,
    finish_table,
    plan_body,
    read_measurements,
)
from trilha.domain.formats.naming import snake_case, tokens
from trilha.domain.formats.parsed import ParsedFile, make_parsed
from trilha.exceptions import ParseError

# --------------------------------------------------------------------------------------------------
# Header
# --------------------------------------------------------------------------------------------------

_META_KEYS: tuple[tuple[str, str], ...] = (
    ("REGI", "region"),
    ("UF", "uf"),
    ("ESTA", "station"),
    ("CODIGO", "wmo_code"),
    ("LATITUDE", "latitude"),
    ("LONGITUDE", "longitude"),
    ("ALTITUDE", "altitude"),
    ("DATADEFUNDA", "founded_on"),
)


def meta_key(raw_key: str) -> str | None:
    """Canonical metadata key for ``REGIÃO:``, ``REGI?O:``, ``CODIGO (WMO):``...; ``None`` if unknown."""
    folded = "".join(tokens(raw_key))
    for prefix, key in _META_KEYS:
        if folded == prefix or (prefix != "UF" and folded.startswith(prefix)):
            return key
    return None


def parse_founding_date(text: str, today: date | None = None) -> str:
    """ISO date from ``YYYY-MM-DD`` (old files) or ``DD/MM/YY`` (2019+); the text itself if neither.

    Two-digit years are 20YY unless that is in the future, then 19YY (stations predating 2000).
    """
    text = text.strip()
    match = re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})", text)
    if match:
        return text
    match = re.fullmatch(r"(\d{1,2})/(\d{1,2})/(\d{2}|\d{4})", text)
    if not match:
        return text
    day, month, year = int(match.group(1)), int(match.group(2)), int(match.group(3))
    if year < 100:
        current = (today or date.today()).year
        year = 2000 + year if 2000 + year <= current else 1900 + year
    try:
        return date(year, month, day).isoformat()
    except ValueError:
        return text


def is_column_header(line: str) -> bool:
    """``DATA (YYYY-MM-DD);HORA (UTC);...`` or ``Data;Hora UTC;...``."""
    fields = line.split(";")
    if len(fields) < 3:
        return False
    first, second = tokens(fields[0]), tokens(fields[1])
    return bool(first) and first[0] == "DATA" and bool(second) and second[0] == "HORA"


def looks_like_inmet_yearly(lines: list[str]) -> bool:
    """At least four known ``KEY:;value`` header lines, then the ``Data;Hora`` column header."""
    known = 0
    for line in lines:
        if is_column_header(line):
            return known >= 4
        key, sep, _ = line.partition(";")
        if sep and key.strip().endswith(":") and meta_key(key) is not None:
            known += 1
    return False


#: The three layouts of INMET's yearly automatic-station files, named so that none reads as a year:
#: until 2018, the files of 2019, and from 2020 on.
PRE_2019, ONLY_2019, FROM_2020 = (
    "inmet_automatic_pre2019",
    "inmet_automatic_2019only",
    "inmet_automatic_2020plus",
)
YEARLY_LAYOUTS = (PRE_2019, ONLY_2019, FROM_2020)


def yearly_layout(lines: list[str]) -> str:
    """Which of the three yearly layouts a header shows (parsing does not depend on it)."""
    header = next(line for line in lines if is_column_header(line))
    if "YYYY" in header.split(";")[0].upper():
        return PRE_2019
    meta = lines[: lines.index(header)]
    if any("?" in line.partition(";")[0] for line in meta) or "KJ/m" in header:
        return ONLY_2019
    return FROM_2020


# --------------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------------


def parse_yearly(data: bytes, name: str, *, force_strings: bool = False) -> ParsedFile:
    """Parse a yearly station file (``data`` already checked and LF-normalized).

    :param force_strings: skip Arrow's typed fast path (used by tests to prove both paths agree).
    """
    spans = sample_lines(data, name)
    head_end = spans[-1][1]
    head_text, encoding = decode_bytes(data[:head_end])
    lines = head_text.split("\n")[: len(spans)]
    header_index = next((i for i, line in enumerate(lines) if is_column_header(line)), None)
    if header_index is None:
        raise ParseError(
            f"{name}: expected the column header 'Data;Hora UTC;...' within the first {len(lines)} lines, "
            "got none"
        )
    layout = yearly_layout(lines)

    metadata: dict[str, str] = {"layout": layout, "encoding": encoding}
    station: dict[str, object] = {}
    for number, line in enumerate(lines[:header_index], start=1):
        raw_key, _, raw_value = line.partition(";")
        value = raw_value.strip().rstrip(";").strip()
        key = meta_key(raw_key)
        if key is None:
            if raw_key.strip():
                metadata[snake_case(raw_key, f"header_{number}")] = value
            continue
        if key in ("latitude", "longitude", "altitude"):
            try:
                station[key] = parse_decimal(value)
            except ValueError:
                raise ParseError(
                    f"{name}: line {number}: expected a number for {key}, got {value!r}"
                ) from None
            metadata[key] = "" if station[key] is None else repr(station[key])
        elif key == "founded_on":
            metadata[key] = parse_founding_date(value)
        else:
            station[key] = value or None
            metadata[key] = value
    if not station.get("wmo_code"):
        raise ParseError(
            f"{name}: expected a 'CODIGO (WMO):;<code>' line in the header (lines 1-{header_index}), got none"
        )

    header_line = header_index + 1
    headers = lines[header_index].split(";")
    if headers and headers[-1].strip() == "":
        headers = headers[:-1]
    body, plan = plan_body(
        data,
        body_start=spans[header_index][1] + 1,
        header=lines[header_index],
        headers=headers,
        encoding=encoding,
        metadata=metadata,
        rules=HOURLY_RULES,
        name=name,
        header_line=header_line,
        need_hour=True,
    )

    read, rejects, values, masks = read_measurements(
        body, plan=plan, first_line=header_line + 1, source_file=name, force_strings=force_strings
    )
    table = finish_table(
        read,
        rejects,
        plan=plan,
        time_column="observed_at",
        measures_order=HOURLY_MEASUREMENTS,
        values=values,
        masks=masks,
        station=station,
        station_types=STATION_TYPES,
    )
    metadata["header_lines"] = str(header_line)
    metadata["column_map"] = plan.column_map()
    metadata["extra_columns"] = ",".join(plan.extras)
    metadata["missing_columns"] = ",".join(c for c in HOURLY_MEASUREMENTS if c not in plan.measures)
    return make_parsed(layout, "inmet_hourly", table, rejects, read.lines_seen, metadata)
