"""Operators of the ingestion half: capture, raw ingest, promote, cleanup.

Each is one verb over the hooks and the pure rules in :mod:`trilha.domain.lake`. Work goes in batches: one
listing page, one SQL round trip per question per batch, and S3 transfers on a small thread pool
(I/O bound; boto3 clients are thread-safe).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, TypeVar

from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from trilha import config
from trilha.assets import RAW_REGISTERED, RECEPTION, STORED_RAW
from trilha.domain import events, lake
from trilha.domain.digest import EMPTY_SHA256, ChunkStream, Digest
from trilha.domain.keys import (
    validate_key,
    validate_key_prefix,
    validate_project_name,
    validate_project_prefix,
)
from trilha.exceptions import (
    ExportTooLargeError,
    IntegrityError,
    InvalidKeyError,
    InvalidProjectError,
    ObjectWriteError,
    SourceError,
    is_missing,
)
from trilha.operators.base import Counters, Progress, TrilhaBaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

    from trilha.hooks.audit import AuditHook, Transaction
    from trilha.hooks.minio import ObjectInfo
    from trilha.hooks.sources import CaptureSource, HashesLocally, SourceFile

T = TypeVar("T")
R = TypeVar("R")
BATCH = 500
EMPTY_MD5 = "d41d8cd98f00b204e9800998ecf8427e"
#: What the reception and storage events count per project (columns of *_changes.sql).
RECEPTION_COUNTS = ("new", "duplicate", "bytes")
STORAGE_COUNTS = ("new_versions", "bytes")


def chunked(items: Iterable[T], size: int) -> Iterator[list[T]]:
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def parallel(fn: Callable[[T], R], items: Sequence[T], workers: int) -> list[R | BaseException]:
    """Map ``fn`` over ``items`` on a thread pool, keeping order; exceptions are returned, not raised."""

    def safe(item: T) -> R | BaseException:
        try:
            return fn(item)
        except Exception as err:
            return err

    if workers <= 1 or len(items) <= 1:
        return [safe(i) for i in items]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(safe, items))


def all_or_raise(outcomes: Sequence[R | BaseException]) -> list[R]:
    """The results of :func:`parallel` when every item succeeded; else raise the first exception."""
    results: list[R] = []
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
        results.append(outcome)
    return results


def resolve_project(audit: AuditHook, name: str, prefix: str | None, run_id: str) -> dict[str, Any]:
    """Select the project by name, or create it with ``prefix``; fail at once with what to fix."""
    try:
        validate_project_name(name)
        if prefix:
            validate_project_prefix(prefix)
    except InvalidProjectError as err:
        raise AirflowFailException(str(err)) from None
    if prefix:
        owner = audit.project_by_prefix(prefix)
        if owner and owner["name"] != name:
            raise AirflowFailException(
                f"project prefix {prefix!r} already belongs to project {owner['name']!r}; "
                "choose another prefix"
            )
    project = audit.get_or_create_project(name, prefix or None, run_id)
    if not project:
        raise AirflowFailException(
            f"project {name!r} is not registered and no project_prefix was given: set project_prefix "
            "(1-63 characters of a-z, 0-9, '_' or '-') to create it"
        )
    if prefix and project["prefix"] != prefix:
        raise AirflowFailException(
            f"project {name!r} already exists with prefix {project['prefix']!r}, not {prefix!r}; "
            "leave project_prefix empty or use the existing one"
        )
    return project


@dataclass
class Entry:
    """A reception object about to be registered in ``reception_audit``."""

    key: str
    etag: str
    size: int
    uploaded_at: datetime | None
    sha256: str | None
    md5: str | None
    source_kind: str = "upload"
    source_ref: str | None = None
    source_revision: str | None = None
    status: str = ""
    reason: str | None = None


def register_entries(
    audit: AuditHook, bucket: str, entries: list[Entry], run_id: str, counters: Counters
) -> None:
    """Claim content in ``raw.data_files`` and register the objects, in one transaction.

    Of several objects with the same new content, the first by key is ``new`` and the others are
    ``duplicate`` of its sha256; content claimed earlier (or by a concurrent run) makes a duplicate.
    """
    if not entries:
        return
    claimable = [e for e in entries if e.status != "rejected"]
    with audit.transaction() as tx:
        claims: dict[str, dict[str, Any]] = {}
        if claimable:
            ordered = sorted(claimable, key=lambda e: e.key)
            rows = tx.run(
                "data_files_claim",
                {
                    "bucket": bucket,
                    "run_id": run_id,
                    "sha256": [e.sha256 for e in ordered],
                    "md5": [e.md5 for e in ordered],
                    "size_bytes": [e.size for e in ordered],
                    "keys": [e.key for e in ordered],
                },
            )
            claims = {r["sha256"]: r for r in rows}
        for e in sorted(claimable, key=lambda e: e.key):
            claim = claims[str(e.sha256)]
            if claim["is_new"] and claim["first_key"] == e.key:
                e.status = "new"
            else:
                e.status = "duplicate"
                e.reason = f"same content as {claim['first_bucket']}/{claim['first_key']}"
        tx.run(
            "reception_insert",
            {
                "bucket": bucket,
                "keys": [e.key for e in entries],
                "file_names": [PurePosixPath(e.key).name for e in entries],
                "etags": [e.etag for e in entries],
                "sizes": [e.size for e in entries],
                "uploaded_at": [e.uploaded_at for e in entries],
                "sha256": [e.sha256 for e in entries],
                "md5": [e.md5 for e in entries],
                "source_kind": [e.source_kind for e in entries],
                "source_ref": [e.source_ref for e in entries],
                "source_revision": [e.source_revision for e in entries],
                "status": [e.status for e in entries],
                "duplicate_of": [e.sha256 if e.status == "duplicate" else None for e in entries],
                "reason": [e.reason for e in entries],
                "run_ids": [run_id] * len(entries),
            },
        )
    for e in entries:
        if e.status == "rejected":
            counters.problem("rejected", f"{bucket}/{e.key}", str(e.reason))
        else:
            counters.add(e.status)
            counters.touched(f"{bucket}/{e.key}")


class _ReceptionMixin(TrilhaBaseOperator):
    """Shared parameters of the operators that write the reception bucket."""

    reception_bucket: str

    def capture_source(
        self,
        source: CaptureSource,
        dest_prefix: str,
        source_prefix: str,
        counters: Counters,
        run_id: str,
        workers: int,
    ) -> None:
        """Copy new files of ``source`` into reception under ``dest_prefix`` and register them.

        Uniqueness is checked *before* any byte moves: a file whose checksum the inventory already
        holds is counted as a duplicate and never downloaded nor uploaded.
        """
        from trilha.hooks.sources import HashesLocally

        bucket = self.reception_bucket
        progress = Progress(self.log, f"capture from {source.describe()}")
        for batch in chunked(source.list_files(prefix=source_prefix), BATCH):
            wanted: list[tuple[SourceFile, str]] = []
            for f in batch:
                counters.add("seen")
                if f.problem:
                    counters.problem("rejected", f.relative_path, f.problem)
                    continue
                try:
                    key = (
                        lake.reception_key(dest_prefix, f.relative_path)
                        if dest_prefix
                        else validate_key(f.relative_path, what="source path")
                    )
                except InvalidKeyError as err:
                    counters.problem("rejected", f.relative_path, str(err))
                    continue
                if f.size == 0:
                    counters.problem("rejected", f.relative_path, "empty file (0 bytes): nothing to capture")
                    continue
                wanted.append((f, key))
            # Captured before at this very revision (a local file untouched since, a Google document
            # not edited since): nothing to read, hash or export. Google documents need this most:
            # they carry no checksum and export to new bytes each time.
            no_sum = [f for f, _ in wanted if not f.sha256 and not f.md5 and f.revision]
            known_rev = (
                self.audit.known_source_revisions(
                    source.kind, [f.source_id for f in no_sum], [str(f.revision) for f in no_sum]
                )
                if no_sum
                else set()
            )
            fresh = [
                (f, key)
                for f, key in wanted
                if f.sha256 or f.md5 or (f.source_id, f.revision) not in known_rev
            ]
            counters.add("duplicate", len(wanted) - len(fresh))
            progress.update(len(wanted) - len(fresh))
            if isinstance(source, HashesLocally):
                fresh = self._hash_local(source, fresh, counters, workers)
            known_sha = self.audit.known_checksums([f.sha256 for f, _ in fresh if f.sha256])
            known_md5 = {
                r["md5"]
                for r in self.audit.query(
                    "checksums_known_md5", {"md5": [f.md5 for f, _ in fresh if f.md5 and not f.sha256]}
                )
            }
            todo: list[tuple[SourceFile, str]] = []
            seen_content: set[str] = set()
            for f, key in fresh:
                content_id = f.sha256 or f.md5
                if (
                    (f.sha256 and f.sha256 in known_sha)
                    or (not f.sha256 and f.md5 in known_md5)
                    or (content_id and content_id in seen_content)
                ):
                    counters.add("duplicate")
                    progress.update()
                    continue
                if content_id:
                    seen_content.add(content_id)
                todo.append((f, key))

            def upload(item: tuple[SourceFile, str]) -> Entry:
                f, key = item
                existing = self.minio.stat(bucket, key)
                if existing is not None and f.sha256 and existing.sha256 == f.sha256:
                    # Uploaded by a run that died before registering it: register, don't re-send.
                    return self._entry(f, key, existing.etag, Digest(f.sha256, f.md5 or "", existing.size))
                if existing is not None:
                    # Another content already sits under this name: never overwrite it.
                    key = lake.disambiguated_key(key, f.sha256 or f.source_id)
                expected = (
                    Digest(f.sha256, f.md5, f.size) if f.sha256 and f.md5 and f.size is not None else None
                )
                result = self.minio.upload_stream(
                    bucket,
                    key,
                    ChunkStream(source.iter_chunks(f)),
                    expected=expected,
                    metadata={"source-kind": f.source_kind, "source-revision": f.revision or ""},
                )
                return self._entry(f, key, result.etag, result.digest)

            entries: list[Entry] = []
            for (_, key), outcome in zip(todo, parallel(upload, todo, workers), strict=True):
                per_item = SourceError | IntegrityError | ObjectWriteError
                if isinstance(outcome, per_item) or (
                    isinstance(outcome, BaseException) and is_missing(outcome)
                ):
                    # Too large to export: bad input that no retry fixes, so a rejection with its reason.
                    kind = (
                        "rejected"
                        if isinstance(outcome, ExportTooLargeError)
                        else "skipped"
                        if isinstance(outcome, SourceError)
                        else "failed"
                    )
                    counters.problem(kind, key, str(outcome))
                elif isinstance(outcome, BaseException):
                    raise outcome
                else:
                    entries.append(outcome)
                    counters.add("bytes", outcome.size)
                    progress.update(1, outcome.size)
            register_entries(self.audit, bucket, entries, run_id, counters)
        progress.finish()

    @staticmethod
    def _hash_local(
        source: HashesLocally, files: list[tuple[SourceFile, str]], counters: Counters, workers: int
    ) -> list[tuple[SourceFile, str]]:
        """sha256 and md5 of local files (one pass each), on ``workers`` threads: hashlib releases the
        GIL on large buffers, so both cores hash. A file that vanished meanwhile is skipped."""
        hashed: list[tuple[SourceFile, str]] = []
        todo = [f for f, _ in files if not f.sha256]
        outcomes = iter(parallel(source.with_checksums, todo, workers))
        for f, key in files:
            if f.sha256:
                hashed.append((f, key))
                continue
            outcome = next(outcomes)
            if isinstance(outcome, FileNotFoundError):
                counters.problem("skipped", key, "vanished between listing and reading")
            elif isinstance(outcome, BaseException):
                raise outcome
            else:
                hashed.append((outcome, key))
        return hashed

    @staticmethod
    def _entry(f: SourceFile, key: str, etag: str, digest: Digest) -> Entry:
        return Entry(
            key=key,
            etag=etag,
            size=digest.size,
            uploaded_at=datetime.now(UTC),
            sha256=digest.sha256,
            md5=digest.md5,
            source_kind=f.source_kind,
            source_ref=f.source_id,
            source_revision=f.revision,
        )


class CaptureOperator(_ReceptionMixin):
    """Capture new files from a Google Drive folder or a local/synced folder into reception.

    :param source: a Drive folder id, or an absolute local path (templated).
    :param project: the project whose prefix the files land under (templated).
    :param project_prefix: prefix to create the project with when it is new (templated).
    :param key_prefix: only capture files whose path under the source starts with this (templated).
    :param reception_bucket: reception bucket (templated).
    :param gcp_conn_id: Google connection for Drive sources (templated).
    :param workers: parallel transfers.
    """

    template_fields: Sequence[str] = (
        *TrilhaBaseOperator.template_fields,
        "source",
        "project",
        "project_prefix",
        "key_prefix",
        "reception_bucket",
        "gcp_conn_id",
    )

    def __init__(
        self,
        *,
        source: str,
        project: str,
        project_prefix: str | None = None,
        key_prefix: str = "",
        reception_bucket: str = config.DEFAULT_BUCKETS["bucket_reception"],
        gcp_conn_id: str = config.GOOGLE_CONN_ID,
        workers: int = 4,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.source = source
        self.project = project
        self.project_prefix = project_prefix
        self.key_prefix = key_prefix
        self.reception_bucket = reception_bucket
        self.gcp_conn_id = gcp_conn_id
        self.workers = workers

    def make_source(self) -> CaptureSource:
        """A path (absolute, or existing) is a local folder; anything else is a Drive folder id."""
        source = (self.source or "").strip()
        if not source:
            raise AirflowSkipException(
                "no source: set the 'source' parameter or the Variable trilha_capture_source to a Drive "
                "folder id or an absolute local path"
            )
        if source.startswith(("/", "./", "~")) or Path(source).exists():
            from trilha.hooks.sources import LocalFolderSource

            try:
                return LocalFolderSource(Path(source).expanduser(), compute_checksums=False)
            except SourceError as err:
                raise AirflowFailException(str(err)) from None
        from trilha.hooks.drive import TrilhaDriveHook

        return TrilhaDriveHook(gcp_conn_id=self.gcp_conn_id, folder_id=source)

    def run(self, context: Context, counters: Counters) -> dict[str, Any]:
        key_prefix = validate_key_prefix(self.key_prefix, what="key_prefix")
        source = self.make_source()
        self.minio.check_buckets([self.reception_bucket])
        project = resolve_project(self.audit, self.project, self.project_prefix, context["run_id"])
        self.capture_source(source, project["prefix"], key_prefix, counters, context["run_id"], self.workers)
        # Capture registers what it uploads, so it changes both layers: the objects (raw_ingest's
        # trigger) and their reception_audit rows (reception_promote's).
        changed = self.run_changes(context, "reception_changes", self.reception_bucket, RECEPTION_COUNTS)
        self.announce(context, [RECEPTION, RAW_REGISTERED], self.reception_bucket, changed)
        return {"project": project["name"], "prefix": project["prefix"], "source": source.describe()}


class RawIngestOperator(_ReceptionMixin):
    """Register every object of the reception bucket (and ingest a local landing directory first).

    Each unregistered object is streamed once (sha256 and md5 in the same pass) and recorded in
    ``reception_audit``; its content is claimed in ``raw.data_files``. Objects already registered
    (same key and ETag) cost nothing but their listing line.

    In a run triggered by ``trilha_reception`` events (and no ``key_prefix``), only the prefixes of
    the projects the events name are listed, not the whole bucket.

    :param key_prefix: only objects whose key starts with this (templated).
    :param landing_dir: a local folder to ingest first, uniqueness checked before upload (templated).
    :param landing_prefix: reception key prefix for landing files (templated).
    """

    consumes = RECEPTION

    template_fields: Sequence[str] = (
        *TrilhaBaseOperator.template_fields,
        "key_prefix",
        "landing_dir",
        "landing_prefix",
        "reception_bucket",
    )

    def __init__(
        self,
        *,
        key_prefix: str = "",
        landing_dir: str | None = None,
        landing_prefix: str = "",
        reception_bucket: str = config.DEFAULT_BUCKETS["bucket_reception"],
        workers: int = 4,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.key_prefix = key_prefix
        self.landing_dir = landing_dir
        self.landing_prefix = landing_prefix
        self.reception_bucket = reception_bucket
        self.workers = workers

    def run(self, context: Context, counters: Counters) -> dict[str, Any]:
        run_id = context["run_id"]
        bucket = self.reception_bucket
        key_prefix = validate_key_prefix(self.key_prefix, what="key_prefix")
        self.minio.check_buckets([bucket])
        if self.landing_dir:
            from trilha.hooks.sources import LocalFolderSource

            try:
                landing = LocalFolderSource(self.landing_dir, compute_checksums=False)
            except SourceError as err:
                raise AirflowFailException(f"landing_dir: {err}") from None
            landing_prefix = validate_key_prefix(self.landing_prefix, what="landing_prefix").strip("/")
            self.capture_source(landing, landing_prefix, "", counters, run_id, self.workers)
        scope = self.event_scope(context, explicit="key_prefix" if key_prefix else "", items=None)
        prefixes = [key_prefix] if scope.projects is None else [f"{p.prefix}/" for p in scope.projects]
        registered = 0
        progress = Progress(self.log, f"register s3://{bucket}/{{{','.join(prefixes)}}}")
        listing = (obj for prefix in prefixes for obj in self.minio.iter_objects(bucket, prefix))
        for page in chunked(listing, BATCH):
            known = self.audit.known_reception(bucket, [o.key for o in page], [o.etag for o in page])
            todo = [o for o in page if (o.key, o.etag) not in known]
            # Registered before (by capture, or an earlier run): nothing to read.
            counters.add("skipped", len(page) - len(todo))
            progress.update(len(page) - len(todo))

            def describe(obj: ObjectInfo) -> Entry:
                entry = Entry(obj.key, obj.etag, obj.size, obj.last_modified, None, None)
                try:
                    validate_key(obj.key, what="reception key")
                except InvalidKeyError as err:
                    entry.status, entry.reason = "rejected", str(err)
                if obj.size == 0:
                    entry.sha256, entry.md5 = EMPTY_SHA256, EMPTY_MD5
                    entry.status, entry.reason = "rejected", "empty file (0 bytes)"
                    return entry
                digest = self.minio.digest_object(bucket, obj.key)
                entry.sha256, entry.md5 = digest.sha256, digest.md5
                if digest.size != obj.size:
                    entry.status = "rejected"
                    entry.reason = (
                        f"read {digest.size} bytes, listed {obj.size}: the object changed while read"
                    )
                return entry

            entries: list[Entry] = []
            for obj, outcome in zip(todo, parallel(describe, todo, self.workers), strict=True):
                if is_missing(outcome) if isinstance(outcome, BaseException) else False:
                    counters.problem("skipped", f"{bucket}/{obj.key}", "vanished between listing and reading")
                elif isinstance(outcome, BaseException):
                    # Not a per-object problem (endpoint down, wrong keys): fail, retry; nothing was
                    # registered for this batch, so no audit row claims what did not happen.
                    raise outcome
                else:
                    entries.append(outcome)
                    counters.add("bytes", obj.size)
                    progress.update(1, obj.size)
            counters.add("seen", len(page))
            register_entries(self.audit, bucket, entries, run_id, counters)
            registered += len(entries)
        progress.finish()
        # Not trilha_reception, though landing files enter the bucket: that is this DAG's own trigger.
        changed = self.run_changes(context, "reception_changes", bucket, RECEPTION_COUNTS)
        self.announce(context, [RAW_REGISTERED], bucket, changed)
        return {"registered": registered, "bucket": bucket, "scope": scope.why}


class PromoteOperator(TrilhaBaseOperator):
    """Promote registered reception objects into ``storage-unique/<project prefix>/`` (seed 004).

    The double check (audit row **and** physical object with the same sha256 means skip), then a
    verified server-side copy, then the ``storage_audit`` row, in that order: an audit row never
    claims an unverified copy. Per batch, transaction-scoped advisory locks on the batch's checksums
    and names make concurrent runs copy and record each object exactly once.

    In a run triggered by ``trilha_raw_registered`` events (and no ``key_prefix`` or
    ``project_prefix``), the projects the events name are promoted instead of ``project``, each only
    for the keys the events list (the whole project when an event left keys out).

    :param project: project name (templated).
    :param project_prefix: prefix to create the project with when it is new (templated).
    :param key_prefix: reception key prefix to promote; default the project's prefix (templated).
    """

    consumes = RAW_REGISTERED

    template_fields: Sequence[str] = (
        *TrilhaBaseOperator.template_fields,
        "project",
        "project_prefix",
        "key_prefix",
        "reception_bucket",
        "storage_bucket",
    )

    def __init__(
        self,
        *,
        project: str,
        project_prefix: str | None = None,
        key_prefix: str | None = None,
        reception_bucket: str = config.DEFAULT_BUCKETS["bucket_reception"],
        storage_bucket: str = config.DEFAULT_BUCKETS["bucket_storage"],
        workers: int = 4,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.project = project
        self.project_prefix = project_prefix
        self.key_prefix = key_prefix
        self.reception_bucket = reception_bucket
        self.storage_bucket = storage_bucket
        self.workers = workers

    def run(self, context: Context, counters: Counters) -> dict[str, Any]:
        run_id = context["run_id"]
        self.minio.check_buckets([self.reception_bucket, self.storage_bucket])
        explicit = "key_prefix" if self.key_prefix else "project_prefix" if self.project_prefix else ""
        scope = self.event_scope(context, explicit=explicit, items="keys")
        targets: list[tuple[dict[str, Any], str, list[str] | None]] = []
        if scope.projects is None:
            project = resolve_project(self.audit, self.project, self.project_prefix, run_id)
            key_prefix = validate_key_prefix(self.key_prefix or f"{project['prefix']}/", what="key_prefix")
            targets.append((project, key_prefix, None))
        for named in scope.projects or ():
            found = self.audit.get_or_create_project(named.name, None, run_id)
            if not found or found["prefix"] != named.prefix:
                self.log.warning(
                    "project %r (prefix %r) is not registered: nothing to promote", named.name, named.prefix
                )
                continue
            targets.append((found, f"{named.prefix}/", events.names(named.items)))
        repaired: dict[str, list[str]] = {}
        for project, key_prefix, keys in targets:
            repaired[project["name"]] = self._promote_project(project, key_prefix, keys, counters, run_id)
        self.log.info(
            "promote: copied=%s duplicates=%s failed=%s",
            counters["copied"],
            counters["duplicate"],
            counters["failed"],
        )
        changed = self.run_changes(context, "storage_changes", self.storage_bucket, STORAGE_COUNTS)
        for project, _, _ in targets:
            changed = events.with_keys(
                changed, project["name"], project["prefix"], repaired[project["name"]], "repaired"
            )
        self.announce(context, [STORED_RAW], self.storage_bucket, changed)
        where: dict[str, Any] = (
            {"project": targets[0][0]["name"], "prefix": targets[0][0]["prefix"]}
            if len(targets) == 1
            else {"projects": [t[0]["name"] for t in targets]}
        )
        return {
            **where,
            "copied": counters["copied"],
            "duplicates": counters["duplicate"],
            "failed": counters["failed"],
            "scope": scope.why,
        }

    def _promote_project(
        self,
        project: dict[str, Any],
        key_prefix: str,
        keys: list[str] | None,
        counters: Counters,
        run_id: str,
    ) -> list[str]:
        """Promote the project's candidates under ``key_prefix`` (only ``keys`` when given); return
        the stored keys that were repaired (copied again under their existing ``storage_audit`` row)."""
        prefix = project["prefix"]
        candidates = self.audit.query(
            "promote_candidates", {"bucket": self.reception_bucket, "key_prefix": key_prefix, "keys": keys}
        )
        # The physical side of the double check for the whole project: one listing, not a HEAD per
        # file. A run narrowed to a few keys checks each stored one with a HEAD instead.
        present = (
            {o.key: o for o in self.minio.iter_objects(self.storage_bucket, f"{prefix}/")}
            if keys is None
            else {}
        )
        repaired: list[str] = []
        progress = Progress(self.log, f"promote {project['name']!r}", total=len(candidates))
        for batch in chunked(candidates, BATCH):
            items = [
                lake.PromotionItem(
                    reception_id=r["id"],
                    source_key=r["object_key"],
                    sha256=r["sha256"],
                    md5=r["md5"],
                    size=int(r["size_bytes"]),
                    etag=r["etag"],
                    name=lake.logical_name(r["object_key"], prefix),
                )
                for r in batch
            ]
            counters.add("seen", len(items))
            repaired += self._promote_batch(project, items, present, counters, run_id)
            progress.update(len(items), sum(i.size for i in items))
        progress.finish()
        return repaired

    def _verified_present(self, stored: dict[str, Any], present: dict[str, ObjectInfo]) -> bool:
        info = present.get(stored["dest_key"])
        if info is None or info.md5_etag is None:
            info = self.minio.stat(stored["dest_bucket"], stored["dest_key"])
            return (
                info is not None
                and info.size == int(stored["size_bytes"])
                and info.sha256 == stored["sha256"]
            )
        return info.size == int(stored["size_bytes"]) and info.md5_etag == stored["md5"]

    def _plan(
        self,
        tx: Transaction,
        project_id: int,
        items: list[lake.PromotionItem],
        stored: dict[str, dict[str, Any]],
        ok_keys: set[str],
        latest: dict[str, dict[str, Any]],
        prefix: str,
    ) -> lake.PromotionPlan:
        """Plan the batch so that no copy lands on a key another content holds.

        A planned key may belong to a name outside this batch (a file really named ``data__v2.csv``):
        the keys are locked, looked up in ``storage_audit``, and the plan is redone around the ones
        taken. Nothing to copy (a re-run) costs no round trip here.
        """
        taken: set[str] = set()
        while True:
            plan = lake.plan_promotion(items, stored, ok_keys, latest, prefix, taken)
            keys = sorted({i.dest_key for i in plan.copy})
            if not keys:
                return plan
            tx.run(
                "advisory_lock_batch",
                {"project_id": project_id, "lock_keys": [lake.lock_key("key", k) for k in keys]},
            )
            rows = tx.run("storage_keys_taken", {"bucket": self.storage_bucket, "keys": keys})
            clash = {r["dest_key"] for r in rows}
            if not clash:
                return plan
            taken |= clash

    def _promote_batch(
        self,
        project: dict[str, Any],
        items: list[lake.PromotionItem],
        present: dict[str, ObjectInfo],
        counters: Counters,
        run_id: str,
    ) -> list[str]:
        """Promote one batch; return the stored keys it repaired."""
        pid = int(project["id"])
        shas = sorted({i.sha256 for i in items})
        names = sorted({i.name for i in items})
        lock_keys = [lake.lock_key("sha", s) for s in shas] + [lake.lock_key("name", n) for n in names]
        with self.audit.transaction() as tx:
            tx.run("advisory_lock_batch", {"project_id": pid, "lock_keys": lock_keys})
            stored = {r["sha256"]: r for r in tx.run("storage_by_sha", {"project_id": pid, "sha256": shas})}
            latest = {
                r["logical_name"]: r
                for r in tx.run("storage_latest_versions", {"project_id": pid, "names": names})
            }
            ok_keys = {s["dest_key"] for s in stored.values() if self._verified_present(s, present)}
            plan = self._plan(tx, pid, items, stored, ok_keys, latest, project["prefix"])
            counters.add("duplicate", len(plan.duplicates))
            work = plan.copy + plan.repair

            def copy(item: lake.PromotionItem) -> ObjectInfo:
                return self.minio.copy_object_verified(
                    self.reception_bucket,
                    item.source_key,
                    self.storage_bucket,
                    item.dest_key,
                    Digest(item.sha256, item.md5, item.size),
                    source_etag=item.etag,
                    metadata={"project": project["prefix"], "source-key": item.source_key[:512]},
                )

            done: list[lake.PromotionItem] = []
            repaired: list[str] = []
            for item, outcome in zip(work, parallel(copy, work, self.workers), strict=True):
                where = f"{self.reception_bucket}/{item.source_key}"
                if isinstance(outcome, IntegrityError | ObjectWriteError):
                    counters.problem("failed", where, str(outcome))
                elif isinstance(outcome, BaseException):
                    if not is_missing(outcome):
                        raise outcome
                    counters.problem(
                        "failed",
                        where,
                        "the reception object is gone or changed since it was "
                        "registered (run raw_ingest again)",
                    )
                elif item.action == "repair":
                    counters.add("copied")
                    counters.add("bytes", item.size)
                    counters.touched(f"{self.storage_bucket}/{item.dest_key}")
                    repaired.append(item.dest_key)
                else:
                    done.append(item)
            if done:
                rows = tx.run(
                    "storage_insert",
                    {
                        "project_id": pid,
                        "project_prefix": project["prefix"],
                        "project_name": project["name"],
                        "reception_ids": [i.reception_id for i in done],
                        "source_buckets": [self.reception_bucket] * len(done),
                        "source_keys": [i.source_key for i in done],
                        "dest_buckets": [self.storage_bucket] * len(done),
                        "dest_keys": [i.dest_key for i in done],
                        "logical_names": [i.name for i in done],
                        "versions": [i.version for i in done],
                        "sizes": [i.size for i in done],
                        "sha256": [i.sha256 for i in done],
                        "md5": [i.md5 for i in done],
                        "run_ids": [run_id] * len(done),
                    },
                )
                ids = {r["dest_key"]: r["id"] for r in rows}
                tx.run(
                    "version_insert",
                    {
                        "project_id": pid,
                        "logical_names": [i.name for i in done],
                        "versions": [i.version for i in done],
                        "sha256": [i.sha256 for i in done],
                        "previous_sha256": [i.previous_sha256 for i in done],
                        "storage_ids": [ids.get(i.dest_key) for i in done],
                        "dest_keys": [i.dest_key for i in done],
                        "run_ids": [run_id] * len(done),
                    },
                )
                for i in done:
                    counters.add("copied")
                    counters.add("bytes", i.size)
                    counters.touched(f"{self.storage_bucket}/{i.dest_key}")
                    if i.version > 1:
                        self.log.info("new version %s of %s: %s", i.version, i.name, i.dest_key)
        return repaired


class CleanupOperator(TrilhaBaseOperator):
    """Delete reception objects whose content is verified stored, and record every decision.

    :param retention_days: keep objects younger than this many days (templated).
    :param dry_run: only report what would be deleted and why the rest is kept (templated).
    :param key_prefix: only objects whose key starts with this (templated).
    """

    template_fields: Sequence[str] = (
        *TrilhaBaseOperator.template_fields,
        "retention_days",
        "dry_run_only",
        "key_prefix",
        "reception_bucket",
    )

    def __init__(
        self,
        *,
        retention_days: int | str = 7,
        dry_run: bool | str = True,
        key_prefix: str = "",
        reception_bucket: str = config.DEFAULT_BUCKETS["bucket_reception"],
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.retention_days = retention_days
        # Not ``self.dry_run``: BaseOperator already has a ``dry_run()`` method.
        self.dry_run_only = dry_run
        self.key_prefix = key_prefix
        self.reception_bucket = reception_bucket

    def run(self, context: Context, counters: Counters) -> dict[str, Any]:
        run_id = context["run_id"]
        dry_run = str(self.dry_run_only).lower() not in ("false", "0", "no")
        try:
            retention = timedelta(days=int(self.retention_days))
        except (TypeError, ValueError):
            raise AirflowFailException(
                f"retention_days: expected a whole number of days, got {self.retention_days!r}"
            ) from None
        if retention.days < 0:
            raise AirflowFailException(f"retention_days: expected 0 or more, got {retention.days}")
        bucket = self.reception_bucket
        key_prefix = validate_key_prefix(self.key_prefix, what="key_prefix")
        self.minio.check_buckets([bucket])
        now = datetime.now(UTC)
        deleted = 0
        for page in chunked(self.minio.iter_objects(bucket, key_prefix), BATCH):
            counters.add("seen", len(page))
            # By key, not by (key, ETag): an object overwritten since its audit must read as changed.
            current = {
                r["object_key"]: r
                for r in self.audit.query(
                    "reception_current",
                    {"bucket": bucket, "keys": [o.key for o in page], "etags": [o.etag for o in page]},
                )
            }
            audits = {o.key: current.get(o.key) for o in page}
            shas = sorted({a["sha256"] for a in audits.values() if a and a["sha256"]})
            stored = {r["sha256"]: r for r in self.audit.query("storage_any_by_sha", {"sha256": shas})}
            decisions = []
            for obj in page:
                audit = audits[obj.key]
                if (
                    audit
                    and audit.get("deleted_at")
                    and obj.last_modified
                    and obj.last_modified > audit["deleted_at"]
                ):
                    # Uploaded again after its deletion was recorded: a new object raw_ingest has not
                    # registered yet. (An older object with that record is a deletion a killed run did
                    # not finish: it is deleted now, under the record already written.)
                    audit = None
                st = stored.get(audit["sha256"]) if audit else None
                verified = False
                if (
                    st is not None
                    and audit is not None
                    and audit.get("status") != "rejected"
                    and audit["etag"] == obj.etag
                ):
                    info = self.minio.stat(st["dest_bucket"], st["dest_key"])
                    verified = (
                        info is not None
                        and info.size == int(st["size_bytes"])
                        and (info.sha256 == st["sha256"] and (info.md5_etag in (None, st["md5"])))
                    )
                decision = lake.cleanup_decision(audit, obj.size, obj.etag, st, verified, now, retention)
                decisions.append((obj, audit, st, decision))
                action = decision.action if not dry_run or decision.action == "keep" else "would_delete"
                self.log.info("%s %s: %s", action, obj.key, decision.reason)
            self._record(decisions, dry_run, run_id)
            to_delete = [obj.key for obj, _, _, d in decisions if d.action == "delete"]
            if not dry_run and to_delete:
                confirmed = set(self.minio.delete_keys(bucket, to_delete))
                deleted += len(confirmed)
                for key in to_delete:
                    if key in confirmed:
                        counters.touched(f"{bucket}/{key}")
                    else:
                        counters.problem(
                            "failed", f"{bucket}/{key}", "the server did not confirm the deletion"
                        )
            kept = sum(1 for *_, d in decisions if d.action == "keep")
            counters.add("skipped", kept)
            if dry_run:
                counters.add("would_delete", len(decisions) - kept)
        counters.add("deleted", deleted)
        return {
            "dry_run": dry_run,
            "deleted": deleted,
            "would_delete": counters["would_delete"],
            "kept": counters["skipped"],
            "retention_days": retention.days,
        }

    def _record(
        self, decisions: list[tuple[Any, Any, Any, lake.CleanupDecision]], dry_run: bool, run_id: str
    ) -> None:
        """Deletions are recorded (and the audit rows marked) *before* the delete is sent: a crash in
        between leaves a record of a deletion the re-run completes, never an unrecorded deletion."""
        rows = []
        for obj, audit, st, d in decisions:
            action = "kept" if d.action == "keep" else ("would_delete" if dry_run else "deleted")
            rows.append((obj, audit, st, action, d.reason))
        with self.audit.transaction() as tx:
            tx.run(
                "cleanup_insert",
                {
                    "reception_ids": [a["id"] if a else None for _, a, _, _, _ in rows],
                    "buckets": [self.reception_bucket] * len(rows),
                    "keys": [o.key for o, *_ in rows],
                    # The audited sha256 describes the object only while its ETag is the audited one.
                    "sha256": [a["sha256"] if a and a["etag"] == o.etag else None for o, a, *_ in rows],
                    "sizes": [o.size for o, *_ in rows],
                    "etags": [o.etag for o, *_ in rows],
                    "storage_ids": [s["id"] if s else None for _, _, s, _, _ in rows],
                    "actions": [r[3] for r in rows],
                    "reasons": [r[4] for r in rows],
                    "dry_runs": [dry_run] * len(rows),
                    "run_ids": [run_id] * len(rows),
                },
            )
            ids = [a["id"] for _, a, _, action, _ in rows if action == "deleted" and a]
            if ids:
                tx.run("reception_mark_deleted", {"ids": ids})
