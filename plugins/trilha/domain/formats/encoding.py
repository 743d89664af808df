"""Raw bytes to parseable text: empty and binary files refused, the encoding sniffed, BOM and
line endings normalized, and the sample lines that layout detection and header parsing look at.
"""

from __future__ import annotations

import numpy as np

from trilha.exceptions import ParseError

#: A data line longer than this is rejected without being parsed. INMET lines are ~200 bytes and no
#: sane CSV row is a megabyte; the limit keeps a corrupt 50 MB "line" from reaching the CSV reader.
MAX_LINE_BYTES = 1 << 20
#: How much of a file layout detection and header sniffing look at.
SNIFF_BYTES = 64 * 1024

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
