"""Pure manifests and inventory records of the curated and dataset versions.

A version's ``manifest.json`` is written last, after every file it lists, and its inventory row
carries the manifest's sha256: the manifest is what a reader trusts, the row what the pipeline
trusts, and both are built here from the same values. The clock is the caller's (``created_at``),
so the same inputs give the same dicts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from trilha.domain import lineage
from trilha.domain.cuts import grouping


def curated_inputs(staged: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """A dataset's staged parts (``curated_inputs`` rows) as the curated manifest lists them.

    Parts in the order their source content entered storage (then by key): curate() lets a later
    part win a duplicate key, so a corrected file stored later replaces the older one hour by
    hour, whatever its name. The manifest lists the inputs in this order.
    """
    ordered = sorted(staged, key=lambda r: (int(r["storage_audit_id"] or 0), r["output_key"]))
    return [
        {
            "key": r["output_key"],
            "sha256": r["output_sha256"],
            "rows": int(r["rows_ok"]),
            "source_key": r["source_key"],
            "source_sha256": r["source_sha256"],
            "bucket": r["output_bucket"],
        }
        for r in ordered
    ]


def file_entry(key: str, sha256: str, rows: int, size: int) -> dict[str, Any]:
    """One written file as manifests and inventories list it."""
    return {"key": key, "sha256": sha256, "rows": rows, "bytes": size}


def rows_per_file(files: Mapping[str, Mapping[str, Any]]) -> dict[str, int]:
    return {name: int(f["rows"]) for name, f in files.items()}


@dataclass(frozen=True)
class CuratedRecord:
    """A new curated version, as ``curated_inventory`` records it (``curated_insert.sql``)."""

    project_id: int
    dataset: str
    version: str
    fingerprint: str
    inputs: list[dict[str, Any]]
    files: dict[str, dict[str, Any]]
    bucket: str
    prefix: str
    manifest_key: str
    manifest_sha256: str
    run_id: str
    #: ``parquet`` (v0001-style files) or ``iceberg`` (one snapshot per table, in ``tables``).
    table_format: str = "parquet"
    #: Iceberg versions: table name -> identifier, snapshot id, metadata location, rows, partitions.
    tables: dict[str, dict[str, Any]] | None = None
    #: Every object the version's commits wrote in the curated bucket (key, bytes, etag).
    objects: list[dict[str, Any]] = field(default_factory=list)

    @property
    def rows(self) -> int:
        """The version's row count: its largest table's (the conformed one)."""
        sizes = (self.tables or self.files).values()
        return max((int(f["rows"]) for f in sizes), default=0)


def curated_manifest(
    *,
    project: str,
    project_prefix: str,
    dataset: str,
    version: str,
    created_at: str,
    run_id: str,
    code_version: str,
    inputs_fingerprint: str,
    inputs: list[dict[str, Any]],
    files: dict[str, dict[str, Any]],
    tables: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A curated version's ``manifest.json``: the exact staged inputs (key + sha256) and its files
    (v0001-style versions) or its Iceberg tables' snapshots (``tables``)."""
    extra = {} if tables is None else {"table_format": "iceberg", "tables": tables}
    return {
        "project": project,
        "project_prefix": project_prefix,
        "dataset": dataset,
        "version": version,
        "created_at": created_at,
        "run_id": run_id,
        "code_version": code_version,
        "inputs_fingerprint": inputs_fingerprint,
        "inputs": inputs,
        "files": files,
        **extra,
    }


@dataclass(frozen=True)
class DatasetRecord:
    """A new dataset version (a cut), as ``dataset_inventory`` records it (``dataset_insert.sql``)."""

    project_id: int
    dataset: str
    version: str
    curated_id: int
    params: dict[str, Any]
    fingerprint: str
    bucket: str
    prefix: str
    files: dict[str, dict[str, Any]]
    manifest_key: str
    manifest_sha256: str
    run_id: str

    @property
    def strategy(self) -> str:
        return str(self.params["strategy"])

    @property
    def rows(self) -> dict[str, int]:
        return rows_per_file(self.files)


@dataclass(frozen=True)
class RecordedCut:
    """A dataset version the inventory holds: what an export to Drive reads back and checks."""

    id: int
    version: str
    bucket: str
    files: dict[str, dict[str, Any]]
    manifest_key: str
    manifest_sha256: str
    drive_folder_id: str | None = None

    @property
    def rows(self) -> dict[str, int]:
        return rows_per_file(self.files)


def dataset_manifest(
    *,
    project: str,
    dataset: str,
    version: str,
    created_at: str,
    run_id: str,
    parameters: dict[str, Any],
    files: dict[str, dict[str, Any]],
    curated: Mapping[str, Any],
    curated_table: Mapping[str, Any],
) -> dict[str, Any]:
    """A dataset version's ``manifest.json``: rows, sha256 per file, parameters, how rows were put
    together (``strategy``, ``grouping``), the content digest (``content_sha256``: sha256 of the
    split files' sha256s, by split: the same rows in the same splits give the same digest, whatever
    the version is called), and its lineage.

    :param curated: the curated version that was cut (``version``, ``manifest_key``,
        ``manifest_sha256``).
    :param curated_table: the curated table that was cut (its entry in that version's files).
    """
    return {
        "project": project,
        "dataset": dataset,
        "version": version,
        "created_at": created_at,
        "run_id": run_id,
        "parameters": parameters,
        "strategy": parameters["strategy"],
        "grouping": grouping(parameters),
        "content_sha256": lineage.fingerprint({n: files[n]["sha256"] for n in lineage.SPLITS if n in files}),
        "rows": rows_per_file(files),
        "files": files,
        "lineage": {
            "curated_version": curated["version"],
            "curated_manifest": curated["manifest_key"],
            "curated_manifest_sha256": curated["manifest_sha256"],
            "curated_table": dict(curated_table),
        },
    }


def drive_export_plan(cut: RecordedCut, dataset: str) -> list[tuple[str, str, str]]:
    """``(lake key, sha256, Drive path)`` of every file of ``cut``, the splits in their order and
    the manifest last: a reader of the folder never sees a version without all of its files."""
    wanted: Sequence[tuple[str, str]] = [
        *((cut.files[n]["key"], cut.files[n]["sha256"]) for n in lineage.SPLITS),
        (cut.manifest_key, cut.manifest_sha256),
    ]
    return [(key, sha, f"{dataset}/{cut.version}/{key.rsplit('/', 1)[-1]}") for key, sha in wanted]
