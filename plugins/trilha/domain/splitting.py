"""Train/validation/test splits of a curated table.

*Hash split*: each row goes to a split decided only by its key (and a salt), through a stable
64-bit hash, so a row never changes split when data is added and the same key always lands in the
same split, on any machine and any Python version. Python's ``hash()`` is salted per process and
would break this; the hash here is FNV-1a over the key's bytes, finished with the splitmix64
mixer, computed with numpy over whole columns (no per-row Python).

A hash split may group rows (``group_by``): the time column in the key is replaced by its day, ISO
week, month or year, so every row of a station-month lands in the same split. Row-level hashing of
hourly weather puts neighbouring hours of one station in train and test, and a model then scores
well by interpolating (a leak); whole groups keep such neighbours together.

*Temporal split*: by cut-off instants, so no validation or test row is earlier than a train row.
"""

from __future__ import annotations

import hashlib
import math
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from trilha.domain.lineage import SPLITS

_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)
_NULL_HASH = np.uint64(0x9E3779B97F4A7C15)  # the hash of a null key part
_MICROS_PER_UNIT = {"s": 1_000_000, "ms": 1_000, "us": 1}
#: The hash split's groupings: each row by its key (``row``), or by its key with the time column
#: replaced by its period.
GROUPINGS: tuple[str, ...] = ("row", "day", "week", "month", "year")
_PERIOD_COLUMN = "__period"


def _splitmix64(values: np.ndarray) -> np.ndarray:
    """The splitmix64 finalizer: a bijective mix giving every output bit an even chance.

    In place on one copy plus one scratch array: on 5 million keys each temporary is 40 MB.
    """
    z = values + np.uint64(0x9E3779B97F4A7C15)
    scratch = np.right_shift(z, np.uint64(30))
    z ^= scratch
    z *= np.uint64(0xBF58476D1CE4E5B9)
    np.right_shift(z, np.uint64(27), out=scratch)
    z ^= scratch
    z *= np.uint64(0x94D049BB133111EB)
    np.right_shift(z, np.uint64(31), out=scratch)
    z ^= scratch
    return z


def _fnv1a(array: pa.Array) -> np.ndarray:
    """FNV-1a 64 of each UTF-8/binary value, vectorized over positions: iteration ``j`` mixes the
    ``j``-th byte of every value that is longer than ``j``, so the work is the total byte count."""
    array = array.cast(pa.large_binary())
    n = len(array)
    offsets = np.frombuffer(array.buffers()[1], dtype=np.int64)[array.offset : array.offset + n + 1]
    data_buffer = array.buffers()[2]
    data = np.frombuffer(data_buffer, dtype=np.uint8) if data_buffer is not None else np.zeros(0, np.uint8)
    starts = offsets[:-1]
    lengths = np.diff(offsets)
    hashes = np.full(n, _FNV_OFFSET, dtype=np.uint64)
    active = np.flatnonzero(lengths > 0)
    position = 0
    while len(active):
        byte = data[starts[active] + position].astype(np.uint64)
        hashes[active] = (hashes[active] ^ byte) * _FNV_PRIME
        position += 1
        active = active[lengths[active] > position]
    # Length is mixed in so that a value and the same value with trailing NULs differ.
    return hashes ^ lengths.astype(np.uint64)


def _column_hash(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """A uint64 per value, stable across processes, platforms and integer widths."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    type_ = array.type
    nulls = np.asarray(array.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    if pa.types.is_dictionary(type_):
        array = array.cast(type_.value_type)
        type_ = array.type
    if (
        pa.types.is_string(type_)
        or pa.types.is_large_string(type_)
        or pa.types.is_binary(type_)
        or pa.types.is_large_binary(type_)
    ):
        # Hash the distinct values only (564 station codes, not 5 million rows), then spread.
        encoded = pc.dictionary_encode(array)
        per_value = _fnv1a(encoded.dictionary)
        indices = encoded.indices.fill_null(0).to_numpy(zero_copy_only=False)
        raw = per_value[indices] if len(per_value) else np.zeros(len(array), np.uint64)
    elif pa.types.is_timestamp(type_):
        # Instants hash equal whatever the unit: microseconds since the epoch, UTC.
        array = array.cast(pa.timestamp("us", tz=type_.tz)) if type_.unit != "us" else array
        raw = array.cast(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False).view(np.uint64)
    elif pa.types.is_date(type_):
        raw = (
            array.cast(pa.date32()).cast(pa.int32()).cast(pa.int64()).fill_null(0).to_numpy().view(np.uint64)
        )
    elif pa.types.is_integer(type_) or pa.types.is_boolean(type_):
        raw = array.cast(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False).view(np.uint64)
    elif pa.types.is_floating(type_):
        values = array.cast(pa.float64()).fill_null(0.0).to_numpy(zero_copy_only=False).copy()
        values[values == 0.0] = 0.0  # -0.0 and 0.0 are the same key
        values[np.isnan(values)] = np.nan  # one canonical NaN
        raw = values.view(np.uint64)
    else:
        return _column_hash(array.cast(pa.string()))
    hashed = _splitmix64(raw.astype(np.uint64, copy=False))
    hashed[nulls] = _NULL_HASH
    return hashed


def key_hash(table: pa.Table, key_columns: list[str], salt: str = "") -> np.ndarray:
    """Stable uint64 hash of each row's key (columns combined in the given order)."""
    if not key_columns:
        raise ValueError("key_columns: expected at least one column, got none")
    missing = [c for c in key_columns if c not in table.column_names]
    if missing:
        raise ValueError(f"key_columns: expected columns of the table, got unknown {missing}")
    seed = np.uint64(int.from_bytes(hashlib.sha256(salt.encode("utf-8")).digest()[:8], "little"))
    combined = np.full(table.num_rows, seed, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for name in key_columns:
            combined = _splitmix64(combined ^ _column_hash(table.column(name)))
    return combined


def _check_ratios(ratios: tuple[float, float, float]) -> tuple[float, float, float]:
    if len(ratios) != 3:
        raise ValueError(f"ratios: expected 3 values (train, validation, test), got {len(ratios)}")
    if any(r < 0 for r in ratios):
        raise ValueError(f"ratios: expected non-negative values, got {ratios}")
    if abs(sum(ratios) - 1.0) > 1e-9:
        raise ValueError(f"ratios: expected values summing to 1, got {ratios} (sum {sum(ratios)})")
    return (float(ratios[0]), float(ratios[1]), float(ratios[2]))


def period_index(column: pa.ChunkedArray, name: str, period: str) -> pa.Array:
    """Each time's period as an integer (UTC): days, ISO weeks (Monday first), months or years
    since 1970. Nulls stay null (a key part of their own)."""
    if period not in GROUPINGS[1:]:
        raise ValueError(f"group_by: expected one of {list(GROUPINGS)}, got {period!r}")
    nulls = np.asarray(column.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    micros = _column_micros(column.fill_null(0) if column.null_count else column, name)
    days = micros // np.int64(86_400_000_000)
    if period == "day":
        index = days
    elif period == "week":
        index = (days + 3) // 7  # 1970-01-01 was a Thursday: weeks start on Mondays
    else:
        unit = "M" if period == "month" else "Y"
        index = days.astype("datetime64[D]").astype(f"datetime64[{unit}]").astype(np.int64)
    return pa.array(index.astype(np.int64), pa.int64(), mask=nulls)


def hash_split(
    table: pa.Table,
    key_columns: list[str],
    ratios: tuple[float, float, float],
    salt: str = "",
    *,
    group_by: str = "row",
    time_column: str | None = None,
) -> dict[str, pa.Table]:
    """Split rows by a stable hash of their key.

    :param key_columns: the columns identifying a row (e.g. ``["wmo_code", "observed_at"]``). Use a
        coarser key (``["wmo_code"]``) to keep all rows of a station in one split.
    :param ratios: ``(train, validation, test)`` fractions, non-negative, summing to 1.
    :param salt: changes the assignment as a whole (a different but equally stable split).
    :param group_by: ``row``, or a period (``day``, ``week``, ``month``, ``year``) of
        ``time_column``: the group is the key columns without ``time_column``, and the period.
    :returns: ``{"train": ..., "validation": ..., "test": ...}``, rows in their original order.

    A row's split depends only on its group, the salt and the ratios: adding rows never moves
    existing ones, and the same group always lands in the same split.
    """
    train, validation, _ = _check_ratios(ratios)
    if group_by == "row":
        hashes = key_hash(table, key_columns, salt)
    else:
        if not time_column or time_column not in table.column_names:
            raise ValueError(f"time_column: expected a column of the table to group by, got {time_column!r}")
        keys = [k for k in key_columns if k != time_column]
        missing = [c for c in keys if c not in table.column_names]
        if missing:
            raise ValueError(f"key_columns: expected columns of the table, got unknown {missing}")
        grouped = table.select(keys).append_column(
            _PERIOD_COLUMN, period_index(table.column(time_column), time_column, group_by)
        )
        hashes = key_hash(grouped, [*keys, _PERIOD_COLUMN], salt)
    # Top 53 bits as a uniform number in [0, 1).
    # A row's position in [0, 1) is (hash >> 11) / 2**53; "position < ratio" is the same as
    # "(hash >> 11) < ceil(ratio * 2**53)" (scaling by a power of two is exact), which compares
    # integers instead of building a float array.
    top = hashes >> np.uint64(11)
    first_cut = np.uint64(math.ceil(train * 2.0**53))
    second_cut = np.uint64(math.ceil((train + validation) * 2.0**53))
    bucket = (top >= first_cut).astype(np.int8)
    bucket += top >= second_cut
    return _by_bucket(table, bucket)


def _by_bucket(table: pa.Table, bucket: np.ndarray) -> dict[str, pa.Table]:
    """One ``take`` in bucket order (stable, so rows keep their order), then zero-copy slices:
    a third of the work of three ``filter`` calls over a many-chunk table."""
    groups = [np.flatnonzero(bucket == i) for i in range(3)]  # a stable order, in linear time
    order = np.concatenate(groups)
    ordered = table.take(pa.array(order)) if len(order) else table
    counts = np.array([len(g) for g in groups], dtype=np.int64)
    starts = np.concatenate(([0], np.cumsum(counts)))
    return {name: ordered.slice(int(starts[i]), int(counts[i])) for i, name in enumerate(SPLITS)}


def _to_micros(value: object, what: str) -> int:
    """A cut-off (datetime, date, ISO string) as microseconds since the epoch, UTC.
    Naive datetimes and dates are taken as UTC, like every timestamp in the lake."""
    if isinstance(value, pa.Scalar):
        value = value.as_py()
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"{what}: expected an ISO date or datetime, got {value!r}") from None
    if isinstance(value, datetime):
        moment = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day, tzinfo=UTC)
    else:
        raise ValueError(
            f"{what}: expected a datetime, date or ISO string, got {type(value).__name__} {value!r}"
        )
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _column_micros(column: pa.ChunkedArray, name: str) -> np.ndarray:
    type_ = column.type
    if pa.types.is_timestamp(type_):
        if type_.unit == "ns":
            return column.cast(pa.int64()).to_numpy() // 1000
        return column.cast(pa.int64()).to_numpy() * np.int64(_MICROS_PER_UNIT[type_.unit])
    if pa.types.is_date(type_):
        days = column.cast(pa.date32()).cast(pa.int32()).to_numpy().astype(np.int64)
        return days * np.int64(86_400_000_000)
    raise ValueError(f"time_column {name!r}: expected a timestamp or date column, got {type_}")


def day_counts(column: pa.ChunkedArray | pa.Array, name: str) -> dict[date, int]:
    """The rows of each UTC day of a time column (nulls left out): what a temporal cut's
    cut-offs are taken from when it has no dates."""
    chunked = column if isinstance(column, pa.ChunkedArray) else pa.chunked_array([column])
    valid = chunked.filter(pc.is_valid(chunked)) if chunked.null_count else chunked
    if len(valid) == 0:
        return {}
    days, counts = np.unique(_column_micros(valid, name) // np.int64(86_400_000_000), return_counts=True)
    epoch = date(1970, 1, 1)
    return {epoch + timedelta(days=int(d)): int(n) for d, n in zip(days, counts, strict=True)}


def temporal_split(
    table: pa.Table,
    time_column: str,
    validation_start: object,
    test_start: object,
) -> dict[str, pa.Table]:
    """Split by time: ``train`` before ``validation_start``, ``validation`` from it until
    ``test_start``, ``test`` from ``test_start`` on.

    :param validation_start: first instant of validation (datetime, date or ISO string; naive
        values are UTC).
    :param test_start: first instant of test; must not be before ``validation_start`` (equal means
        an empty validation split).

    No validation or test row is earlier than any train row, so nothing leaks from the future.
    Rows keep their order. A row without a time cannot be placed: nulls raise ``ValueError``.
    """
    if time_column not in table.column_names:
        raise ValueError(f"time_column: expected a column of the table, got {time_column!r}")
    validation_at = _to_micros(validation_start, "validation_start")
    test_at = _to_micros(test_start, "test_start")
    if validation_at > test_at:
        raise ValueError(
            f"cut-offs: expected validation_start <= test_start, got validation_start={validation_start!r} "
            f"after test_start={test_start!r}"
        )
    column = table.column(time_column)
    if column.null_count:
        raise ValueError(
            f"time_column {time_column!r}: expected a time on every row, got {column.null_count} nulls"
        )
    micros = _column_micros(column, time_column)
    bucket = (micros >= validation_at).astype(np.int8)
    bucket += micros >= test_at
    return _by_bucket(table, bucket)
