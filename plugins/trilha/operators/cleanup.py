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
from trilha.operators.base import Counters, TrilhaBaseOperator, chunked

if TYPE_CHECKING:
    from airflow.sdk import Context


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
        for page in chunked(self.minio.iter_objects(bucket, key_prefix), base.BATCH):
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
