"""Pure parameters of a dataset cut (train / validation / test), validated, and the cut itself.

The parameters arrive from a DAG run's params, rendered by Jinja: lists as JSON text
(``"[0.7, 0.15, 0.15]"``), or as lists when the operator is built in Python. :func:`cut_params` turns
them into the one dict that defines the cut (it is fingerprinted, so the same cut has one name),
with a message for each mistake that says what was expected.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from trilha.exceptions import TrilhaError

if TYPE_CHECKING:
    import pyarrow as pa

STRATEGIES = ("hash", "temporal")


class CutError(TrilhaError, ValueError):
    """A cut's parameters are wrong; the message says which and what was expected."""


def as_list(value: Any, name: str) -> list[Any]:
    """Params arrive as lists, tuples, or (templated) strings like ``"[0.7, 0.15, 0.15]"``."""
    if isinstance(value, list | tuple):
        return list(value)
    text = str(value).strip()
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError:
        parsed = [v.strip() for v in text.strip("[]()").replace("'", "").split(",") if v.strip()]
    if not isinstance(parsed, list):
        raise CutError(f"{name}: expected a list, got {value!r}")
    return parsed


def _ratios(ratios: Any) -> list[float]:
    items = as_list(ratios, "ratios")
    try:
        values = [float(r) for r in items]
    except ValueError:
        raise CutError(f"ratios: expected three numbers, got {ratios!r}") from None
    if len(values) != 3 or any(v < 0 for v in values) or abs(sum(values) - 1.0) > 1e-6:
        raise CutError(
            f"ratios: expected three non-negative fractions (train, validation, test) summing to 1, "
            f"got {values}"
        )
    return values


def _group_by(value: Any) -> str:
    from trilha.domain.splitting import GROUPINGS

    name = str(value or "row").strip().lower()
    if name not in GROUPINGS:
        raise CutError(f"group_by: expected one of {list(GROUPINGS)}, got {value!r}")
    return name


def cut_params(
    *,
    strategy: Any,
    table: str,
    ratios: Any,
    key_columns: Any,
    time_column: str,
    validation_start: Any,
    test_start: Any,
    group_by: Any = "row",
) -> dict[str, Any]:
    """The parameters that define the cut, validated.

    *hash*: ``key_columns`` and ``group_by`` make each row's group (``row``: the key columns as
    they are; ``day``/``week``/``month``/``year``: the key columns with ``time_column`` replaced by
    its period, so all rows of a station-month land in one split). *temporal*: the two cut-off dates,
    or, when both are empty, ``ratios`` of the rows at day boundaries (resolved by
    :func:`resolve_cutoffs` once the rows per day are known).

    :raises CutError: an unknown strategy or grouping, ratios that are not three fractions summing
        to 1, or a temporal cut with one date of two.
    """
    name = str(strategy).strip().lower()
    if name == "hash":
        values = _ratios(ratios)
        keys = [str(k) for k in as_list(key_columns, "key_columns")]
        out: dict[str, Any] = {"strategy": "hash", "table": table, "ratios": values, "key_columns": keys}
        grouping = _group_by(group_by)
        if grouping != "row":
            # Only when set: a row-keyed hash cut keeps the parameters (and fingerprint) it had.
            out.update(group_by=grouping, time_column=time_column)
        return out
    if name == "temporal":
        if bool(validation_start) != bool(test_start):
            raise CutError(
                "temporal split: expected both validation_start and test_start (ISO dates such as "
                "2024-07-01), or neither (cut-offs from ratios of the rows)"
            )
        if not validation_start:
            return {
                "strategy": "temporal",
                "table": table,
                "time_column": time_column,
                "ratios": _ratios(ratios),
                "validation_start": None,
                "test_start": None,
            }
        return {
            "strategy": "temporal",
            "table": table,
            "time_column": time_column,
            "validation_start": str(validation_start),
            "test_start": str(test_start),
        }
    raise CutError(f"strategy: expected 'hash' or 'temporal', got {strategy!r}")


def needs_cutoffs(params: dict[str, Any]) -> bool:
    """A temporal cut whose cut-offs come from the table's time span (see :func:`resolve_cutoffs`)."""
    return params["strategy"] == "temporal" and not params.get("validation_start")


def resolve_cutoffs(params: dict[str, Any], day_counts: Mapping[date, int]) -> dict[str, Any]:
    """A temporal cut whose cut-offs come from ``ratios`` of the rows, at day boundaries: validation
    starts on the day after the one that brings train to ``train`` of the rows (train never gets
    less), test likewise at ``train + validation``. ``day_counts``: the rows of each UTC day of the
    time column. Deterministic for a given table; the days are in the parameters (and manifest).

    :raises CutError: the table has no time (empty, or only nulls).
    """
    total = sum(int(n) for n in day_counts.values())
    if total == 0:
        raise CutError(
            f"temporal split of table {params['table']!r}: no {params['time_column']!r} to take the "
            "cut-offs from (empty table); give validation_start and test_start"
        )
    train, validation, _ = params["ratios"]
    days = sorted(day_counts)

    def cutoff(share: float) -> date:
        seen = 0
        for day in days:
            seen += int(day_counts[day])
            if seen >= share * total - 1e-9:
                return day + timedelta(days=1)
        return days[-1] + timedelta(days=1)

    validation_at = days[0] if train == 0 else cutoff(train)
    test_at = max(validation_at, cutoff(train + validation))
    return {**params, "validation_start": validation_at.isoformat(), "test_start": test_at.isoformat()}


def grouping(params: dict[str, Any]) -> str:
    """How the cut puts rows together, as a version name says it: ``temporal``, or ``hash-`` and the
    group (``station-month``: the WMO code and the month; ``station-observed_at``: each row)."""
    if params["strategy"] != "hash":
        return str(params["strategy"])
    period = params.get("group_by", "row")
    time = params.get("time_column") if period != "row" else None
    words = ["station" if k == "wmo_code" else k for k in params["key_columns"] if k != time]
    if period != "row":
        words.append(period)
    text = re.sub(r"[^a-z0-9_]+", "-", "-".join(["hash", *words]).lower()).strip("-_")
    return text[:80].rstrip("-_")


def dataset_version(number: int, params: dict[str, Any]) -> str:
    """``v0002-hash-station-month``: the project's ``number``-th cut of the dataset and how it was
    cut. Not a content hash (the manifest's ``content_sha256`` is)."""
    return f"v{int(number):04d}-{grouping(params)}"


def cut_table(table: pa.Table, params: dict[str, Any]) -> dict[str, pa.Table]:
    """``{train, validation, test}`` of ``table`` by ``params`` (see :func:`cut_params`; a temporal
    cut's cut-offs resolved).

    :raises CutError: the table does not fit the parameters (a key or time column it lacks...).
    """
    from trilha.domain.splitting import hash_split, temporal_split

    try:
        if params["strategy"] == "hash":
            return hash_split(
                table,
                params["key_columns"],
                tuple(params["ratios"]),
                group_by=params.get("group_by", "row"),
                time_column=params.get("time_column"),
            )
        return temporal_split(table, params["time_column"], params["validation_start"], params["test_start"])
    except (ValueError, KeyError) as err:
        raise CutError(f"split parameters: {err}") from None
