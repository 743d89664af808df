"""Building blocks shared by every layout parser: text preparation, line bookkeeping, the Arrow CSV
read that keeps the source line of every row, vectorized cell conversions and name normalization.

The parsers never loop over rows in Python on the happy path. Per-row Python work only happens for the
few lines that are rejected, and per-*value* work only over the distinct values of a column (24 hours,
366 dates), never over its rows.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

# Domain modules are imported inside task code (operators' execute), never by DAG files at parse
# time, so the parse-time ban on pyarrow does not apply here.
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pv

from trilha.exceptions import ParseError

#: A data line longer than this is rejected without being parsed. INMET lines are ~200 bytes and no
#: sane CSV row is a megabyte; the limit keeps a corrupt 50 MB "line" from reaching the CSV reader.
MAX_LINE_BYTES = 1 << 20
#: Arrow needs every row to fit in one block; four times the line limit leaves room for any accepted row.
BLOCK_SIZE = 4 * MAX_LINE_BYTES
#: ``raw_line`` in the rejected table is cut to this many characters.
RAW_LINE_CHARS = 500
#: How much of a file layout detection and header sniffing look at.
SNIFF_BYTES = 64 * 1024
#: Bodies at least this large are read on Arrow's thread pool. Smaller ones (an INMET yearly file
#: is ~1 MB) are read on the calling thread: staging already runs one file per core, and handing a
#: small read to the pool costs more than it saves (measured: ~8% of staging time per file).
THREADED_READ_BYTES = 2 * BLOCK_SIZE

REJECTED_SCHEMA = pa.schema(
    [
        pa.field("source_file", pa.string(), nullable=False),
        pa.field("line_number", pa.int64(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("raw_line", pa.string()),
    ]
)

LINE_NUMBER_COLUMN = "_line_number"

# Magic numbers of the binary formats most often renamed or exported as ".csv" by mistake.
_MAGIC = (
    (b"PK\x03\x04", "a ZIP archive (or XLSX/ODS spreadsheet)"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"%PDF", "a PDF document"),
    (b"PAR1", "a Parquet file"),
    (b"\xd0\xcf\x11\xe0", "an OLE2 document (XLS)"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"7z\xbc\xaf", "a 7-Zip archive"),
    (b"Rar!", "a RAR archive"),
)
# Control bytes that never occur in text (tab, LF, FF and CR excluded).
_CONTROL_BYTES = bytes(b for b in range(32) if b not in (9, 10, 12, 13)) + b"\x7f"


@dataclass(frozen=True)
class ParsedFile:
    """One source file turned into a typed table.

    ``rows_in`` counts the non-blank data lines after the header; it always equals
    ``table.num_rows + rejected.num_rows`` so that no line disappears unaccounted for.
    """

    layout: str
    dataset: str
    table: pa.Table
    rejected: pa.Table
    rows_in: int
    metadata: dict[str, str]


class Rejects:
    """The lines of one file that could not be parsed, with their reasons and raw text.

    A line is recorded once: several problems on the same line are merged into one reason
    (joined with ``"; "``), so ``rows_in == table rows + rejected rows`` always holds.
    """

    def __init__(self, source_file: str) -> None:
        self.source_file = source_file
        self._lines: dict[int, tuple[list[str], str]] = {}

    def add(self, line_number: int, reason: str, raw_line: str) -> None:
        entry = self._lines.get(int(line_number))
        if entry is None:
            self._lines[int(line_number)] = ([reason], raw_line[:RAW_LINE_CHARS])
        else:
            entry[0].append(reason)

    def __len__(self) -> int:
        return len(self._lines)

    def to_table(self) -> pa.Table:
        """The rejected rows sorted by line number."""
        numbers = sorted(self._lines)
        return pa.table(
            {
                "source_file": pa.array([self.source_file] * len(numbers), pa.string()),
                "line_number": pa.array(numbers, pa.int64()),
                "reason": pa.array(["; ".join(self._lines[n][0]) for n in numbers], pa.string()),
                "raw_line": pa.array([self._lines[n][1] for n in numbers], pa.string()),
            },
            schema=REJECTED_SCHEMA,
        )


# --------------------------------------------------------------------------------------------------
# Text preparation
# --------------------------------------------------------------------------------------------------


def check_not_binary(data: bytes, name: str) -> None:
    """Raise :class:`ParseError` for empty, whitespace-only or binary content."""
    if not data:
        raise ParseError(f"{name}: empty file (0 bytes); expected a delimited text file")
    if not data[:SNIFF_BYTES].strip() and not data.strip():
        raise ParseError(f"{name}: file holds only whitespace ({len(data)} bytes); expected data")
    for magic, what in _MAGIC:
        if data.startswith(magic):
            raise ParseError(f"{name}: binary file: expected delimited text, got {what}")
    sample = data[:SNIFF_BYTES]
    if b"\x00" in sample:
        # NUL never occurs in latin-1/UTF-8 text (UTF-16 is decoded before this check). Only the
        # sample is searched: a stray NUL further down is a bad cell, rejected with its row.
        raise ParseError(f"{name}: binary file: expected delimited text, got NUL bytes")
    controls = len(sample) - len(sample.translate(None, _CONTROL_BYTES))
    if controls > max(2, len(sample) // 100):
        raise ParseError(
            f"{name}: binary file: expected delimited text, got {controls} control bytes "
            f"in the first {len(sample)} bytes"
        )


def decode_bytes(data: bytes) -> tuple[str, str]:
    """Decode text as UTF-8 when it is valid UTF-8, else as cp1252 (latin-1 for its 5 holes).

    Latin-1 text with accents is almost never valid UTF-8, so trying UTF-8 first is a reliable
    sniff. cp1252 is a superset of latin-1 for printable characters, which INMET files use.
    """
    if data.isascii():
        return data.decode("ascii"), "ascii"
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252"), "cp1252"
    except UnicodeDecodeError:
        return data.decode("latin-1"), "latin-1"


def to_utf8(data: bytes) -> tuple[bytes, str]:
    """Return ``data`` as UTF-8 bytes (unchanged when already ASCII or UTF-8) and its encoding."""
    if data.isascii():
        return data, "ascii"
    text, encoding = decode_bytes(data)
    if encoding == "utf-8":
        return data, encoding
    return text.encode("utf-8"), encoding


def data_body(data: bytes, start: int) -> tuple[bytes | memoryview, str, bytes]:
    """The data lines from ``start`` on as UTF-8, their encoding, and the first data line.

    INMET data lines are ASCII even when the header has accents, so the usual case is a
    zero-copy view (numpy checks the high bit without copying ~1 MB per file).
    """
    if start >= len(data):
        return b"", "ascii", b""
    if int(np.frombuffer(data, dtype=np.uint8, offset=start).max()) < 128:
        body: bytes | memoryview = memoryview(data)[start:]
        encoding = "ascii"
    else:
        body, encoding = to_utf8(data[start:])
    first = bytes(body[:SNIFF_BYTES]).split(b"\n", 1)[0]
    return body, encoding, first


def normalize_newlines(data: bytes) -> bytes:
    """CRLF and lone CR become LF, so CRLF copies of a file parse to the identical table."""
    if b"\r" not in data:
        return data
    return data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")


def prepare(data: bytes, name: str) -> bytes:
    """Validate and normalize raw bytes: not empty, not binary, no BOM, LF line endings."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        # UTF-16 (Excel's "Unicode text") would look binary because of its NUL bytes.
        try:
            data = data.decode("utf-16").encode("utf-8")
        except UnicodeDecodeError as exc:
            raise ParseError(f"{name}: expected UTF-16 text after the UTF-16 BOM, got {exc}") from exc
    check_not_binary(data, name)
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    return normalize_newlines(data)


def sample_lines(data: bytes, name: str, max_lines: int = 64) -> list[tuple[int, int]]:
    """``(start, end)`` offsets (``end`` excludes the LF) of the first ``max_lines`` complete lines
    within the first :data:`SNIFF_BYTES` of ``data``: what detection and header parsing look at.

    Headers are short, so an over-long line further down (a corrupt data line) does not stop the
    file from being recognised; the data reader rejects it with its line number. Only a first line
    longer than :data:`MAX_LINE_BYTES` makes the whole file unreadable.
    """
    sample = data[:SNIFF_BYTES]
    complete = len(data) <= SNIFF_BYTES
    spans: list[tuple[int, int]] = []
    pos = 0
    while pos < len(sample) and len(spans) < max_lines:
        end = sample.find(b"\n", pos)
        if end < 0:
            if complete:
                spans.append((pos, len(sample)))
            break
        spans.append((pos, end))
        pos = end + 1
    if not spans:
        end = data.find(b"\n", 0, MAX_LINE_BYTES + 1)
        if end < 0 and len(data) > MAX_LINE_BYTES:
            raise ParseError(
                f"{name}: line 1: expected at most {MAX_LINE_BYTES} bytes per line, got a longer line "
                f"({len(data)} bytes without a line break)"
            )
        spans.append((0, len(data) if end < 0 else end))
    return spans


# --------------------------------------------------------------------------------------------------
# Names
# --------------------------------------------------------------------------------------------------


def ascii_fold(text: str) -> str:
    """Strip accents (``Ç`` -> ``C``, ``²`` -> ``2``) and drop what has no ASCII form."""
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")


def tokens(text: str) -> list[str]:
    """Upper-case ASCII word tokens of a header. ``?`` (a lost accent in 2019 files) splits nothing:
    it is removed, so ``DIRE?AO`` becomes ``DIREAO``; rules match by prefix, which survives that.
    """
    folded = ascii_fold(text).upper().replace("?", "")
    return re.findall(r"[A-Z0-9]+", folded)


def snake_case(text: str, fallback: str) -> str:
    """snake_case ASCII name for a header; ``fallback`` when nothing usable is left."""
    folded = ascii_fold(text.replace("%", " pct ")).lower()
    name = re.sub(r"[^a-z0-9]+", "_", folded).strip("_")
    if not name:
        return fallback
    if name[0].isdigit():
        # Names that start with a digit need quoting in SQL (Snowflake, Postgres).
        name = f"col_{name}"
    return name


def unique_names(names: Sequence[str], taken: Iterable[str] = ()) -> list[str]:
    """Make names unique by suffixing ``_2``, ``_3``... in order of appearance."""
    seen = set(taken)
    out: list[str] = []
    for name in names:
        candidate, n = name, 1
        while candidate in seen:
            n += 1
            candidate = f"{name}_{n}"
        seen.add(candidate)
        out.append(candidate)
    return out


# --------------------------------------------------------------------------------------------------
# Reading delimited data with line numbers
# --------------------------------------------------------------------------------------------------


@dataclass
class _InvalidRow:
    number: int
    expected: int
    actual: int
    text: str


def line_offsets(body: bytes | memoryview) -> np.ndarray:
    """Start offset of every line of ``body``, plus a sentinel so line ``i`` spans
    ``body[offsets[i] : offsets[i + 1] - 1]`` (without its LF)."""
    newlines = np.flatnonzero(np.frombuffer(body, dtype=np.uint8) == 10)
    if len(body) and body[-1] == 10:
        # The final LF ends the last line; it does not open an empty one.
        return np.concatenate(([0], newlines[:-1] + 1, [len(body)])).astype(np.int64)
    return np.concatenate(([0], newlines + 1, [len(body) + 1])).astype(np.int64)


def line_text(body: bytes | memoryview, offsets: np.ndarray, index: int) -> str:
    """Text of line ``index`` (0-based) of ``body``, cut to :data:`RAW_LINE_CHARS` characters."""
    start = int(offsets[index])
    end = min(int(offsets[index + 1]) - 1, start + RAW_LINE_CHARS * 4)
    return bytes(body[start:end]).decode("utf-8", "replace")[:RAW_LINE_CHARS]


def count_lines(body: bytes | memoryview) -> int:
    """Number of lines of a body that does not end with LF (0 for an empty body)."""
    if not len(body):
        return 0
    return int(np.count_nonzero(np.frombuffer(body, dtype=np.uint8) == 10)) + 1


@dataclass(frozen=True)
class CsvDialect:
    """How the data lines of a file are split and which cells mean "missing"."""

    delimiter: str
    quote_char: str | bool
    decimal_point: str
    null_values: tuple[str, ...]


@dataclass
class DelimitedRead:
    """A table read from data lines, with the 1-based source line of each row."""

    table: pa.Table
    line_numbers: np.ndarray
    body: bytes | memoryview
    first_line: int
    lines_seen: int  # non-blank data lines: rows read plus lines rejected while reading
    _offsets: np.ndarray | None = None

    def raw_line(self, line_number: int) -> str:
        """The text of a source line (for problems found after the read, such as a bad date)."""
        if self._offsets is None:
            self._offsets = line_offsets(self.body)
        return line_text(self.body, self._offsets, line_number - self.first_line)


def _empty_table(column_names: list[str], column_types: dict[str, pa.DataType] | None) -> pa.Table:
    types = column_types or {}
    return pa.table({name: pa.array([], types.get(name, pa.string())) for name in column_names})


def _arrow_read(
    body: bytes | memoryview,
    column_names: list[str],
    column_types: dict[str, pa.DataType] | None,
    dialect: CsvDialect,
    *,
    threads: bool,
) -> tuple[pa.Table, list[_InvalidRow]]:
    if not len(body):
        return _empty_table(column_names, column_types), []
    invalid: list[_InvalidRow] = []

    def on_invalid(row: pv.InvalidRow) -> str:
        # Called only for malformed rows (wrong field count). A single-threaded read reports the
        # physical row number, which the caller maps back to the line number in the file; a
        # multi-threaded one reports None, and the caller then reads again single-threaded.
        invalid.append(_InvalidRow(row.number, row.expected_columns, row.actual_columns, row.text))
        return "skip"

    table = pv.read_csv(
        pa.BufferReader(pa.py_buffer(body)),
        read_options=pv.ReadOptions(column_names=column_names, use_threads=threads, block_size=BLOCK_SIZE),
        parse_options=pv.ParseOptions(
            delimiter=dialect.delimiter,
            quote_char=dialect.quote_char,
            newlines_in_values=False,
            # With several columns an empty line is a malformed row (1 field), reported to the
            # handler like any other, so every line is accounted for without counting lines.
            ignore_empty_lines=len(column_names) == 1,
            invalid_row_handler=on_invalid,
        ),
        convert_options=pv.ConvertOptions(
            column_types=column_types or {},
            null_values=list(dialect.null_values),
            strings_can_be_null=True,
            quoted_strings_can_be_null=True,
            decimal_point=dialect.decimal_point,
        ),
    )
    if not threads and any(row.number is None or row.number < 1 for row in invalid):
        raise RuntimeError("Arrow did not report row numbers; the CSV read must be single-threaded")
    return table, invalid


def _without_lines(
    body: bytes | memoryview, offsets: np.ndarray, drop: np.ndarray
) -> tuple[bytes, np.ndarray]:
    """``body`` without the lines flagged in ``drop``, and the 0-based indices of the kept lines."""
    keep = np.flatnonzero(~drop)
    pieces: list[bytes | memoryview] = []
    if len(keep):
        # One slice per run of consecutive kept lines: a few slices for a few bad lines.
        breaks = np.flatnonzero(np.diff(keep) != 1)
        run_starts = np.concatenate(([keep[0]], keep[breaks + 1]))
        run_ends = np.concatenate((keep[breaks], [keep[-1]]))
        for first, last in zip(run_starts.tolist(), run_ends.tolist(), strict=True):
            pieces.append(body[int(offsets[first]) : int(offsets[last + 1]) - 1])
    return b"\n".join(pieces), keep


def _drop_empty_lines(
    table: pa.Table, indices: np.ndarray, body: bytes | memoryview
) -> tuple[pa.Table, np.ndarray]:
    """Remove the rows that come from empty lines (Arrow reads an empty line of a multi-column
    file as a row of nulls). Only rows whose first field is null can be one, so a file without
    such rows never pays for the line scan."""
    candidates = np.flatnonzero(np.asarray(table.column(0).is_null().to_numpy(zero_copy_only=False)))
    offsets = line_offsets(body)
    lines = indices[candidates]
    empty = (offsets[lines + 1] - 1 - offsets[lines]) == 0
    if not empty.any():
        return table, indices
    keep = np.ones(table.num_rows, dtype=bool)
    keep[candidates[empty]] = False
    return table.filter(pa.array(keep)), indices[keep]


def read_delimited(
    body: bytes | memoryview,
    *,
    first_line: int,
    column_names: list[str],
    column_types: dict[str, pa.DataType] | None,
    dialect: CsvDialect,
    rejects: Rejects,
    field_hint: str = "",
) -> DelimitedRead:
    """Read data lines with Arrow, rejecting malformed lines and numbering every row.

    :param body: the data lines: UTF-8, LF line endings, no header.
    :param first_line: the 1-based line number of the first line of ``body`` in the source file.
    :param column_names: one name per field (positional).
    :param column_types: Arrow types per column; columns not listed are inferred by Arrow.
    :param dialect: delimiter, quoting, decimal point and null markers.
    :param rejects: malformed (truncated, extra fields) and over-long lines are added here.
    :param field_hint: appended to the expected field count in messages.

    Blank lines are not data: they are skipped and not counted. The happy path is a single Arrow
    read (multi-threaded from :data:`THREADED_READ_BYTES` on); only a body with malformed, blank or
    over-long lines pays for a line-offset scan or, when it was read on threads, a second read.
    """
    end = len(body)
    while end and body[end - 1] == 10:
        end -= 1
    # Trailing blank lines are not data; a memoryview drops them without copying the body.
    body = memoryview(body)[:end]
    original = body
    rejected_lines = 0
    kept: np.ndarray | None = None  # indices of the original lines handed to Arrow, when not all
    if len(body) > MAX_LINE_BYTES:
        # Only a body this large can hold an over-long line: find them before Arrow sees them.
        offsets = line_offsets(body)
        lengths = np.diff(offsets) - 1
        too_long = lengths > MAX_LINE_BYTES
        if too_long.any():
            for index in np.flatnonzero(too_long).tolist():
                rejected_lines += 1
                rejects.add(
                    first_line + index,
                    f"line is {int(lengths[index])} bytes long; "
                    f"expected at most {MAX_LINE_BYTES} bytes per line",
                    line_text(body, offsets, index),
                )
            body, kept = _without_lines(body, offsets, too_long | (lengths == 0))

    # A large body is read optimistically on Arrow's thread pool; line numbers are then simply
    # consecutive, and a body with malformed or blank lines is read again single-threaded, which
    # is what makes Arrow report the row number of each malformed line.
    threads = len(body) >= THREADED_READ_BYTES
    table, invalid = _arrow_read(body, column_names, column_types, dialect, threads=threads)
    if invalid and threads:
        table, invalid = _arrow_read(body, column_names, column_types, dialect, threads=False)
    if len(column_names) > 1:
        physical = table.num_rows + len(invalid)  # empty lines came back as malformed rows
    else:
        # A single column cannot tell an empty line from an empty value, so Arrow skips empty
        # lines; count the lines, and if some were skipped drop them ourselves and read again.
        physical = count_lines(body)
        if table.num_rows + len(invalid) != physical:
            offsets = line_offsets(body)
            body, kept_now = _without_lines(body, offsets, np.diff(offsets) - 1 == 0)
            kept = kept_now if kept is None else kept[kept_now]
            physical = count_lines(body)
            table, invalid = _arrow_read(body, column_names, column_types, dialect, threads=False)
            if table.num_rows + len(invalid) != physical:
                raise RuntimeError(
                    f"{rejects.source_file}: expected {physical} rows or malformed lines from Arrow, "
                    f"got {table.num_rows + len(invalid)}"
                )

    maybe_empty_rows = len(column_names) > 1 and table.num_rows > 0 and table.column(0).null_count > 0
    if not invalid and kept is None and not maybe_empty_rows:
        # The usual case: every line became a row, numbered consecutively.
        numbers = np.arange(first_line, first_line + physical, dtype=np.int64)
        return DelimitedRead(table, numbers, original, first_line, physical)
    good = np.ones(physical, dtype=bool)
    for row in invalid:
        index = row.number - 1
        good[index] = False
        if not row.text.strip():
            continue  # a whitespace-only line is blank, not a malformed row
        source_index = index if kept is None else int(kept[index])
        rejected_lines += 1
        rejects.add(
            first_line + source_index,
            f"expected {row.expected} fields{field_hint}, got {row.actual} (truncated or malformed line)",
            row.text,
        )
    indices = np.flatnonzero(good)  # line (of the buffer Arrow read) of each table row
    if maybe_empty_rows:
        table, indices = _drop_empty_lines(table, indices, body)
    if kept is not None:
        indices = kept[indices]
    return DelimitedRead(
        table, indices.astype(np.int64) + first_line, original, first_line, len(indices) + rejected_lines
    )


# --------------------------------------------------------------------------------------------------
# Vectorized conversions
# --------------------------------------------------------------------------------------------------

_NUMBER_RE = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"


def _combined(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values


def to_float(values: pa.Array | pa.ChunkedArray) -> tuple[pa.Array, pa.Array | None]:
    """Convert strings with a decimal comma or point to float64.

    Both separators are accepted (INMET has no thousands separator) and the dropped leading zero
    (``,8``, ``-,2``) parses. Returns the floats and a mask of the cells that are not numbers
    (``None`` when every cell converted); those cells are null in the result.
    """
    values = _combined(values)
    if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
        return pc.cast(values, pa.float64()), None
    normalized = pc.replace_substring(values, ",", ".")
    try:
        return pc.cast(normalized, pa.float64()), None
    except pa.ArrowInvalid:
        pass
    bad = pc.fill_null(pc.invert(pc.match_substring_regex(normalized, _NUMBER_RE)), False)
    cleaned = pc.if_else(bad, pa.scalar(None, pa.string()), normalized)
    return pc.cast(cleaned, pa.float64()), bad


def map_unique(
    values: pa.Array | pa.ChunkedArray,
    convert: Callable[[str], object],
    target: pa.DataType,
    final: pa.DataType | None = None,
) -> tuple[pa.Array, pa.Array]:
    """Apply a Python conversion to each *distinct* value (``None`` = invalid) and spread the results.

    :param target: the Arrow type of the converted values.
    :param final: cast the result to this type (e.g. int32 days to date32).
    :returns: the converted array and a mask of non-null cells whose conversion failed.
    """
    encoded = pc.dictionary_encode(_combined(values))
    converted = [convert(v) if v is not None else None for v in encoded.dictionary.to_pylist()]
    failed = [c is None for c in converted]
    mapped = pa.array(converted, target)
    if final is not None:
        mapped = pc.cast(mapped, final)
    result = pc.take(mapped, encoded.indices)
    # A null index is a null cell (missing), which is not a conversion failure.
    bad = pc.fill_null(pc.take(pa.array(failed, pa.bool_()), encoded.indices), False)
    return result, bad


def constant(value: object, type_: pa.DataType, length: int) -> pa.Array:
    """An array repeating one value.

    Strings are assembled from buffers (offsets and repeated bytes): ~40x faster than
    ``pa.repeat``, and this runs for four station columns of every staged file.
    """
    if value is None:
        return pa.nulls(length, type_)
    if pa.types.is_dictionary(type_):
        # One dictionary entry and all-zero indices: no string is copied 8784 times, Parquet
        # writes the dictionary as is, and validation checks one value instead of every row.
        return pa.DictionaryArray.from_arrays(
            pa.array(np.zeros(length, dtype=np.int32)), pa.array([value], type_.value_type)
        )
    if pa.types.is_string(type_) and isinstance(value, str):
        encoded = value.encode("utf-8")
        if len(encoded) * length < 2**31:
            offsets = np.arange(0, (length + 1) * len(encoded), len(encoded) or 1, dtype=np.int32)
            if not encoded:
                offsets = np.zeros(length + 1, dtype=np.int32)
            return pa.Array.from_buffers(
                pa.string(), length, [None, pa.py_buffer(offsets), pa.py_buffer(encoded * length)]
            )
    if pa.types.is_floating(type_) and isinstance(value, float):
        return pa.array(np.full(length, value, dtype=np.float64), type_)
    return pc.take(pa.array([value], type_), pa.array(np.zeros(length, dtype=np.int32)))


def parse_decimal(text: str) -> float | None:
    """A header number such as ``-23,49638888`` or ``,03499999``; ``None`` when empty or missing."""
    text = text.strip().replace(",", ".")
    if not text or text.lower() == "null" or text.startswith("-9999"):
        return None
    return float(text)


def reject_cells(
    rejects: Rejects,
    read: DelimitedRead,
    mask: pa.Array | None,
    values: pa.Array | pa.ChunkedArray | None,
    expected: str,
) -> None:
    """Record every row flagged in ``mask`` as rejected: ``"<expected>, got '<cell>'"`` (or just
    ``expected`` when ``values`` is None)."""
    if mask is None or (isinstance(mask, pa.Array) and mask.true_count == 0):
        return
    flagged = np.flatnonzero(np.asarray(mask.to_numpy(zero_copy_only=False), dtype=bool))
    if not len(flagged):
        return
    cells = pc.take(values, pa.array(flagged)).to_pylist() if values is not None else [None] * len(flagged)
    for index, value in zip(flagged.tolist(), cells, strict=True):
        line_number = int(read.line_numbers[index])
        reason = expected if values is None else f"{expected}, got {value!r}"
        rejects.add(line_number, reason, read.raw_line(line_number))


def or_masks(masks: Iterable[pa.Array | None]) -> pa.Array | None:
    """OR of the non-None masks, or ``None`` when there is none."""
    result: pa.Array | None = None
    for mask in masks:
        if mask is None:
            continue
        result = mask if result is None else pc.or_(result, mask)
    return result
