"""The operator of the reconcile DAG: :func:`trilha.ops.reconcile.reconcile` with the task's hooks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException

from trilha import config
from trilha.domain import drift
from trilha.exceptions import ReconcileError
from trilha.operators.base import Counters, TrilhaBaseOperator
from trilha.ops import reconcile as rc

if TYPE_CHECKING:
    from airflow.sdk import Context


class DriftFoundError(AirflowFailException):
    """Reconcile found drift: the task fails (no retry: the next run would find the same), after
    everything is recorded. ``summary`` is what the run log document still reports."""

    def __init__(self, message: str, summary: dict[str, Any]) -> None:
        super().__init__(message)
        self.summary = summary


class ReconcileOperator(TrilhaBaseOperator):
    """Compare every bucket (or one) and every project (or one) with the audit; never delete.

    Records the report (``meta.reconcile_report``, a JSON object under ``_reconcile/`` in the storage
    bucket, the run log document), marks ``meta.audit_log`` rows of dead processes ``abandoned``,
    and fails the task when anything is ``missing_in_lake``, ``missing_in_audit`` or ``differ``.

    :param project: only this project (templated; empty = every project).
    :param bucket: only this layer's bucket: reception, storage, staging, curated or datasets
        (templated; empty = every bucket).
    :param grace_minutes: younger than this, a difference is ``pending``, not drift (templated).
    :param rehash: read and hash every audited object instead of trusting its metadata (templated).
    :param abandon_after_hours: a ``running`` audit_log row this old is abandoned (templated).
    :param workers: HEADs (or reads) at once.
    """

    template_fields: Sequence[str] = (
        *TrilhaBaseOperator.template_fields,
        "project",
        "bucket",
        "grace_minutes",
        "rehash",
        "abandon_after_hours",
        "reception_bucket",
        "storage_bucket",
        "staging_bucket",
        "curated_bucket",
        "datasets_bucket",
    )

    def __init__(
        self,
        *,
        project: str = "",
        bucket: str = "",
        grace_minutes: int | str = rc.DEFAULT_GRACE_MINUTES,
        rehash: bool | str = False,
        abandon_after_hours: int | str = rc.DEFAULT_ABANDON_AFTER_HOURS,
        reception_bucket: str = config.DEFAULT_BUCKETS["bucket_reception"],
        storage_bucket: str = config.DEFAULT_BUCKETS["bucket_storage"],
        staging_bucket: str = config.DEFAULT_BUCKETS["bucket_staging"],
        curated_bucket: str = config.DEFAULT_BUCKETS["bucket_curated"],
        datasets_bucket: str = config.DEFAULT_BUCKETS["bucket_datasets"],
        workers: int = 4,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.project = project
        self.bucket = bucket
        self.grace_minutes = grace_minutes
        self.rehash = rehash
        self.abandon_after_hours = abandon_after_hours
        self.reception_bucket = reception_bucket
        self.storage_bucket = storage_bucket
        self.staging_bucket = staging_bucket
        self.curated_bucket = curated_bucket
        self.datasets_bucket = datasets_bucket
        self.workers = workers

    def run(self, context: Context, counters: Counters) -> dict[str, Any]:
        ti = context["ti"]
        buckets = {layer: str(getattr(self, f"{layer}_bucket")) for layer in rc.LAYERS}
        try:
            options = rc.parse_options(
                project=self.project,
                bucket=self.bucket,
                grace_minutes=self.grace_minutes,
                rehash=self.rehash,
                abandon_after_hours=self.abandon_after_hours,
                workers=self.workers,
            )
            outcome = rc.reconcile(
                self.audit,
                self.minio,
                run_id=str(context["run_id"]),
                buckets=buckets,
                options=options,
                own_run=(str(ti.dag_id), str(ti.run_id)),
                say=self.log.info,
            )
        except ReconcileError as err:
            raise AirflowFailException(str(err)) from None
        for b in outcome.report.buckets.values():
            counters.add("seen", sum(b.counts.values()))
            for status in (drift.MATCH, drift.PENDING):
                counters.add(status, b.counts[status])
            for item in b.drift:  # counted by kind, and the first ones kept in audit_log.problems
                counters.problem(item.status, f"{b.bucket}/{item.key}", item.reason)
        counters.add("abandoned", len(outcome.abandoned))
        counters.add("bytes", outcome.bytes_read)
        counters.touched(f"{outcome.report_bucket}/{outcome.report_key}")
        counters.wrote(outcome.report_bucket, outcome.report_key)
        for line in rc.format_table(outcome).splitlines():
            self.log.info("%s", line)
        summary = outcome.summary()
        if outcome.drift_total:
            raise DriftFoundError(outcome.failure_line(), summary)
        return summary
