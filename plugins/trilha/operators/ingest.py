"""raw_ingest's operator: register every object of the reception bucket, once."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException

from trilha import config
from trilha.assets import RAW_REGISTERED, RECEPTION
from trilha.domain import reception
from trilha.domain.digest import EMPTY_MD5, EMPTY_SHA256
from trilha.domain.keys import validate_key_prefix
from trilha.exceptions import ObjectMissingError, SourceError
from trilha.operators import base
from trilha.operators.base import Counters, Progress, TrilhaBaseOperator, chunked, parallel
from trilha.operators.reception import Entry, ReceptionOperator, register_entries

if TYPE_CHECKING:
    from airflow.sdk import Context

    from trilha.hooks.minio import ObjectInfo


class RawIngestOperator(ReceptionOperator):
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
        registered = self._register_listed(bucket, prefixes, run_id, counters)
        # Not trilha_reception, though landing files enter the bucket: that is this DAG's own trigger.
        changed = self.audit.reception_changes(str(context["run_id"]), bucket)
        self.announce(context, [RAW_REGISTERED], bucket, changed)
        return {"registered": registered, "bucket": bucket, "scope": scope.why}

    def _register_listed(self, bucket: str, prefixes: list[str], run_id: str, counters: Counters) -> int:
        """Register the objects under ``prefixes`` that the audit does not know, page by page; how many."""
        registered = 0
        progress = Progress(self.log, f"register s3://{bucket}/{{{','.join(prefixes)}}}")
        listing = (obj for prefix in prefixes for obj in self.minio.iter_objects(bucket, prefix))
        for page in chunked(listing, base.BATCH):
            counters.add("seen", len(page))
            known = self.audit.known_reception(bucket, [o.key for o in page], [o.etag for o in page])
            todo = [o for o in page if (o.key, o.etag) not in known]
            # Registered before (by capture, or an earlier run): nothing to read.
            counters.add("skipped", len(page) - len(todo))
            progress.update(len(page) - len(todo))
            entries: list[Entry] = []
            outcomes = parallel(lambda obj: self._describe(bucket, obj), todo, self.workers)
            for obj, outcome in zip(todo, outcomes, strict=True):
                if isinstance(outcome, ObjectMissingError):
                    counters.problem("skipped", f"{bucket}/{obj.key}", "vanished between listing and reading")
                elif isinstance(outcome, BaseException):
                    # Not a per-object problem (endpoint down, wrong keys): fail, retry; nothing was
                    # registered for this batch, so no audit row claims what did not happen.
                    raise outcome
                else:
                    entries.append(outcome)
                    counters.add("bytes", obj.size)
                    progress.update(1, obj.size)
            register_entries(self.audit, bucket, entries, run_id, counters)
            for e in entries:  # lineage: what it read (it writes audit rows only)
                counters.read(bucket, e.key, sha256=e.sha256, size=e.size)
            registered += len(entries)
        progress.finish()
        return registered

    def _describe(self, bucket: str, obj: ObjectInfo) -> Entry:
        """The entry of a listed object: its content read and hashed, unless refused before reading (an
        empty object); a key that is no valid key is still hashed, so its audit row names the content."""
        entry = Entry(obj.key, obj.etag, obj.size, obj.last_modified, None, None)
        refusal = reception.listed_refusal(obj.key, obj.size)
        if obj.size == 0:
            entry.sha256, entry.md5 = EMPTY_SHA256, EMPTY_MD5
        else:
            digest = self.minio.digest_object(bucket, obj.key)
            entry.sha256, entry.md5 = digest.sha256, digest.md5
            refusal = reception.read_refusal(digest.size, obj.size) or refusal
        if refusal:
            entry.status, entry.reason = "rejected", refusal
        return entry
