"""Pure parameters of a dataset cut (train / validation / test), validated, and the cut itself.

The parameters arrive from a DAG run's params, rendered by Jinja: lists as JSON text
(``"[0.7, 0.15, 0.15]"``), or as lists when the operator is built in Python. :func:`cut_params` turns
them into the one dict that defines the cut (it is fingerprinted, so the same cut has one name),
with a message for each mistake that says what was expected.
"""

from __future__ import annotations

import json
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


def cut_params(
    *,
    strategy: Any,
    table: str,
    ratios: Any,
    key_columns: Any,
    time_column: str,
    validation_start: Any,
    test_start: Any,
) -> dict[str, Any]:
    """The parameters that define the cut, validated.

    :raises CutError: an unknown strategy, ratios that are not three fractions summing to 1, or a
        temporal cut without its two dates.
    """
    name = str(strategy).strip().lower()
    if name == "hash":
        values = _ratios(ratios)
        keys = [str(k) for k in as_list(key_columns, "key_columns")]
        return {"strategy": "hash", "table": table, "ratios": values, "key_columns": keys}
    if name == "temporal":
        if not validation_start or not test_start:
            raise CutError(
                "temporal split: expected validation_start and test_start (ISO dates such as 2024-07-01)"
            )
        return {
            "strategy": "temporal",
            "table": table,
            "time_column": time_column,
            "validation_start": str(validation_start),
            "test_start": str(test_start),
        }
    raise CutError(f"strategy: expected 'hash' or 'temporal', got {strategy!r}")


def cut_table(table: pa.Table, params: dict[str, Any]) -> dict[str, pa.Table]:
    """``{train, validation, test}`` of ``table`` by ``params`` (see :func:`cut_params`).

    :raises CutError: the table does not fit the parameters (a key or time column it lacks...).
    """
    from trilha.domain.splitting import hash_split, temporal_split

    try:
        if params["strategy"] == "hash":
            return hash_split(table, params["key_columns"], tuple(params["ratios"]))
        return temporal_split(table, params["time_column"], params["validation_start"], params["test_start"])
    except (ValueError, KeyError) as err:
        raise CutError(f"split parameters: {err}") from None
