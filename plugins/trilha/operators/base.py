"""What every Trilha operator shares, written once.

:class:`TrilhaBaseOperator` keeps the counters (seen / new / duplicate / copied / skipped / rejected /
failed / bytes), logs progress lines on long loops, writes one ``meta.audit_log`` row (at start, then
updated at the end, failure included) and one run-log document per task run, and returns a small
JSON-able summary to XCom. Subclasses implement :meth:`TrilhaBaseOperator.run` only.

A per-item failure never stops the batch: it is recorded with its reason, and the task fails at the
end if anything failed (``fail_on_errors=False`` keeps it green). Rejected input (an empty file, a
bad key, an unparseable row) is an expected outcome, recorded in the audit, and does not fail the task.

The generic batch helpers every operator loops with (:func:`chunked`, :func:`parallel`,
:func:`all_or_raise`) live here too: listing pages, one SQL round trip per question per batch, S3
transfers on a small thread pool (I/O bound; boto3 clients are thread-safe).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, Unpack

from airflow.sdk import AssetAlias, BaseOperator
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSkipException

from trilha import config
from trilha.assets import changes
from trilha.domain import events
from trilha.domain.keys import printable
from trilha.domain.touched import Dataset, ObjectFacts, Touched
from trilha.domain.touched import obj as object_dataset
from trilha.exceptions import InvalidKeyError, InvalidProjectError
from trilha.operators.links import TrilhaOutputLink, TrilhaRunLink, TrilhaTraceLink

if TYPE_CHECKING:
    from airflow.sdk import Asset, Context

    from trilha.hooks.audit import AuditHook
    from trilha.hooks.minio import MinioHook
    from trilha.hooks.runlog import RunLogHook

#: Every counter an operator may count, declared once: :meth:`Counters.add` of any other name raises
#: (a typo is a bug, not a new counter). These are in every summary, zeros included...
COUNTER_NAMES = ("seen", "new", "duplicate", "copied", "skipped", "rejected", "failed", "bytes")
#: ...and these only once a run counted them (so a summary shows what its operator counts).
OPTIONAL_COUNTER_NAMES = (
    # reception_cleanup
    "would_delete",
    "deleted",
    # staging
    "rows_ok",
    "rows_rejected",
    # curated
    "snowflake_loaded",
    # dataset_split
    "exported",
    # reconcile: the statuses of trilha.domain.drift, and the audit_log rows it marks abandoned
    "match",
    "pending",
    "missing_in_lake",
    "missing_in_audit",
    "differ",
    "abandoned",
)
DECLARED_COUNTERS = frozenset(COUNTER_NAMES + OPTIONAL_COUNTER_NAMES)
#: At most this many per-item problems are kept in the run log document (all are in the audit tables).
MAX_ITEMS_IN_LOG = 200
#: Items per batch of the ingestion operators: one listing page, one SQL round trip per question.
#: Read at call time (``base.BATCH``), so a test can shrink it.
BATCH = 500

T = TypeVar("T")
R = TypeVar("R")


def chunked(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """``items`` in lists of ``size`` (the last one shorter), lazily: a listing is never held whole."""
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


class Counters:
    """Named counters plus the per-item outcomes worth reporting (rejections, failures, keys touched)."""

    def __init__(self) -> None:
        self.values: dict[str, int] = dict.fromkeys(COUNTER_NAMES, 0)
        self.problems: list[dict[str, str]] = []
        self.keys_touched: list[str] = []
        #: What the run read and wrote, for its OpenLineage events (bounded: see trilha.domain.touched).
        self.lineage = Touched()
        # Operators count from worker threads too; a read-modify-write needs the lock.
        self._lock = threading.Lock()

    def add(self, name: str, n: int = 1) -> None:
        """Add ``n`` to counter ``name``, which must be declared (:data:`DECLARED_COUNTERS`)."""
        self._declared(name)
        with self._lock:
            self.values[name] = self.values.get(name, 0) + n

    def __getitem__(self, name: str) -> int:
        self._declared(name)
        return self.values.get(name, 0)

    @staticmethod
    def _declared(name: str) -> None:
        if name not in DECLARED_COUNTERS:
            raise KeyError(
                f"counter {name!r} is not declared: add it to trilha.operators.base.OPTIONAL_COUNTER_NAMES"
            )

    def problem(self, kind: str, item: str, reason: str) -> None:
        """Count a 'rejected', 'failed' or 'skipped' item and keep its reason."""
        self.add(kind)
        with self._lock:
            if len(self.problems) < MAX_ITEMS_IN_LOG:
                # A name that was not UTF-8 must still reach the audit (JSONB) and the run log.
                self.problems.append({"kind": kind, "item": printable(item), "reason": printable(reason)})

    def touched(self, key: str) -> None:
        with self._lock:
            if len(self.keys_touched) < MAX_ITEMS_IN_LOG:
                self.keys_touched.append(key)

    def read(self, bucket: str, key: str, **facts: Unpack[ObjectFacts]) -> None:
        """Declare an object this run read (an input of its lineage): ``sha256``, ``rows``, ``size``,
        ``schema`` as far as known."""
        self.lineage_of([object_dataset(bucket, key, **facts)], [])

    def wrote(self, bucket: str, key: str, **facts: Unpack[ObjectFacts]) -> None:
        """Declare an object this run wrote (an output of its lineage); ``facts`` as :meth:`read`."""
        self.lineage_of([], [object_dataset(bucket, key, **facts)])

    def deleted(self, bucket: str, key: str) -> None:
        """Declare an object this run deleted (an output whose lifecycle state changes to ``DROP``)."""
        self.lineage_of([], [replace(object_dataset(bucket, key), dropped=True)])

    def lineage_of(self, inputs: Iterable[Dataset], outputs: Iterable[Dataset]) -> None:
        """Declare datasets already built (tables, a curated version: see :mod:`trilha.domain.touched`)."""
        with self._lock:
            self.lineage.extend(inputs, outputs)

    def as_dict(self) -> dict[str, int]:
        """Every :data:`COUNTER_NAMES` counter, then the optional ones this run counted."""
        return dict(self.values)


class Progress:
    """Logs ``done/total, bytes, rate, ETA`` at most every ``every`` seconds (never per item) and at the end.

    Thread-safe: items done on a worker thread update it too. The ETA needs the total; a lazy listing
    does not know it, so its lines say ``?`` there.
    """

    def __init__(self, log: Any, what: str, total: int | None = None, every: float = 5.0) -> None:
        self.log = log
        self.what = what
        self.total = total
        self.every = every
        self.done = 0
        self.bytes = 0
        self.start = time.monotonic()
        self._last = self.start
        self._lock = threading.Lock()

    def update(self, items: int = 1, nbytes: int = 0) -> None:
        with self._lock:
            self.done += items
            self.bytes += nbytes
            now = time.monotonic()
            if now - self._last < self.every:
                return
            self._last = now
        self._emit(now)

    def finish(self) -> None:
        self._emit(time.monotonic())

    def _emit(self, now: float) -> None:
        self.log.info("%s: %s", self.what, progress_line(self.done, self.total, self.bytes, now - self.start))


def progress_line(done: int, total: int | None, nbytes: int, elapsed: float) -> str:
    """``120/564 done (21%), 85.3 MB, 24.0 items/s, 18.1 MB/s, ETA 18 s``: what a progress line says."""
    elapsed = max(elapsed, 1e-9)
    rate = done / elapsed
    if total is None:
        count, eta = f"{done}/? done", "ETA ?"
    else:
        left = max(total - done, 0)
        count = f"{done}/{total} done ({100 * done / total:.0f}%)" if total else f"{done}/0 done"
        eta = "ETA 0 s" if not left else f"ETA {left / rate:.0f} s" if rate > 0 else "ETA ?"
    return f"{count}, {nbytes / 1e6:.1f} MB, {rate:.1f} items/s, {nbytes / 1e6 / elapsed:.1f} MB/s, {eta}"


def task_ids(ti: Any) -> dict[str, Any]:
    """What identifies a task try, in the audit row and the run log (``map_index`` -1 when unmapped)."""
    map_index = getattr(ti, "map_index", None)
    return {
        "dag_id": ti.dag_id,
        "run_id": ti.run_id,
        "task_id": ti.task_id,
        "map_index": -1 if map_index is None else int(map_index),
        "try_number": int(getattr(ti, "try_number", 1) or 1),
    }


def _reset_peak_rss() -> None:
    """Reset the process's peak resident set (Linux: ``5`` into ``/proc/self/clear_refs``), so that
    :func:`_peak_rss` is this task's peak even when one process runs many tasks (``dag.test``)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:  # not Linux, or not allowed: the peak is then the process's since it started
        pass


def _peak_rss() -> int | None:
    """The process's peak resident set in bytes (``VmHWM``), ``None`` where /proc has no such line."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return None


@dataclass
class TaskRecord:
    """One task try as ``meta.audit_log`` and the run log record it: written ``running`` at start,
    then once more at the end with its status, counters and problems (failure included)."""

    ids: dict[str, Any]
    status: str = "failed"
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    ended_at: datetime | None = None
    counters: dict[str, int] = field(default_factory=dict)
    problems: list[dict[str, str]] = field(default_factory=list)
    keys_touched: list[str] = field(default_factory=list)
    audit_id: int | None = None
    run_log_id: str | None = None
    peak_rss_bytes: int | None = None

    @property
    def duration_s(self) -> float | None:
        return None if self.ended_at is None else (self.ended_at - self.started_at).total_seconds()

    def end(self, counters: Counters) -> None:
        self.ended_at = datetime.now(UTC)
        self.counters = counters.as_dict()
        self.problems = counters.problems
        self.keys_touched = counters.keys_touched

    def audit_row(self) -> dict[str, Any]:
        return {
            **self.ids,
            "status": "running" if self.ended_at is None else self.status,
            "counters": self.counters,
            "problems": self.problems,
            "error": self.error,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "duration_s": self.duration_s,
            # Which process runs this try: reconcile marks the row abandoned once that process is gone.
            "hostname": socket.gethostname(),
            "pid": os.getpid(),
        }

    def run_log_document(self) -> dict[str, Any]:
        keys = ("dag_id", "run_id", "task_id", "map_index", "try_number")
        return {
            "_id": "/".join(str(self.ids[k]) for k in keys),
            **self.ids,
            "status": self.status,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "duration_s": self.duration_s,
            "counters": self.counters,
            "error": self.error,
            "problems": self.problems,
            "keys_touched": self.keys_touched,
            "audit_log_id": self.audit_id,
            "peak_rss_bytes": self.peak_rss_bytes,
            "summary": self.extra,
        }

    def summary(self) -> dict[str, Any]:
        """What the task returns to XCom."""
        return {
            "counters": self.counters,
            "audit_log_id": self.audit_id,
            "run_log_id": self.run_log_id,
            **self.extra,
        }


class TrilhaBaseOperator(BaseOperator):
    """Base of every Trilha operator: hooks, counters, audit row, run-log document, summary.

    :param postgres_conn_id: audit store connection (templated).
    :param aws_conn_id: MinIO / S3 connection (templated).
    :param mongo_conn_id: run-log connection (templated).
    :param fail_on_errors: fail the task at the end when any item failed (default ``True``).
    """

    template_fields: Sequence[str] = ("postgres_conn_id", "aws_conn_id", "mongo_conn_id")
    ui_color = "#e8f4ea"
    #: From a task instance to what it wrote, on the Trilha page (see :mod:`trilha.operators.links`).
    operator_extra_links = (TrilhaRunLink(), TrilhaOutputLink(), TrilhaTraceLink())

    def __init__(
        self,
        *,
        postgres_conn_id: str = config.POSTGRES_CONN_ID,
        aws_conn_id: str = config.S3_CONN_ID,
        mongo_conn_id: str = config.MONGO_CONN_ID,
        fail_on_errors: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.postgres_conn_id = postgres_conn_id
        self.aws_conn_id = aws_conn_id
        self.mongo_conn_id = mongo_conn_id
        self.fail_on_errors = fail_on_errors

    @cached_property
    def audit(self) -> AuditHook:
        from trilha.hooks.audit import AuditHook

        return AuditHook(postgres_conn_id=self.postgres_conn_id)

    @cached_property
    def minio(self) -> MinioHook:
        from trilha.hooks.minio import MinioHook

        return MinioHook(aws_conn_id=self.aws_conn_id)

    @cached_property
    def runlog(self) -> RunLogHook:
        from trilha.hooks.runlog import RunLogHook

        return RunLogHook(mongo_conn_id=self.mongo_conn_id)

    def run(self, context: Context, counters: Counters) -> dict[str, Any]:
        """Do the work; return extra summary fields (small and JSON-able). Implemented by subclasses."""
        raise NotImplementedError

    def execute(self, context: Context) -> Any:
        # Migrations run here, explicitly, before the task's first audit row: never as a side effect
        # of connecting (once per process and connection id; logs what it applied).
        self.audit.ensure_schema()
        record = TaskRecord(task_ids(context["ti"]))
        record.audit_id = self.audit.write_audit_log(record.audit_row())
        counters = Counters()
        # Kept for this task's OpenLineage event and extra links, read after execute returns or fails.
        self.lineage_run: tuple[TaskRecord, Counters] | None = (record, counters)
        _reset_peak_rss()
        try:
            record.extra = self.run(context, counters) or {}
            record.error = self._failures(counters)
            record.status = "failed" if record.error else "success"
        except AirflowSkipException as err:
            record.status, record.error = "skipped", str(err)
            raise
        except (AirflowFailException, InvalidKeyError, InvalidProjectError) as err:
            # An expected failure (bad parameter, unknown project, bad input): one line that says
            # what to fix, ahead of the traceback the task runner logs for every failure. A key or
            # project error that reaches here is a parameter's (an item's is handled per item): no
            # retry fixes it.
            record.error = str(err)
            record.extra = getattr(err, "summary", None) or record.extra  # what a failing run reports
            self.log.error("%s", err)
            if not isinstance(err, AirflowFailException):
                raise AirflowFailException(str(err)) from None
            raise
        except Exception as err:
            record.error = f"{type(err).__name__}: {err}"
            raise
        finally:
            record.end(counters)
            record.peak_rss_bytes = _peak_rss()
            try:
                self.audit.write_audit_log(record.audit_row())
            finally:
                record.run_log_id = self.runlog.write(record.run_log_document(), self.log)
                self.audit.close()
        self.log.info("summary: %s", counters.as_dict())
        if record.error:
            raise AirflowException(
                f"{record.error}; the rest of the batch was processed. See meta.audit_log id "
                f"{record.audit_id} and run log {record.run_log_id}."
            )
        return self.returned(record)

    def returned(self, record: TaskRecord) -> Any:
        """What the task returns to XCom: its summary. (A plan returns what its mapped tasks expand
        over instead, since Airflow maps over a task's return value only.)"""
        return record.summary()

    def _failures(self, counters: Counters) -> str | None:
        """Why the task fails although :meth:`run` returned: items failed (unless ``fail_on_errors``
        is off); the records written below must say so too."""
        if not (counters["failed"] and self.fail_on_errors):
            return None
        first = next((f"{p['item']}: {p['reason']}" for p in counters.problems if p["kind"] == "failed"), "?")
        return f"{counters['failed']} item(s) failed (first: {first})"

    # lineage ---------------------------------------------------------------------------------------
    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """The OpenLineage provider's hook after success (and after failure too: the provider falls
        back here when there is no ``..._on_failure``): the inputs and outputs this run declared, with
        their facets, and its counters. Called only when OpenLineage is enabled; the OpenLineage
        client is imported here, never when a DAG file is parsed."""
        from trilha.operators.ol_facets import operator_lineage

        ran = getattr(self, "lineage_run", None)
        if ran is None:
            return operator_lineage(None, None)
        record, counters = ran
        return operator_lineage(counters.lineage, record.summary())

    # asset events --------------------------------------------------------------------------------
    #: The layer whose asset events may scope a run of this operator (``None``: never scoped).
    consumes: ClassVar[Asset | None] = None

    def event_scope(self, context: Context, *, explicit: str, items: str | None) -> events.Scope:
        """What this run works on, from the :attr:`consumes` events that triggered it.

        :param explicit: the scope the user set (a non-empty project, prefix...), described; a run
            with one is never narrowed by events. Empty: none set.
        :param items: the per-project list of the events that narrows the work (see
            :func:`trilha.domain.events.scope_from_extras`).
        """
        extras: list[dict[str, Any]] = []
        accessor = context.get("triggering_asset_events")
        if self.consumes is not None and accessor:
            try:
                extras = [dict(event.extra or {}) for event in accessor[self.consumes]]
            except KeyError:
                extras = []
        if not extras:
            return events.unscoped(events.UNSCOPED_NO_EVENTS)
        if explicit:
            scope = events.unscoped(
                f"{explicit} set explicitly; the {len(extras)} triggering event(s) ignored"
            )
        else:
            scope = events.scope_from_extras(extras, layer=self.consumes.name, items=items)  # type: ignore[union-attr]
        self.log.info("scope: %s", scope.why)
        return scope

    def emit_change(
        self, context: Context, assets: Sequence[Asset], extras: Sequence[dict[str, Any] | None]
    ) -> int:
        """Emit each asset's event with its extra through this task's ``changes(asset)`` outlet; an
        asset whose extra is ``None`` (its layer did not change) gets no event. A run that changed
        nothing logs one line saying so. Returns the number of events emitted."""
        if all(extra is None for extra in extras):
            self.log.info(
                "%s: this run changed nothing; no asset event",
                ", ".join(a.name for a in assets) or "no layer",
            )
            return 0
        outlet_events = context.get("outlet_events")
        emitted = 0
        for asset, extra in zip(assets, extras, strict=True):
            alias = changes(asset)
            if extra is None:
                self.log.info("%s: this run changed nothing in the layer; no asset event", asset.name)
            elif outlet_events is None or not any(
                isinstance(o, AssetAlias) and o.name == alias.name for o in self.outlets
            ):
                self.log.info(
                    "%s changed, but %s is not an outlet of this task: no asset event", asset.name, alias.name
                )
            else:
                outlet_events[alias].add(asset, extra=extra)
                self.log.info("%s: asset event: %s", asset.name, events.describe(extra))
                emitted += 1
        return emitted

    def announce(
        self, context: Context, assets: Sequence[Asset], bucket: str, run_changes: events.RunChanges
    ) -> int:
        """Emit the event of each of ``assets`` for ``run_changes`` (see :meth:`AuditHook.run_changes`); a run
        that added nothing emits nothing. Returns the number of events emitted."""
        run_id = str(context["run_id"])
        extras = [
            events.change_extra(asset.name, run_id=run_id, bucket=bucket, changes=run_changes)
            for asset in assets
        ]
        return self.emit_change(context, assets, extras)


class AnnounceOperator(TrilhaBaseOperator):
    """Emit a layer's asset event once for everything the DAG run's tasks added to it: the last task
    of a DAG whose work runs in mapped tasks (one event per run, not one per batch, and none when a
    batch failed: the run is retried first).

    :param layer: the layer's asset (``STAGED``...); its event goes through this task's
        ``changes(layer)`` outlet.
    :param bucket: the layer's bucket (templated).
    """

    template_fields: Sequence[str] = (*TrilhaBaseOperator.template_fields, "bucket")
    #: The audit statement that tells what a DAG run added to each layer that is announced this way.
    CHANGES: ClassVar[dict[str, str]] = {"trilha_staged": "staging_changes"}

    def __init__(self, *, layer: Asset, bucket: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if layer.name not in self.CHANGES:
            raise ValueError(f"layer: expected one of {sorted(self.CHANGES)}, got {layer.name!r}")
        self.layer = layer
        self.bucket = bucket

    def run(self, context: Context, counters: Counters) -> dict[str, Any]:
        run_changes = getattr(self.audit, self.CHANGES[self.layer.name])(str(context["run_id"]), self.bucket)
        emitted = self.announce(context, [self.layer], self.bucket, run_changes)
        return {"events": emitted}
