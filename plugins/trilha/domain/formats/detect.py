"""Layout detection from content (never from the file name) and the ``parse_file`` dispatcher."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pyarrow as pa

from trilha.domain.formats.bdmep import looks_like_bdmep, parse_bdmep
from trilha.domain.formats.encoding import decode_bytes, prepare, sample_lines
from trilha.domain.formats.generic import parse_generic
from trilha.domain.formats.inmet import (
    YEARLY_LAYOUTS,
    is_column_header,
    looks_like_inmet_yearly,
    meta_key,
    parse_yearly,
    yearly_layout,
)
from trilha.domain.formats.naming import tokens
from trilha.exceptions import ParseError

if TYPE_CHECKING:
    from trilha.domain.formats.parsed import ParsedFile

LAYOUTS: tuple[str, ...] = (
    *YEARLY_LAYOUTS,
    "inmet_bdmep",
    "generic_csv",
)


def _sample_text(data: bytes, name: str) -> list[str]:
    spans = sample_lines(data, name)
    text, _ = decode_bytes(data[: spans[-1][1]])
    return text.split("\n")[: len(spans)]


def _detect_prepared(data: bytes, name: str) -> str:
    lines = _sample_text(data, name)
    if looks_like_inmet_yearly(lines):
        return yearly_layout(lines)
    head = [line for line in lines[:10] if line.strip()]
    known_keys = sum(
        1
        for line in head
        if ";" in line and line.partition(";")[0].strip().endswith(":") and meta_key(line.partition(";")[0])
    )
    if known_keys >= 4 and not any(is_column_header(line) for line in lines):
        # An INMET station header without its column header: truncated, not a generic CSV.
        raise ParseError(
            f"{name}: expected the column header 'Data;Hora UTC;...' after the INMET station header, "
            f"got none in the first {len(lines)} lines"
        )
    if looks_like_bdmep(lines):
        return "inmet_bdmep"
    if head and "".join(tokens(head[0].partition(":")[0])) == "NOME" and ";" not in head[0]:
        raise ParseError(f"{name}: expected a BDMEP export ('Codigo Estacao:' header line), got none")
    return "generic_csv"


def detect_layout(data: bytes) -> str:
    """Name the layout of a file from its bytes: one of :data:`LAYOUTS`.

    Raises :class:`ParseError` for empty, whitespace-only or binary content and for an INMET header
    without its table.
    """
    return _detect_prepared(prepare(data, "<bytes>"), "<bytes>")


def parse_file(data: bytes, name: str) -> ParsedFile:
    """Parse one file of any supported layout into a :class:`ParsedFile`.

    :param data: the file's bytes, exactly as stored.
    :param name: the file name or object key, used only in messages and the rejected rows.

    Whole-file problems (empty, binary, no header, header metadata that is not what it says)
    raise :class:`ParseError` naming the file (and the line when there is one). Line-level problems
    (truncated or malformed lines, bad dates, cells that are not numbers, over-long lines) become
    rows of ``ParsedFile.rejected`` and the rest of the file is parsed.
    """
    prepared = prepare(data, name)
    layout = _detect_prepared(prepared, name)
    try:
        if layout in YEARLY_LAYOUTS:
            return parse_yearly(prepared, name)
        if layout == "inmet_bdmep":
            return parse_bdmep(prepared, name)
        return parse_generic(prepared, name)
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        raise ParseError(f"{name}: expected {layout} content, got unreadable data: {exc}") from exc
