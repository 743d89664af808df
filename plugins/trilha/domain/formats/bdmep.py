"""INMET BDMEP portal exports (``dados_<WMO>_<H|D>_<start>_<end>.csv``).

UTF-8, ``Key: value`` header lines (``Nome:``, ``Codigo Estacao:``, ``Latitude:``...,
``Periodicidade da Medicao: Diaria|Horaria``), a blank line, then a ``;`` table with the columns the
user picked, decimal points, ``null`` for missing and a trailing ``;``.

Daily exports become dataset ``inmet_bdmep_daily`` (one row per ``observed_on`` date), hourly ones
``inmet_bdmep_hourly`` (``observed_at`` in UTC, the same measurement names as ``inmet_hourly``).
Because the user chooses the columns, only the columns present are produced (no null-filling);
known variables get English snake_case names, unknown ones their own snake_case name.
"""

from __future__ import annotations

import pyarrow as pa

from trilha.domain.formats.cells import parse_decimal
from trilha.domain.formats.encoding import decode_bytes, sample_lines
from trilha.domain.formats.measurements import (
    HOURLY_MEASUREMENTS,
    HOURLY_RULES,
    STATION_STRING,
    Rules,
    finish_table,
    plan_body,
    read_measurements,
)
from trilha.domain.formats.naming import snake_case, tokens
from trilha.domain.formats.parsed import ParsedFile, make_parsed
from trilha.exceptions import ParseError

LAYOUT = "inmet_bdmep"

#: Daily BDMEP variables (automatic "(AUT)" and conventional spellings) in output order.
_DAILY_RULES: Rules = (
    ("precipitation_mm", ("PRECIPITA",), ()),
    ("pressure_mean_hpa", ("PRESS",), ()),
    ("dew_point_mean_c", ("ORVALHO",), ()),
    ("air_temp_max_c", ("TEMPERATURA", "MAX"), ()),
    ("air_temp_min_c", ("TEMPERATURA", "MIN"), ()),
    ("air_temp_mean_compensated_c", ("TEMPERATURA", "COMPENSADA"), ()),
    ("air_temp_mean_c", ("TEMPERATURA",), ()),
    ("rel_humidity_min_pct", ("UMIDADE", "MIN"), ()),
    ("rel_humidity_mean_pct", ("UMIDADE",), ()),
    ("wind_gust_max_ms", ("RAJADA",), ()),
    ("wind_speed_max_ms", ("VELOCIDADE", "MAX"), ()),
    ("wind_speed_mean_ms", ("VELOCIDADE",), ()),
    ("sunshine_h", ("INSOLA",), ()),
    ("evaporation_piche_mm", ("EVAPORA",), ()),
    ("cloud_cover_mean", ("NEBULOSIDADE",), ()),
)
DAILY_MEASUREMENTS: tuple[str, ...] = tuple(rule[0] for rule in _DAILY_RULES)

_NULL_VALUES: tuple[str, ...] = ("", "null", "NULL", "-9999")

_META_KEYS = {
    "NOME": "station",
    "CODIGOESTACAO": "wmo_code",
    "LATITUDE": "latitude",
    "LONGITUDE": "longitude",
    "ALTITUDE": "altitude",
    "SITUACAO": "status",
    "DATAINICIAL": "start_date",
    "DATAFINAL": "end_date",
    "PERIODICIDADEDAMEDICAO": "periodicity",
}

_STATION_TYPES: dict[str, pa.DataType] = {
    "wmo_code": STATION_STRING,
    "station": STATION_STRING,
    "latitude": pa.float64(),
    "longitude": pa.float64(),
    "altitude": pa.float64(),
}


def _key(raw: str) -> str:
    return "".join(tokens(raw))


def looks_like_bdmep(lines: list[str]) -> bool:
    """``Nome: ...`` first, and a ``Codigo Estacao: ...`` line in the header."""
    meta = [line for line in lines[:20] if line.strip()]
    if not meta or _key(meta[0].partition(":")[0]) != "NOME":
        return False
    return any(_key(line.partition(":")[0]) == "CODIGOESTACAO" for line in meta[:15])


def _is_table_header(line: str) -> bool:
    fields = line.split(";")
    first = tokens(fields[0]) if fields else []
    return len(fields) >= 2 and bool(first) and first[0] == "DATA"


def parse_bdmep(data: bytes, name: str, *, force_strings: bool = False) -> ParsedFile:
    """Parse a BDMEP export (``data`` already checked and LF-normalized)."""
    spans = sample_lines(data, name)
    head_text, encoding = decode_bytes(data[: spans[-1][1]])
    lines = head_text.split("\n")[: len(spans)]
    header_index = next((i for i, line in enumerate(lines) if _is_table_header(line)), None)
    if header_index is None:
        raise ParseError(
            f"{name}: expected a table header 'Data Medicao;...' after the 'Key: value' lines "
            f"(first {len(lines)} lines), got none"
        )
    metadata: dict[str, str] = {"layout": LAYOUT, "encoding": encoding}
    station: dict[str, object] = {}
    for number, line in enumerate(lines[:header_index], start=1):
        if not line.strip():
            continue
        raw_key, sep, raw_value = line.partition(":")
        if not sep:
            raise ParseError(f"{name}: line {number}: expected 'Key: value', got {line[:80]!r}")
        value = raw_value.strip()
        key = _META_KEYS.get(_key(raw_key)) or snake_case(raw_key, f"header_{number}")
        if key in ("latitude", "longitude", "altitude"):
            try:
                station[key] = parse_decimal(value)
            except ValueError:
                raise ParseError(
                    f"{name}: line {number}: expected a number for {key}, got {value!r}"
                ) from None
            metadata[key] = "" if station[key] is None else repr(station[key])
            continue
        if key in ("station", "wmo_code"):
            station[key] = value or None
        metadata[key] = value
    if not station.get("wmo_code"):
        raise ParseError(f"{name}: expected a 'Codigo Estacao: <code>' header line, got none")

    header_line = header_index + 1
    headers = lines[header_index].split(";")
    if headers and headers[-1].strip() == "":
        headers = headers[:-1]
    has_hour = any(tokens(h)[:1] == ["HORA"] for h in headers)
    periodicity = tokens(metadata.get("periodicity", ""))
    if periodicity and periodicity[0].startswith("HORARI"):
        hourly = True
    elif periodicity and periodicity[0].startswith("DIARI"):
        hourly = False
    else:
        hourly = has_hour
    if hourly and not has_hour:
        raise ParseError(
            f"{name}: line {header_line}: expected an 'Hora Medicao' column for hourly data, got {headers!r}"
        )
    rules = HOURLY_RULES if hourly else _DAILY_RULES
    body, plan = plan_body(
        data,
        body_start=spans[header_index][1] + 1,
        header=lines[header_index],
        headers=headers,
        encoding=encoding,
        metadata=metadata,
        rules=rules,
        name=name,
        header_line=header_line,
        need_hour=hourly,
    )
    read, rejects, values, masks = read_measurements(
        body,
        plan=plan,
        first_line=header_line + 1,
        source_file=name,
        null_values=_NULL_VALUES,
        force_strings=force_strings,
    )
    order = HOURLY_MEASUREMENTS if hourly else DAILY_MEASUREMENTS
    table = finish_table(
        read,
        rejects,
        plan=plan,
        time_column="observed_at" if hourly else "observed_on",
        measures_order=[c for c in order if c in plan.measures],
        values=values,
        masks=masks,
        station=station,
        station_types=_STATION_TYPES,
    )
    metadata["header_lines"] = str(header_line)
    metadata["column_map"] = plan.column_map()
    metadata["extra_columns"] = ",".join(plan.extras)
    dataset = "inmet_bdmep_hourly" if hourly else "inmet_bdmep_daily"
    return make_parsed(LAYOUT, dataset, table, rejects, read.lines_seen, metadata)
