"""The curated Iceberg tables: pyiceberg's SQL catalog in the audit PostgreSQL, data in the curated bucket.

All catalog and table I/O of Trilha is here. The catalog (``SqlCatalog`` named ``trilha``) keeps its
two tables in the audit database (created by migration 006, never by pyiceberg: it is opened with
``init_catalog_tables=false``), reached through the same Airflow connection as
:class:`~trilha.hooks.audit.AuditHook`. Data and metadata files go to the S3 server of the ``aws``
connection of :class:`~trilha.hooks.minio.MinioHook` (``extra.endpoint_url``, login and password),
through pyarrow's S3 file system, path-style.

What to write is decided elsewhere (:mod:`trilha.domain.tables`, :mod:`trilha.domain.curate`); this
hook writes a partition's rows into data files, commits one snapshot per table per run (the data
files of the partitions it rewrites out, the new ones in: an Iceberg ``overwrite``), and reads a
table at a snapshot, batch by batch, in a stable order (partition, then file).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from trilha import config
from trilha.domain import tables
from trilha.exceptions import ConnectionSetupError, TrilhaError

if TYPE_CHECKING:
    import pyarrow as pa
    from pyiceberg.catalog.sql import SqlCatalog
    from pyiceberg.manifest import DataFile
    from pyiceberg.table import Table

#: Target size of a data file, in uncompressed Arrow bytes (pyiceberg's measure): one year of 600
#: stations' hours (~5 M rows, ~0.9 GB in Arrow) stays one file, written once per run that touches it.
TARGET_FILE_BYTES = 2 * 1024**3
#: The task ids of shard ``s``'s data files start at ``SHARD_BASE + s * SHARD_TASK_IDS`` (see
#: :meth:`IcebergHook.write_files`): ten digits each for up to ``MAX_SHARDS`` shards a partition,
#: so path order is shard order.
SHARD_BASE = 10**9
SHARD_TASK_IDS = 10**6
MAX_SHARDS = 9000
TABLE_PROPERTIES = {
    "write.target-file-size-bytes": str(TARGET_FILE_BYTES),
    "write.parquet.compression-codec": "zstd",
    "format-version": "2",
}


class IcebergError(TrilhaError):
    """A curated table cannot be read or written; the message names the table and what was expected."""


@dataclass(frozen=True)
class Commit:
    """One table's new snapshot."""

    snapshot_id: int
    metadata_location: str
    rows: int
    files_added: int
    files_removed: int


def _plain(table: pa.Table) -> pa.Table:
    """Dictionary columns as their values, large strings as strings: what Iceberg stores, and what
    the curated tables publish."""
    import pyarrow as pa

    fields = []
    for f in table.schema:
        t = f.type
        if pa.types.is_dictionary(t):
            t = t.value_type
        if pa.types.is_large_string(t):
            t = pa.string()
        elif pa.types.is_large_binary(t):
            t = pa.binary()
        fields.append(pa.field(f.name, t, nullable=True))
    schema = pa.schema(fields)
    return table.cast(schema) if schema != table.schema else table.replace_schema_metadata(None)


class IcebergHook:
    """The catalog and the curated tables.

    :param postgres_conn_id: the audit store's connection (the catalog's database).
    :param aws_conn_id: the S3 connection of the curated bucket.
    """

    def __init__(
        self, postgres_conn_id: str = config.POSTGRES_CONN_ID, aws_conn_id: str = config.S3_CONN_ID
    ) -> None:
        self.postgres_conn_id = postgres_conn_id
        self.aws_conn_id = aws_conn_id

    # catalog -----------------------------------------------------------------------------------
    def catalog_properties(self) -> dict[str, str]:
        """The ``SqlCatalog`` properties, from the two Airflow connections."""
        from airflow.sdk.exceptions import AirflowNotFoundException

        from trilha.hooks.audit import AuditHook
        from trilha.hooks.minio import MinioHook

        audit = AuditHook(postgres_conn_id=self.postgres_conn_id)
        minio = MinioHook(aws_conn_id=self.aws_conn_id)
        try:
            uri = audit.sqlalchemy_url.render_as_string(hide_password=False)
            conn = minio.get_connection(self.aws_conn_id)
        except AirflowNotFoundException as err:
            raise ConnectionSetupError(
                f"curated tables: {err}; define the connections {self.postgres_conn_id!r} and "
                f"{self.aws_conn_id!r} (airflow_settings.yaml or AIRFLOW_CONN_*)"
            ) from None
        extra = conn.extra_dejson
        endpoint = str(extra.get("endpoint_url") or "")
        if not endpoint:
            raise ConnectionSetupError(
                f"connection {self.aws_conn_id!r}: expected extra.endpoint_url (the S3 server), got none"
            )
        return {
            "uri": uri.replace("postgresql://", "postgresql+psycopg2://", 1),
            "init_catalog_tables": "false",
            "py-io-impl": "pyiceberg.io.pyarrow.PyArrowFileIO",
            "s3.endpoint": endpoint,
            "s3.access-key-id": str(conn.login or ""),
            "s3.secret-access-key": str(conn.password or ""),
            "s3.region": str(extra.get("region_name") or "us-east-1"),
            "s3.force-virtual-addressing": "false",
        }

    @cached_property
    def catalog(self) -> SqlCatalog:
        from pyiceberg.catalog.sql import SqlCatalog

        properties = self.catalog_properties()
        # S3-compatible servers (rclone serve s3, older MinIO) refuse the checksum trailers that
        # the AWS SDK of pyarrow's S3 file system sends by default (HTTP 411 on UploadPart). As the
        # Trilha connections' botocore config (config.s3_connection_extra), checksums only when
        # required; the SDK reads these when each S3 client is made.
        for name in ("AWS_REQUEST_CHECKSUM_CALCULATION", "AWS_RESPONSE_CHECKSUM_VALIDATION"):
            os.environ.setdefault(name, "when_required")
        return SqlCatalog(tables.CATALOG_NAME, **properties)

    def close(self) -> None:
        if "catalog" in self.__dict__:
            self.__dict__.pop("catalog").engine.dispose()

    @staticmethod
    def location(bucket: str, project_prefix: str, dataset: str, table: str) -> str:
        """Where a new table's files go: :func:`trilha.domain.tables.table_location`."""
        return tables.table_location(bucket, project_prefix, dataset, table)

    def load(self, identifier: tuple[str, str]) -> Table:
        """The table ``identifier``; :class:`IcebergError` naming it when the catalog has none."""
        from pyiceberg.exceptions import NoSuchTableError

        try:
            return self.catalog.load_table(identifier)
        except NoSuchTableError:
            raise IcebergError(
                f"curated table {'.'.join(identifier)}: not in the catalog {tables.CATALOG_NAME!r}; "
                "expected the table its version names (run the curated DAG, or check the audit store)"
            ) from None

    def exists(self, identifier: tuple[str, str]) -> bool:
        return bool(self.catalog.table_exists(identifier))

    def open_or_create(
        self, identifier: tuple[str, str], name: str, schema: pa.Schema, location: str
    ) -> Table:
        """The table, created (with its partition spec from :func:`trilha.domain.tables.partition_of`)
        when missing, its schema widened to ``schema``'s columns when it lacks some."""
        from pyiceberg.exceptions import NamespaceAlreadyExistsError, TableAlreadyExistsError
        from sqlalchemy.exc import IntegrityError

        if self.exists(identifier):
            table = self.catalog.load_table(identifier)
        else:
            try:
                self.catalog.create_namespace(identifier[0])
            except NamespaceAlreadyExistsError:
                pass
            except IntegrityError:
                # Two runs creating the project's namespace at once: the SQL catalog checks, then
                # inserts, so the loser's insert hits the key the winner just wrote. Iceberg says
                # "already exists" for a table in that case (create_table); do the same here.
                if not self.catalog.namespace_exists(identifier[0]):
                    raise
            iceberg_schema, spec = self._schema_and_spec(name, _plain(schema.empty_table()).schema)
            try:
                table = self.catalog.create_table(
                    identifier,
                    schema=iceberg_schema,
                    location=location,
                    partition_spec=spec,
                    properties=TABLE_PROPERTIES,
                )
            except TableAlreadyExistsError:
                table = self.catalog.load_table(identifier)
        return self.widen(table, schema)

    @staticmethod
    def _schema_and_spec(name: str, schema: pa.Schema) -> tuple[Any, Any]:
        from pyiceberg.catalog import Catalog
        from pyiceberg.partitioning import UNPARTITIONED_PARTITION_SPEC, PartitionField, PartitionSpec
        from pyiceberg.schema import assign_fresh_schema_ids
        from pyiceberg.transforms import IdentityTransform, YearTransform

        # Converted from Arrow, every field id is -1: number them first, so the partition's source
        # id names the column (create_table keeps ids that are already fresh).
        iceberg_schema = assign_fresh_schema_ids(Catalog._convert_schema_if_needed(schema))
        partition = tables.partition_of(name)
        if partition is None:
            return iceberg_schema, UNPARTITIONED_PARTITION_SPEC
        column, transform = partition
        source = iceberg_schema.find_field(column)
        spec = PartitionSpec(
            PartitionField(
                source_id=source.field_id,
                field_id=1000,
                transform=YearTransform() if transform == "year" else IdentityTransform(),
                name=f"{column}_{transform}" if transform != "identity" else column,
            )
        )
        return iceberg_schema, spec

    def widen(self, table: Table, schema: pa.Schema) -> Table:
        """Add the columns of ``schema`` the table lacks (a new extra column of a year), by name."""
        known = {f.name for f in table.schema().fields}
        if all(name in known for name in schema.names):
            return table
        with table.update_schema() as update:
            update.union_by_name(_plain(schema.empty_table()).schema)
        return table

    # writing -----------------------------------------------------------------------------------
    def write_files(self, table: Table, data: pa.Table, shard: int = 0, widen: bool = True) -> list[DataFile]:
        """Write ``data`` (rows of the partitions it holds) as data files of ``table``; nothing is
        committed: the files are orphans until :meth:`commit` names them.

        :param shard: the writer's place in its partition (a mapped task's shard of a year): file
            names sort by it (``00000-<task id>-<uuid>``, the task ids numbered from
            ``SHARD_BASE + shard * SHARD_TASK_IDS``, all of one width), so reading a partition's files in
            path order reads the shards in order, whoever wrote them and in what order.
        :param widen: add the columns ``data`` has and the table lacks first; off in a mapped task,
            where the plan widened the table already (two tasks cannot both change its schema), so a
            column the table lacks is an error there.
        """
        import itertools

        from pyiceberg.io.pyarrow import _dataframe_to_data_files

        if data.num_rows == 0:
            return []
        if not 0 <= shard < MAX_SHARDS:
            raise IcebergError(
                f"curated table {table.name()}: shard {shard}; expected 0 to {MAX_SHARDS - 1} (use a "
                "larger batch_size)"
            )
        plain = _plain(data)
        if widen:
            self.widen(table, plain.schema)
        else:
            known = {f.name for f in table.schema().fields}
            missing = [n for n in plain.schema.names if n not in known]
            if missing:
                raise IcebergError(
                    f"curated table {table.name()}: columns {missing} are not in the table; expected the "
                    "plan to have added them (was the table changed since the plan?)"
                )
        counter = itertools.count(SHARD_BASE + shard * SHARD_TASK_IDS)
        return list(
            _dataframe_to_data_files(
                table_metadata=table.metadata, df=plain, io=table.io, write_uuid=uuid.uuid4(), counter=counter
            )
        )

    @staticmethod
    def data_file_document(data_file: DataFile) -> dict[str, Any]:
        """A written data file as JSON (what a mapped task hands the commit through XCom): every
        field of Iceberg's ``data_file`` struct, byte bounds in base64, and the partition spec id."""
        import base64

        from pyiceberg.manifest import DATA_FILE_TYPE, DEFAULT_READ_VERSION

        out: dict[str, Any] = {}
        for field in DATA_FILE_TYPE[DEFAULT_READ_VERSION].fields:
            value = getattr(data_file, field.name)
            if field.name == "content":
                value = int(value)
            elif field.name == "file_format":
                value = value.value
            elif field.name == "partition":
                value = [value[i] for i in range(len(value))]
            elif field.name in ("lower_bounds", "upper_bounds") and value is not None:
                value = {str(k): base64.b64encode(v).decode("ascii") for k, v in value.items()}
            elif isinstance(value, dict):
                value = {str(k): v for k, v in value.items()}
            elif isinstance(value, bytes):
                value = base64.b64encode(value).decode("ascii")
            out[field.name] = value
        out["spec_id"] = int(getattr(data_file, "_spec_id", None) or 0)
        return out

    @staticmethod
    def data_file_from_document(document: Mapping[str, Any]) -> DataFile:
        """:meth:`data_file_document` back into a ``DataFile``."""
        import base64

        from pyiceberg.manifest import DataFile, DataFileContent, FileFormat
        from pyiceberg.typedef import Record

        args: dict[str, Any] = {}
        for name, value in document.items():
            if name == "spec_id":
                continue
            if name == "content":
                value = DataFileContent(int(value))
            elif name == "file_format":
                value = FileFormat(value)
            elif name == "partition":
                value = Record(*value)
            elif name in ("lower_bounds", "upper_bounds") and value is not None:
                value = {int(k): base64.b64decode(v) for k, v in value.items()}
            elif isinstance(value, dict):
                value = {int(k): v for k, v in value.items()}
            elif name == "key_metadata" and value is not None:
                value = base64.b64decode(value)
            args[name] = value
        data_file = DataFile.from_args(**args)
        data_file.spec_id = int(document.get("spec_id") or 0)
        return data_file

    @staticmethod
    def partition_year(table: Table, data_file: DataFile) -> int | None:
        """The year of the partition ``data_file`` is in; ``None`` for an unpartitioned table."""
        from pyiceberg.transforms import YearTransform

        spec = table.specs()[data_file.spec_id]
        if spec.is_unpartitioned():
            return None
        value = data_file.partition[0]
        if value is None:
            return None
        return int(value) + 1970 if isinstance(spec.fields[0].transform, YearTransform) else int(value)

    def commit(
        self,
        table: Table,
        added: Sequence[DataFile],
        rewritten: Sequence[int] | None,
        properties: Mapping[str, str],
        attempts: int = 3,
        replace: Mapping[int, Iterable[str]] | None = None,
    ) -> Commit:
        """One snapshot of ``table``: the live data files of the ``rewritten`` years (``None``: all)
        replaced by ``added``, with Trilha's summary ``properties``. For a year in ``replace`` only
        the data files at those paths are replaced (a narrowed year: see
        :func:`trilha.domain.tables.narrow`); each must still be live, else :class:`IcebergError`.

        Idempotent for a retried task: when the table's current snapshot already carries these
        ``properties``' run and version (an earlier attempt committed, then died before publishing),
        that snapshot is returned and nothing is committed. Iceberg's optimistic commit refuses a
        snapshot when another writer committed meanwhile (Trilha's runs of one dataset are serialised
        by the audit store's version lock, so only an outside writer can): the table is then
        refreshed and the overwrite planned again on its new state, ``attempts`` times in all, then
        :class:`IcebergError`. The data files are the same in every attempt; nothing is orphaned."""
        for attempt in range(1, attempts + 1):
            table = table.refresh()
            done = self.committed(table, properties)
            if done is not None:
                return done
            try:
                return self._overwrite(table, added, rewritten, properties, replace or {})
            except Exception as err:
                lost = _lost_race(err)
                if lost is None:
                    raise
                if attempt == attempts:
                    raise IcebergError(
                        f"curated table {table.name()}: {attempts} commits lost to concurrent writers "
                        f"({lost}); expected Trilha's curated runs to be the table's only writer"
                    ) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def committed(self, table: Table, properties: Mapping[str, str]) -> Commit | None:
        """The current snapshot, when it is the commit of ``properties``' run and version."""
        snapshot = table.current_snapshot()
        if snapshot is None or snapshot.summary is None:
            return None
        summary = snapshot.summary.additional_properties
        if any(summary.get(k) != properties.get(k) for k in (tables.PROP_RUN_ID, tables.PROP_VERSION)):
            return None
        return Commit(
            snapshot_id=int(snapshot.snapshot_id),
            metadata_location=str(table.metadata_location),
            rows=self.rows(table, snapshot.snapshot_id),
            files_added=int(summary.get("added-data-files", 0)),
            files_removed=int(summary.get("deleted-data-files", 0)),
        )

    def _overwrite(
        self,
        table: Table,
        added: Sequence[DataFile],
        rewritten: Sequence[int] | None,
        properties: Mapping[str, str],
        replace: Mapping[int, Iterable[str]],
    ) -> Commit:
        years = None if rewritten is None else {int(y) for y in rewritten}
        only = {int(y): {str(p) for p in paths} for y, paths in replace.items()}
        wanted = set().union(*only.values()) if only else set()
        current = table.current_snapshot()
        removed, found = 0, set()
        tx = table.transaction()
        with tx.update_snapshot(snapshot_properties=dict(properties)).overwrite() as producer:
            if current is not None:
                for task in table.scan(snapshot_id=current.snapshot_id).plan_files():
                    year, path = self.partition_year(table, task.file), str(task.file.file_path)
                    if year in only:
                        if path not in only[year]:
                            continue  # a narrowed year keeps the files of the stations it did not touch
                        found.add(path)
                    elif years is not None and year not in years:
                        continue
                    producer.delete_data_file(task.file)
                    removed += 1
            if wanted - found:
                raise IcebergError(
                    f"curated table {table.name()}: {len(wanted - found)} data file(s) planned to be "
                    f"replaced are no longer live (first: {sorted(wanted - found)[0]}); expected the "
                    "snapshot the plan read"
                )
            for data_file in added:
                producer.append_data_file(data_file)
        tx.commit_transaction()
        snapshot = table.current_snapshot()
        if snapshot is None:  # pragma: no cover - a commit always makes one
            raise IcebergError(f"curated table {table.name()}: the commit made no snapshot")
        return Commit(
            snapshot_id=int(snapshot.snapshot_id),
            metadata_location=str(table.metadata_location),
            rows=self.rows(table, snapshot.snapshot_id),
            files_added=len(added),
            files_removed=removed,
        )

    def unpublished(self, table: Table, published: int | None) -> list[dict[str, str]] | None:
        """Summaries of the snapshots committed after ``published`` (the latest version's snapshot of
        this table) and never published; ``None`` when ``published`` is not an ancestor of the current
        snapshot (someone else rewrote the table: everything must be recomputed)."""
        from pyiceberg.table.snapshots import ancestors_of

        current = table.current_snapshot()
        if current is None:
            return []
        out: list[dict[str, str]] = []
        for snapshot in ancestors_of(current, table.metadata):
            if published is not None and snapshot.snapshot_id == published:
                return out
            summary = snapshot.summary
            out.append(dict(summary.additional_properties) if summary is not None else {})
        return None if published is not None else out

    @staticmethod
    def referenced(table: Table) -> set[str]:
        """Every file the table's metadata references, as ``s3://bucket/key`` locations: its metadata
        files (current and logged), and for every snapshot its manifest list, manifests and data
        files. What an orphan-file clean-up keeps; reads every manifest (a leftover-only path)."""
        metadata = table.metadata
        paths = {str(table.metadata_location), *(str(e.metadata_file) for e in metadata.metadata_log)}
        for snapshot in metadata.snapshots:
            paths.add(str(snapshot.manifest_list))
            for manifest in snapshot.manifests(table.io):
                paths.add(str(manifest.manifest_path))
                for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=False):
                    paths.add(str(entry.data_file.file_path))
        return paths

    # reading -----------------------------------------------------------------------------------
    def rows(self, table: Table, snapshot_id: int) -> int:
        return sum(int(t.file.record_count) for t in table.scan(snapshot_id=snapshot_id).plan_files())

    def _tasks(self, table: Table, snapshot_id: int) -> tuple[Any, list[Any]]:
        if table.snapshot_by_id(snapshot_id) is None:
            raise IcebergError(
                f"curated table {table.name()}: no snapshot {snapshot_id}; expected the snapshot its "
                "version recorded (was it expired?)"
            )
        scan = table.scan(snapshot_id=snapshot_id)
        field_id = _station_field(table)
        # Partitions in year order, each one's files in station order (a file holds a range of
        # stations; a narrowed run replaces some of a year's files, so path order alone would not
        # be station order), then path order.
        tasks = sorted(
            scan.plan_files(),
            key=lambda t: (
                self.partition_year(table, t.file) or 0,
                _bound(t.file.lower_bounds, field_id) or "",
                str(t.file.file_path),
            ),
        )
        return scan, tasks

    def live_files(self, name: str, table: Table) -> list[tables.LiveFile]:
        """The data files of ``table``'s current snapshot, with their partition year and the range of
        WMO codes each holds (its ``wmo_code`` column bounds): what :func:`trilha.domain.tables.narrow`
        plans with. ``name`` is the table's name in the dataset (``hourly``)."""
        current = table.current_snapshot()
        if current is None:
            return []
        field_id = _station_field(table)
        return [
            tables.LiveFile(
                table=name,
                path=str(task.file.file_path),
                year=self.partition_year(table, task.file),
                low=_bound(task.file.lower_bounds, field_id),
                high=_bound(task.file.upper_bounds, field_id),
            )
            for task in table.scan(snapshot_id=current.snapshot_id).plan_files()
        ]

    @staticmethod
    def _check_files(table: Table, snapshot_id: int, tasks: Sequence[Any]) -> None:
        """Every data file of the snapshot is there with the size its manifest recorded (Iceberg
        records no content hash; a file cut short, grown or deleted behind the catalog's back is
        refused, named, before anything is read)."""
        for task in tasks:
            path, recorded = str(task.file.file_path), int(task.file.file_size_in_bytes)
            where = f"curated table {table.name()} snapshot {snapshot_id}: {path}"
            try:
                size = len(table.io.new_input(path))
            except FileNotFoundError:
                raise IcebergError(f"{where} is missing; expected the data file its manifest lists") from None
            if size != recorded:
                raise IcebergError(
                    f"{where}: expected {recorded} bytes (its manifest), found {size}; the file changed "
                    "after the version was made"
                )

    def batches(self, identifier: tuple[str, str], snapshot_id: int) -> Iterator[pa.RecordBatch]:
        """``identifier`` at ``snapshot_id``, batch by batch: partitions in year order, each one's
        files in station order (see :meth:`_tasks`), rows as written (by station, then time); one
        data file in memory at a time."""
        from pyiceberg.table import _to_arrow_batch_reader_via_file_scan_tasks

        table = self.load(identifier)
        scan, tasks = self._tasks(table, snapshot_id)
        self._check_files(table, snapshot_id, tasks)
        # One file at a time: pyiceberg's reader maps *every* task onto its thread pool at once and
        # materialises each file's batches, so a consumer slower than the reads (a split writing
        # three Parquet files) would hold the whole table in memory. Handed one task, it holds one file.
        projection = scan.projection()
        for task in tasks:
            for batch in _to_arrow_batch_reader_via_file_scan_tasks(scan, projection, [task]):
                yield _plain_batch(batch)

    def schema(self, identifier: tuple[str, str], snapshot_id: int) -> pa.Schema:
        """The Arrow schema of ``identifier`` at ``snapshot_id`` (as :meth:`batches` yields it)."""
        from pyiceberg.io.pyarrow import schema_to_pyarrow

        table = self.load(identifier)
        scan, _ = self._tasks(table, snapshot_id)
        return _plain(schema_to_pyarrow(scan.projection(), include_field_ids=False).empty_table()).schema

    def read(self, identifier: tuple[str, str], snapshot_id: int) -> pa.Table:
        """The whole table at a snapshot (small tables, tests): :meth:`batches` concatenated."""
        import pyarrow as pa

        schema = self.schema(identifier, snapshot_id)
        batches = [b.cast(schema) for b in self.batches(identifier, snapshot_id)]
        return pa.Table.from_batches(batches, schema=schema)

    def data_files(self, identifier: tuple[str, str], snapshot_id: int) -> list[dict[str, Any]]:
        """The data files of ``identifier`` at ``snapshot_id`` (``path``, ``rows``, ``bytes``,
        ``year``), in :meth:`batches`' order: what another engine reads for that snapshot."""
        table = self.load(identifier)
        _, tasks = self._tasks(table, snapshot_id)
        self._check_files(table, snapshot_id, tasks)
        if any(t.delete_files for t in tasks):  # pragma: no cover - Trilha never writes delete files
            raise IcebergError(f"curated table {table.name()}: snapshot {snapshot_id} has delete files")
        return [
            {
                "path": str(t.file.file_path),
                "rows": int(t.file.record_count),
                "bytes": int(t.file.file_size_in_bytes),
                "year": self.partition_year(table, t.file),
            }
            for t in tasks
        ]

    def snapshot_summary(self, identifier: tuple[str, str], snapshot_id: int) -> dict[str, str]:
        """The summary of a snapshot: Iceberg's counts and Trilha's properties."""
        table = self.load(identifier)
        snapshot = table.snapshot_by_id(snapshot_id)
        if snapshot is None:
            raise IcebergError(f"curated table {table.name()}: no snapshot {snapshot_id}")
        summary = snapshot.summary
        if summary is None:
            return {}
        return {"operation": str(summary.operation.value), **summary.additional_properties}


def _station_field(table: Table) -> int | None:
    """The field id of the table's ``wmo_code`` column; ``None`` when it has none."""
    try:
        return int(table.schema().find_field("wmo_code").field_id)
    except ValueError:
        return None


def _bound(bounds: Mapping[int, bytes] | None, field_id: int | None) -> str | None:
    """A string column's bound from a data file's metrics (UTF-8); ``None`` when not recorded. Iceberg
    may truncate a string bound (16 characters by default), which only widens the range: a WMO code
    has 4."""
    if field_id is None or not bounds or field_id not in bounds:
        return None
    return bytes(bounds[field_id]).decode("utf-8", errors="replace")


def _lost_race(err: BaseException) -> BaseException | None:
    """The catalog's refusal behind ``err`` (a commit that lost to another writer), if it is one.

    pyiceberg retries a refused commit itself, validates it against what the other writer added, and
    on failure cleans up its own uncommitted files; an error of that clean-up (a file already gone)
    can then hide the refusal, which is still in the exception's context chain."""
    from pyiceberg.exceptions import CommitFailedException, ValidationException

    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        if isinstance(current, (CommitFailedException, ValidationException)):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _plain_batch(batch: pa.RecordBatch) -> pa.RecordBatch:
    import pyarrow as pa

    table = _plain(pa.Table.from_batches([batch]))
    return table.to_batches()[0] if table.num_rows else pa.RecordBatch.from_pylist([], schema=table.schema)
