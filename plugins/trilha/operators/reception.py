"""What the operators that write the reception bucket share: the project they write for, the capture of
a source (a Drive folder, a local folder) into reception, and the registration of reception objects.

:class:`ReceptionOperator` is the base of :class:`trilha.operators.capture.CaptureOperator` and of
:class:`trilha.operators.ingest.RawIngestOperator` (whose landing directory is captured the same way).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException

from trilha.domain import lake, reception, touched
from trilha.domain.digest import ChunkStream, Digest
from trilha.domain.keys import validate_project_name, validate_project_prefix
from trilha.domain.reception import Entry
from trilha.exceptions import InvalidKeyError, InvalidProjectError
from trilha.operators import base
from trilha.operators.base import Counters, Progress, TrilhaBaseOperator, chunked, parallel

if TYPE_CHECKING:
    from trilha.hooks.audit import AuditHook
    from trilha.hooks.sources import CaptureSource, HashesLocally, SourceFile


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


def register_entries(
    audit: AuditHook, bucket: str, entries: list[Entry], run_id: str, counters: Counters
) -> None:
    """Claim content in ``raw.data_files`` and register the objects, in one transaction
    (:meth:`trilha.hooks.audit.AuditHook.register_reception`), then count them.

    Of several objects with the same new content, the first by key is ``new`` and the others are
    ``duplicate`` of its sha256; content claimed earlier (or by a concurrent run) makes a duplicate.
    """
    if not entries:
        return
    audit.register_reception(bucket, entries, run_id)
    for e in entries:
        if e.status == "rejected":
            counters.problem("rejected", f"{bucket}/{e.key}", str(e.reason))
        else:
            counters.add(e.status)
            counters.touched(f"{bucket}/{e.key}")


class ReceptionOperator(TrilhaBaseOperator):
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

        progress = Progress(self.log, f"capture from {source.describe()}")
        for batch in chunked(source.list_files(prefix=source_prefix), base.BATCH):
            counters.add("seen", len(batch))
            wanted = self._capture_keys(batch, dest_prefix, counters)
            fresh = self._changed_since_capture(source.kind, wanted)
            counters.add("duplicate", len(wanted) - len(fresh))
            if isinstance(source, HashesLocally):
                fresh = self._hash_local(source, fresh, counters, workers)
            known_sha, known_md5 = self.audit.known_content(
                [f.sha256 for f, _ in fresh if f.sha256], [f.md5 for f, _ in fresh if f.md5 and not f.sha256]
            )
            todo, duplicates = reception.new_content(fresh, known_sha, known_md5)
            counters.add("duplicate", duplicates)
            progress.update(len(batch) - len(todo))
            entries = self._upload_all(source, todo, counters, workers, progress)
            register_entries(self.audit, self.reception_bucket, entries, run_id, counters)
            for e in entries:  # lineage: each source file in, its reception object out
                counters.lineage_of(
                    [touched.source_file(e.source_kind, str(e.source_ref), sha256=e.sha256, size=e.size)], []
                )
                counters.wrote(self.reception_bucket, e.key, sha256=e.sha256, size=e.size)
        progress.finish()

    @staticmethod
    def _capture_keys(
        batch: list[SourceFile], dest_prefix: str, counters: Counters
    ) -> list[tuple[SourceFile, str]]:
        """Each capturable file of ``batch`` with its reception key; the others are rejected with why."""
        wanted: list[tuple[SourceFile, str]] = []
        for f in batch:
            try:
                wanted.append((f, reception.capture_key(f, dest_prefix)))
            except InvalidKeyError as err:
                counters.problem("rejected", f.relative_path, str(err))
        return wanted

    def _changed_since_capture(
        self, kind: str, wanted: list[tuple[SourceFile, str]]
    ) -> list[tuple[SourceFile, str]]:
        """``wanted`` less the files captured before at this very revision."""
        lookup = [f for f, _ in wanted if reception.needs_revision_lookup(f)]
        if not lookup:
            return wanted
        known = self.audit.known_source_revisions(
            kind, [f.source_id for f in lookup], [str(f.revision) for f in lookup]
        )
        return [(f, key) for f, key in wanted if not reception.captured_at_this_revision(f, known)]

    def _upload_all(
        self,
        source: CaptureSource,
        todo: list[tuple[SourceFile, str]],
        counters: Counters,
        workers: int,
        progress: Progress,
    ) -> list[Entry]:
        """Upload ``todo`` on ``workers`` threads; the entries to register. A per-item problem is
        counted with its reason; any other exception fails the task (nothing of the batch registered)."""
        entries: list[Entry] = []
        outcomes = parallel(lambda item: self._upload_one(source, *item), todo, workers)
        for (_, key), outcome in zip(todo, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                kind = reception.transfer_problem(outcome)
                if kind is None:
                    raise outcome
                counters.problem(kind, key, str(outcome))
            else:
                entries.append(outcome)
                counters.add("bytes", outcome.size)
                progress.update(1, outcome.size)
        return entries

    def _upload_one(self, source: CaptureSource, f: SourceFile, key: str) -> Entry:
        """Stream ``f`` into reception under ``key`` (or a disambiguated key); its entry."""
        bucket = self.reception_bucket
        existing = self.minio.stat(bucket, key)
        if existing is not None and f.sha256 and existing.sha256 == f.sha256:
            # Uploaded by a run that died before registering it: register, don't re-send.
            return self._entry(f, key, existing.etag, Digest(f.sha256, f.md5 or "", existing.size))
        if existing is not None:
            # Another content already sits under this name: never overwrite it.
            key = lake.disambiguated_key(key, f.sha256 or f.source_id)
        expected = Digest(f.sha256, f.md5, f.size) if f.sha256 and f.md5 and f.size is not None else None
        result = self.minio.upload_stream(
            bucket,
            key,
            ChunkStream(source.iter_chunks(f)),
            expected=expected,
            metadata={"source-kind": f.source_kind, "source-revision": f.revision or ""},
        )
        return self._entry(f, key, result.etag, result.digest)

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
