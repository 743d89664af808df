"""Helpers for the processing-half integration tests (staging, curated, dataset_split, trace, e2e).

Built on :mod:`tests.integration.ingest_support`: every test owns a project (name and prefix from a
uuid), puts its files into the lake the way users do (upload to reception, ``raw_ingest``,
``reception_promote``) and then runs the processing operators for that project only.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

from tests.integration.ingest_support import (
    REPO,
    Scope,
    ingest,
    promote,
    put,
    query,
    read,
    run,
)

SAMPLES = REPO / "include" / "sample" / "inmet"
STAGING = "staging-data"
CURATED = "curated-data"
DATASETS = "datasets"

NAME_2003 = "INMET_S_PR_A807_CURITIBA_28-01-2003_A_31-12-2003.CSV"
NAME_2019 = "INMET_S_PR_A807_CURITIBA_01-01-2019_A_31-12-2019.CSV"
NAME_2024 = "INMET_SE_SP_A701_SAO PAULO - MIRANTE_01-01-2024_A_31-12-2024.CSV"
NAME_BDMEP = "dados_A001_D_2000-05-06_2024-05-26.csv"
INMET_YEARLY = (NAME_2003, NAME_2019, NAME_2024)

# A data line of any sample: it starts with a date (YYYY-MM-DD or YYYY/MM/DD) and a ';'.
_DATA_LINE = re.compile(rb"^\d{4}[-/]\d{2}[-/]\d{2};")


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def unreadable_rows() -> bytes:
    """The 2019 sample with three rows staging cannot place in time, so it quarantines them (an
    implausible value only flags its field since issue 16): lines 10 and 11 at hour "2500 UTC" (one
    reason, twice), line 12 on day "2019/13/45"."""
    lines = sample(NAME_2019).split(b"\n")
    for index, column, value in ((9, 1, b"2500 UTC"), (10, 1, b"2500 UTC"), (11, 0, b"2019/13/45")):
        fields = lines[index].split(b";")
        fields[column] = value
        lines[index] = b";".join(fields)
    return b"\n".join(lines)


def tagged(data: bytes, tag: str) -> bytes:
    """A sample file whose station name line (INMET ``ESTACAO:;``, BDMEP ``Nome:``) ends with ``tag``."""
    lines = data.split(b"\n")
    index = next(i for i, line in enumerate(lines[:12]) if line.startswith((b"ESTA", b"Nome:")))
    lines[index] = (
        lines[index].rstrip(b"\r") + b" " + tag.encode() + (b"\r" if lines[index].endswith(b"\r") else b"")
    )
    return b"\n".join(lines)


def data_lines(data: bytes) -> int:
    """The data lines of a sample file, counted here without the parsers: lines starting with a date."""
    return sum(1 for line in data.replace(b"\r\n", b"\n").split(b"\n") if _DATA_LINE.match(line))


def crlf(data: bytes) -> bytes:
    assert b"\r" not in data
    return data.replace(b"\n", b"\r\n")


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def load(stack: Any, s: Scope, files: dict[str, bytes]) -> None:
    """Upload ``files`` under the project's reception prefix, register and promote them."""
    for rel, data in files.items():
        put(stack, s.key(rel), data)
    run(ingest(key_prefix=s.keys))
    promoted = run(promote(s))
    assert promoted["failed"] == 0, promoted


def staging(s: Scope, **kwargs: Any) -> Any:
    from trilha.operators.staging import StagingOperator

    kwargs.setdefault("project", s.name)  # "" for every project (then asset events may scope the run)
    return StagingOperator(task_id="stage", **kwargs)


def curated(s: Scope, **kwargs: Any) -> Any:
    from trilha.operators.curated import CuratedOperator

    kwargs.setdefault("project", s.name)  # "" for every project (then asset events may scope the run)
    return CuratedOperator(task_id="curate", **kwargs)


def split(s: Scope, **kwargs: Any) -> Any:
    from trilha.operators.split import DatasetSplitOperator

    return DatasetSplitOperator(task_id="split", project=s.name, **kwargs)


def record_writes(op: Any) -> list[str]:
    """The keys ``op`` uploads through its MinIO hook (``upload_stream``, which ``put_bytes`` uses),
    in order, as it runs. Iceberg's own files go through pyarrow's S3 file system, not counted here."""
    written: list[str] = []
    upload_stream = op.minio.upload_stream

    def spy(bucket: str, key: str, stream: Any, **kwargs: Any) -> Any:
        written.append(key)
        return upload_stream(bucket, key, stream, **kwargs)

    op.minio.upload_stream = spy
    return written


def staged_rows(stack: Any, s: Scope) -> list[dict[str, Any]]:
    return query(
        stack,
        "SELECT i.* FROM staging_inventory i JOIN projects_registry p ON p.id = i.project_id "
        "WHERE p.name = %s ORDER BY i.id",
        (s.name,),
    )


def staged_by_name(stack: Any, s: Scope) -> dict[str, dict[str, Any]]:
    """Staging inventory rows by the stored file's name relative to the project prefix."""
    return {Path(r["source_key"]).name: r for r in staged_rows(stack, s)}


def curated_rows(stack: Any, s: Scope) -> list[dict[str, Any]]:
    return query(
        stack,
        "SELECT c.* FROM curated_inventory c JOIN projects_registry p ON p.id = c.project_id "
        "WHERE p.name = %s ORDER BY c.id",
        (s.name,),
    )


def dataset_rows(stack: Any, s: Scope) -> list[dict[str, Any]]:
    return query(
        stack,
        "SELECT d.* FROM dataset_inventory d JOIN projects_registry p ON p.id = d.project_id "
        "WHERE p.name = %s ORDER BY d.id",
        (s.name,),
    )


def parquet(stack: Any, bucket: str, key: str) -> Any:
    import pyarrow as pa
    import pyarrow.parquet as pq

    return pq.read_table(pa.BufferReader(read(stack, bucket, key)))


def object_sha(stack: Any, bucket: str, key: str) -> str:
    return sha(read(stack, bucket, key))


def curated_identifier(row: dict[str, Any], name: str) -> tuple[str, str]:
    """The catalog identifier of table ``name`` of a curated version (its inventory row)."""
    namespace, table = str(row["tables"][name]["identifier"]).split(".", 1)
    return namespace, table


def curated_snapshot(row: dict[str, Any], name: str, what: str) -> Any:
    """``what`` (an :class:`~trilha.hooks.iceberg.IcebergHook` reader: ``snapshot_summary``,
    ``data_files``) of table ``name`` of a curated version, at the version's snapshot."""
    from trilha.hooks.iceberg import IcebergHook

    hook = IcebergHook()
    try:
        return getattr(hook, what)(curated_identifier(row, name), int(row["tables"][name]["snapshot_id"]))
    finally:
        hook.close()


def summary(row: dict[str, Any], name: str) -> dict[str, str]:
    """The snapshot summary of table ``name`` of a curated version."""
    return dict(curated_snapshot(row, name, "snapshot_summary"))


def data_files(row: dict[str, Any], name: str) -> list[dict[str, Any]]:
    """The data files of table ``name`` of a curated version, at its snapshot."""
    return list(curated_snapshot(row, name, "data_files"))


def curated_table(row: dict[str, Any], name: str, snapshot_id: int | None = None) -> Any:
    """Table ``name`` of a curated version, read through the Iceberg catalog at the version's
    snapshot (or ``snapshot_id``)."""
    from trilha.hooks.iceberg import IcebergHook

    hook = IcebergHook()
    try:
        snapshot = int(snapshot_id or row["tables"][name]["snapshot_id"])
        return hook.read(curated_identifier(row, name), snapshot)
    finally:
        hook.close()
