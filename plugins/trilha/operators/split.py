"""The dataset split operator: a curated version is cut into train / validation / test, once per cut.

It reads the curated version once (its inventory row through :class:`~trilha.hooks.audit.AuditHook`;
an Iceberg version's table at the row's snapshot through :class:`~trilha.hooks.iceberg.IcebergHook`,
batch by batch, each batch cut and appended to its split's file; a v0001-style version's Parquet
through :class:`~trilha.hooks.minio.MinioHook`, checked against its sha256),
lets :mod:`trilha.domain.cuts` validate the parameters and make the cut and
:mod:`trilha.domain.manifest` the manifest and the record, and writes the version: the three files,
then the manifest, then the inventory row, in one audit transaction that holds the cut's lock.
pandas/pyarrow are imported inside ``execute`` only.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException

from trilha import config
from trilha.assets import CURATED, DATASETS
from trilha.domain import lineage, manifest, tables
from trilha.domain.cuts import (
    CutError,
    cut_params,
    cut_table,
    dataset_version,
    needs_cutoffs,
    resolve_cutoffs,
)
from trilha.domain.keys import join_key
from trilha.domain.touched import dataset_cut as cut_lineage
from trilha.exceptions import IntegrityError, ObjectMissingError
from trilha.operators.base import Counters, TrilhaBaseOperator, all_or_raise, parallel

if TYPE_CHECKING:
    import pyarrow as pa
    from airflow.sdk import Context


class DatasetSplitOperator(TrilhaBaseOperator):
    """Cut a curated version into train/validation/test, published atomically with a manifest.

    ``datasets/<project>/<dataset>/<version>/{train,validation,test}.parquet`` are written first and
    ``manifest.json`` (rows, sha256 per file, parameters, curated version) last: a version exists for
    readers exactly when its manifest does. The same cut (curated version + parameters) is made once.

    :param project: project name (templated).
    :param dataset: curated dataset (templated).
    :param table: which curated table to split (templated).
    :param strategy: ``temporal`` (by time: nothing leaks from the future) or ``hash`` (templated).
    :param ratios: train, validation, test fractions: of the rows' groups for ``hash``, of the time
        span for ``temporal`` without cut-off dates (templated).
    :param key_columns: hash key columns (templated).
    :param group_by: ``hash``: ``row`` (each row by its key) or ``day``/``week``/``month``/``year``
        (the key with ``time_column`` replaced by its period: whole station-months in one split)
        (templated).
    :param time_column: time column for ``temporal``, and of a ``hash`` grouping (templated).
    :param validation_start: first day of validation for ``temporal``; empty (with ``test_start``):
        from ``ratios`` of the table's time span (templated).
    :param test_start: first day of test for ``temporal`` (templated).
    :param curated_version: which curated version; empty = the latest (templated).
    :param drive_folder_id: also upload the version to this Drive folder (templated; empty = no).
    :param workers: split files serialized and uploaded at once (the manifest always goes last).

    In a run triggered by ``trilha_curated`` events (and no ``curated_version``), the latest version
    of ``dataset`` is cut for each project whose events name that dataset, instead of for ``project``.
    """

    consumes = CURATED

    template_fields: Sequence[str] = (
        *TrilhaBaseOperator.template_fields,
        "project",
        "dataset",
        "table",
        "strategy",
        "ratios",
        "key_columns",
        "group_by",
        "time_column",
        "validation_start",
        "test_start",
        "curated_version",
        "drive_folder_id",
        "datasets_bucket",
        "gcp_conn_id",
    )

    def __init__(
        self,
        *,
        project: str,
        dataset: str = "inmet_hourly",
        table: str = "hourly",
        strategy: str = "temporal",
        ratios: Any = (0.7, 0.15, 0.15),
        key_columns: Any = ("wmo_code", "observed_at"),
        group_by: str = "month",
        time_column: str = "observed_at",
        validation_start: str = "",
        test_start: str = "",
        curated_version: str = "",
        drive_folder_id: str = "",
        datasets_bucket: str = config.DEFAULT_BUCKETS["bucket_datasets"],
        gcp_conn_id: str = config.GOOGLE_CONN_ID,
        workers: int = 2,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.project = project
        self.dataset = dataset
        self.table = table
        self.strategy = strategy
        self.ratios = ratios
        self.key_columns = key_columns
        self.group_by = group_by
        self.time_column = time_column
        self.validation_start = validation_start
        self.test_start = test_start
        self.curated_version = curated_version
        self.drive_folder_id = drive_folder_id
        self.datasets_bucket = datasets_bucket
        self.gcp_conn_id = gcp_conn_id
        self.workers = workers

    def split_params(self) -> dict[str, Any]:
        """The parameters that define the cut, validated, with a clear message for each mistake."""
        try:
            return cut_params(
                strategy=self.strategy,
                table=self.table,
                ratios=self.ratios,
                key_columns=self.key_columns,
                group_by=self.group_by,
                time_column=self.time_column,
                validation_start=self.validation_start,
                test_start=self.test_start,
            )
        except CutError as err:
            raise AirflowFailException(str(err)) from None

    def run(self, context: Context, counters: Counters) -> dict[str, Any]:
        run_id = context["run_id"]
        params = self.split_params()
        self.minio.check_buckets([self.datasets_bucket])
        scope = self.event_scope(
            context, explicit="curated_version" if self.curated_version else "", items="datasets"
        )
        if scope.projects is None:
            summary = self._cut(self.project, params, run_id, counters) or {}
        else:
            projects = [p.name for p in scope.projects if p.items is None or self.dataset in p.items]
            if not projects:
                self.log.info(
                    "the triggering events name no new curated version of %r: nothing to cut", self.dataset
                )
            cuts = [
                cut for name in projects if (cut := self._cut(name, params, run_id, counters, scoped=True))
            ]
            summary = cuts[0] if len(cuts) == 1 else {"cuts": cuts}
        changed = self.audit.dataset_changes(str(run_id), self.datasets_bucket)
        self.announce(context, [DATASETS], self.datasets_bucket, changed)
        return {**summary, "scope": scope.why}

    def _cut(
        self, project: str, params: dict[str, Any], run_id: str, counters: Counters, scoped: bool = False
    ) -> dict[str, Any] | None:
        """Make the cut of ``project``'s curated version (unless it exists); its summary. A project
        without a version of the dataset fails the task, or, in a run scoped by events, is skipped
        (``None``): an event whole-project scope may name a project that has no such dataset."""
        cur = self.audit.curated_version(project, self.dataset, self.curated_version or None)
        if cur is None and scoped:
            self.log.info("project %r has no curated version of %r: nothing to cut", project, self.dataset)
            return None
        if cur is None:
            raise AirflowFailException(
                f"no curated version of dataset {self.dataset!r} for project {project!r}"
                + (f" named {self.curated_version!r}" if self.curated_version else "")
                + ": run the curated DAG first"
            )
        counters.add("seen")
        iceberg = cur.get("table_format") == tables.FORMAT_ICEBERG
        available = (cur["tables"] if iceberg else cur["files"]) or {}
        if params["table"] not in available:
            raise AirflowFailException(
                f"table: expected one of {sorted(available)} in curated version {cur['version']}, "
                f"got {params['table']!r}"
            )
        source = available[params["table"]]
        legacy: list[pa.Table] = []

        def legacy_table() -> pa.Table:
            """A v0001-style version's table, read (and checked) once, when it is needed."""
            if not legacy:
                legacy.append(self._curated_table(cur, source))
            return legacy[0]

        if needs_cutoffs(params):
            params = self._resolve_cutoffs(cur, source, params, None if iceberg else legacy_table())
        fp = lineage.fingerprint({**params, "curated_id": int(cur["id"])})
        drive_folder = (self.drive_folder_id or "").strip() or None
        existing = self.audit.dataset_by_fingerprint(cur["id"], fp)
        if existing is not None:
            return self._existing_cut(existing, drive_folder, counters)
        write_files: Callable[[str], dict[str, dict[str, Any]]]
        if iceberg:
            # The table is read at the version's snapshot batch by batch, each batch cut and appended
            # to its split's file: the cut of a row depends on that row only.
            def write_files(base: str) -> dict[str, dict[str, Any]]:
                return self._stream_splits(cur, source, params, base, counters)
        else:
            # A v0001-style version (Parquet files and a manifest, made before the Iceberg tables).
            try:
                splits = cut_table(legacy_table(), params)
            except CutError as err:
                raise AirflowFailException(str(err)) from None

            def write_files(base: str) -> dict[str, dict[str, Any]]:
                return self._write_splits(base, splits, counters)

        cut, created = self.audit.record_dataset(
            cur["project_id"],
            cur["id"],
            fp,
            lambda number: self._write_cut(
                cur, source, params, fp, dataset_version(number, params), write_files, run_id, counters
            ),
            self.dataset,
        )
        if not created:
            return self._existing_cut(cut, drive_folder, counters)
        counters.add("new")
        counters.touched(f"{self.datasets_bucket}/{cut.manifest_key}")
        version = cut.version
        counters.lineage_of(*cut_lineage(cur, source, params["table"], cut))
        self.log.info("dataset version %s: %s", version, cut.rows)
        if drive_folder:
            # After the inventory row: a failed export leaves a complete, recorded version in the lake,
            # and the re-run (same cut, same folder) finds the row and does only the export.
            self._export_to_drive(cut, drive_folder, counters)
        return {
            "project": cur["project_name"],
            "version": version,
            "created": True,
            "rows": cut.rows,
            "manifest": cut.manifest_key,
        }

    def _write_cut(
        self,
        cur: dict[str, Any],
        source: dict[str, Any],
        params: dict[str, Any],
        fp: str,
        version: str,
        write_files: Callable[[str], dict[str, dict[str, Any]]],
        run_id: str,
        counters: Counters,
    ) -> manifest.DatasetRecord:
        """Write the three files (``write_files(base)``), then the manifest; return the version's
        inventory record.

        Runs inside :meth:`~trilha.hooks.audit.AuditHook.record_dataset`'s transaction, under the
        cut's lock.

        :param source: the curated table that was cut (its entry in the curated version's tables,
            with its snapshot id, or in its files).
        """
        base = join_key(cur["project_prefix"], self.dataset, version)
        files = write_files(base)
        document = manifest.dataset_manifest(
            project=cur["project_name"],
            dataset=self.dataset,
            version=version,
            created_at=datetime.now(UTC).isoformat(),
            run_id=run_id,
            parameters=params,
            files=files,
            curated=cur,
            curated_table=source,
        )
        manifest_key = join_key(base, lineage.MANIFEST)
        m_digest = self.minio.put_bytes(
            self.datasets_bucket,
            manifest_key,
            lineage.manifest_bytes(document),
            content_type="application/json",
        )
        return manifest.DatasetRecord(
            project_id=int(cur["project_id"]),
            dataset=self.dataset,
            version=version,
            curated_id=int(cur["id"]),
            params=params,
            fingerprint=fp,
            bucket=self.datasets_bucket,
            prefix=base,
            files=files,
            manifest_key=manifest_key,
            manifest_sha256=m_digest.sha256,
            run_id=run_id,
        )

    def _write_splits(
        self, base: str, splits: dict[str, pa.Table], counters: Counters
    ) -> dict[str, dict[str, Any]]:
        """Write the split files under ``base``; their manifest entries, in :data:`lineage.SPLITS` order."""
        from trilha.domain.parquet import table_to_parquet_bytes

        def write(name: str) -> dict[str, Any]:
            key = join_key(base, f"{name}.parquet")
            digest = self.minio.put_bytes(self.datasets_bucket, key, table_to_parquet_bytes(splits[name]))
            return manifest.file_entry(key, digest.sha256, splits[name].num_rows, digest.size)

        # The split files are serialized and uploaded on threads (Arrow and boto3 release the GIL);
        # the manifest is written only once every one of them is in place.
        written = all_or_raise(parallel(write, list(lineage.SPLITS), self.workers))
        files: dict[str, dict[str, Any]] = dict(zip(lineage.SPLITS, written, strict=True))
        for entry in files.values():
            counters.add("bytes", entry["bytes"])
        return files

    def _stream_splits(
        self,
        cur: dict[str, Any],
        source: dict[str, Any],
        params: dict[str, Any],
        base: str,
        counters: Counters,
    ) -> dict[str, dict[str, Any]]:
        """Cut curated table ``source`` at its snapshot, batch by batch, into three local Parquet
        files (memory: one batch), then upload them; their manifest entries, in split order."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        from trilha.domain.parquet import writer_options
        from trilha.hooks.iceberg import IcebergError, IcebergHook

        namespace, name = str(source["identifier"]).split(".", 1)
        snapshot = int(source["snapshot_id"])
        hook = IcebergHook(postgres_conn_id=self.postgres_conn_id, aws_conn_id=self.aws_conn_id)
        rows = dict.fromkeys(lineage.SPLITS, 0)
        with tempfile.TemporaryDirectory(prefix="trilha-split-") as tmp:
            paths = {n: Path(tmp) / f"{n}.parquet" for n in lineage.SPLITS}
            try:
                schema = hook.schema((namespace, name), snapshot)
                options: dict[str, Any] = writer_options(schema)
                writers = {n: pq.ParquetWriter(paths[n], schema, **options) for n in lineage.SPLITS}
                try:
                    for batch in hook.batches((namespace, name), snapshot):
                        pieces = cut_table(pa.Table.from_batches([batch], schema=schema), params)
                        for n in lineage.SPLITS:
                            writers[n].write_table(pieces[n])
                            rows[n] += pieces[n].num_rows
                finally:
                    for writer in writers.values():
                        writer.close()
            except (CutError, IcebergError) as err:
                raise AirflowFailException(
                    f"curated version {cur['version']}: {err}; no dataset is cut from it"
                    if isinstance(err, IcebergError)
                    else str(err)
                ) from None
            finally:
                hook.close()

            def upload(n: str) -> dict[str, Any]:
                key = join_key(base, f"{n}.parquet")
                with paths[n].open("rb") as stream:
                    digest = self.minio.upload_stream(self.datasets_bucket, key, stream).digest
                return manifest.file_entry(key, digest.sha256, rows[n], digest.size)

            written = all_or_raise(parallel(upload, list(lineage.SPLITS), self.workers))
        files: dict[str, dict[str, Any]] = dict(zip(lineage.SPLITS, written, strict=True))
        for entry in files.values():
            counters.add("bytes", entry["bytes"])
        return files

    def _resolve_cutoffs(
        self, cur: dict[str, Any], source: dict[str, Any], params: dict[str, Any], table: pa.Table | None
    ) -> dict[str, Any]:
        """A temporal cut without dates: its cut-offs from ``ratios`` of the rows (the table read
        once, batch by batch, for its rows per UTC day of the time column)."""
        from collections import Counter

        from trilha.domain.splitting import day_counts
        from trilha.hooks.iceberg import IcebergError, IcebergHook

        column = str(params["time_column"])
        counts: Counter[date] = Counter()

        def add(batch: pa.Table | pa.RecordBatch) -> None:
            if column not in batch.schema.names:
                raise CutError(
                    f"time_column: expected a column of the table, got {column!r} (columns: "
                    f"{', '.join(batch.schema.names[:12])}); a table with no time column is cut with "
                    "strategy 'hash'"
                )
            try:
                counts.update(day_counts(batch.column(column), column))
            except ValueError as err:
                raise CutError(str(err)) from None

        try:
            if table is not None:
                add(table)
            else:
                namespace, name = str(source["identifier"]).split(".", 1)
                hook = IcebergHook(postgres_conn_id=self.postgres_conn_id, aws_conn_id=self.aws_conn_id)
                try:
                    for batch in hook.batches((namespace, name), int(source["snapshot_id"])):
                        add(batch)
                finally:
                    hook.close()
            return resolve_cutoffs(params, counts)
        except CutError as err:
            raise AirflowFailException(str(err)) from None
        except IcebergError as err:
            raise AirflowFailException(
                f"curated version {cur['version']}: {err}; no dataset is cut from it"
            ) from None

    def _curated_table(self, cur: dict[str, Any], source: dict[str, Any]) -> pa.Table:
        """The curated table, its Parquet checked against the sha256 its version recorded."""
        from trilha.domain.parquet import parquet_bytes_to_table

        where = f"s3://{cur['bucket']}/{source['key']}"
        try:
            data = self.minio.get_verified(cur["bucket"], source["key"], source["sha256"])
        except IntegrityError as err:
            raise AirflowFailException(
                f"curated version {cur['version']}: {err}; the file was changed after the "
                "version was made, so no dataset is cut from it"
            ) from None
        except ObjectMissingError:
            raise AirflowFailException(
                f"curated version {cur['version']}: {where} is missing; expected the file its manifest lists"
            ) from None
        return parquet_bytes_to_table(data)

    def _existing_cut(
        self, cut: manifest.RecordedCut, drive_folder: str | None, counters: Counters
    ) -> dict[str, Any]:
        """The cut exists: nothing to write, unless its export to ``drive_folder`` has not been done."""
        self.log.info("this cut already exists as %s; nothing to write", cut.version)
        counters.add("skipped")
        if drive_folder and cut.drive_folder_id != drive_folder:
            self._export_to_drive(cut, drive_folder, counters)
        return {"version": cut.version, "created": False}

    def _export_to_drive(self, cut: manifest.RecordedCut, folder_id: str, counters: Counters) -> None:
        """Upload a recorded version to ``folder_id/<dataset>/<version>/``, read back from the lake and
        checked against its record, so Colab gets byte for byte what the manifest describes. The
        manifest goes last there too: a reader never sees a version without all of its files."""
        from trilha.hooks.drive import TrilhaDriveHook

        hook = TrilhaDriveHook(gcp_conn_id=self.gcp_conn_id)
        with tempfile.TemporaryDirectory(prefix="trilha-export-") as tmp:
            paths = []
            for key, sha256, drive_path in manifest.drive_export_plan(cut, self.dataset):
                path = Path(tmp) / key.rsplit("/", 1)[-1]
                self.minio.download_verified(cut.bucket, key, path, sha256)
                paths.append((path, drive_path))
            hook.upload_files(paths, folder_id)
        self.audit.mark_dataset_exported(cut.id, folder_id)
        counters.add("exported", len(paths))
        self.log.info("exported %s (%s files) to Drive folder %s", cut.version, len(paths), folder_id)
