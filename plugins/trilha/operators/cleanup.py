"""reception_cleanup's operator: delete reception objects whose content is verified stored."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException

from trilha import config
from trilha.domain import lake
from trilha.domain.keys import validate_key_prefix
from trilha.operators import base
from trilha.operators.base import Counters, Progress, TrilhaBaseOperator, chunked

if TYPE_CHECKING:
    from airflow.sdk import Context

    from trilha.hooks.minio import ObjectInfo


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
        progress = Progress(self.log, f"cleanup s3://{bucket}/{key_prefix}")
        for page in chunked(self.minio.iter_objects(bucket, key_prefix), base.BATCH):
            counters.add("seen", len(page))
            decisions = self._decide(page, now, retention, dry_run)
            self._record(decisions, dry_run, run_id)
            to_delete = [obj.key for obj, _, _, d in decisions if d.action == "delete"]
            if not dry_run and to_delete:
                deleted += self._delete(to_delete, counters)
            kept = sum(1 for *_, d in decisions if d.action == "keep")
            counters.add("skipped", kept)
            if dry_run:
                counters.add("would_delete", len(decisions) - kept)
            progress.update(len(page), sum(obj.size for obj in page))
        progress.finish()
        counters.add("deleted", deleted)
        return {
            "dry_run": dry_run,
            "deleted": deleted,
            "would_delete": counters["would_delete"],
            "kept": counters["skipped"],
            "retention_days": retention.days,
        }

    def _decide(
        self, page: list[ObjectInfo], now: datetime, retention: timedelta, dry_run: bool
    ) -> list[tuple[ObjectInfo, Any, Any, lake.CleanupDecision]]:
        """Decide each object of a listing page (:func:`trilha.domain.lake.cleanup_decision`): its
        current audit row, its stored copy, and a HEAD of that copy when the rule needs it."""
        bucket = self.reception_bucket
        current = self.audit.reception_current(bucket, [o.key for o in page], [o.etag for o in page])
        audits = {o.key: current.get(o.key) for o in page}
        shas = sorted({a["sha256"] for a in audits.values() if a and a["sha256"]})
        stored = self.audit.stored_anywhere(shas)
        decisions = []
        for obj in page:
            audit = lake.current_audit(audits[obj.key], obj.last_modified)
            st = stored.get(audit["sha256"]) if audit else None
            verified = False
            if st is not None and lake.needs_storage_check(audit, st, obj.etag):
                info = self.minio.stat(st["dest_bucket"], st["dest_key"])
                verified = info is not None and lake.stored_copy_verified(
                    st, info.size, info.sha256, info.md5_etag
                )
            decision = lake.cleanup_decision(audit, obj.size, obj.etag, st, verified, now, retention)
            decisions.append((obj, audit, st, decision))
            action = decision.action if not dry_run or decision.action == "keep" else "would_delete"
            self.log.info("%s %s: %s", action, obj.key, decision.reason)
        return decisions

    def _delete(self, keys: list[str], counters: Counters) -> int:
        """Delete ``keys`` from reception; count the confirmed ones, a problem for each other."""
        bucket = self.reception_bucket
        confirmed = set(self.minio.delete_keys(bucket, keys))
        for key in keys:
            if key in confirmed:
                counters.touched(f"{bucket}/{key}")
                counters.deleted(bucket, key)
            else:
                counters.problem("failed", f"{bucket}/{key}", "the server did not confirm the deletion")
        return len(confirmed)

    def _record(
        self, decisions: list[tuple[ObjectInfo, Any, Any, lake.CleanupDecision]], dry_run: bool, run_id: str
    ) -> None:
        """Deletions are recorded (and the audit rows marked) *before* the delete is sent: a crash in
        between leaves a record of a deletion the re-run completes, never an unrecorded deletion."""
        rows = [
            lake.cleanup_record(obj.key, obj.size, obj.etag, audit, st, d, dry_run)
            for obj, audit, st, d in decisions
        ]
        self.audit.record_cleanup(self.reception_bucket, rows, dry_run, run_id)
