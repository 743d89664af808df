"""The audit store: PostgreSQL, through the Postgres provider's ``PostgresHook``.

Every statement is a file in ``include/sql/queries/`` with bind parameters only (``%(name)s``);
no value is ever formatted into SQL. Batches travel as arrays (``unnest``), so registering a
thousand objects is one round trip, not a thousand. The hook counts its round trips
(:attr:`AuditHook.round_trips`) so tests and benchmarks can hold that promise.

Connecting does not migrate: :meth:`AuditHook.ensure_schema` brings the database to the current
schema (:func:`trilha.hooks.migrations.migrate`), once per process and connection id, and every Trilha
task calls it first (``TrilhaBaseOperator.execute``), so no one ever runs SQL by hand.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import cache, cached_property
from pathlib import PurePosixPath
from typing import Any

from airflow.providers.postgres.hooks.postgres import PostgresHook

from trilha import config
from trilha.domain import events, lake, lineage, reception, staging
from trilha.domain.manifest import CuratedRecord, DatasetRecord, RecordedCut
from trilha.exceptions import ConnectionSetupError, TrilhaError
from trilha.hooks.migrations import migrate

_MIGRATED: set[str] = set()
_MIGRATE_LOCK = threading.Lock()


@cache
def load_query(name: str) -> str:
    """The text of ``include/sql/queries/<name>.sql`` (read once per process)."""
    return (config.sql_dir() / "queries" / f"{name}.sql").read_text(encoding="utf-8")


class AuditHook(PostgresHook):
    """Batched, transactional writes and reads of the audit tables.

    :param postgres_conn_id: the Postgres connection of the audit store.
    """

    conn_name_attr = "postgres_conn_id"
    default_conn_name = config.POSTGRES_CONN_ID
    conn_type = "postgres"
    hook_name = "Trilha audit store (PostgreSQL)"

    def __init__(self, postgres_conn_id: str = config.POSTGRES_CONN_ID, **kwargs: Any) -> None:
        super().__init__(postgres_conn_id=postgres_conn_id, **kwargs)
        self.round_trips = 0

    @cached_property
    def db(self) -> Any:
        """One DB-API connection per hook (see :meth:`ensure_schema` for the schema)."""
        from airflow.sdk.exceptions import AirflowNotFoundException

        conn_id = str(getattr(self, self.conn_name_attr))
        try:
            conn = self.get_conn()
        except AirflowNotFoundException:
            raise ConnectionSetupError(
                f"connection {conn_id!r} is not defined: add it to airflow_settings.yaml or set "
                f"AIRFLOW_CONN_{conn_id.upper()}"
            ) from None
        except Exception as err:
            raise ConnectionSetupError(
                f"connection {conn_id!r}: cannot connect to PostgreSQL ({type(err).__name__}: "
                f"{str(err).strip()[:300]}); check host, port, login and password of the connection"
            ) from err
        conn.autocommit = False  # type: ignore[attr-defined]  # both psycopg2 and psycopg 3 have it
        return conn

    def ensure_schema(self) -> list[str]:
        """Apply the pending migrations (:func:`trilha.hooks.migrations.migrate`), once per process per
        connection id; log what was applied. When the schema is current it costs one query.

        :return: the migration files this call applied (empty: current, or checked before).
        """
        conn_id = str(getattr(self, self.conn_name_attr))
        with _MIGRATE_LOCK:
            if conn_id in _MIGRATED:
                return []
            applied = migrate(self.db)
            if applied:
                self.log.info("audit store %r migrated: %s", conn_id, ", ".join(applied))
            else:
                self.log.info("audit store %r: schema is current", conn_id)
            _MIGRATED.add(conn_id)
        return applied

    def close(self) -> None:
        if "db" in self.__dict__:
            self.__dict__.pop("db").close()

    # primitives ----------------------------------------------------------------------------------
    def _execute(self, cur: Any, name: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        cur.execute(load_query(name), params)
        self.round_trips += 1
        if cur.description is None:
            return []
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]

    def query(self, name: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Run one named statement in its own transaction and return its rows as dicts."""
        with self.transaction() as tx:
            return tx.run(name, params or {})

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """A transaction: committed when the block ends normally, rolled back on any error."""
        conn = self.db
        cur = conn.cursor()
        try:
            yield Transaction(self, cur)
            conn.commit()
            self.round_trips += 1
        except BaseException:
            conn.rollback()
            raise
        finally:
            cur.close()

    # domain reads --------------------------------------------------------------------------------
    def known_reception(
        self, bucket: str, keys: Sequence[str], etags: Sequence[str]
    ) -> dict[tuple[str, str], dict]:
        rows = self.query("reception_known", {"bucket": bucket, "keys": list(keys), "etags": list(etags)})
        return {(r["object_key"], r["etag"]): r for r in rows}

    def known_source_revisions(
        self, kind: str, refs: Sequence[str], revisions: Sequence[str]
    ) -> set[tuple[str, str]]:
        """Which (source id, revision) pairs were captured before: how exported Google documents,
        which carry no checksum and export to different bytes each time, are recognised."""
        rows = self.query(
            "reception_by_source", {"kind": kind, "refs": list(refs), "revisions": list(revisions)}
        )
        return {(r["source_ref"], r["source_revision"]) for r in rows}

    def known_checksums(self, sha256: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Which of N checksums are already in ``raw.data_files``: one query for the whole batch."""
        rows = self.query("checksums_known", {"sha256": list(sha256)})
        return {r["sha256"]: r for r in rows}

    def get_or_create_project(self, name: str, prefix: str | None, run_id: str | None) -> dict[str, Any]:
        """The project ``name``; created with ``prefix`` if new (``None`` prefix: must exist)."""
        with self.transaction() as tx:
            if prefix is not None:
                tx.run("project_lock", {})
            rows = tx.run("project_get_or_create", {"name": name, "prefix": prefix, "run_id": run_id})
        return rows[0] if rows else {}

    def project_by_prefix(self, prefix: str) -> dict[str, Any] | None:
        rows = self.query("project_by_prefix", {"prefix": prefix})
        return rows[0] if rows else None

    def run_changes(
        self, statement: str, run_id: str, bucket: str, counts: Sequence[str]
    ) -> events.RunChanges:
        """What DAG run ``run_id`` added to ``bucket``'s layer (all tries together), per project, from
        a ``*_changes`` statement whose ``counts`` columns the layer's asset event carries."""
        rows = self.query(
            statement,
            {
                "run_id": run_id,
                "bucket": bucket,
                "max_keys": events.MAX_KEYS,
                "max_projects": events.MAX_PROJECTS,
            },
        )
        return events.changes_from_rows(rows, counts)

    # run log -------------------------------------------------------------------------------------
    def write_audit_log(self, row: dict[str, Any]) -> int:
        params = dict(row)
        params["counters"] = json.dumps(params.get("counters") or {}, default=str)
        params["problems"] = json.dumps(params.get("problems") or [], default=str)
        rows = self.query("audit_log_upsert", params)
        return int(rows[0]["id"])

    # --- ingestion ---
    # Capture, raw ingest, promote and cleanup: their typed reads and writes.
    def known_content(self, sha256: Sequence[str], md5: Sequence[str]) -> tuple[set[str], set[str]]:
        """Which contents ``raw.data_files`` already holds, by sha256 and (for Drive files that carry
        an md5 only) by md5: one transaction for the whole batch, whatever its size.

        :return: ``(known sha256 values, known md5 values)``.
        """
        with self.transaction() as tx:
            by_sha = tx.run("checksums_known", {"sha256": list(sha256)})
            by_md5 = tx.run("checksums_known_md5", {"md5": list(md5)})
        return {r["sha256"] for r in by_sha}, {r["md5"] for r in by_md5}

    def register_reception(self, bucket: str, entries: Sequence[reception.Entry], run_id: str) -> None:
        """Claim content in ``raw.data_files`` and register the objects in ``reception_audit``, in one
        transaction; set each entry's status (:func:`trilha.domain.reception.settle_claims`)."""
        if not entries:
            return
        ordered = reception.claimable(entries)
        with self.transaction() as tx:
            claims: dict[str, dict[str, Any]] = {}
            if ordered:
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
            reception.settle_claims(ordered, claims)
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

    def promote_candidates(
        self, bucket: str, key_prefix: str, keys: Sequence[str] | None
    ) -> list[dict[str, Any]]:
        """Registered reception objects of ``bucket`` under ``key_prefix`` (only ``keys`` when given)
        that wait for promotion."""
        return self.query(
            "promote_candidates",
            {"bucket": bucket, "key_prefix": key_prefix, "keys": None if keys is None else list(keys)},
        )

    @contextmanager
    def promotion_batch(
        self, project_id: int, sha256: Sequence[str], names: Sequence[str]
    ) -> Iterator[PromotionBatch]:
        """One promotion batch's transaction: the advisory locks on its checksums and names are taken
        first and held until it commits (after :meth:`PromotionBatch.record`)."""
        lock_keys = [lake.lock_key("sha", s) for s in sha256] + [lake.lock_key("name", n) for n in names]
        with self.transaction() as tx:
            tx.run("advisory_lock_batch", {"project_id": project_id, "lock_keys": lock_keys})
            yield PromotionBatch(tx, project_id)

    def reception_current(
        self, bucket: str, keys: Sequence[str], etags: Sequence[str]
    ) -> dict[str, dict[str, Any]]:
        """The current ``reception_audit`` row of each key (by key, not by (key, ETag): an object
        overwritten since its audit must read as changed)."""
        rows = self.query("reception_current", {"bucket": bucket, "keys": list(keys), "etags": list(etags)})
        return {r["object_key"]: r for r in rows}

    def stored_anywhere(self, sha256: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The ``storage_audit`` row of each checksum, in any project."""
        return {r["sha256"]: r for r in self.query("storage_any_by_sha", {"sha256": list(sha256)})}

    def record_cleanup(
        self, bucket: str, rows: Sequence[lake.CleanupRecord], dry_run: bool, run_id: str
    ) -> None:
        """Record cleanup decisions and mark the deleted reception rows, in one transaction."""
        with self.transaction() as tx:
            tx.run(
                "cleanup_insert",
                {
                    "reception_ids": [r.reception_id for r in rows],
                    "buckets": [bucket] * len(rows),
                    "keys": [r.key for r in rows],
                    "sha256": [r.sha256 for r in rows],
                    "sizes": [r.size for r in rows],
                    "etags": [r.etag for r in rows],
                    "storage_ids": [r.storage_id for r in rows],
                    "actions": [r.action for r in rows],
                    "reasons": [r.reason for r in rows],
                    "dry_runs": [dry_run] * len(rows),
                    "run_ids": [run_id] * len(rows),
                },
            )
            ids = [r.reception_id for r in rows if r.action == "deleted" and r.reception_id is not None]
            if ids:
                tx.run("reception_mark_deleted", {"ids": ids})

    # --- processing ---
    # Staging, curated and dataset versions: one method per read and per write of their operators.
    def staging_candidates(
        self,
        project: str | None,
        key_prefix: str,
        code_version: str,
        keys: Sequence[str] | None,
        storage_ids: Sequence[int] | None = None,
    ) -> list[dict[str, Any]]:
        """Stored raw files of ``project`` (``None``: every project) under ``key_prefix`` that
        ``code_version`` has not staged; ``keys`` (``None``: no filter) narrows them to the stored
        keys a run's asset events listed, ``storage_ids`` (``None``: no filter) to one mapped batch.
        In storage order."""
        return self.query(
            "staging_candidates",
            {
                "project": project,
                "key_prefix": key_prefix,
                "code_version": code_version,
                "keys": None if keys is None else list(keys),
                "storage_ids": None if storage_ids is None else [int(i) for i in storage_ids],
            },
        )

    def record_staging(self, rows: Sequence[staging.StagingRow], run_id: str) -> None:
        """Insert staging inventory rows, the whole batch in one statement; a file already recorded
        for its (project, source sha256, code version) keeps its row."""
        if not rows:
            return

        def col(name: str) -> list[Any]:
            return [getattr(r, name) for r in rows]

        self.query(
            "staging_insert",
            {
                "project_ids": col("project_id"),
                "storage_ids": col("storage_id"),
                "source_buckets": col("source_bucket"),
                "source_keys": col("source_key"),
                "source_sha256": col("source_sha256"),
                "code_versions": col("code_version"),
                "datasets": col("dataset"),
                "layouts": col("layout"),
                "statuses": col("status"),
                "reasons": col("reason"),
                "rows_in": col("rows_in"),
                "rows_ok": col("rows_ok"),
                "rows_rejected": col("rows_rejected"),
                "schemas": [json.dumps(r.schema) if r.schema else None for r in rows],
                "output_buckets": col("output_bucket"),
                "output_keys": col("output_key"),
                "output_sha256": col("output_sha256"),
                "quarantine_keys": col("quarantine_key"),
                "quarantine_sha256": col("quarantine_sha256"),
                "run_ids": [run_id] * len(rows),
                "qc_counts": [None if r.qc_counts is None else json.dumps(r.qc_counts) for r in rows],
            },
        )

    def curated_targets(
        self, project: str | None, dataset: str | None, datasets: Sequence[str] | None
    ) -> list[dict[str, Any]]:
        """The (project, dataset) pairs with staged data (``project_id``, ``project_name``,
        ``project_prefix``, ``dataset``); ``None`` filters nothing. ``datasets`` narrows a run to
        the datasets its asset events named."""
        return self.query(
            "curated_datasets",
            {
                "project": project,
                "dataset": dataset,
                "datasets": None if datasets is None else list(datasets),
            },
        )

    def curated_inputs(self, project_id: int, dataset: str) -> list[dict[str, Any]]:
        """The staged parts of a project's dataset: the latest staging of each distinct source content."""
        return self.query("curated_inputs", {"project_id": project_id, "dataset": dataset})

    def curated_made_from(self, project_id: int, dataset: str, fingerprint: str) -> str | None:
        """The curated version made from the inputs of ``fingerprint``, if there is one."""
        rows = self.query(
            "curated_by_fingerprint",
            {"project_id": project_id, "dataset": dataset, "fingerprint": fingerprint},
        )
        return str(rows[0]["version"]) if rows else None

    def record_curated(
        self,
        project_id: int,
        dataset: str,
        fingerprint: str,
        write: Callable[[str, dict[str, Any] | None], CuratedRecord],
    ) -> CuratedRecord | str:
        """Make the next curated version of a dataset: one transaction that takes the dataset's
        version lock, numbers the version, calls ``write(version, latest)`` (which writes its
        objects, commits its tables' snapshots and returns its record; ``latest``: the dataset's
        latest version, ``id``, ``version``, ``table_format``, ``tables`` and ``inputs`` decoded, and
        ``claimed``, the keys of every object its versions' rows claim; or ``None``) and inserts
        the record. The insert is the publication point: the version exists for readers once this
        transaction commits.

        :returns: the new version's record; or, when a run that started at the same time made a
            version from these very inputs meanwhile, that version's name (nothing is written).
        """
        ids = {"project_id": project_id, "dataset": dataset}
        with self.transaction() as tx:
            nxt = tx.run("curated_next_version", ids)[0]["next"]
            # Under the lock: a run that started at the same time may have made this version meanwhile.
            made = tx.run("curated_by_fingerprint", {**ids, "fingerprint": fingerprint})
            if made:
                return str(made[0]["version"])
            latest = self._curated_latest(tx.run("curated_latest", ids))
            if latest is not None:
                latest["claimed"] = {str(r["key"]) for r in tx.run("curated_claimed", ids)}
            record = write(lineage.curated_version(int(nxt)), latest)
            tx.run(
                "curated_insert",
                {
                    **ids,
                    "version": record.version,
                    "fingerprint": record.fingerprint,
                    "inputs_count": len(record.inputs),
                    "rows": record.rows,
                    "bucket": record.bucket,
                    "prefix": record.prefix,
                    "inputs": json.dumps(record.inputs),
                    "files": json.dumps(record.files),
                    "manifest_key": record.manifest_key,
                    "manifest_sha256": record.manifest_sha256,
                    "run_id": record.run_id,
                    "table_format": record.table_format,
                    "tables": None if record.tables is None else json.dumps(record.tables),
                    "objects": json.dumps(record.objects),
                },
            )
        return record

    def curated_latest(self, project_id: int, dataset: str) -> dict[str, Any] | None:
        """The latest curated version of a project's dataset (``id``, ``version``, ``table_format``,
        and ``tables`` and ``inputs`` decoded), read outside the version lock (a plan's view);
        ``None`` when it has none."""
        ids = {"project_id": project_id, "dataset": dataset}
        return self._curated_latest(self.query("curated_latest", ids))

    def _curated_latest(self, rows: list[dict[str, Any]]) -> dict[str, Any] | None:
        if not rows:
            return None
        row = rows[0]
        return {**row, "tables": self._jsonb(row["tables"]), "inputs": self._jsonb(row["inputs"])}

    def curated_version(self, project: str, dataset: str, version: str | None) -> dict[str, Any] | None:
        """Curated version ``version`` (``None``: the latest) of a project's dataset, with its
        ``files`` and ``tables`` decoded; ``None`` when there is no such version."""
        rows = self.query("curated_select", {"project": project, "dataset": dataset, "version": version})
        if not rows:
            return None
        return {**rows[0], "files": self._jsonb(rows[0]["files"]), "tables": self._jsonb(rows[0]["tables"])}

    def dataset_by_fingerprint(self, curated_id: int, fingerprint: str) -> RecordedCut | None:
        """The cut of curated version ``curated_id`` with the parameters of ``fingerprint``, if made."""
        rows = self.query("dataset_by_fingerprint", {"curated_id": curated_id, "fingerprint": fingerprint})
        return self._recorded_cut(rows[0]) if rows else None

    def record_dataset(
        self,
        project_id: int,
        curated_id: int,
        fingerprint: str,
        write: Callable[[int], DatasetRecord],
        dataset: str,
    ) -> tuple[RecordedCut, bool]:
        """Make a cut once: one transaction that takes the dataset's cut lock, looks for the cut
        again, and only if it is still missing numbers it (the project's next cut of ``dataset``)
        and calls ``write(number)`` (which writes its objects and returns its record) and inserts
        the record.

        Two runs making the same cut at once: the second waits on the lock, then finds the first's
        row and writes nothing, so the manifest object is always the one the inventory describes.

        :returns: ``(the cut as recorded, whether this call made it)``.
        :raises TrilhaError: the version's name is taken by another cut (see below); nothing recorded.
        """
        with self.transaction() as tx:
            tx.run("dataset_lock", {"project_id": project_id, "dataset": dataset})
            raced = tx.run("dataset_by_fingerprint", {"curated_id": curated_id, "fingerprint": fingerprint})
            if raced:
                return self._recorded_cut(raced[0]), False
            number = int(
                tx.run("dataset_next_number", {"project_id": project_id, "dataset": dataset})[0]["next"]
            )
            record = write(number)
            inserted = tx.run(
                "dataset_insert",
                {
                    "project_id": record.project_id,
                    "dataset": record.dataset,
                    "version": record.version,
                    "curated_id": record.curated_id,
                    "strategy": record.strategy,
                    "params": json.dumps(record.params),
                    "fingerprint": record.fingerprint,
                    "rows": json.dumps(record.rows),
                    "bucket": record.bucket,
                    "prefix": record.prefix,
                    "files": json.dumps(record.files),
                    "manifest_key": record.manifest_key,
                    "manifest_sha256": record.manifest_sha256,
                    "run_id": record.run_id,
                },
            )
            if not inserted:
                # Under the lock, numbered after every cut of the dataset: only a row made outside
                # Trilha can hold this name. Refuse rather than describe its objects with this record.
                raise TrilhaError(
                    f"dataset version {record.version!r} exists with other parameters; "
                    f"objects at {record.prefix}/"
                )
        cut = RecordedCut(
            id=int(inserted[0]["id"]),
            version=record.version,
            bucket=record.bucket,
            files=record.files,
            manifest_key=record.manifest_key,
            manifest_sha256=record.manifest_sha256,
        )
        return cut, True

    def mark_dataset_exported(self, dataset_id: int, drive_folder_id: str) -> None:
        """Dataset version ``dataset_id`` was uploaded, whole and verified, to a Drive folder."""
        self.query("dataset_mark_exported", {"id": dataset_id, "drive_folder_id": drive_folder_id})

    def reception_changes(self, run_id: str, bucket: str) -> events.RunChanges:
        """What DAG run ``run_id`` registered in reception ``bucket``: keys, new / duplicate / bytes."""
        return self.run_changes("reception_changes", run_id, bucket, ("new", "duplicate", "bytes"))

    def storage_changes(self, run_id: str, bucket: str) -> events.RunChanges:
        """What DAG run ``run_id`` stored in ``bucket``: keys, new versions and bytes per project."""
        return self.run_changes("storage_changes", run_id, bucket, ("new_versions", "bytes"))

    def staging_changes(self, run_id: str, bucket: str) -> events.RunChanges:
        """What DAG run ``run_id`` staged into ``bucket``: keys, and rows ok / rejected per project."""
        return self.run_changes("staging_changes", run_id, bucket, ("rows_ok", "rows_rejected"))

    def curated_changes(self, run_id: str, bucket: str) -> events.RunChanges:
        """The curated versions DAG run ``run_id`` made in ``bucket``, with their rows, per project."""
        return self.run_changes("curated_changes", run_id, bucket, ("rows",))

    def dataset_changes(self, run_id: str, bucket: str) -> events.RunChanges:
        """The dataset versions DAG run ``run_id`` cut into ``bucket``, with their rows, per project."""
        return self.run_changes("dataset_changes", run_id, bucket, ("rows",))

    @staticmethod
    def _jsonb(value: Any) -> Any:
        """A JSONB column as Python: drivers hand it over decoded, or as text when a cast was lost."""
        return json.loads(value) if isinstance(value, str | bytes) else value

    @classmethod
    def _recorded_cut(cls, row: dict[str, Any]) -> RecordedCut:
        return RecordedCut(
            id=int(row["id"]),
            version=str(row["version"]),
            bucket=str(row["bucket"]),
            files=cls._jsonb(row["files"]),
            manifest_key=str(row["manifest_key"]),
            manifest_sha256=str(row["manifest_sha256"]),
            drive_folder_id=row["drive_folder_id"],
        )

    # --- reconcile and trace ---
    # What python -m trilha.ops.reconcile (and the reconcile DAG) and python -m trilha.ops.trace read
    # and write: one method per statement, each in its own transaction.

    def reconcile_bucket_layers(self, key_prefix: str | None) -> list[tuple[str, str | None]]:
        """``(layer, bucket)`` for every bucket the audit rows of each layer name (under
        ``key_prefix``, if given), reconcile reports counting as ``storage``; sorted."""
        rows = self.query("reconcile_buckets", {"key_prefix": key_prefix})
        return [(str(r["layer"]), r["bucket"]) for r in rows]

    def reconcile_claims(self, buckets: Sequence[str], key_prefix: str | None) -> list[dict[str, Any]]:
        """Every object the audit says ``buckets`` hold (under ``key_prefix``), layer by layer in
        pipeline order, then earlier reconcile reports. Each row: ``bucket``, ``key``, ``size_bytes``,
        ``etag``, ``md5``, ``sha256``, ``recorded_at``, ``deleted``, ``seq``, ``source``."""
        params = {"buckets": list(buckets), "key_prefix": key_prefix}
        rows: list[dict[str, Any]] = []
        for statement in _RECONCILE_CLAIMS:
            rows.extend(self.query(statement, params))
        return rows

    def running_task_runs(self) -> list[dict[str, Any]]:
        """``meta.audit_log`` rows still ``running`` (``id``, ``dag_id``, ``run_id``, ``task_id``,
        ``try_number``, ``status``, ``hostname``, ``pid``, ``started_at``), oldest first."""
        return self.query("reconcile_running", {})

    def mark_abandoned(self, ids: Sequence[int], reasons: Sequence[str], now: datetime) -> set[int]:
        """Mark these ``meta.audit_log`` rows ``abandoned`` at ``now`` with their reasons; the ids
        really marked (a row that finished meanwhile is left alone)."""
        rows = self.query("reconcile_abandon", {"ids": list(ids), "reasons": list(reasons), "now": now})
        return {int(r["id"]) for r in rows}

    def project_names(self) -> list[str]:
        """The registered project names, sorted."""
        return [str(r["name"]) for r in self.query("reconcile_projects", {})]

    def record_reconcile_report(
        self,
        *,
        run_id: str,
        project_prefix: str | None,
        checked_at: datetime,
        grace_minutes: int,
        rehash: bool,
        report_bucket: str,
        report_key: str,
        report_sha256: str,
        report_md5: str,
        report_bytes: int,
        buckets: Sequence[ReconcileBucketRow],
    ) -> None:
        """One ``meta.reconcile_report`` row per bucket of a reconcile run, all naming its report
        object; one round trip."""
        self.query(
            "reconcile_report_insert",
            {
                "run_id": run_id,
                "project_prefix": project_prefix,
                "checked_at": checked_at,
                "grace_minutes": grace_minutes,
                "rehash": rehash,
                "report_bucket": report_bucket,
                "report_key": report_key,
                "report_sha256": report_sha256,
                "report_md5": report_md5,
                "report_bytes": report_bytes,
                "buckets": [b.bucket for b in buckets],
                "layers": [",".join(b.layers) for b in buckets],
                "counts": [json.dumps(dict(b.counts)) for b in buckets],
                "drift": [json.dumps(list(b.drift), default=str) for b in buckets],
                "drift_totals": [b.drift_total for b in buckets],
            },
        )

    def latest_reconcile_reports(self, project_prefix: str | None = None) -> list[dict[str, Any]]:
        """The latest ``meta.reconcile_report`` row of each bucket (that covered ``project_prefix``,
        if given: a run over every project, or over this one)."""
        return self.query("reconcile_latest", {"project_prefix": project_prefix})

    def contents_named(self, q: str) -> list[str]:
        """The sha256 of every content that a file name, key, checksum or source id ``q`` names."""
        return [str(r["sha256"]) for r in self.query("trace_find", {"q": q}) if r["sha256"]]

    def content_events(self, sha256: Sequence[str]) -> list[dict[str, Any]]:
        """The path of these contents through the lake, one row per event (``layer``, ``sha256``,
        ``bucket``, ``key``, ``detail``, ``source``, ``run_id``, ``at``), oldest first per content."""
        return self.query("trace_layers", {"sha256": list(sha256)})

    def project_summary(self, project: str) -> dict[str, Any]:
        """Files and rows per layer of project ``project`` (``project`` is ``None`` if unknown)."""
        return self.query("summary_project", {"project": project})[0]

    def project_versions(self, project: str) -> list[dict[str, Any]]:
        """The curated and dataset versions of ``project``, newest first."""
        return self.query("summary_versions", {"project": project})

    def project_layouts(self, project: str) -> list[dict[str, Any]]:
        """The layouts staging detected in ``project``'s files: dataset, layout, files, rows."""
        return self.query("summary_layouts", {"project": project})

    def project_rejections(self, project: str) -> list[dict[str, Any]]:
        """The latest rejected files and quarantines of ``project`` (at most 10)."""
        return self.query("summary_rejections", {"project": project})


class Transaction:
    """A cursor inside :meth:`AuditHook.transaction` that runs named statements."""

    def __init__(self, hook: AuditHook, cursor: Any) -> None:
        self.hook = hook
        self.cursor = cursor

    def run(self, name: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        return self.hook._execute(self.cursor, name, params)


# --- ingestion ---
class PromotionBatch:
    """The reads and writes of one promotion batch, inside :meth:`AuditHook.promotion_batch`'s
    transaction (whose advisory locks it holds)."""

    def __init__(self, tx: Transaction, project_id: int) -> None:
        self.tx = tx
        self.project_id = project_id

    def stored(self, sha256: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The project's ``storage_audit`` row of each checksum."""
        rows = self.tx.run("storage_by_sha", {"project_id": self.project_id, "sha256": list(sha256)})
        return {r["sha256"]: r for r in rows}

    def latest_versions(self, names: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The latest stored version of each logical name."""
        rows = self.tx.run("storage_latest_versions", {"project_id": self.project_id, "names": list(names)})
        return {r["logical_name"]: r for r in rows}

    def keys_taken(self, bucket: str, keys: Sequence[str]) -> set[str]:
        """Lock the planned stored keys, then which of them ``storage_audit`` already holds."""
        self.tx.run(
            "advisory_lock_batch",
            {"project_id": self.project_id, "lock_keys": [lake.lock_key("key", k) for k in keys]},
        )
        rows = self.tx.run("storage_keys_taken", {"bucket": bucket, "keys": list(keys)})
        return {r["dest_key"] for r in rows}

    def record(
        self,
        project: Mapping[str, Any],
        done: Sequence[lake.PromotionItem],
        source_bucket: str,
        dest_bucket: str,
        run_id: str,
    ) -> None:
        """Insert the ``storage_audit`` rows of the verified copies, then their versions."""
        rows = self.tx.run(
            "storage_insert",
            {
                "project_id": self.project_id,
                "project_prefix": project["prefix"],
                "project_name": project["name"],
                "reception_ids": [i.reception_id for i in done],
                "source_buckets": [source_bucket] * len(done),
                "source_keys": [i.source_key for i in done],
                "dest_buckets": [dest_bucket] * len(done),
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
        self.tx.run(
            "version_insert",
            {
                "project_id": self.project_id,
                "logical_names": [i.name for i in done],
                "versions": [i.version for i in done],
                "sha256": [i.sha256 for i in done],
                "previous_sha256": [i.previous_sha256 for i in done],
                "storage_ids": [ids.get(i.dest_key) for i in done],
                "dest_keys": [i.dest_key for i in done],
                "run_ids": [run_id] * len(done),
            },
        )


# --- reconcile and trace ---
#: The statements of :meth:`AuditHook.reconcile_claims`, in pipeline order.
_RECONCILE_CLAIMS = (
    "reconcile_reception",
    "reconcile_storage",
    "reconcile_staging",
    "reconcile_curated",
    "reconcile_datasets",
    "reconcile_reports",
)


@dataclass(frozen=True)
class ReconcileBucketRow:
    """What a reconcile run records about one bucket (:meth:`AuditHook.record_reconcile_report`).

    :param layers: the layers whose rows describe the bucket.
    :param counts: objects per status.
    :param drift: the drift items kept in the table (the caller bounds them; the report object has
        them all), as dicts.
    :param drift_total: how many drift items there are in all.
    """

    bucket: str
    layers: Sequence[str]
    counts: Mapping[str, int]
    drift: Sequence[Mapping[str, Any]]
    drift_total: int
