"""Parsing of the real INMET files and of every kind of bad input (trilha.domain.formats)."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime
from pathlib import Path

import pyarrow as pa
import pytest

from trilha.domain.contracts import validate
from trilha.domain.formats import (
    HOURLY_COLUMNS,
    HOURLY_MEASUREMENTS,
    LAYOUTS,
    ParsedFile,
    detect_layout,
    parse_file,
)
from trilha.domain.formats.csvread import THREADED_READ_BYTES
from trilha.domain.formats.encoding import prepare
from trilha.domain.formats.inmet import parse_yearly
from trilha.exceptions import ParseError
from trilha.hooks.include import load_contract

SAMPLES = Path(__file__).parents[2] / "include" / "sample" / "inmet"
OLD = "INMET_S_PR_A807_CURITIBA_28-01-2003_A_31-12-2003.CSV"
Y2019 = "INMET_S_PR_A807_CURITIBA_01-01-2019_A_31-12-2019.CSV"
NEW = "INMET_SE_SP_A701_SAO PAULO - MIRANTE_01-01-2024_A_31-12-2024.CSV"
BDMEP = "dados_A001_D_2000-05-06_2024-05-26.csv"
YEARLY = (OLD, Y2019, NEW)
EXPECTED_LAYOUT = {
    OLD: "inmet_automatic_pre2019",
    Y2019: "inmet_automatic_2019only",
    NEW: "inmet_automatic_2020plus",
    BDMEP: "inmet_bdmep",
}

#: The staged inmet_hourly columns, spelled out so that a renamed column fails a test.
EXPECTED_HOURLY_COLUMNS = [
    "observed_at",
    "wmo_code",
    "station",
    "uf",
    "region",
    "latitude",
    "longitude",
    "altitude",
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
    "_line_number",
]


def raw(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def data_lines(data: bytes) -> list[tuple[int, bytes]]:
    """Independent count: the non-blank lines after the column header, with their line numbers.

    The column header is the line that starts "Data;Hora" / "DATA (YYYY-MM-DD);HORA" (yearly
    files) or "Data Medicao" (BDMEP); this deliberately shares no code with the parser.
    """
    lines = data.replace(b"\r\n", b"\n").split(b"\n")
    starts = (b"DATA;HORA", b"DATA (YYYY-MM-DD);HORA", b"DATA MEDICAO")
    header = next(i for i, line in enumerate(lines) if line.upper().startswith(starts))
    return [(i + 1, line) for i, line in enumerate(lines) if i > header and line.strip()]


def row_at(parsed: ParsedFile, column: str, value: object) -> dict[str, object]:
    rows = [r for r in parsed.table.to_pylist() if r[column] == value]
    assert len(rows) == 1, f"expected one row with {column}={value!r}, got {len(rows)}"
    return rows[0]


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


@pytest.fixture(scope="module")
def parsed() -> dict[str, ParsedFile]:
    return {name: parse_file(raw(name), name) for name in (*YEARLY, BDMEP)}


# --------------------------------------------------------------------------------------------------
# The four real files
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [*YEARLY, BDMEP])
def test_every_data_line_is_a_row_or_a_rejection(parsed: dict[str, ParsedFile], name: str) -> None:
    expected = len(data_lines(raw(name)))
    result = parsed[name]
    ok, quarantine = validate(result.table, load_contract(result.dataset), name)
    assert result.rows_in == expected
    assert ok.num_rows + quarantine.num_rows + result.rejected.num_rows == expected
    # The real files are clean: nothing is rejected or quarantined.
    assert (result.rejected.num_rows, quarantine.num_rows) == (0, 0)


def test_known_line_counts(parsed: dict[str, ParsedFile]) -> None:
    # 8112 hours from 28/01 to 31/12/2003, a full 2019, a full leap 2024, 8787 BDMEP days.
    assert {n: parsed[n].rows_in for n in parsed} == {OLD: 8112, Y2019: 8760, NEW: 8784, BDMEP: 8787}


@pytest.mark.parametrize("name", [*YEARLY, BDMEP])
def test_layout_is_detected_from_content_not_name(name: str) -> None:
    assert detect_layout(raw(name)) == EXPECTED_LAYOUT[name]
    renamed = parse_file(raw(name), "upload.txt")
    assert renamed.layout == EXPECTED_LAYOUT[name]
    assert renamed.layout in LAYOUTS


def test_column_names_are_identical_across_the_three_yearly_layouts(parsed: dict[str, ParsedFile]) -> None:
    for name in YEARLY:
        assert parsed[name].table.column_names == EXPECTED_HOURLY_COLUMNS
        assert parsed[name].dataset == "inmet_hourly"
    assert parsed[OLD].table.schema == parsed[Y2019].table.schema == parsed[NEW].table.schema
    assert list(HOURLY_COLUMNS) == EXPECTED_HOURLY_COLUMNS[:-1]


def test_old_layout_values(parsed: dict[str, ParsedFile]) -> None:
    result = parsed[OLD]
    # Line 1174: 2003-03-17;12:00;0;915,1;915,1;914,8;535;19,2;15,2;...;84;78;78;118;7,2;2,7;
    row = row_at(result, "observed_at", utc(2003, 3, 17, 12))
    assert row["_line_number"] == 1174
    assert (row["precipitation_mm"], row["pressure_station_hpa"], row["radiation_kj_m2"]) == (
        0.0,
        915.1,
        535.0,
    )
    assert (row["air_temp_c"], row["dew_point_c"], row["rel_humidity_pct"]) == (19.2, 15.2, 78.0)
    assert (row["wind_dir_deg"], row["wind_gust_ms"], row["wind_speed_ms"]) == (118.0, 7.2, 2.7)
    # Line 1181: precipitation ",4" (leading zero dropped).
    assert row_at(result, "observed_at", utc(2003, 3, 17, 19))["precipitation_mm"] == 0.4
    # Line 10: every measurement is -9999: a real hour, kept, with nulls.
    first = row_at(result, "observed_at", utc(2003, 1, 28, 0))
    assert first["_line_number"] == 10
    assert all(first[c] is None for c in HOURLY_MEASUREMENTS)
    assert (first["wmo_code"], first["station"], first["uf"], first["region"]) == (
        "A807",
        "CURITIBA",
        "PR",
        "S",
    )
    assert (first["latitude"], first["longitude"], first["altitude"]) == (-25.43333333, -49.26666666, 923.5)
    assert result.metadata["founded_on"] == "2003-01-28"
    assert result.table.column("observed_at").type == pa.timestamp("us", tz="UTC")


def test_2019_layout_values(parsed: dict[str, ParsedFile]) -> None:
    result = parsed[Y2019]
    # Line 14: ...;4,9;,9;  -> wind speed 0.9; radiation empty -> null.
    row = row_at(result, "observed_at", utc(2019, 1, 1, 4))
    assert (row["wind_gust_ms"], row["wind_speed_ms"], row["radiation_kj_m2"]) == (4.9, 0.9, None)
    # Line 16: dew point and humidity empty -> null, the rest present.
    row = row_at(result, "observed_at", utc(2019, 1, 1, 6))
    assert (row["dew_point_c"], row["rel_humidity_pct"], row["air_temp_c"]) == (None, None, 18.9)
    assert row["_line_number"] == 16
    assert (row["latitude"], row["longitude"], row["altitude"]) == (-25.448688, -49.230602, 922.91)
    assert result.metadata["founded_on"] == "2003-01-28"  # "28/01/03"


def test_2020_layout_values(parsed: dict[str, ParsedFile]) -> None:
    result = parsed[NEW]
    row = row_at(result, "observed_at", utc(2024, 1, 1, 9))  # line 19
    assert (row["radiation_kj_m2"], row["air_temp_c"], row["wind_speed_ms"]) == (47.6, 18.5, 1.8)
    # Line 4130: dew point "-,2", dew point min "-2,2", wind speed ",4".
    row = row_at(result, "observed_at", utc(2024, 6, 20, 16))
    assert (row["dew_point_c"], row["dew_point_min_c"], row["wind_speed_ms"]) == (-0.2, -2.2, 0.4)
    last = row_at(result, "observed_at", utc(2024, 12, 31, 23))
    assert (last["_line_number"], last["wind_speed_ms"]) == (8793, 1.4)
    assert (last["wmo_code"], last["station"]) == ("A701", "SAO PAULO - MIRANTE")
    assert (last["latitude"], last["longitude"], last["altitude"]) == (-23.49638888, -46.61999999, 785.64)
    assert result.metadata["founded_on"] == "2006-07-25"  # "25/07/06"


def test_bdmep_daily_values(parsed: dict[str, ParsedFile]) -> None:
    result = parsed[BDMEP]
    assert (result.layout, result.dataset) == ("inmet_bdmep", "inmet_bdmep_daily")
    assert result.table.column_names == [
        "observed_on",
        "wmo_code",
        "station",
        "latitude",
        "longitude",
        "altitude",
        "precipitation_mm",
        "air_temp_mean_c",
        "rel_humidity_mean_pct",
        "_line_number",
    ]
    rows = result.table.slice(0, 3).to_pylist()
    assert [r["observed_on"] for r in rows] == [date(2000, 5, 6), date(2000, 5, 7), date(2000, 5, 8)]
    assert [r["_line_number"] for r in rows] == [12, 13, 14]
    assert [r["precipitation_mm"] for r in rows] == [None, None, 0.0]
    assert [r["air_temp_mean_c"] for r in rows] == [None, None, 22.1]
    assert [r["rel_humidity_mean_pct"] for r in rows] == [None, 49.2, 60.3]
    assert (rows[0]["wmo_code"], rows[0]["station"], rows[0]["latitude"]) == (
        "A001",
        "BRASILIA",
        -15.78944444,
    )
    assert result.metadata["periodicity"] == "Diaria"
    last = result.table.slice(result.table.num_rows - 1).to_pylist()[0]
    assert (last["observed_on"], last["_line_number"], last["air_temp_mean_c"]) == (
        date(2024, 5, 26),
        8798,
        21.5,
    )


@pytest.mark.parametrize("name", [*YEARLY, BDMEP])
def test_crlf_copy_gives_the_identical_table(parsed: dict[str, ParsedFile], name: str) -> None:
    crlf = raw(name).replace(b"\n", b"\r\n")
    again = parse_file(crlf, name)
    assert again.table.equals(parsed[name].table)
    assert again.rows_in == parsed[name].rows_in


@pytest.mark.parametrize("name", YEARLY)
def test_typed_fast_path_and_string_path_agree(parsed: dict[str, ParsedFile], name: str) -> None:
    slow = parse_yearly(prepare(raw(name), name), name, force_strings=True)
    assert slow.table.equals(parsed[name].table)


def test_utf8_reencoded_yearly_file_parses_the_same(parsed: dict[str, ParsedFile]) -> None:
    utf8 = raw(NEW).decode("cp1252").encode("utf-8")
    again = parse_file(utf8, NEW)
    assert again.table.equals(parsed[NEW].table)
    assert again.metadata["encoding"] == "utf-8"


def test_latitude_without_leading_zero() -> None:
    data = raw(NEW).replace(b"LATITUDE:;-23,49638888", b"LATITUDE:;,03499999")
    data = data.replace(b"LONGITUDE:;-46,61999999", b"LONGITUDE:;-,2")
    result = parse_file(data, NEW)
    assert result.table.column("latitude")[0].as_py() == 0.03499999
    assert result.table.column("longitude")[0].as_py() == -0.2


# --------------------------------------------------------------------------------------------------
# Variants real users bring
# --------------------------------------------------------------------------------------------------


def _header_and_data(name: str) -> tuple[list[bytes], list[bytes]]:
    lines = raw(name).split(b"\n")
    return lines[:9], [line for line in lines[9:] if line]


def test_numbers_with_points_instead_of_commas_parse_to_the_same_values(
    parsed: dict[str, ParsedFile],
) -> None:
    header, data = _header_and_data(NEW)
    dotted = b"\n".join([*header, *(line.replace(b",", b".") for line in data)]) + b"\n"
    result = parse_file(dotted, NEW)
    assert result.table.equals(parsed[NEW].table)


def test_mixed_points_and_commas_parse_to_the_same_values(parsed: dict[str, ParsedFile]) -> None:
    header, data = _header_and_data(NEW)
    mixed = [line.replace(b",", b".") if i % 2 else line for i, line in enumerate(data)]
    result = parse_file(b"\n".join([*header, *mixed]) + b"\n", NEW)
    assert result.table.equals(parsed[NEW].table)


def test_a_column_missing_from_one_year_becomes_nulls(parsed: dict[str, ParsedFile]) -> None:
    header, data = _header_and_data(Y2019)
    radiation = 6  # 0-based field index of "RADIACAO GLOBAL (KJ/m²)"
    assert b"RADIACAO" in header[8].split(b";")[radiation]

    def drop(line: bytes) -> bytes:
        fields = line.split(b";")
        return b";".join(fields[:radiation] + fields[radiation + 1 :])

    result = parse_file(b"\n".join([*header[:8], drop(header[8]), *map(drop, data)]) + b"\n", Y2019)
    assert result.table.column_names == EXPECTED_HOURLY_COLUMNS
    assert result.table.column("radiation_kj_m2").null_count == result.table.num_rows == 8760
    assert result.metadata["missing_columns"] == "radiation_kj_m2"
    original = parsed[Y2019].table
    assert result.table.drop_columns(["radiation_kj_m2"]).equals(original.drop_columns(["radiation_kj_m2"]))


def test_columns_in_another_order_map_by_name(parsed: dict[str, ParsedFile]) -> None:
    header, data = _header_and_data(NEW)

    def swap(line: bytes) -> bytes:  # swap precipitation (2) and wind speed (18)
        fields = line.split(b";")
        fields[2], fields[18] = fields[18], fields[2]
        return b";".join(fields)

    result = parse_file(b"\n".join([*header[:8], swap(header[8]), *map(swap, data)]) + b"\n", NEW)
    assert result.table.equals(parsed[NEW].table)


def test_an_unknown_extra_column_is_kept_under_its_snake_case_name() -> None:
    header, data = _header_and_data(NEW)
    extra_header = header[8] + "PRESSÃO ATMOSFERICA AO NIVEL DO MAR (mB);".encode("cp1252")
    extra_data = [line + b"1013,2;" for line in data]
    result = parse_file(b"\n".join([*header[:8], extra_header, *extra_data]) + b"\n", NEW)
    name = "pressao_atmosferica_ao_nivel_do_mar_mb"
    assert result.table.column_names == [*EXPECTED_HOURLY_COLUMNS[:-1], name, "_line_number"]
    assert result.table.column(name).type == pa.float64()
    assert result.table.column(name)[0].as_py() == 1013.2
    assert result.metadata["extra_columns"] == name


def test_2019_variant_header_with_question_marks_in_keys(parsed: dict[str, ParsedFile]) -> None:
    # REGI?O:, ESTAC?O:, DATA DE FUNDAC?O: (literal "?") are recognised like REGIÃO: and REGIAO:.
    assert parsed[Y2019].metadata["region"] == "S"
    assert parsed[Y2019].metadata["station"] == "CURITIBA"


# --------------------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------------------


def test_empty_file_is_rejected_whole() -> None:
    with pytest.raises(ParseError, match=r"empty\.csv: empty file \(0 bytes\)"):
        parse_file(b"", "empty.csv")
    with pytest.raises(ParseError, match="only whitespace"):
        parse_file(b"  \n\r\n\t\n", "blank.csv")
    with pytest.raises(ParseError, match="empty file"):
        detect_layout(b"")


@pytest.mark.parametrize(
    ("content", "what"),
    [
        (b"PK\x03\x04" + bytes(range(256)) * 4, "ZIP"),
        (b"\x89PNG\r\n\x1a\n" + bytes(200), "PNG"),
        (b"a;b;c\n1;2;3\n\x00\x00\x00\x01\x02garbage", "NUL"),
        (bytes(range(1, 32)) * 100, "control bytes"),
    ],
)
def test_binary_file_named_csv_is_rejected(content: bytes, what: str) -> None:
    with pytest.raises(ParseError, match=rf"data\.csv: binary file.*{what}"):
        parse_file(content, "data.csv")


def test_header_only_file_gives_zero_rows_with_the_full_schema() -> None:
    header_only = b"\n".join(raw(NEW).split(b"\n")[:9]) + b"\n"
    result = parse_file(header_only, NEW)
    assert (result.rows_in, result.table.num_rows, result.rejected.num_rows) == (0, 0, 0)
    assert result.table.column_names == EXPECTED_HOURLY_COLUMNS
    assert result.table.schema == parse_file(raw(NEW), NEW).table.schema
    assert result.metadata["wmo_code"] == "A701"


def test_truncated_last_line_is_rejected_with_its_line_number(parsed: dict[str, ParsedFile]) -> None:
    data = raw(NEW)
    cut = data[: data.rindex(b";924,8;") + 6]  # ends "...;0;924,8" in line 8793
    result = parse_file(cut, NEW)
    assert result.rows_in == 8784
    assert result.table.num_rows == 8783
    rejected = result.rejected.to_pylist()
    assert len(rejected) == 1
    assert rejected[0]["line_number"] == 8793
    assert rejected[0]["source_file"] == NEW
    assert rejected[0]["reason"].startswith("expected 20 fields (with the trailing ';'), got 4")
    assert rejected[0]["raw_line"] == "2024/12/31;2300 UTC;0;924,8"
    assert result.table.equals(parsed[NEW].table.slice(0, 8783))


def test_last_line_missing_only_its_final_semicolon_is_rejected() -> None:
    # Without the trailing ';' the last value could itself be cut ("1,4" -> "1"): not trusted.
    result = parse_file(raw(NEW).rstrip(b"\n")[:-1], NEW)
    assert result.rejected.column("line_number").to_pylist() == [8793]
    assert result.table.num_rows == 8783


def test_unparseable_dates_and_hours_are_rejected_per_row() -> None:
    lines = raw(NEW).split(b"\n")
    lines[19] = lines[19].replace(b"2024/01/01", b"2024/13/45")  # line 20
    lines[29] = lines[29].replace(b"2024/01/01", b"01-01-2024")  # line 30
    lines[39] = lines[39].replace(b"0600 UTC", b"2500 UTC")  # line 40
    lines[49] = lines[49].replace(b"2024/01/02", b"")  # line 50: empty date
    result = parse_file(b"\n".join(lines), NEW)
    rejected = {r["line_number"]: r for r in result.rejected.to_pylist()}
    assert sorted(rejected) == [20, 30, 40, 50]
    assert rejected[20]["reason"] == "expected a date YYYY-MM-DD or YYYY/MM/DD, got '2024/13/45'"
    assert rejected[30]["reason"] == "expected a date YYYY-MM-DD or YYYY/MM/DD, got '01-01-2024'"
    assert rejected[40]["reason"] == "expected an hour HH:MM or HHMM UTC, got '2500 UTC'"
    assert rejected[50]["reason"] == "expected a date, got an empty cell"
    assert rejected[40]["raw_line"].startswith("2024/01/02;2500 UTC;")
    assert result.rows_in == 8784
    assert result.table.num_rows == 8780
    assert 20 not in result.table.column("_line_number").to_pylist()


def test_a_cell_that_is_not_a_number_rejects_its_row_only() -> None:
    lines = raw(NEW).split(b"\n")
    fields = lines[99].split(b";")  # line 100
    fields[7] = b"19,5abc"  # air temperature
    lines[99] = b";".join(fields)
    result = parse_file(b"\n".join(lines), NEW)
    rejected = result.rejected.to_pylist()
    assert [r["line_number"] for r in rejected] == [100]
    assert rejected[0]["reason"].startswith("column air_temp_c ('TEMPERATURA DO AR - BULBO SECO, HORARIA")
    assert rejected[0]["reason"].endswith("expected a number, got '19,5abc'")
    assert result.table.num_rows == 8783


def test_blank_lines_are_skipped_and_line_numbers_stay_true() -> None:
    lines = raw(NEW).split(b"\n")
    with_blanks = [*lines[:50], b"", b"   ", *lines[50:]]
    result = parse_file(b"\n".join(with_blanks), NEW)
    assert result.rows_in == 8784
    assert result.rejected.num_rows == 0
    numbers = result.table.column("_line_number").to_pylist()
    assert numbers[39:42] == [49, 50, 53]  # lines 51-52 are the blank ones
    assert result.table.column("observed_at")[41].as_py() == utc(2024, 1, 2, 17)


def test_a_large_file_read_on_threads_keeps_true_line_numbers() -> None:
    """A body of at least THREADED_READ_BYTES goes through Arrow's multi-threaded read, which does
    not report row numbers; a malformed line there must still be rejected under its own number."""
    lines = raw(NEW).split(b"\n")
    header, data = lines[:9], [line for line in lines[9:] if line]
    copies = THREADED_READ_BYTES // len(b"\n".join(data)) + 2
    body = data * copies
    truncated = 5 * len(data) + 17  # 0-based index into body
    body[truncated] = body[truncated][:30]
    body.insert(3 * len(data), b"")  # a blank line before it shifts every later line by one
    result = parse_file(b"\n".join([*header, *body]), NEW)
    assert len(b"\n".join(body)) >= THREADED_READ_BYTES
    line_number = 9 + truncated + 2  # 9 header lines, 1-based, the blank line inserted before it
    assert result.rejected.column("line_number").to_pylist() == [line_number]
    assert result.rejected.column("raw_line").to_pylist() == [data[17][:30].decode()]
    assert result.rows_in == len(data) * copies
    assert result.table.num_rows == len(data) * copies - 1
    numbers = result.table.column("_line_number").to_pylist()
    assert numbers[truncated - 1 : truncated + 1] == [line_number - 1, line_number + 1]
    assert numbers[-1] == 9 + len(data) * copies + 1


def test_a_50_mb_line_is_rejected_without_blowing_up() -> None:
    lines = raw(NEW).split(b"\n")
    giant = b"2024/01/01;" + b"9" * (50 * 1024 * 1024)
    started = time.perf_counter()
    result = parse_file(b"\n".join([*lines[:100], giant, *lines[100:]]), NEW)
    elapsed = time.perf_counter() - started
    rejected = result.rejected.to_pylist()
    assert [r["line_number"] for r in rejected] == [101]
    assert rejected[0]["reason"].startswith(f"line is {len(giant)} bytes long; expected at most 1048576")
    assert len(rejected[0]["raw_line"]) == 500
    assert result.rows_in == 8785
    assert result.table.num_rows == 8784
    # lines[:100] is 9 header lines and 91 data lines, so row 90 is line 100 and row 91 line 102.
    assert result.table.column("_line_number").to_pylist()[90:92] == [100, 102]
    assert elapsed < 10, f"a 50 MB line took {elapsed:.1f} s"


def test_a_file_that_is_one_50_mb_line_is_rejected_whole() -> None:
    with pytest.raises(ParseError, match=r"big\.csv: line 1: expected at most 1048576 bytes per line"):
        parse_file(b"x" * (50 * 1024 * 1024), "big.csv")


def test_inmet_header_without_its_table_is_rejected_whole() -> None:
    truncated = b"\n".join(raw(NEW).split(b"\n")[:6])
    with pytest.raises(ParseError, match=r"expected the column header 'Data;Hora UTC;\.\.\.'"):
        parse_file(truncated, NEW)


def test_inmet_file_without_a_wmo_code_is_rejected_whole() -> None:
    data = raw(NEW).replace(b"CODIGO (WMO):;A701\n", b"")
    with pytest.raises(ParseError, match=r"expected a 'CODIGO \(WMO\):;<code>' line"):
        parse_file(data, NEW)


def test_bad_latitude_in_header_names_the_line() -> None:
    data = raw(NEW).replace(b"LATITUDE:;-23,49638888", b"LATITUDE:;north")
    with pytest.raises(ParseError, match=r"line 5: expected a number for latitude, got 'north'"):
        parse_file(data, NEW)


def test_bdmep_header_only_and_truncated() -> None:
    data = raw(BDMEP)
    header_only = data[: data.index(b"\n", data.index(b"Data Medicao")) + 1]
    empty = parse_file(header_only, BDMEP)
    assert (empty.rows_in, empty.table.num_rows, empty.dataset) == (0, 0, "inmet_bdmep_daily")
    truncated = parse_file(data.rstrip(b"\n")[:-6], BDMEP)  # "...;0;21.5;55.8;" -> "...;0;21."
    assert truncated.rejected.column("line_number").to_pylist() == [8798]
    assert truncated.rows_in == 8787


def test_bdmep_hourly_export() -> None:
    text = (
        "Nome: BRASILIA\nCodigo Estacao: A001\nLatitude: -15.78944444\nLongitude: -47.92583332\n"
        "Altitude: 1160.96\nSituacao: Operante\nData Inicial: 2024-01-01\nData Final: 2024-01-01\n"
        "Periodicidade da Medicao: Horaria\n\n"
        "Data Medicao;Hora Medicao;PRECIPITACAO TOTAL, HORARIO(mm);TEMPERATURA DO AR - BULBO SECO, "
        "HORARIA(°C);UMIDADE RELATIVA DO AR, HORARIA(%);\n"
        "2024-01-01;0000;0;21.3;80;\n2024-01-01;0100;null;20.8;null;\n"
    )
    result = parse_file(text.encode("utf-8"), "dados_A001_H_2024-01-01_2024-01-01.csv")
    assert (result.layout, result.dataset) == ("inmet_bdmep", "inmet_bdmep_hourly")
    rows = result.table.to_pylist()
    assert [r["observed_at"] for r in rows] == [utc(2024, 1, 1, 0), utc(2024, 1, 1, 1)]
    assert [(r["precipitation_mm"], r["air_temp_c"], r["rel_humidity_pct"]) for r in rows] == [
        (0.0, 21.3, 80.0),
        (None, 20.8, None),
    ]
    assert [r["_line_number"] for r in rows] == [12, 13]


# --------------------------------------------------------------------------------------------------
# Generic CSV
# --------------------------------------------------------------------------------------------------


def test_generic_comma_utf8_with_types_and_quotes() -> None:
    text = (
        "ID,Nome da Estação,Valor (%),Data,Quando,Ativo,Código\n"
        '1,"São Paulo, SP",12.5,2024-01-31,2024-01-31 10:30:00,true,007\n'
        "2,Curitiba,-3,2024-02-29,2024-02-29T23:00:00,false,010\n"
        "3,Belém,,2024-03-01,2024-03-01 00:00:00,TRUE,100\n"
    )
    result = parse_file(text.encode("utf-8"), "stations.csv")
    assert (result.layout, result.dataset, result.rows_in) == ("generic_csv", "generic", 3)
    table = result.table
    assert table.column_names == [
        "id",
        "nome_da_estacao",
        "valor_pct",
        "data",
        "quando",
        "ativo",
        "codigo",
        "_line_number",
    ]
    assert table.schema.field("id").type == pa.int64()
    assert table.schema.field("valor_pct").type == pa.float64()
    assert table.schema.field("data").type == pa.date32()
    assert table.schema.field("quando").type == pa.timestamp("us", tz="UTC")
    assert table.schema.field("ativo").type == pa.bool_()
    assert table.schema.field("codigo").type == pa.string()  # leading zeros: a code, not a number
    assert table.column("nome_da_estacao").to_pylist() == ["São Paulo, SP", "Curitiba", "Belém"]
    assert table.column("valor_pct").to_pylist() == [12.5, -3.0, None]
    assert table.column("quando")[0].as_py() == utc(2024, 1, 31, 10, 30)
    assert table.column("_line_number").to_pylist() == [2, 3, 4]


def test_generic_semicolon_decimal_comma_cp1252() -> None:
    text = "Estação;Temperatura (°C);Umidade\nSão Paulo;21,5;80\nCuritiba;-,5;91\n"
    result = parse_file(text.encode("cp1252"), "legacy.csv")
    assert result.metadata["encoding"] == "cp1252"
    assert result.metadata["delimiter"] == ";"
    assert result.metadata["decimal_point"] == ","
    assert result.table.column("temperatura_c").to_pylist() == [21.5, -0.5]
    assert result.table.column("estacao").to_pylist() == ["São Paulo", "Curitiba"]
    assert result.table.column("umidade").to_pylist() == [80, 91]


@pytest.mark.parametrize("delimiter", ["\t", "|"])
def test_generic_tab_and_pipe(delimiter: str) -> None:
    text = delimiter.join(["a", "b"]) + "\n" + delimiter.join(["1", "x"]) + "\n"
    result = parse_file(text.encode(), "t.txt")
    assert result.metadata["delimiter"] == delimiter
    assert result.table.to_pylist() == [{"a": 1, "b": "x", "_line_number": 2}]


def test_generic_without_header_and_with_preamble() -> None:
    no_header = parse_file(b"1;2,5\n3;4,5\n", "n.csv")
    assert no_header.table.column_names == ["column_1", "column_2", "_line_number"]
    assert no_header.table.column("column_2").to_pylist() == [2.5, 4.5]
    assert no_header.table.column("_line_number").to_pylist() == [1, 2]
    with_preamble = parse_file(b"Report of 2024\nexported by x\na,b,c\n1,2,3\n", "p.csv")
    assert with_preamble.metadata["preamble_1"] == "Report of 2024"
    assert with_preamble.table.column_names == ["a", "b", "c", "_line_number"]
    assert with_preamble.table.column("_line_number").to_pylist() == [4]


def test_generic_truncated_line_and_header_only() -> None:
    result = parse_file(b"a,b,c\n1,2,3\n4,5\n6,7,8\n", "t.csv")
    assert result.rejected.to_pylist() == [
        {
            "source_file": "t.csv",
            "line_number": 3,
            "reason": "expected 3 fields, got 2 (truncated or malformed line)",
            "raw_line": "4,5",
        }
    ]
    assert result.table.column("a").to_pylist() == [1, 6]
    assert result.rows_in == 3
    header_only = parse_file(b"a,b,c\n", "h.csv")
    assert (header_only.rows_in, header_only.table.num_rows) == (0, 0)
    assert header_only.table.column_names == ["a", "b", "c", "_line_number"]


def test_generic_utf16_excel_export() -> None:
    text = "nome\tvalor\nJoão\t1,5\n"
    result = parse_file(text.encode("utf-16"), "excel.txt")
    assert result.table.column("nome").to_pylist() == ["João"]
    assert result.table.column("valor").to_pylist() == [1.5]


def test_generic_single_column_with_blank_lines() -> None:
    result = parse_file(b"value\n1\n\n2\n", "one.csv")
    assert result.table.column("value").to_pylist() == [1, 2]
    assert result.table.column("_line_number").to_pylist() == [2, 4]
    assert result.rows_in == 2
