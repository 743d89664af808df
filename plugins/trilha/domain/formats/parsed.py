"""What a parser returns: the typed table, the rejected lines with their reasons, and the
bookkeeping that proves no data line disappears unaccounted for.
"""

from __future__ import annotations

from dataclasses import dataclass

# Domain modules are imported inside task code (operators' execute), never by DAG files at parse
# time, so the parse-time ban on pyarrow does not apply here.
import pyarrow as pa

#: ``raw_line`` in the rejected table is cut to this many characters.
RAW_LINE_CHARS = 500

REJECTED_SCHEMA = pa.schema(
    [
        pa.field("source_file", pa.string(), nullable=False),
        pa.field("line_number", pa.int64(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("raw_line", pa.string()),
    ]
)

#: The source line of every parsed row; contracts copy it into the quarantine rows.
LINE_NUMBER_COLUMN = "_line_number"


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


def make_parsed(
    layout: str, dataset: str, table: pa.Table, rejects: Rejects, rows_in: int, metadata: dict[str, str]
) -> ParsedFile:
    """Assemble the result and check that every data line is either a row or a rejection."""
    rejected = rejects.to_table()
    if rows_in != table.num_rows + rejected.num_rows:
        raise RuntimeError(
            f"{rejects.source_file}: expected {rows_in} data lines to become rows or rejections, "
            f"got {table.num_rows} rows and {rejected.num_rows} rejections"
        )
    return ParsedFile(layout, dataset, table, rejected, rows_in, metadata)
