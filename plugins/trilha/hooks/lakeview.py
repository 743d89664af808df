"""The reads and the upload behind the Trilha page in the Airflow UI (:mod:`trilha.ui`).

:class:`LakeViewHook` is the audit store's read side for the page: each method is one statement of
``include/sql/queries/lake_*.sql`` (bind parameters only, paged, answered from indexes; migration
007). :func:`read_quarantine` reads one staged file's quarantine object. :class:`UploadSpool` and
:func:`upload_into_reception` are the page's upload: the body is received and hashed (sha256 and
md5 in the same pass) into a spool bounded in memory, then put into the reception bucket and
registered exactly as raw ingest registers an object (``raw.data_files`` claim and
``reception_audit`` row, :meth:`~trilha.hooks.audit.AuditHook.register_reception`).

Why the body is spooled before any byte reaches the lake: a client that disconnects, or a body over
the size limit, is then found out before an object exists, so a failed upload leaves neither an
object nor a row, and content the lake already holds never travels further than the API server.
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, TYPE_CHECKING, Any

from trilha.domain import lake
from trilha.domain.digest import CHUNK_SIZE, Digest
from trilha.domain.keys import validate_project_name, validate_relative_name
from trilha.domain.lakeview import like_start
from trilha.domain.reception import Entry
from trilha.exceptions import InvalidKeyError, TrilhaError
from trilha.hooks.audit import AuditHook

if TYPE_CHECKING:
    from collections.abc import Sequence

    from trilha.hooks.minio import MinioHook

#: Rows of quarantine the page shows for one staged file (the object has them all).
QUARANTINE_ROWS = 20


class UploadTooLargeError(TrilhaError):
    """The upload's body is larger than the configured limit."""


class ProjectNotRegisteredError(TrilhaError):
    """An upload named a project that ``projects_registry`` does not hold."""


class LakeViewHook(AuditHook):
    """Paged, indexed reads of the audit store for the Trilha page.

    :param postgres_conn_id: the Postgres connection of the audit store.
    """

    hook_name = "Trilha lake view (PostgreSQL)"

    def projects(
        self, reception_bucket: str, limit: int = 100, offset: int = 0, name: str | None = None
    ) -> list[dict[str, Any]]:
        """Each project with files and bytes per layer, rows quarantined and newest versions, by name,
        one page at a time.

        :param reception_bucket: the reception bucket (its live objects are counted per project prefix).
        :param name: only the project of this name.
        """
        params = {"reception_bucket": reception_bucket, "limit": limit, "offset": offset, "name": name}
        return self.query("lake_projects", params)

    def last_runs(self) -> list[dict[str, Any]]:
        """Every task-run row of the last run of each DAG (``meta.audit_log``)."""
        return self.query("lake_runs")

    def search(self, q: str, limit: int = 20, offset: int = 0) -> list[dict[str, Any]]:
        """Contents whose file name, key, sha256 or source id is ``q``, or whose name starts with it.

        :return: ``sha256``, a ``name`` and ``last_seen`` per content, newest first.
        """
        params = {"q": q, "start": like_start(q), "limit": limit, "offset": offset}
        return [{**r, "sha256": str(r["sha256"]).strip()} for r in self.query("lake_search", params)]

    def staged(self, sha256: Sequence[str], limit: int = 50) -> list[dict[str, Any]]:
        """The staging rows of these contents, newest first."""
        return self.query("lake_staged", {"sha256": list(sha256), "limit": limit})

    def staged_one(self, staging_id: int) -> dict[str, Any] | None:
        rows = self.query("lake_staged_one", {"id": staging_id})
        return rows[0] if rows else None

    def versions(self, sha256: Sequence[str], limit: int = 200) -> list[dict[str, Any]]:
        """The version history of every name these contents were stored under."""
        return self.query("lake_versions", {"sha256": list(sha256), "limit": limit})

    def run_objects(self, run_id: str, limit: int = 200, offset: int = 0) -> list[dict[str, Any]]:
        """What run ``run_id`` wrote at each layer (``layer``, ``bucket``, ``key``, ``content_sha256``,
        ``size_bytes``, ``detail``, ``at``), oldest first."""
        rows = self.query("lake_run_objects", {"run_id": run_id, "limit": limit, "offset": offset})
        for row in rows:
            row["content_sha256"] = str(row["content_sha256"]).strip() if row["content_sha256"] else None
        return rows

    def run_dags(self, run_ids: Sequence[str]) -> dict[str, str]:
        """The DAG id of each run id that ``meta.audit_log`` knows."""
        rows = self.query("lake_run_dags", {"run_ids": sorted(set(run_ids))})
        return {str(r["run_id"]): str(r["dag_id"]) for r in rows}


def read_quarantine(
    minio: MinioHook, bucket: str, row: dict[str, Any], limit: int = QUARANTINE_ROWS
) -> dict[str, Any]:
    """The quarantine object of a staging row: every row's reason (to count them) and the first rows.

    The object is read whole and verified against the sha256 the staging row recorded; only its
    reason, line number and raw-line columns are decoded (a contract violation has no raw line: its
    row's columns are in the object, the page shows the line number and the reason).

    :param bucket: the bucket the quarantine object is in (the staging bucket).
    :param row: a :meth:`LakeViewHook.staged_one` row with ``quarantine_key`` set.
    """
    import io

    import pyarrow.parquet as pq

    data = minio.get_verified(bucket, str(row["quarantine_key"]), str(row["quarantine_sha256"]).strip())
    parquet = pq.ParquetFile(io.BytesIO(data))
    wanted = [c for c in ("_line_number", "_reason", "_raw_line") if c in parquet.schema_arrow.names]
    table = parquet.read(columns=wanted).sort_by([("_line_number", "ascending")])
    return {
        "reasons": [str(r) for r in table.column("_reason").to_pylist()],
        "first": table.slice(0, limit).to_pylist(),
        "rows": table.num_rows,
    }


class UploadSpool:
    """The body of one upload, received chunk by chunk: hashed as it arrives (sha256 and md5 in one
    pass), kept in memory up to one chunk and on disk beyond, refused once it passes ``limit``.

    :param limit: the largest body accepted, in bytes.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.size = 0
        self._sha256 = hashlib.sha256()
        self._md5 = hashlib.md5(usedforsecurity=False)
        self.file: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=CHUNK_SIZE)  # noqa: SIM115

    def write(self, chunk: bytes) -> None:
        """Add ``chunk``; raises :class:`UploadTooLargeError` as soon as the body passes the limit."""
        self.size += len(chunk)
        if self.size > self.limit:
            raise UploadTooLargeError(
                f"upload: the file is larger than the limit of {self.limit} bytes; nothing was stored "
                "(raise TRILHA_UPLOAD_MAX_BYTES, or put large files in reception with raw_ingest)"
            )
        self._sha256.update(chunk)
        self._md5.update(chunk)
        self.file.write(chunk)

    def digest(self) -> Digest:
        return Digest(self._sha256.hexdigest(), self._md5.hexdigest(), self.size)

    def close(self) -> None:
        self.file.close()


@dataclass(frozen=True)
class UploadTarget:
    """A validated upload: the registered project and the reception key the file goes to."""

    project: str
    prefix: str
    key: str


def upload_target(audit: AuditHook, project: str, name: str) -> UploadTarget:
    """Validate ``project`` (registered in ``projects_registry``) and ``name`` (a relative file name:
    no ``..``, no absolute path, no control character); the reception key ``<prefix>/<name>``.

    Raises :class:`~trilha.exceptions.InvalidProjectError`, :class:`~trilha.exceptions.InvalidKeyError`
    or :class:`ProjectNotRegisteredError`, each naming the value and what was expected.
    """
    validate_project_name(project)
    validate_relative_name(name, what="upload file name")
    row = audit.get_or_create_project(project, None, None)
    if not row:
        raise ProjectNotRegisteredError(
            f"project {project!r} is not registered: create it with drive_capture or reception_promote "
            "(parameter project_prefix) first"
        )
    return UploadTarget(str(row["name"]), str(row["prefix"]), lake.reception_key(str(row["prefix"]), name))


def upload_into_reception(
    audit: AuditHook,
    minio: MinioHook,
    bucket: str,
    target: UploadTarget,
    spool: UploadSpool,
    user: str,
) -> dict[str, Any]:
    """Put the spooled body into ``bucket`` under ``target.key`` and register it as raw ingest does.

    Content the lake already holds (its sha256 in ``raw.data_files``) is not stored again: the answer
    says so and nothing is written. A name taken by other content gets a sibling key (never an
    overwrite). If the registration fails, the object just put is deleted, so no object is left
    that no audit row explains.

    :param user: the Airflow user who uploads (recorded as the run id ``ui_upload__<user>__<time>``).
    :return: ``key``, ``sha256``, ``md5``, ``size``, ``known`` (content already in the lake),
        ``status`` (``new``, ``duplicate``) and ``stored`` (whether an object was written).
    """
    digest = spool.digest()
    if digest.size == 0:
        raise InvalidKeyError(f"upload {target.key}: empty file (0 bytes), nothing to store")
    known_sha, _ = audit.known_content([digest.sha256], [])
    answer = {"project": target.project, "sha256": digest.sha256, "md5": digest.md5, "size": digest.size}
    if digest.sha256 in known_sha:
        return {**answer, "key": target.key, "known": True, "status": "duplicate", "stored": False}
    key = target.key
    existing = minio.stat(bucket, key)
    if existing is not None:
        key = lake.disambiguated_key(key, digest.sha256)
    spool.file.seek(0)
    result = minio.upload_stream(
        bucket, key, spool.file, expected=digest, metadata={"source-kind": "upload", "uploaded-by": user}
    )
    now = datetime.now(UTC)
    entry = Entry(
        key=key,
        etag=result.etag,
        size=digest.size,
        uploaded_at=now,
        sha256=digest.sha256,
        md5=digest.md5,
        source_kind="upload",
        source_ref=f"{user}:{target.key}",
    )
    try:
        audit.register_reception(bucket, [entry], f"ui_upload__{user}__{now.isoformat(timespec='seconds')}")
    except BaseException:
        minio.delete_keys(bucket, [key])
        raise
    return {
        **answer,
        "key": key,
        "known": entry.status == "duplicate",
        "status": entry.status,
        "stored": True,
    }
