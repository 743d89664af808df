"""Pure decisions of staging: what one stored raw file becomes, and its staging inventory row.

:func:`stage_file` turns a file's bytes into a :class:`StagedFile` (the rows that honour the
dataset's contract, and the quarantine of :mod:`trilha.domain.quarantine`) or a :class:`Refused`
(why the whole file is refused). :func:`staging_row` is the ``staging_inventory`` row that
records it, outputs included. The operator reads the bytes, calls these, and writes what they
decided.

pyarrow, the parsers and the contracts are imported inside the functions: this module is imported
when the DAGs are parsed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from trilha.domain import lineage
from trilha.domain.quarantine import MAX_REASON, quarantine_reason, quarantine_table
from trilha.exceptions import ParseError, TrilhaError

if TYPE_CHECKING:
    import pyarrow as pa

    from trilha.domain.contracts import Contract

#: The counters of a refused file: bad input, or a bug to look at.
REJECTED = "rejected"
FAILED = "failed"


@dataclass(frozen=True)
class StagedFile:
    """A file staging accepts: ``ok`` holds the rows that honour the contract, ``quarantine`` the
    rest (``None``: every row is good); ``rows_in == rows_ok + rows_rejected``."""

    dataset: str
    layout: str
    rows_in: int
    rows_ok: int
    rows_rejected: int
    ok: pa.Table
    quarantine: pa.Table | None
    #: Field flags per rule and column (``{rule: {column: n}}``), ``None`` when the dataset's
    #: contract declares no quality control.
    qc_counts: dict[str, dict[str, int]] | None = None


@dataclass(frozen=True)
class Refused:
    """A file staging refuses as a whole, and why; nothing is written but its inventory row.

    :param kind: the counter it goes to (:data:`REJECTED`: bad input; :data:`FAILED`: a bug).
    """

    kind: str
    reason: str
    dataset: str | None = None
    layout: str | None = None
    rows_in: int = 0
    rows_ok: int = 0
    rows_rejected: int = 0


@dataclass(frozen=True)
class StagingRow:
    """One ``staging_inventory`` row (see ``include/sql/queries/staging_insert.sql``)."""

    project_id: int
    storage_id: int
    source_bucket: str
    source_key: str
    source_sha256: str
    code_version: str
    dataset: str | None
    layout: str | None
    status: str
    reason: str | None
    rows_in: int
    rows_ok: int
    rows_rejected: int
    schema: dict[str, str] | None
    output_bucket: str | None
    output_key: str | None
    output_sha256: str | None
    quarantine_key: str | None
    quarantine_sha256: str | None
    qc_counts: dict[str, dict[str, int]] | None = None


def no_data_reason(logical_name: str, metadata: Mapping[str, str]) -> str:
    """Why a file with a header and no rows is refused (a failed export, a cut download)."""
    header = metadata.get("header_lines") or metadata.get("header_line")
    return (
        f"{logical_name}: no data lines: expected rows after the header"
        + (f" (line {header})" if header else "")
        + ", got none"
    )


def stage_file(
    data: bytes, logical_name: str, contract_for: Callable[[str], Contract]
) -> StagedFile | Refused:
    """Parse, validate, quality-control and account for every data line of one file.

    :param data: the stored raw bytes.
    :param logical_name: the file's name as delivered (layouts are detected from the content).
    :param contract_for: the contract of a dataset (:func:`trilha.hooks.include.load_contract`);
        a dataset without a usable contract refuses the file like unparseable input does.

    Rows are quarantined only when they cannot be used at all (unreadable line, unparseable
    timestamp, missing or invalid key, station out of range); measurements are judged one field at
    a time by the contract's ``qc`` rules (:mod:`trilha.domain.qc`), so a bad value is nulled and
    flagged without losing its hour.

    A file that matches no layout, breaks its contract as a whole, or has no data lines is
    ``rejected``. Rows that do not add up (``rows_in != ok + quarantined``) refuse the file as
    ``failed``: never silently drop or invent a row, rather than record a wrong count.
    """
    from trilha.domain import qc
    from trilha.domain.contracts import validate
    from trilha.domain.formats import parse_file

    qc_counts = None
    try:
        parsed = parse_file(data, logical_name)
        contract = contract_for(parsed.dataset)
        ok, bad = validate(parsed.table, contract, logical_name)
        if contract.qc is not None:
            # Field by field: a bad value is nulled and flagged, the rest of its hour stays.
            ok, qc_counts = qc.apply(ok, contract.qc, qc.STAGING)
    except (ParseError, TrilhaError, ValueError, UnicodeError) as err:
        return Refused(REJECTED, str(err)[:MAX_REASON])
    dataset, layout = parsed.dataset, parsed.layout
    if parsed.rows_in == 0:
        return Refused(REJECTED, no_data_reason(logical_name, parsed.metadata), dataset, layout)
    quarantine = quarantine_table(parsed.rejected, bad, logical_name)
    rejected = quarantine.num_rows if quarantine is not None else 0
    if parsed.rows_in != ok.num_rows + rejected:
        reason = (
            f"row accounting mismatch: {parsed.rows_in} data lines, {ok.num_rows} ok + {rejected} quarantined"
        )
        return Refused(FAILED, reason, dataset, layout, rows_in=parsed.rows_in, rows_rejected=parsed.rows_in)
    return StagedFile(
        dataset=dataset,
        layout=layout,
        rows_in=parsed.rows_in,
        rows_ok=ok.num_rows,
        rows_rejected=rejected,
        ok=ok,
        quarantine=quarantine,
        qc_counts=qc_counts,
    )


def output_keys(src: Mapping[str, Any], dataset: str, code_version: str) -> tuple[str, str]:
    """The staged output's key and its quarantine's key, for stored file ``src`` (a
    ``staging_candidates`` row): one pair per source content and code version."""
    args = (src["project_prefix"], dataset, src["logical_name"], src["sha256"], code_version)
    return lineage.staged_key(*args), lineage.staged_key(*args, quarantine=True)


def staging_row(
    src: Mapping[str, Any],
    code_version: str,
    staged: StagedFile | Refused,
    *,
    bucket: str | None = None,
    output: tuple[str, str] | None = None,
    quarantine: tuple[str, str] | None = None,
) -> StagingRow:
    """The inventory row of stored file ``src`` (a ``staging_candidates`` row).

    :param bucket: where the outputs of a staged file were written.
    :param output: ``(key, sha256)`` of a staged file's Parquet.
    :param quarantine: ``(key, sha256)`` of its quarantine Parquet, when it has one; the row's
        reason then says how many rows went there and the first few lines and why.
    """
    reason, schema, status = None, None, "rejected"
    if isinstance(staged, Refused):
        reason = staged.reason
    else:
        if output is None or bucket is None:
            raise ValueError(f"{src['dest_key']}: a staged file's row needs its output bucket and key")
        status, schema = "staged", {f.name: str(f.type) for f in staged.ok.schema}
        if quarantine is not None and staged.quarantine is not None:
            reason = quarantine_reason(staged.quarantine, bucket, quarantine[0])
    return StagingRow(
        project_id=src["project_id"],
        storage_id=src["storage_audit_id"],
        source_bucket=src["dest_bucket"],
        source_key=src["dest_key"],
        source_sha256=src["sha256"],
        code_version=code_version,
        dataset=staged.dataset,
        layout=staged.layout,
        status=status,
        reason=reason,
        rows_in=staged.rows_in,
        rows_ok=staged.rows_ok,
        rows_rejected=staged.rows_rejected,
        schema=schema,
        output_bucket=bucket if output else None,
        output_key=output[0] if output else None,
        output_sha256=output[1] if output else None,
        quarantine_key=quarantine[0] if quarantine else None,
        quarantine_sha256=quarantine[1] if quarantine else None,
        qc_counts=None if isinstance(staged, Refused) else staged.qc_counts,
    )


def plan_batches(
    candidates: Sequence[Mapping[str, Any]], size: int, code_version: str
) -> list[dict[str, Any]]:
    """The mapped staging tasks' arguments: the candidates' storage ids in batches of ``size``, in
    storage order, each with the code version the plan was made for. Staging a file depends on that
    file alone, so the staged outputs are the same whatever ``size`` is."""
    if size < 1:
        raise ValueError(f"batch_size: expected 1 or more files per batch, got {size}")
    ids = [int(c["storage_audit_id"]) for c in candidates]
    return [
        {"storage_ids": ids[i : i + size], "code_version": code_version} for i in range(0, len(ids), size)
    ]
