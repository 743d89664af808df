"""The hooks of the operator unit tests, stubbed at the typed methods the operators call.

:class:`FakeMinio` keeps objects in a dict, :class:`FakeAudit` keeps the audit tables the operators
read and write as lists of rows, :class:`FakeRunLog` keeps the run-log documents: a test runs an
operator and asserts on what it wrote. Each fake method has the parameters of the hook method it
stands for (checked by tests/unit/test_operators_process.py and test_operators_ingest.py); what the
real hook decides through ``trilha.domain`` (how content claims settle) the fake decides through the
same functions, and what it decides in SQL the fake reimplements from the statement's text.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from trilha.domain import events, lake, lineage, reception, staging
from trilha.domain.digest import Digest, Readable
from trilha.domain.keys import validate_key
from trilha.domain.manifest import CuratedRecord, DatasetRecord, RecordedCut
from trilha.exceptions import IntegrityError, ObjectMissingError
from trilha.hooks.minio import ObjectInfo, UploadResult


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def digest(data: bytes) -> Digest:
    return Digest(sha(data), md5(data), len(data))


#: The listing time of an object put without one (a fixed instant: tests compare against it).
PUT_AT = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


class FakeMinio:
    """The MinioHook methods the operators call, over a dict of objects.

    ``objects`` maps ``(bucket, key)`` to the bytes; ``metadata`` holds the user metadata of the
    objects that have some (an upload or copy sets the sha256 one, as the real hook does); the ETag
    is the md5 of the bytes, as a single-part upload's is. ``lost`` names objects still listed but
    gone when read (deleted between the listing and the read).
    """

    def __init__(self, objects: dict[tuple[str, str], bytes] | None = None) -> None:
        self.objects = dict(objects or {})
        self.metadata: dict[tuple[str, str], dict[str, str]] = {}
        self.modified: dict[tuple[str, str], datetime] = {}
        self.lost: set[tuple[str, str]] = set()
        self.undeletable: set[tuple[str, str]] = set()
        self.puts: list[tuple[str, str, str]] = []  # (bucket, key, content type), in order
        self.reads: list[tuple[str, str]] = []  # objects whose bytes were read (digest), in order
        self.copies: list[tuple[str, str, str, str]] = []  # (src bucket, src key, dst bucket, dst key)
        self.deletes: list[tuple[str, str]] = []
        self.checked: list[str] = []

    def _info(self, bucket: str, key: str, with_metadata: bool) -> ObjectInfo:
        data = self.objects[bucket, key]
        return ObjectInfo(
            bucket,
            key,
            len(data),
            md5(data),
            self.modified.get((bucket, key), PUT_AT),
            dict(self.metadata.get((bucket, key), {})) if with_metadata else None,
        )

    def _store(self, bucket: str, key: str, data: bytes, metadata: dict[str, str]) -> None:
        self.objects[bucket, key] = data
        self.metadata[bucket, key] = metadata
        self.modified[bucket, key] = datetime.now(UTC)

    def check_buckets(self, buckets: Sequence[str]) -> None:
        self.checked.extend(buckets)

    def iter_objects(
        self, bucket: str, prefix: str = "", with_metadata: bool = False, page_size: int = 1000
    ) -> Iterator[ObjectInfo]:
        for b, key in sorted(self.objects):
            if b == bucket and key.startswith(prefix):
                yield self._info(b, key, with_metadata)

    def stat(self, bucket: str, key: str) -> ObjectInfo | None:
        if (bucket, key) not in self.objects or (bucket, key) in self.lost:
            return None
        return self._info(bucket, key, with_metadata=True)

    def _read(self, bucket: str, key: str) -> bytes:
        if (bucket, key) not in self.objects or (bucket, key) in self.lost:
            raise ObjectMissingError(f"s3://{bucket}/{key}: no such object")
        self.reads.append((bucket, key))
        return self.objects[bucket, key]

    def digest_object(self, bucket: str, key: str) -> Digest:
        return digest(self._read(bucket, key))

    def get_verified(self, bucket: str, key: str, sha256: str) -> bytes:
        data = self._read(bucket, key)
        if sha(data) != sha256:
            raise IntegrityError(f"s3://{bucket}/{key}: expected sha256 {sha256}, read {sha(data)}")
        return data

    def download_verified(self, bucket: str, key: str, path: Path, sha256: str) -> Digest:
        data = self.get_verified(bucket, key, sha256)
        path.write_bytes(data)
        return digest(data)

    def upload_stream(
        self,
        bucket: str,
        key: str,
        stream: Readable,
        expected: Digest | None = None,
        metadata: dict[str, str] | None = None,
        content_type: str = "application/octet-stream",
    ) -> UploadResult:
        validate_key(key)
        chunks = []
        while chunk := stream.read(1 << 20):
            chunks.append(chunk)
        data = b"".join(chunks)
        got = digest(data)
        if expected is not None and (got.sha256, got.size) != (expected.sha256, expected.size):
            raise IntegrityError(f"s3://{bucket}/{key}: expected sha256 {expected.sha256}, got {got.sha256}")
        self._store(bucket, key, data, {**(metadata or {}), "sha256": got.sha256})
        self.puts.append((bucket, key, content_type))
        return UploadResult(got, got.md5)

    def put_bytes(
        self, bucket: str, key: str, data: bytes, content_type: str = "application/octet-stream"
    ) -> Digest:
        self._store(bucket, key, data, {"sha256": sha(data)})
        self.puts.append((bucket, key, content_type))
        return digest(data)

    def copy_object_verified(
        self,
        src_bucket: str,
        src_key: str,
        dst_bucket: str,
        dst_key: str,
        expected: Digest,
        metadata: dict[str, str] | None = None,
        source_etag: str | None = None,
        rehash: bool = False,
    ) -> ObjectInfo:
        validate_key(dst_key)
        data = self.objects.get((src_bucket, src_key))
        if data is None or (src_bucket, src_key) in self.lost:
            raise ObjectMissingError(f"s3://{src_bucket}/{src_key}: no such object")
        if source_etag is not None and md5(data) != source_etag:
            raise ObjectMissingError(
                f"s3://{src_bucket}/{src_key}: the object changed since it was recorded (S3 answered 412)"
            )
        self._store(dst_bucket, dst_key, data, {**(metadata or {}), "sha256": expected.sha256})
        self.copies.append((src_bucket, src_key, dst_bucket, dst_key))
        if digest(data) != expected:
            del self.objects[dst_bucket, dst_key]
            raise IntegrityError(f"s3://{dst_bucket}/{dst_key}: verification failed: expected {expected}")
        return self._info(dst_bucket, dst_key, with_metadata=True)

    def delete_keys(self, bucket: str, keys: list[str]) -> list[str]:
        gone = []
        for key in keys:
            if (bucket, key) in self.undeletable:
                continue
            self.objects.pop((bucket, key), None)
            self.deletes.append((bucket, key))
            gone.append(key)
        return gone


class FakePromotionBatch:
    """:class:`trilha.hooks.audit.PromotionBatch` over :class:`FakeAudit`'s storage rows; what it
    records is kept apart and added to them when the batch's block ends without error (its commit)."""

    def __init__(self, audit: FakeAudit, project_id: int) -> None:
        self.audit = audit
        self.project_id = project_id
        self.rows: list[dict[str, Any]] = []
        self.key_locks: list[str] = []

    def stored(self, sha256: Sequence[str]) -> dict[str, dict[str, Any]]:
        return {
            s["sha256"]: s
            for s in self.audit.storage
            if s["project_id"] == self.project_id and s["sha256"] in sha256
        }

    def latest_versions(self, names: Sequence[str]) -> dict[str, dict[str, Any]]:
        latest: dict[str, dict[str, Any]] = {}
        for s in self.audit.storage:
            if s["project_id"] == self.project_id and s["logical_name"] in names:
                if s["logical_name"] not in latest or s["version"] > latest[s["logical_name"]]["version"]:
                    latest[s["logical_name"]] = s
        return latest

    def keys_taken(self, bucket: str, keys: Sequence[str]) -> set[str]:
        self.key_locks.extend(keys)
        return {
            s["dest_key"] for s in self.audit.storage if s["dest_bucket"] == bucket and s["dest_key"] in keys
        }

    def record(
        self,
        project: Mapping[str, Any],
        done: Sequence[lake.PromotionItem],
        source_bucket: str,
        dest_bucket: str,
        run_id: str,
    ) -> None:
        for i in done:
            self.rows.append(
                {
                    "id": 100 + len(self.audit.storage) + len(self.rows),
                    "project_id": self.project_id,
                    "reception_id": i.reception_id,
                    "source_bucket": source_bucket,
                    "source_key": i.source_key,
                    "dest_bucket": dest_bucket,
                    "dest_key": i.dest_key,
                    "logical_name": i.name,
                    "version": i.version,
                    "previous_sha256": i.previous_sha256,
                    "size_bytes": i.size,
                    "sha256": i.sha256,
                    "md5": i.md5,
                    "run_id": run_id,
                }
            )


class FakeAudit:
    """The AuditHook methods the operators call, keeping what they write."""

    def __init__(self) -> None:
        self.audit_rows: list[dict[str, Any]] = []
        self.schema_checks = 0
        # ingestion: the tables, as rows
        self.projects: list[dict[str, Any]] = []
        self.data_files: dict[str, dict[str, Any]] = {}  # raw.data_files, by sha256
        self.reception: list[dict[str, Any]] = []  # reception_audit
        self.storage: list[dict[str, Any]] = []  # storage_audit
        self.cleanups: list[tuple[lake.CleanupRecord, bool, str]] = []  # (row, dry run, run id)
        self.batches: list[tuple[int, list[str], list[str]]] = []  # promotion_batch's locks
        # processing
        self.candidates: list[dict[str, Any]] = []
        self.staged: list[staging.StagingRow] = []
        self.targets: list[dict[str, Any]] = []
        self.parts: list[dict[str, Any]] = []
        self.made: str | None = None  # curated_made_from's answer
        self.next_number = 1
        self.curated: list[CuratedRecord] = []
        self.curated_row: dict[str, Any] | None = None
        self.cuts: dict[str, RecordedCut] = {}  # by fingerprint
        self.datasets: list[DatasetRecord] = []
        self.exported: list[tuple[int, str]] = []

    # base operator
    def ensure_schema(self) -> list[str]:
        self.schema_checks += 1
        return []

    def write_audit_log(self, row: dict[str, Any]) -> int:
        self.audit_rows.append(dict(row))
        return 7

    def close(self) -> None:
        pass

    def _no_changes(self, run_id: str, bucket: str) -> events.RunChanges:
        return events.changes_from_rows([], ())

    staging_changes = curated_changes = dataset_changes = reception_changes = storage_changes = _no_changes

    # projects
    def get_or_create_project(self, name: str, prefix: str | None, run_id: str | None) -> dict[str, Any]:
        for p in self.projects:
            if p["name"] == name:
                return p
        if prefix is None:
            return {}
        return {**add_project(self, name, prefix), "created": True}

    def project_by_prefix(self, prefix: str) -> dict[str, Any] | None:
        return next((p for p in self.projects if p["prefix"] == prefix), None)

    # capture and raw ingest
    def known_reception(
        self, bucket: str, keys: Sequence[str], etags: Sequence[str]
    ) -> dict[tuple[str, str], dict]:
        wanted = set(zip(keys, etags, strict=True))
        return {
            (r["object_key"], r["etag"]): r
            for r in self.reception
            if r["bucket"] == bucket and (r["object_key"], r["etag"]) in wanted and r["deleted_at"] is None
        }

    def known_source_revisions(
        self, kind: str, refs: Sequence[str], revisions: Sequence[str]
    ) -> set[tuple[str, str]]:
        wanted = set(zip(refs, revisions, strict=True))
        return {
            (r["source_ref"], r["source_revision"])
            for r in self.reception
            if r["source_kind"] == kind and (r["source_ref"], r["source_revision"]) in wanted
        }

    def known_content(self, sha256: Sequence[str], md5: Sequence[str]) -> tuple[set[str], set[str]]:
        return (
            {s for s in sha256 if s in self.data_files},
            {m for m in md5 if any(d["md5"] == m for d in self.data_files.values())},
        )

    def register_reception(self, bucket: str, entries: Sequence[reception.Entry], run_id: str) -> None:
        if not entries:
            return
        ordered = reception.claimable(entries)
        claims: dict[str, dict[str, Any]] = {}
        for e in sorted(ordered, key=lambda e: (str(e.sha256), e.key)):  # data_files_claim's DISTINCT ON
            sha256 = str(e.sha256)
            if sha256 in claims:
                continue
            if sha256 in self.data_files:
                claims[sha256] = {**self.data_files[sha256], "is_new": False}
            else:
                row = {"sha256": sha256, "md5": e.md5, "size_bytes": e.size}
                self.data_files[sha256] = {**row, "first_bucket": bucket, "first_key": e.key}
                claims[sha256] = {**self.data_files[sha256], "is_new": True}
        reception.settle_claims(ordered, claims)
        for e in entries:
            self.reception.append(
                {
                    "id": len(self.reception) + 1,
                    "bucket": bucket,
                    "object_key": e.key,
                    "file_name": PurePosixPath(e.key).name,
                    "etag": e.etag,
                    "size_bytes": e.size,
                    "uploaded_at": e.uploaded_at,
                    "sha256": e.sha256,
                    "md5": e.md5,
                    "source_kind": e.source_kind,
                    "source_ref": e.source_ref,
                    "source_revision": e.source_revision,
                    "status": e.status,
                    "duplicate_of": e.sha256 if e.status == "duplicate" else None,
                    "reason": e.reason,
                    "run_id": run_id,
                    "deleted_at": None,
                }
            )

    # promote
    def promote_candidates(
        self, bucket: str, key_prefix: str, keys: Sequence[str] | None
    ) -> list[dict[str, Any]]:
        latest = {r["object_key"]: r["id"] for r in self.reception if r["bucket"] == bucket}
        return [
            r
            for r in self.reception
            if r["bucket"] == bucket
            and r["status"] in ("new", "duplicate")
            and r["deleted_at"] is None
            and r["object_key"].startswith(key_prefix)
            and (keys is None or r["object_key"] in keys)
            and latest[r["object_key"]] == r["id"]
        ]

    @contextmanager
    def promotion_batch(
        self, project_id: int, sha256: Sequence[str], names: Sequence[str]
    ) -> Iterator[FakePromotionBatch]:
        self.batches.append((project_id, list(sha256), list(names)))
        batch = FakePromotionBatch(self, project_id)
        yield batch  # an exception in the block: nothing recorded (the transaction rolls back)
        self.storage.extend(batch.rows)

    # cleanup
    def reception_current(
        self, bucket: str, keys: Sequence[str], etags: Sequence[str]
    ) -> dict[str, dict[str, Any]]:
        current: dict[str, dict[str, Any]] = {}
        for key, etag in zip(keys, etags, strict=True):
            rows = [r for r in self.reception if r["bucket"] == bucket and r["object_key"] == key]
            rows.sort(key=lambda r: (r["etag"] == etag, r["deleted_at"] is None, r["id"]), reverse=True)
            if rows:
                current[key] = rows[0]
        return current

    def stored_anywhere(self, sha256: Sequence[str]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for s in sorted(self.storage, key=lambda s: s["id"]):
            if s["sha256"] in sha256:
                found.setdefault(s["sha256"], s)
        return found

    def record_cleanup(
        self, bucket: str, rows: Sequence[lake.CleanupRecord], dry_run: bool, run_id: str
    ) -> None:
        self.cleanups.extend((r, dry_run, run_id) for r in rows)
        deleted = {r.reception_id for r in rows if r.action == "deleted" and r.reception_id is not None}
        for r in self.reception:
            if r["id"] in deleted:
                r["deleted_at"] = datetime.now(UTC)

    # staging
    def staging_candidates(
        self,
        project: str | None,
        key_prefix: str,
        code_version: str,
        keys: Sequence[str] | None,
        storage_ids: Sequence[int] | None = None,
    ) -> list[dict[str, Any]]:
        return [
            c
            for c in self.candidates
            if c["dest_key"].startswith(key_prefix)
            and (keys is None or c["dest_key"] in keys)
            and (storage_ids is None or c["storage_audit_id"] in storage_ids)
        ]

    def record_staging(self, rows: Sequence[staging.StagingRow], run_id: str) -> None:
        self.staged.extend(rows)

    # curated
    def curated_targets(
        self, project: str | None, dataset: str | None, datasets: Sequence[str] | None
    ) -> list[dict[str, Any]]:
        return list(self.targets)

    def curated_inputs(self, project_id: int, dataset: str) -> list[dict[str, Any]]:
        return list(self.parts)

    def curated_made_from(self, project_id: int, dataset: str, fingerprint: str) -> str | None:
        return self.made

    def curated_latest(self, project_id: int, dataset: str) -> dict[str, Any] | None:
        if not self.curated:
            return None
        last = self.curated[-1]
        return {
            "id": len(self.curated),
            "version": last.version,
            "table_format": last.table_format,
            "tables": last.tables,
            "inputs": last.inputs,
        }

    def record_curated(
        self,
        project_id: int,
        dataset: str,
        fingerprint: str,
        write: Callable[[str, dict[str, Any] | None], CuratedRecord],
    ) -> CuratedRecord | str:
        latest = self.curated_latest(project_id, dataset)
        record = write(lineage.curated_version(self.next_number + len(self.curated)), latest)
        self.curated.append(record)
        return record

    # dataset split
    def curated_version(self, project: str, dataset: str, version: str | None) -> dict[str, Any] | None:
        return self.curated_row

    def dataset_by_fingerprint(self, curated_id: int, fingerprint: str) -> RecordedCut | None:
        return self.cuts.get(fingerprint)

    def record_dataset(
        self,
        project_id: int,
        curated_id: int,
        fingerprint: str,
        write: Callable[[int], DatasetRecord],
        dataset: str,
    ) -> tuple[RecordedCut, bool]:
        record = write(len(self.datasets) + 1)
        self.datasets.append(record)
        cut = RecordedCut(
            len(self.datasets),
            record.version,
            record.bucket,
            record.files,
            record.manifest_key,
            record.manifest_sha256,
        )
        self.cuts[fingerprint] = cut
        return cut, True

    def mark_dataset_exported(self, dataset_id: int, drive_folder_id: str) -> None:
        self.exported.append((dataset_id, drive_folder_id))
        for fp, cut in self.cuts.items():
            if cut.id == dataset_id:
                self.cuts[fp] = dataclasses.replace(cut, drive_folder_id=drive_folder_id)


class FakeRunLog:
    def __init__(self) -> None:
        self.documents: list[dict[str, Any]] = []

    def write(self, document: dict[str, Any], log: Any) -> str | None:
        self.documents.append(document)
        return str(document["_id"])


def put_object(
    minio: FakeMinio,
    bucket: str,
    key: str,
    data: bytes,
    metadata: dict[str, str] | None = None,
    at: datetime = PUT_AT,
) -> None:
    """Test setup: an object as another writer left it (no call recorded)."""
    minio.objects[bucket, key] = data
    minio.modified[bucket, key] = at
    if metadata is not None:
        minio.metadata[bucket, key] = dict(metadata)


def add_project(audit: FakeAudit, name: str, prefix: str) -> dict[str, Any]:
    """Test setup: a registered project."""
    project = {"id": len(audit.projects) + 1, "name": name, "prefix": prefix, "created": False}
    audit.projects.append(project)
    return project


def wired(op: Any, audit: FakeAudit, minio: FakeMinio) -> tuple[FakeAudit, FakeMinio, FakeRunLog]:
    """Set the operator's cached hook properties to the fakes."""
    runlog = FakeRunLog()
    op.__dict__.update(audit=audit, minio=minio, runlog=runlog)
    return audit, minio, runlog
