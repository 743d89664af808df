"""Reading delimited data lines with Arrow while keeping the source line of every row.

The happy path is one Arrow read and no Python loop over rows; malformed, blank and over-long lines
are found and rejected with their line numbers, and only a body that has them pays for a line scan.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.csv as pv

from trilha.domain.formats.encoding import MAX_LINE_BYTES
from trilha.domain.formats.parsed import RAW_LINE_CHARS, Rejects

#: Arrow needs every row to fit in one block; four times the line limit leaves room for any accepted row.
BLOCK_SIZE = 4 * MAX_LINE_BYTES
#: Bodies at least this large are read on Arrow's thread pool. Smaller ones (an INMET yearly file
#: is ~1 MB) are read on the calling thread: staging already runs one file per core, and handing a
#: small read to the pool costs more than it saves (measured: ~8% of staging time per file).
THREADED_READ_BYTES = 2 * BLOCK_SIZE


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
