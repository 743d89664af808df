"""The staging operator: stored raw files become typed, validated Parquet, each with its inventory row.

It reads the candidates and the stored bytes once (:class:`~trilha.hooks.audit.AuditHook`,
:class:`~trilha.hooks.minio.MinioHook`), lets :mod:`trilha.domain.staging` decide what each file
becomes (parsed by :mod:`trilha.domain.formats`, validated by :mod:`trilha.domain.contracts`
against the contract :mod:`trilha.hooks.include` reads, its quarantine assembled by
:mod:`trilha.domain.quarantine`), writes the Parquet outputs, and records
one inventory row per file that carries every output's sha256. pandas/pyarrow are imported inside
``execute`` only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException

from trilha import config
from trilha.assets import STAGED, STORED_RAW
from trilha.domain import events, staging
from trilha.domain.keys import validate_key_prefix
from trilha.domain.touched import staged as staged_lineage
from trilha.exceptions import IntegrityError, ObjectMissingError, ObjectWriteError
from trilha.hooks import include
from trilha.operators.base import Counters, Progress, TaskRecord, TrilhaBaseOperator, chunked, parallel

if TYPE_CHECKING:
    from airflow.sdk import Context

BATCH = 100


class StagingOperator(TrilhaBaseOperator):
    """Parse, clean and validate each stored raw file not yet staged by the current code version.

    Writes ``<staging bucket>/<project>/<dataset>/<name>__<sha12>.<code version>.parquet`` and, for
    rows that cannot be parsed or placed (bad key or station), a quarantine Parquet with a reason per
    row. Measurements are flagged field by field by the contract's quality control (a bad value
    nulled, its hour kept); the flags per rule are in each file's inventory row (``qc_counts``) and,
    summed over the run, in the summary (``qc_flags``). A file that matches no layout, or has no
    data lines, is recorded as rejected with the reason; the batch goes on.

    In a run triggered by ``trilha_stored_raw`` events (and no ``project`` or ``key_prefix``), only
    the stored keys the events list are considered (a whole project when an event left keys out).

    :param project: only this project (templated; empty = all projects).
    :param key_prefix: only stored keys starting with this (templated).
    :param storage_ids: stage exactly these stored files (a mapped task's batch, from
        :class:`StagingPlanOperator`); ``None``: every file in scope.
    :param code_version: with ``storage_ids``: the code version the batch was planned for; staging
        refuses to run on another one.
    :param announce_changes: emit ``trilha_staged`` for what the DAG run staged (off in mapped tasks:
        :class:`AnnounceOperator` emits once, after every batch).
    :param workers: files staged at once, on threads (Arrow parses, validates and writes Parquet
        without holding the GIL, so each thread keeps a core busy). Memory grows with it: each file
        in flight is held whole, with its parsed table.
    """

    consumes = STORED_RAW

    template_fields: Sequence[str] = (
        *TrilhaBaseOperator.template_fields,
        "project",
        "key_prefix",
        "staging_bucket",
    )

    def __init__(
        self,
        *,
        project: str = "",
        key_prefix: str = "",
        staging_bucket: str = config.DEFAULT_BUCKETS["bucket_staging"],
        storage_ids: Sequence[int] | None = None,
        code_version: str = "",
        announce_changes: bool = True,
        workers: int = 2,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.project = project
        self.key_prefix = key_prefix
        self.staging_bucket = staging_bucket
        self.storage_ids = None if storage_ids is None else [int(i) for i in storage_ids]
        self.code_version = code_version
        self.announce_changes = announce_changes
        self.workers = workers

    def run(self, context: Context, counters: Counters) -> dict[str, Any]:
        run_id = context["run_id"]
        version = include.code_version()
        self.minio.check_buckets([self.staging_bucket])
        if self.storage_ids is None:
            todo, why = self.candidates(context, version)
        else:
            todo, why = self._batch(version), f"mapped batch of {len(self.storage_ids)} stored files"
        progress = Progress(self.log, "staging", total=len(todo))
        rows_ok = rows_rejected = 0
        flags: dict[str, int] = {}  # field flags per QC rule, over every file staged
        for batch in chunked(todo, BATCH):
            for row in self._stage_batch(batch, version, run_id, counters, progress):
                rows_ok += row.rows_ok
                rows_rejected += row.rows_rejected
                for rule, columns in (row.qc_counts or {}).items():
                    flags[rule] = flags.get(rule, 0) + sum(columns.values())
        progress.finish()
        if flags:
            self.log.info("quality flags per rule: %s", flags)
        counters.add("rows_ok", rows_ok)
        counters.add("rows_rejected", rows_rejected)
        if self.announce_changes:
            changed = self.audit.staging_changes(str(run_id), self.staging_bucket)
            self.announce(context, [STAGED], self.staging_bucket, changed)
        return {
            "code_version": version,
            "files": len(todo),
            "rows_ok": rows_ok,
            "rows_rejected": rows_rejected,
            "qc_flags": dict(sorted(flags.items())),
            "scope": why,
        }

    def candidates(self, context: Context, version: str) -> tuple[list[dict[str, Any]], str]:
        """The stored files this run stages (in the project / key prefix, or what its triggering
        events name) that ``version`` has not staged, and why that scope."""
        key_prefix = validate_key_prefix(self.key_prefix, what="key_prefix")
        explicit = "project" if self.project else "key_prefix" if key_prefix else ""
        scope = self.event_scope(context, explicit=explicit, items="keys")
        todo = [
            src
            for project, keys in events.per_project(scope, self.project or None)
            for src in self.audit.staging_candidates(project, key_prefix, version, keys)
        ]
        return todo, scope.why

    def _batch(self, version: str) -> list[dict[str, Any]]:
        """The files of this mapped batch that ``version`` has not staged (a retry skips the staged)."""
        if self.code_version and self.code_version != version:
            raise AirflowFailException(
                f"code_version: the plan was made for {self.code_version}, this worker runs {version}: "
                "the parsers or contracts changed between plan and stage; run the DAG again"
            )
        return self.audit.staging_candidates(None, "", version, None, storage_ids=self.storage_ids or [])

    def _stage_batch(
        self,
        batch: list[dict[str, Any]],
        version: str,
        run_id: str,
        counters: Counters,
        progress: Progress,
    ) -> list[staging.StagingRow]:
        """Stage a batch of files on threads and record their rows in one write; the rows."""
        rows: list[staging.StagingRow] = []
        outcomes = parallel(lambda src: self._stage_one(src, version, counters), batch, self.workers)
        for src, outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, ObjectWriteError):
                # The server refused this file's output while serving the others: its failed
                # item (no inventory row, so the next run retries it), and the batch goes on.
                counters.add("seen")
                counters.problem("failed", f"{src['dest_bucket']}/{src['dest_key']}", str(outcome))
                continue
            if isinstance(outcome, BaseException):
                # Not bad input (that is a rejection inside _stage_one): an unreachable store or
                # a bug. The batch's finished files are recorded first, so the retry skips them.
                self.audit.record_staging(rows, run_id)
                raise outcome
            counters.add("seen")
            progress.update(1, int(src["size_bytes"]))
            if outcome is not None:  # None: a failed item, counted, and retried by the next run
                rows.append(outcome)
                counters.lineage_of(*staged_lineage(outcome))
        self.audit.record_staging(rows, run_id)
        return rows

    def _stored_bytes(self, src: dict[str, Any], where: str, counters: Counters) -> bytes | None:
        """The stored raw file, checked against its storage sha256; ``None`` (a failed item) when it
        is missing or was changed behind the audit's back. No inventory row is written for it, so
        the next run retries once the object is restored."""
        try:
            return self.minio.get_verified(src["dest_bucket"], src["dest_key"], src["sha256"])
        except IntegrityError as err:
            counters.problem("failed", where, f"stored file does not match its storage_audit sha256: {err}")
        except ObjectMissingError:
            counters.problem("failed", where, f"stored file is missing from bucket {src['dest_bucket']}")
        return None

    def _stage_one(self, src: dict[str, Any], version: str, counters: Counters) -> staging.StagingRow | None:
        """The file's staging inventory row, or ``None`` when its stored bytes cannot be used."""
        from trilha.domain.parquet import table_to_parquet_bytes

        where = f"{src['dest_bucket']}/{src['dest_key']}"
        data = self._stored_bytes(src, where, counters)
        if data is None:
            return None
        staged = staging.stage_file(data, src["logical_name"], include.load_contract)
        if isinstance(staged, staging.Refused):
            counters.problem(staged.kind, where, staged.reason)
            return staging.staging_row(src, version, staged)
        out_key, q_key = staging.output_keys(src, staged.dataset, version)
        digest = self.minio.put_bytes(self.staging_bucket, out_key, table_to_parquet_bytes(staged.ok))
        quarantined = None
        if staged.quarantine is not None:
            q_data = table_to_parquet_bytes(staged.quarantine)
            quarantined = (q_key, self.minio.put_bytes(self.staging_bucket, q_key, q_data).sha256)
            self.log.info("%s: %s rows quarantined to %s", where, staged.rows_rejected, q_key)
        counters.add("new")
        counters.add("bytes", digest.size)
        counters.touched(f"{self.staging_bucket}/{out_key}")
        return staging.staging_row(
            src,
            version,
            staged,
            bucket=self.staging_bucket,
            output=(out_key, digest.sha256),
            quarantine=quarantined,
        )


class StagingPlanOperator(StagingOperator):
    """Plan a staging run: the stored files in scope that the current code version has not staged, in
    batches of ``batch_size`` for the mapped ``stage`` tasks. Returns the batches (one
    ``{"storage_ids", "code_version"}`` each, what ``expand_kwargs`` maps over); its summary is in the
    audit row and the run log. Reads only; stages nothing.

    :param batch_size: stored files per mapped task (templated).
    """

    template_fields: Sequence[str] = (*StagingOperator.template_fields, "batch_size")

    def __init__(self, *, batch_size: int | str = 100, **kwargs: Any) -> None:
        super().__init__(announce_changes=False, **kwargs)
        self.batch_size = batch_size
        self.batches: list[dict[str, Any]] = []

    def run(self, context: Context, counters: Counters) -> dict[str, Any]:
        try:
            size = int(self.batch_size)
        except (TypeError, ValueError):
            raise AirflowFailException(
                f"batch_size: expected a whole number of files, got {self.batch_size!r}"
            ) from None
        if size < 1:
            raise AirflowFailException(f"batch_size: expected 1 or more files per batch, got {size}")
        version = include.code_version()
        todo, why = self.candidates(context, version)
        self.batches = batches = staging.plan_batches(todo, size, version)
        counters.add("seen", len(todo))
        self.log.info("%s files to stage in %s batch(es) of <= %s (%s)", len(todo), len(batches), size, why)
        return {"code_version": version, "files": len(todo), "batches": len(batches), "scope": why}

    def returned(self, record: TaskRecord) -> list[dict[str, Any]]:
        return self.batches
