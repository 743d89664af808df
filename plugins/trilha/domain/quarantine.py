"""Pure assembly of a staged file's quarantine: the rows staging keeps aside, and the audit's account of them.

A file's quarantine is one table: the lines the parser could not read (with its reason and the raw
line) followed by the rows that broke the dataset's contract (as
:func:`trilha.domain.contracts.validate` returns them), so one Parquet object holds every row that
did not reach the staged output, each with its line number and why.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

#: How many quarantined lines the audit's reason shows (the quarantine object has them all).
SHOWN = 3
#: The longest reason the audit stores (``staging_inventory.reason``), and the longest per line.
MAX_REASON = 2000
MAX_LINE_REASON = 200


def quarantine_table(parsed_rejected: pa.Table, contract_rejected: pa.Table, source: str) -> pa.Table | None:
    """One quarantine table: unparseable lines and contract violations, each with its reason and line.

    :param parsed_rejected: the parser's rejects (``line_number``, ``reason``, ``raw_line``).
    :param contract_rejected: the contract's rejects, already in quarantine shape (``_source_file``,
        ``_line_number``, ``_reason``, ``_raw_line`` and the row's columns).
    :param source: the file's logical name, written in ``_source_file`` of the parser's rejects.
    :returns: ``None`` when neither has a row.
    """
    import pyarrow as pa

    parts = []
    if parsed_rejected.num_rows:
        parts.append(
            pa.table(
                {
                    "_source_file": pa.array([source] * parsed_rejected.num_rows, pa.string()),
                    "_line_number": parsed_rejected.column("line_number").cast(pa.int64()),
                    "_reason": parsed_rejected.column("reason").cast(pa.string()),
                    "_raw_line": parsed_rejected.column("raw_line").cast(pa.string()),
                }
            )
        )
    if contract_rejected.num_rows:
        parts.append(contract_rejected)
    if not parts:
        return None
    return pa.concat_tables(parts, promote_options="permissive")


def quarantine_reason(quarantine: pa.Table, bucket: str, key: str, shown: int = SHOWN) -> str:
    """The audit's account of a file's quarantined rows: how many, where, and the first lines and why.

    The inventory row it goes in names the file already, so the reason does not repeat it. A line's
    reason longer than :data:`MAX_LINE_REASON` ends in ``…`` (the quarantine object has it whole)."""
    import pyarrow.compute as pc

    first = quarantine.take(pc.sort_indices(quarantine, sort_keys=[("_line_number", "ascending")])[:shown])
    lines = "; ".join(
        f"line {n}: {_cut(str(r), MAX_LINE_REASON)}"
        for n, r in zip(
            first.column("_line_number").to_pylist(), first.column("_reason").to_pylist(), strict=True
        )
    )
    more = f"; and {quarantine.num_rows - shown} more" if quarantine.num_rows > shown else ""
    return _cut(f"{quarantine.num_rows} row(s) quarantined to {bucket}/{key}: {lines}{more}", MAX_REASON)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
