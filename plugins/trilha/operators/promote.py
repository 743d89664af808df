"""reception_promote's operator: verified copies of registered reception objects into storage."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from trilha import config
from trilha.assets import RAW_REGISTERED, STORED_RAW
from trilha.domain import events, lake
from trilha.domain.digest import Digest
from trilha.domain.keys import validate_key_prefix
from trilha.exceptions import IntegrityError, ObjectMissingError, ObjectWriteError
from trilha.operators import base
from trilha.operators.base import Counters, Progress, TrilhaBaseOperator, chunked, parallel
from trilha.operators.reception import resolve_project

if TYPE_CHECKING:
    from airflow.sdk import Context

    from trilha.hooks.audit import PromotionBatch
    from trilha.hooks.minio import ObjectInfo

#: What the storage events count per project (columns of storage_changes.sql).


class PromoteOperator(TrilhaBaseOperator):
    """Promote registered reception objects into ``storage-unique/<project prefix>/``.

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
        changed = self.audit.storage_changes(str(context["run_id"]), self.storage_bucket)
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
        candidates = self.audit.promote_candidates(self.reception_bucket, key_prefix, keys)
        # The physical side of the double check for the whole project: one listing, not a HEAD per
        # file. A run narrowed to a few keys checks each stored one with a HEAD instead.
        present = (
            {o.key: o for o in self.minio.iter_objects(self.storage_bucket, f"{prefix}/")}
            if keys is None
            else {}
        )
        repaired: list[str] = []
        progress = Progress(self.log, f"promote {project['name']!r}", total=len(candidates))
        for batch in chunked(candidates, base.BATCH):
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
        batch: PromotionBatch,
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
            clash = batch.keys_taken(self.storage_bucket, keys)
            if not clash:
                return plan
            if clash <= taken:
                # The plan ignored keys it was told are taken: a bug, which must fail, not loop.
                raise RuntimeError(f"promotion planned keys already known taken: {sorted(clash)[:5]}")
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
        shas = sorted({i.sha256 for i in items})
        names = sorted({i.name for i in items})
        with self.audit.promotion_batch(int(project["id"]), shas, names) as batch:
            stored = batch.stored(shas)
            latest = batch.latest_versions(names)
            ok_keys = {s["dest_key"] for s in stored.values() if self._verified_present(s, present)}
            plan = self._plan(batch, items, stored, ok_keys, latest, project["prefix"])
            counters.add("duplicate", len(plan.duplicates))
            for i in plan.duplicates[:3]:  # the why of a skip, for the first few (all are counted)
                self.log.info("not promoted: %s/%s: %s", self.reception_bucket, i.source_key, i.reason)
            done, repaired = self._copy(project, plan.copy + plan.repair, counters)
            if done:
                batch.record(project, done, self.reception_bucket, self.storage_bucket, run_id)
                for i in done:
                    counters.add("copied")
                    counters.add("bytes", i.size)
                    counters.touched(f"{self.storage_bucket}/{i.dest_key}")
                    self._lineage(i, counters)
                    if i.version > 1:
                        self.log.info("new version %s of %s: %s", i.version, i.name, i.dest_key)
        return repaired

    def _lineage(self, item: lake.PromotionItem, counters: Counters) -> None:
        """Lineage of a verified copy: the reception object in, the stored object out (same sha256)."""
        counters.read(self.reception_bucket, item.source_key, sha256=item.sha256, size=item.size)
        counters.wrote(self.storage_bucket, item.dest_key, sha256=item.sha256, size=item.size)

    def _copy(
        self, project: dict[str, Any], work: list[lake.PromotionItem], counters: Counters
    ) -> tuple[list[lake.PromotionItem], list[str]]:
        """Verified copies of ``work``, in parallel; return the copies to record and the stored keys
        repaired (counted here: their ``storage_audit`` row exists)."""

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
            elif isinstance(outcome, ObjectMissingError):
                counters.problem(
                    "failed",
                    where,
                    "the reception object is gone or changed since it was registered (run raw_ingest again)",
                )
            elif isinstance(outcome, BaseException):
                # Not a per-object problem (endpoint down, wrong keys): fail; nothing of this
                # batch is recorded (its transaction rolls back).
                raise outcome
            elif item.action == "repair":
                counters.add("copied")
                counters.add("bytes", item.size)
                counters.touched(f"{self.storage_bucket}/{item.dest_key}")
                self._lineage(item, counters)
                repaired.append(item.dest_key)
            else:
                done.append(item)
        return done, repaired
