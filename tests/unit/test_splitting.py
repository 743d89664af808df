"""Train/validation/test splits (trilha.domain.splitting)."""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pyarrow as pa
import pytest

from trilha.domain.splitting import hash_split, key_hash, period_index, temporal_split

TS = pa.timestamp("us", tz="UTC")
MASK = (1 << 64) - 1


def hourly(n: int, stations: int = 7, start: datetime = datetime(2024, 1, 1, tzinfo=UTC)) -> pa.Table:
    return pa.table(
        {
            "wmo_code": [f"A{i % stations:03d}" for i in range(n)],
            "observed_at": pa.array([start + timedelta(hours=i // stations) for i in range(n)], TS),
            "value": pa.array(np.arange(n, dtype=np.float64)),
        }
    )


def keys_by_split(splits: dict[str, pa.Table]) -> dict[tuple[object, ...], str]:
    out: dict[tuple[object, ...], str] = {}
    for name, table in splits.items():
        for row in table.select(["wmo_code", "observed_at"]).to_pylist():
            out[(row["wmo_code"], row["observed_at"])] = name
    return out


# A straightforward per-row reference of the documented hash, to check the vectorized one.
def _splitmix64(x: int) -> int:
    z = (x + 0x9E3779B97F4A7C15) & MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def _reference(values: list[object], salt: str = "") -> int:
    combined = int.from_bytes(hashlib.sha256(salt.encode()).digest()[:8], "little")
    for value in values:
        if value is None:
            part = 0x9E3779B97F4A7C15
        elif isinstance(value, str):
            raw = value.encode("utf-8")
            h = 0xCBF29CE484222325
            for byte in raw:
                h = ((h ^ byte) * 0x100000001B3) & MASK
            part = _splitmix64(h ^ len(raw))
        elif isinstance(value, datetime):
            micros = (value - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
            part = _splitmix64(micros & MASK)
        else:
            assert isinstance(value, int)
            part = _splitmix64(value & MASK)
        combined = _splitmix64(combined ^ part)
    return combined


def test_vectorized_hash_matches_the_reference_algorithm() -> None:
    table = pa.table(
        {
            "code": ["A001", "", "São Paulo - Mirante", None, "A" * 300, "x"],
            "n": pa.array([0, -1, 2**40, 7, None, 3], pa.int64()),
            "t": pa.array([datetime(2024, 1, 1, h, tzinfo=UTC) for h in range(6)], TS),
        }
    )
    got = key_hash(table, ["code", "n", "t"], salt="s").tolist()
    expected = [_reference([r["code"], r["n"], r["t"]], "s") for r in table.to_pylist()]
    assert got == expected


def test_hash_values_are_pinned() -> None:
    # If this changes, every published split would reshuffle: bump the dataset version instead.
    table = pa.table(
        {
            "wmo_code": ["A001", "A701", "A807", None],
            "observed_at": pa.array([datetime(2024, 1, 1, tzinfo=UTC)] * 4, TS),
        }
    )
    assert [hex(h) for h in key_hash(table, ["wmo_code", "observed_at"]).tolist()] == [
        "0xa68168da0375497f",
        "0x8bba1ed6e5bf4d80",
        "0xcc7100db694d4932",
        "0x7db6dd0abbfaa0e8",
    ]
    keys = pa.table({"k": [f"key-{i}" for i in range(20)]})
    splits = hash_split(keys, ["k"], (0.6, 0.2, 0.2))
    assert splits["validation"].column("k").to_pylist() == ["key-5", "key-14", "key-16"]
    assert splits["test"].column("k").to_pylist() == [
        "key-1",
        "key-9",
        "key-12",
        "key-13",
        "key-15",
        "key-17",
    ]


def test_equal_keys_hash_equal_across_types_and_units() -> None:
    ints = pa.table({"k": pa.array([1, 2, None], pa.int32())})
    longs = pa.table({"k": pa.array([1, 2, None], pa.int64())})
    assert key_hash(ints, ["k"]).tolist() == key_hash(longs, ["k"]).tolist()
    stamp = datetime(2024, 5, 1, 12, tzinfo=UTC)
    seconds = pa.table({"t": pa.array([stamp], pa.timestamp("s", tz="UTC"))})
    micros = pa.table({"t": pa.array([stamp], TS)})
    assert key_hash(seconds, ["t"]).tolist() == key_hash(micros, ["t"]).tolist()
    strings = pa.table({"k": ["A701", "A701"]})
    dictionary = pa.table({"k": pa.array(["A701", "A701"]).dictionary_encode()})
    assert key_hash(strings, ["k"]).tolist() == key_hash(dictionary, ["k"]).tolist()


def test_hash_split_is_deterministic_and_salt_changes_it() -> None:
    table = hourly(10_000)
    first = hash_split(table, ["wmo_code", "observed_at"], (0.8, 0.1, 0.1))
    second = hash_split(table, ["wmo_code", "observed_at"], (0.8, 0.1, 0.1))
    assert all(first[name].equals(second[name]) for name in ("train", "validation", "test"))
    salted = hash_split(table, ["wmo_code", "observed_at"], (0.8, 0.1, 0.1), salt="v2")
    assert keys_by_split(salted) != keys_by_split(first)


def test_rows_keep_their_split_when_data_is_added() -> None:
    base = hourly(10_000)
    before = keys_by_split(hash_split(base, ["wmo_code", "observed_at"], (0.7, 0.15, 0.15)))
    more = hourly(12_000)  # the same 10k keys plus 2k new ones...
    shuffled = more.take(pa.array(np.random.default_rng(3).permutation(more.num_rows)))  # ...in another order
    after = keys_by_split(hash_split(shuffled, ["wmo_code", "observed_at"], (0.7, 0.15, 0.15)))
    assert len(after) == 12_000
    assert {key: after[key] for key in before} == before


def test_ratios_are_honoured_on_10k_rows() -> None:
    splits = hash_split(hourly(10_000), ["wmo_code", "observed_at"], (0.8, 0.1, 0.1))
    counts = {name: table.num_rows for name, table in splits.items()}
    assert sum(counts.values()) == 10_000
    # Binomial standard deviation is 0.4% for 80% and 0.3% for 10%; allow about 4 of them.
    assert abs(counts["train"] / 10_000 - 0.8) < 0.016
    assert abs(counts["validation"] / 10_000 - 0.1) < 0.012
    assert abs(counts["test"] / 10_000 - 0.1) < 0.012


def test_split_by_a_coarser_key_keeps_groups_together() -> None:
    splits = hash_split(hourly(7_000, stations=50), ["wmo_code"], (0.6, 0.2, 0.2))
    seen: dict[str, str] = {}
    for name, table in splits.items():
        for code in table.column("wmo_code").to_pylist():
            assert seen.setdefault(code, name) == name
    assert len(seen) == 50


def test_rows_keep_their_order_within_a_split() -> None:
    splits = hash_split(hourly(5_000), ["wmo_code", "observed_at"], (0.5, 0.25, 0.25))
    for table in splits.values():
        values = table.column("value").to_numpy()
        assert np.all(np.diff(values) > 0)


@pytest.mark.parametrize(
    ("ratios", "message"),
    [
        ((0.8, 0.1), "expected 3 values"),
        ((0.8, 0.3, -0.1), "non-negative"),
        ((0.8, 0.1, 0.2), "summing to 1"),
    ],
)
def test_bad_ratios(ratios: tuple[float, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        hash_split(hourly(10), ["wmo_code"], ratios)  # type: ignore[arg-type]


def test_bad_key_columns() -> None:
    with pytest.raises(ValueError, match=r"unknown \['station'\]"):
        hash_split(hourly(10), ["station"], (0.8, 0.1, 0.1))
    with pytest.raises(ValueError, match="at least one column"):
        hash_split(hourly(10), [], (0.8, 0.1, 0.1))


# --------------------------------------------------------------------------------------------------
# temporal
# --------------------------------------------------------------------------------------------------


def test_temporal_split_has_no_leakage_and_exact_boundaries() -> None:
    table = hourly(24 * 7 * 10, stations=7)  # 10 days of 7 stations
    splits = temporal_split(table, "observed_at", datetime(2024, 1, 8, tzinfo=UTC), "2024-01-09T12:00:00Z")
    train, validation, test = (
        splits[n].column("observed_at").to_pylist() for n in ("train", "validation", "test")
    )
    assert max(train) < min(validation) <= max(validation) < min(test)
    assert min(validation) == datetime(2024, 1, 8, tzinfo=UTC)  # the cut-off instant opens validation
    assert min(test) == datetime(2024, 1, 9, 12, tzinfo=UTC)
    assert (len(train), len(validation), len(test)) == (7 * 24 * 7, 7 * 36, 7 * 36)


def test_temporal_split_accepts_naive_and_date_cutoffs_as_utc() -> None:
    table = hourly(48, stations=1)
    naive = temporal_split(table, "observed_at", datetime(2024, 1, 1, 12), date(2024, 1, 2))
    assert [naive[n].num_rows for n in ("train", "validation", "test")] == [12, 12, 24]


def test_temporal_split_on_a_date_column() -> None:
    table = pa.table(
        {"observed_on": pa.array([date(2024, 1, d) for d in range(1, 11)]), "x": list(range(10))}
    )
    splits = temporal_split(table, "observed_on", "2024-01-07", "2024-01-09")
    assert splits["validation"].column("x").to_pylist() == [6, 7]
    assert splits["test"].column("x").to_pylist() == [8, 9]


def test_equal_cutoffs_mean_no_validation_rows() -> None:
    splits = temporal_split(hourly(48, stations=1), "observed_at", "2024-01-02", "2024-01-02")
    assert [splits[n].num_rows for n in ("train", "validation", "test")] == [24, 0, 24]


def test_bad_cutoffs_and_columns() -> None:
    table = hourly(48, stations=1)
    with pytest.raises(ValueError, match="expected validation_start <= test_start"):
        temporal_split(table, "observed_at", "2024-01-03", "2024-01-02")
    with pytest.raises(ValueError, match="validation_start: expected an ISO date or datetime, got 'soon'"):
        temporal_split(table, "observed_at", "soon", "2024-01-02")
    with pytest.raises(ValueError, match="expected a timestamp or date column, got string"):
        temporal_split(table, "wmo_code", "2024-01-01", "2024-01-02")
    with pytest.raises(ValueError, match="expected a column of the table, got 'when'"):
        temporal_split(table, "when", "2024-01-01", "2024-01-02")
    with_null = table.set_column(1, "observed_at", pa.array([None] * 48, TS))
    with pytest.raises(ValueError, match="got 48 nulls"):
        temporal_split(with_null, "observed_at", "2024-01-01", "2024-01-02")


def _group_of(split: dict[str, pa.Table], period: str) -> dict[tuple[str, int], str]:
    seen: dict[tuple[str, int], str] = {}
    for name, table in split.items():
        periods = period_index(table.column("observed_at"), "observed_at", period).to_pylist()
        for code, p in zip(table.column("wmo_code").to_pylist(), periods, strict=True):
            assert seen.setdefault((code, p), name) == name, (code, p)
    return seen


@pytest.mark.parametrize("period", ["day", "week", "month", "year"])
def test_grouped_hash_puts_every_row_of_a_station_period_in_one_split(period: str) -> None:
    # 20 stations over about 14 months of hours.
    table = hourly(200_000, stations=20)
    split = hash_split(
        table, ["wmo_code", "observed_at"], (0.6, 0.2, 0.2), group_by=period, time_column="observed_at"
    )
    assert sum(t.num_rows for t in split.values()) == table.num_rows
    groups = _group_of(split, period)
    # Every split got groups, and no group is split: fewer groups than rows.
    assert set(groups.values()) == {"train", "validation", "test"}
    assert len(groups) < table.num_rows // 20


def test_grouped_hash_is_stable_when_data_is_added() -> None:
    """A station-month keeps its split when more months (and more rows of the same months) arrive."""
    args = {"group_by": "month", "time_column": "observed_at"}
    before = _group_of(
        hash_split(hourly(40_000, stations=10), ["wmo_code", "observed_at"], (0.7, 0.15, 0.15), **args),
        "month",
    )
    more = hourly(120_000, stations=10)
    shuffled = more.take(pa.array(np.random.default_rng(5).permutation(more.num_rows)))
    after = _group_of(hash_split(shuffled, ["wmo_code", "observed_at"], (0.7, 0.15, 0.15), **args), "month")
    assert {key: after[key] for key in before} == before
    assert len(after) > len(before)


def test_grouped_hash_differs_from_row_hash_and_needs_its_time_column() -> None:
    table = hourly(5_000, stations=5)
    rows = keys_by_split(hash_split(table, ["wmo_code", "observed_at"], (0.5, 0.25, 0.25)))
    months = keys_by_split(
        hash_split(
            table, ["wmo_code", "observed_at"], (0.5, 0.25, 0.25), group_by="month", time_column="observed_at"
        )
    )
    assert rows != months
    with pytest.raises(
        ValueError, match="time_column: expected a column of the table to group by, got 'when'"
    ):
        hash_split(table, ["wmo_code"], (0.5, 0.25, 0.25), group_by="week", time_column="when")


def test_period_index_of_times_and_dates() -> None:
    stamps = pa.chunked_array(
        [
            pa.array(
                [
                    datetime(1970, 1, 4, 23, tzinfo=UTC),
                    datetime(1970, 1, 5, tzinfo=UTC),
                    None,
                    datetime(2024, 2, 29, tzinfo=UTC),
                ],
                TS,
            )
        ]
    )
    # 1970-01-05 was a Monday: a new ISO week; nulls stay null.
    assert period_index(stamps, "t", "week").to_pylist() == [0, 1, None, (19782 + 3) // 7]
    assert period_index(stamps, "t", "month").to_pylist() == [0, 0, None, 54 * 12 + 1]
    days = pa.chunked_array([pa.array([date(1971, 1, 1)], pa.date32())])
    assert period_index(days, "d", "year").to_pylist() == [1]


def test_day_counts_are_the_rows_of_each_utc_day() -> None:
    from trilha.domain.splitting import day_counts

    stamps = pa.array(
        [
            datetime(2024, 1, 1, 23, tzinfo=UTC),
            datetime(2024, 1, 2, tzinfo=UTC),
            None,
            datetime(2024, 1, 2, 5, tzinfo=UTC),
        ],
        TS,
    )
    assert day_counts(stamps, "t") == {date(2024, 1, 1): 1, date(2024, 1, 2): 2}
    assert day_counts(pa.array([None], TS), "t") == {}
