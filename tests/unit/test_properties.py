"""Property-based tests (hypothesis) of the rules every file name and every INMET cell goes through.

Each property is checked against an independent statement of the rule (Python's own ``float``,
``datetime.date``, a plain re-statement of what a key may contain), on generated inputs that include
what the hand-picked cases miss: every Unicode category, surrogate-escaped bytes, empty segments,
boundary lengths. The runs are derandomized so CI sees the same examples every time.
"""

from __future__ import annotations

import os
import unicodedata
from datetime import date

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from trilha.domain.formats.cells import to_float
from trilha.domain.formats.measurements import parse_dates, parse_hours
from trilha.domain.keys import (
    MAX_KEY_BYTES,
    decode_metadata_value,
    encode_metadata_value,
    printable,
    validate_key,
)
from trilha.exceptions import InvalidKeyError

settings.register_profile(
    "trilha", derandomize=True, max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("trilha")

#: Any text a file system may hand over, including the surrogate escapes of bytes that are not UTF-8.
names = st.text(
    alphabet=st.characters(codec=None, exclude_categories=()),
    min_size=0,
    max_size=80,
) | st.binary(min_size=1, max_size=60).map(os.fsdecode)


def key_is_acceptable(key: str) -> bool:
    """The rule of :func:`trilha.domain.keys.validate_key`, restated independently."""
    if not key or key.startswith("/") or "\\" in key:
        return False
    if any("\ud800" <= ch <= "\udfff" for ch in key):
        return False
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in key):
        return False
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        return False
    segments = key.split("/")
    if key.endswith("/"):
        segments = segments[:-1]
    return all(s not in ("", ".", "..") for s in segments)


@given(names)
@example("inmet/../etc/passwd")
@example("inmet/./x.csv")
@example("São Paulo ü✓.csv")
@example("a" * MAX_KEY_BYTES)
@example("ç" * (MAX_KEY_BYTES // 2 + 1))
def test_validate_key_accepts_exactly_the_safe_keys(key: str) -> None:
    if key_is_acceptable(key):
        assert validate_key(key) == key
    else:
        with pytest.raises(InvalidKeyError) as err:
            validate_key(key)
        str(err.value).encode("utf-8")  # every refusal can be stored and shown


@given(names)
def test_an_accepted_key_never_escapes_its_prefix(key: str) -> None:
    try:
        validate_key(key)
    except InvalidKeyError:
        return
    parts = f"project/{key}".split("/")
    assert ".." not in parts
    assert not key.startswith("/")


@given(names)
@example("=?UTF-8?B?w6M=?=")  # an ASCII value that looks encoded is encoded again, so it survives
def test_metadata_values_round_trip_as_printable_ascii(value: str) -> None:
    encoded = encode_metadata_value(value)
    assert encoded.isascii()
    assert encoded.isprintable()
    assert decode_metadata_value(encoded) == value


@given(names)
def test_printable_is_valid_utf8_and_keeps_valid_text(text: str) -> None:
    out = printable(text)
    out.encode("utf-8")
    if not any("\ud800" <= ch <= "\udfff" for ch in text):
        assert out == text


# INMET cells ------------------------------------------------------------------------------------------


def inmet_spelling(value: float, style: int) -> str:
    """How INMET writes ``value``: decimal comma, and the leading zero dropped in some files."""
    text = f"{value:.4f}".rstrip("0").rstrip(".")
    if style % 2:
        text = text.replace(".", ",")
    if style >= 2 and text.lstrip("-").startswith("0") and "." in text.replace(",", "."):
        text = text.replace("0", "", 1)  # ",8" and "-,2"
    return text


@given(
    st.lists(st.tuples(st.floats(-9999, 9999, allow_nan=False), st.integers(0, 3)), min_size=1, max_size=30)
)
def test_inmet_numbers_parse_to_the_value_written(cells: list[tuple[float, int]]) -> None:
    texts = [inmet_spelling(v, style) for v, style in cells]
    floats, bad = to_float(pa.array(texts))
    assert bad is None or not any(bad.to_pylist())
    assert floats.to_pylist() == pytest.approx([float(t.replace(",", ".")) for t in texts])


@given(st.lists(st.text(alphabet="0123456789,.-x ", max_size=6), min_size=1, max_size=30))
@example(["", ",", "-", "-,", "1,2,3", "x", "--1", ",5", "-,2"])
def test_a_cell_that_is_not_a_number_is_null_and_masked_not_guessed(texts: list[str]) -> None:
    """Python's ``float`` (after the comma becomes a point) is the reference; cells with spaces
    around a number are the only ones left to the implementation."""

    def number(text: str) -> float | None:
        try:
            return float(text.replace(",", "."))
        except ValueError:
            return None

    floats, bad = to_float(pa.array(texts))
    masked = bad.to_pylist() if bad is not None else [False] * len(texts)
    for text, have, is_bad in zip(texts, floats.to_pylist(), masked, strict=True):
        want = number(text)
        if want is None:
            assert (have, is_bad) == (None, True), text
        elif " " not in text:
            assert (have, is_bad) == (pytest.approx(want), False), text


@given(st.lists(st.dates(date(2000, 1, 1), date(2030, 12, 31)), min_size=1, max_size=40), st.booleans())
def test_inmet_dates_parse_in_both_spellings(days: list[date], slashes: bool) -> None:
    texts = [d.isoformat().replace("-", "/") if slashes else d.isoformat() for d in days]
    parsed, bad = parse_dates(pa.array(texts))
    assert bad is None or not any(bad.to_pylist())
    assert parsed.to_pylist() == days


@given(st.lists(st.text(alphabet="0123456789-/", min_size=10, max_size=10), min_size=1, max_size=20))
def test_impossible_dates_are_masked(texts: list[str]) -> None:
    parsed, bad = parse_dates(pa.array(texts))

    def real(text: str) -> date | None:
        parts = text.replace("/", "-").split("-")
        if len(parts) != 3 or [len(p) for p in parts] != [4, 2, 2] or not all(p.isdigit() for p in parts):
            return None
        try:
            return date(int(parts[0]), int(parts[1]), int(parts[2]))
        except ValueError:
            return None

    assert parsed.to_pylist() == [real(t) for t in texts]
    if bad is not None:
        assert bad.to_pylist() == [real(t) is None for t in texts]


@given(st.lists(st.tuples(st.integers(0, 23), st.integers(0, 59)), min_size=1, max_size=30), st.booleans())
def test_inmet_hours_parse_in_both_spellings(hours: list[tuple[int, int]], new_style: bool) -> None:
    texts = [f"{h:02d}{m:02d} UTC" if new_style else f"{h:02d}:{m:02d}" for h, m in hours]
    parsed, bad = parse_hours(pa.array(texts))
    assert bad is None or not any(bad.to_pylist())
    assert parsed.to_pylist() == [h * 3600 + m * 60 for h, m in hours]
