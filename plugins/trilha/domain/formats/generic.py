"""Generic delimited text: whatever CSV-shaped data a project brings that is not an INMET layout.

Sniffed from the content, in this order:

* encoding: UTF-8 when the bytes are valid UTF-8, else cp1252 (latin-1 for its undefined bytes);
* delimiter: the one of ``,`` ``;`` tab ``|`` that splits the sample lines into the most consistent
  number of fields (quote-aware);
* header row: the first line with the table's field count (lines before it are kept as
  ``preamble_<n>`` metadata); it is a header unless one of its fields is a number or a date,
  in which case columns are named ``column_1``... and the line is data;
* decimal separator: ``,`` when the delimiter is not a comma and the sample's numbers use commas.

Columns get snake_case ASCII names. Types are inferred per column over *all* its values: int64
(never for values with leading zeros such as ``007``, which are codes, not numbers), float64, bool,
date32, timestamp (naive values are taken as UTC), else string. Thousands separators are not
interpreted: such columns stay strings. Rows are one line each; a quoted value spanning lines makes
its lines rejected (with their text) rather than silently merged.
"""

from __future__ import annotations

import csv
import re
from collections import Counter

import pyarrow as pa
import pyarrow.compute as pc

from trilha.domain.formats.csvread import CsvDialect, read_delimited
from trilha.domain.formats.encoding import sample_lines, to_utf8
from trilha.domain.formats.naming import snake_case, unique_names
from trilha.domain.formats.parsed import LINE_NUMBER_COLUMN, ParsedFile, Rejects
from trilha.exceptions import ParseError

LAYOUT = "generic_csv"
DATASET = "generic"

_DELIMITERS = (",", ";", "\t", "|")
_NULL_VALUES: tuple[str, ...] = ("", "NA", "N/A", "n/a", "NULL", "null", "None", "NaN", "nan", "#N/A")
_INT_RE = r"^[+-]?(0|[1-9][0-9]*)$"
_LEADING_ZERO_RE = r"^[+-]?0[0-9]"
_FLOAT_RE = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"
_DATE_RE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_TIMESTAMP_RE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?$"
_ZONED_TIMESTAMP_RE = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?(Z|[+-][0-9]{2}:?[0-9]{2})$"
)
_LOOKS_NUMERIC = re.compile(r"^\s*[+-]?(\d+([.,]\d*)?|[.,]\d+)\s*$")
_LOOKS_DATE = re.compile(r"^\s*\d{1,4}[-/]\d{1,2}[-/]\d{1,4}")
_COMMA_DECIMAL = re.compile(r"^[+-]?\d*,\d+$")
_POINT_DECIMAL = re.compile(r"^[+-]?\d*\.\d+$")


def _fields(line: str, delimiter: str) -> list[str]:
    return next(csv.reader([line], delimiter=delimiter, quotechar='"'), [])


def _clean(value: str, delimiter: str) -> bool:
    """A field that looks whole: a number (either decimal mark), or text holding no other
    candidate delimiter. Splitting ``1;2,5`` on ``,`` leaves ``1;2``, which is not."""
    if _LOOKS_NUMERIC.match(value):
        return True
    return not any(other in value for other in _DELIMITERS if other != delimiter)


def sniff_delimiter(lines: list[str]) -> tuple[str, int]:
    """The delimiter that splits the sample lines most consistently, and its field count.

    Ranked by: share of lines with the most common field count, then share of fields that look
    whole (see :func:`_clean`), then the field count. ``1;2,5`` splits into two fields on both
    ``;`` and ``,``; only ``;`` leaves whole fields.
    """
    best = (",", 1)
    best_score: tuple[float, float, int] = (0.0, 0.0, 1)
    for delimiter in _DELIMITERS:
        rows = [_fields(line, delimiter) for line in lines]
        if not rows:
            continue
        counts = Counter(len(r) for r in rows if len(r) > 1)
        if not counts:
            continue
        # Ties go to the wider split (Counter keeps first-seen order, so sort explicitly).
        mode, hits = max(counts.items(), key=lambda item: (item[1], item[0]))
        fields = [f for r in rows for f in r]
        clean = sum(_clean(f, delimiter) for f in fields) / len(fields)
        score = (hits / len(rows), clean, mode)
        if score > best_score:
            best, best_score = (delimiter, mode), score
    return best


def _is_header(fields: list[str]) -> bool:
    values = [f for f in fields if f.strip()]
    return bool(values) and not any(_LOOKS_NUMERIC.match(v) or _LOOKS_DATE.match(v) for v in values)


def sniff_decimal(lines: list[str], delimiter: str) -> str:
    if delimiter == ",":
        return "."
    comma = point = 0
    for line in lines:
        for value in _fields(line, delimiter):
            value = value.strip()
            comma += bool(_COMMA_DECIMAL.match(value))
            point += bool(_POINT_DECIMAL.match(value))
    return "," if comma > point else "."


def infer_column(values: pa.Array | pa.ChunkedArray, decimal: str) -> pa.Array:
    """Type a string column by testing *every* value against each candidate type, strictest first."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    present = values.drop_null()
    if len(present) == 0:
        return values

    def every(pattern: str, array: pa.Array = present) -> bool:
        return bool(pc.all(pc.match_substring_regex(array, pattern)).as_py())

    candidates: list[tuple[str, pa.DataType, pa.Array]] = [(_INT_RE, pa.int64(), values)]
    numeric = pc.replace_substring(values, ",", ".") if decimal == "," else values
    candidates.append((_FLOAT_RE, pa.float64(), numeric))
    # "007", "0123": codes (postal codes, station ids) whose leading zeros a number would lose.
    if bool(pc.any(pc.match_substring_regex(present, _LEADING_ZERO_RE)).as_py()):
        candidates = []
    for pattern, type_, source in candidates:
        if every(pattern, source.drop_null()):
            try:
                return pc.cast(source, type_)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                continue  # e.g. an integer beyond int64: keep looking
    lowered = pc.utf8_lower(present)
    if bool(pc.all(pc.is_in(lowered, value_set=pa.array(["true", "false"]))).as_py()):
        return pc.equal(pc.utf8_lower(values), "true")
    for pattern, type_ in (
        (_DATE_RE, pa.date32()),
        (_TIMESTAMP_RE, pa.timestamp("us")),
        (_ZONED_TIMESTAMP_RE, pa.timestamp("us", tz="UTC")),
    ):
        if every(pattern):
            try:
                typed = pc.cast(values, type_)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                break
            if pa.types.is_timestamp(type_) and type_.tz is None:
                # Naive timestamps are taken as UTC: the lake stores every timestamp in UTC.
                typed = pc.assume_timezone(typed, "UTC")
            return typed
    return values


def parse_generic(data: bytes, name: str) -> ParsedFile:
    """Parse generic delimited text (``data`` already checked and LF-normalized)."""
    data, encoding = to_utf8(data)
    spans = sample_lines(data, name)
    texts = [data[a:b].decode("utf-8") for a, b in spans]
    numbered = [(i + 1, t) for i, t in enumerate(texts) if t.strip()]
    if not numbered:
        raise ParseError(f"{name}: expected a header line, got only blank lines")
    delimiter, width = sniff_delimiter([t for _, t in numbered[:200]])

    header_number, header_text = next(
        ((n, t) for n, t in numbered if len(_fields(t, delimiter)) == width), numbered[0]
    )
    metadata: dict[str, str] = {"layout": LAYOUT, "encoding": encoding, "delimiter": delimiter}
    for n, t in numbered:
        if n >= header_number:
            break
        metadata[f"preamble_{n}"] = t.strip()
    header_fields = _fields(header_text, delimiter)
    has_header = _is_header(header_fields)
    if has_header:
        names = unique_names(
            [snake_case(f, f"column_{i + 1}") for i, f in enumerate(header_fields)], {LINE_NUMBER_COLUMN}
        )
        body_start = spans[header_number - 1][1] + 1
        first_line = header_number + 1
    else:
        names = [f"column_{i + 1}" for i in range(len(header_fields))]
        body_start = spans[header_number - 1][0]
        first_line = header_number
    metadata["header_line"] = str(header_number) if has_header else ""
    data_sample = [t for n, t in numbered if n >= first_line][:100]
    decimal = sniff_decimal(data_sample, delimiter)
    metadata["decimal_point"] = decimal

    arrow_names = [f"f{i}" for i in range(len(names))]
    rejects = Rejects(name)
    read = read_delimited(
        memoryview(data)[body_start:] if body_start <= len(data) else b"",
        first_line=first_line,
        column_names=arrow_names,
        column_types={f: pa.string() for f in arrow_names},
        dialect=CsvDialect(delimiter, '"', ".", _NULL_VALUES),
        rejects=rejects,
    )
    columns = {
        column: infer_column(read.table.column(arrow), decimal)
        for column, arrow in zip(names, arrow_names, strict=True)
    }
    columns[LINE_NUMBER_COLUMN] = pa.array(read.line_numbers, pa.int64())
    table = pa.table(columns)
    rejected = rejects.to_table()
    if read.lines_seen != table.num_rows + rejected.num_rows:
        raise RuntimeError(
            f"{name}: expected {read.lines_seen} data lines to become rows or rejections, "
            f"got {table.num_rows} rows and {rejected.num_rows} rejections"
        )
    return ParsedFile(LAYOUT, DATASET, table, rejected, read.lines_seen, metadata)
