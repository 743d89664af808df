"""What a task read and wrote, as the lineage of its run: objects and tables, bounded in number.

Operators declare each object they read or wrote (``Counters.read`` / ``Counters.wrote``) and each
Iceberg table they committed; :class:`Touched` keeps them, and the OpenLineage facets of the task's
events are built from it (``trilha.operators.ol_facets``). Pure: no Airflow, no OpenLineage client.

Naming follows the OpenLineage dataset naming spec for object stores: namespace ``s3://<bucket>``,
name the object key (the S3 endpoint is a setting, so it is not part of the name). A curated Iceberg
table is named by its location, ``s3://<curated bucket>`` and ``<prefix>/<dataset>/_iceberg/<table>``,
as the OpenLineage Spark, Flink and Trino integrations name Iceberg tables: any engine that reads the
same table (DuckDB, Spark, Trino) then points at the same dataset. Its catalog identifier
(``<prefix>.<dataset>__<table>`` in catalog ``trilha``) goes in a symlink.

Bounded: a task that touched 10,000 objects must not emit 10,000 datasets. Beyond :data:`LIMIT`
datasets on one side (inputs or outputs), the objects are aggregated into one dataset per key prefix
(the objects' common directory, shortened until at most :data:`LIMIT` remain), with the object count,
rows and bytes summed; such a dataset has no sha256 of its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, TypedDict, Unpack

from trilha.domain.tables import table_location

#: At most this many datasets on each side of one task's event.
LIMIT = 100
#: Per-prefix aggregates kept while recording, beyond which they are shortened at once (memory bound).
MAX_GROUPS = 4 * LIMIT
#: The OpenLineage name of a bucket's root (an aggregate of keys with no common directory).
ROOT = "/"


@dataclass(frozen=True)
class Dataset:
    """One dataset of a task's lineage: an object, a table, or an aggregate of objects under a prefix.

    :param namespace: ``s3://<bucket>``.
    :param name: the object key, the table's location under the bucket, or the aggregate's prefix.
    :param sha256: the object's content digest (its version); ``None`` for tables and aggregates.
    :param rows: rows read or written, when known.
    :param size: bytes, when known.
    :param files: how many objects this dataset stands for (1 for an object).
    :param schema: ``(column, type)`` pairs, when known without reading the data again.
    :param table: the catalog identifier of an Iceberg table (``namespace.name``).
    :param snapshot_id: the table's snapshot this task wrote or read (its version).
    """

    namespace: str
    name: str
    sha256: str | None = None
    rows: int | None = None
    size: int | None = None
    files: int = 1
    schema: tuple[tuple[str, str], ...] | None = None
    table: str | None = None
    snapshot_id: int | None = None
    #: The task deleted it (reception_cleanup): OpenLineage's lifecycle state change ``DROP``.
    dropped: bool = False

    @property
    def aggregated(self) -> bool:
        return self.table is None and (self.files != 1 or self.name == ROOT or self.name.endswith("/"))

    @property
    def version(self) -> str | None:
        """What identifies this dataset's content: the sha256 of an object, the snapshot of a table."""
        if self.snapshot_id is not None:
            return str(self.snapshot_id)
        return self.sha256


def s3_namespace(bucket: str) -> str:
    if not bucket or "/" in bucket:
        raise ValueError(f"bucket: expected a bucket name, got {bucket!r}")
    return f"s3://{bucket}"


class ObjectFacts(TypedDict, total=False):
    """What may be known of an object read or written (each optional)."""

    sha256: str | None
    rows: int | None
    size: int | None
    schema: Mapping[str, str] | None


def obj(bucket: str, key: str, **facts: Unpack[ObjectFacts]) -> Dataset:
    """The dataset of one object ``s3://bucket/key``."""
    if not key or key.startswith("/"):
        raise ValueError(f"key: expected an object key (no leading '/'), got {key!r}")
    return _dataset(s3_namespace(bucket), key, facts)


def _dataset(namespace: str, name: str, facts: ObjectFacts) -> Dataset:
    rows, size, schema = facts.get("rows"), facts.get("size"), facts.get("schema")
    return Dataset(
        namespace,
        name,
        sha256=facts.get("sha256"),
        rows=None if rows is None else int(rows),
        size=None if size is None else int(size),
        schema=None if schema is None else tuple((str(k), str(v)) for k, v in schema.items()),
    )


def table(location: str, identifier: str, *, snapshot_id: int | None, rows: int | None = None) -> Dataset:
    """The dataset of an Iceberg table at ``location`` (``s3://bucket/path``), identified in the
    catalog by ``identifier``, at ``snapshot_id``."""
    if not location.startswith("s3://") or "/" not in location[5:]:
        raise ValueError(f"table location: expected s3://<bucket>/<path>, got {location!r}")
    bucket, path = location[5:].split("/", 1)
    return Dataset(
        s3_namespace(bucket),
        path.rstrip("/"),
        rows=None if rows is None else int(rows),
        table=identifier,
        snapshot_id=None if snapshot_id is None else int(snapshot_id),
    )


def parent(name: str) -> str:
    """The directory an object key (or a prefix) is in, with its trailing ``/``; :data:`ROOT` at the top."""
    stripped = name.rstrip("/")
    return stripped.rsplit("/", 1)[0] + "/" if "/" in stripped else ROOT


def _sum(a: int | None, b: int | None) -> int | None:
    return None if a is None and b is None else (a or 0) + (b or 0)


def merge(into: Dataset | None, d: Dataset, name: str) -> Dataset:
    """``d`` added to the aggregate ``into`` named ``name`` (counts summed; no digest, no schema)."""
    if into is None:
        return Dataset(d.namespace, name, rows=d.rows, size=d.size, files=d.files)
    return replace(
        into, rows=_sum(into.rows, d.rows), size=_sum(into.size, d.size), files=into.files + d.files
    )


def shorten(groups: Mapping[tuple[str, str], Dataset], limit: int) -> dict[tuple[str, str], Dataset]:
    """Per-prefix aggregates merged into their parent directories, level by level, until at most
    ``limit`` remain (or each bucket is down to its root)."""
    # Tables are kept as they are: there are few, and each is its own dataset.
    kept = {k: d for k, d in groups.items() if d.table}
    out = {k: d for k, d in groups.items() if not d.table}
    while len(out) > limit:
        deepest = max(name.count("/") for _, name in out)
        if deepest == 0:  # every aggregate is a bucket root: as short as names get
            break
        shorter: dict[tuple[str, str], Dataset] = {}
        for (ns, name), d in out.items():
            up = parent(name) if name.count("/") == deepest else name
            shorter[(ns, up)] = merge(shorter.get((ns, up)), d, up)
        out = shorter
    return {**out, **kept}


class Side:
    """The datasets of one side (inputs or outputs) of a task: exact up to ``limit``, then aggregated.

    The same dataset declared twice counts once while exact (the later declaration wins); once
    aggregated, a repeat is counted again (the aggregates are sums over declarations).
    """

    def __init__(self, limit: int = LIMIT) -> None:
        self.limit = limit
        self.exact: dict[tuple[str, str], Dataset] = {}
        self.groups: dict[tuple[str, str], Dataset] = {}
        self.declared = 0
        #: The first dataset declared (what a task's extra links point at).
        self.first: Dataset | None = None

    def add(self, d: Dataset) -> None:
        self.declared += 1
        if self.first is None:
            self.first = d
        ident = (d.namespace, d.name)
        if not self.groups and (ident in self.exact or len(self.exact) < self.limit):
            if ident in self.exact:
                self.declared -= 1  # a repeat while exact is no new declaration
            self.exact[ident] = d
            return
        if self.exact:
            # Over the limit: from now on, aggregates only (what is exact so far is folded in).
            for kept in self.exact.values():
                self._group(kept)
            self.exact = {}
        self._group(d)

    def _group(self, d: Dataset) -> None:
        # A table is never folded into a prefix (see shorten).
        key = (d.namespace, d.name) if d.table else (d.namespace, parent(d.name))
        self.groups[key] = d if d.table else merge(self.groups.get(key), d, key[1])
        if len(self.groups) > MAX_GROUPS:
            self.groups = shorten(self.groups, self.limit)

    def datasets(self) -> list[Dataset]:
        """What the event lists: the exact datasets, or at most ``limit`` aggregates (sorted)."""
        chosen = self.exact if self.exact else shorten(self.groups, self.limit)
        return [chosen[k] for k in sorted(chosen)]

    @property
    def aggregated(self) -> bool:
        return bool(self.groups)


class Touched:
    """The inputs and outputs a task declared, each side bounded (see :class:`Side`)."""

    def __init__(self, limit: int = LIMIT) -> None:
        self.inputs = Side(limit)
        self.outputs = Side(limit)

    def read(self, d: Dataset) -> None:
        self.inputs.add(d)

    def wrote(self, d: Dataset) -> None:
        self.outputs.add(d)

    def extend(self, inputs: Iterable[Dataset], outputs: Iterable[Dataset]) -> None:
        for d in inputs:
            self.read(d)
        for d in outputs:
            self.wrote(d)


# -------------------------------------------------------------------------------------------------
# the records of the processing half, as datasets
# -------------------------------------------------------------------------------------------------


def file_entry(bucket: str, entry: Mapping[str, Any]) -> Dataset:
    """A manifest or inventory file entry (``key``, ``sha256``, ``rows``, ``bytes``) in ``bucket``."""
    return obj(
        bucket,
        str(entry["key"]),
        sha256=entry.get("sha256"),
        rows=entry.get("rows"),
        size=entry.get("bytes"),
    )


def curated_version(made: Any, project_prefix: str, dataset: str) -> tuple[list[Dataset], list[Dataset]]:
    """A curated version's lineage (:class:`trilha.domain.manifest.CuratedRecord`): its staged parts
    in; its tables (Iceberg: each at its snapshot, named by its location; v0001-style: its Parquet
    files) and its manifest out."""
    ins = [
        obj(str(i["bucket"]), str(i["key"]), sha256=i.get("sha256"), rows=i.get("rows")) for i in made.inputs
    ]
    outs = [
        table(
            table_location(made.bucket, project_prefix, dataset, name),
            str(t["identifier"]),
            snapshot_id=t.get("snapshot_id"),
            rows=t.get("rows"),
        )
        for name, t in sorted((made.tables or {}).items())
    ]
    outs += [file_entry(made.bucket, f) for _, f in sorted((made.files or {}).items())]
    outs.append(obj(made.bucket, made.manifest_key, sha256=made.manifest_sha256))
    return ins, outs


def source_file(kind: str, ref: str, *, sha256: str | None, size: int | None) -> Dataset:
    """A captured source file: a local file (OpenLineage's ``file`` namespace, its absolute path) or a
    Google Drive file (``gdrive`` namespace, its file id: Drive has no OpenLineage naming of its own)."""
    namespace = "file" if kind == "local" else kind
    return Dataset(namespace, ref, sha256=sha256, size=None if size is None else int(size))


def staged(row: Any) -> tuple[list[Dataset], list[Dataset]]:
    """A ``staging_inventory`` row (:class:`trilha.domain.staging.StagingRow`): the stored raw file in,
    its staged Parquet (rows ok, with its schema) and its quarantine file (rows rejected) out. A
    refused file was read and wrote nothing."""
    rows_in = row.rows_in if row.output_key else None  # a refused file's rows are not counted
    ins = [obj(row.source_bucket, row.source_key, sha256=row.source_sha256, rows=rows_in)]
    outs = []
    if row.output_bucket and row.output_key:
        outs.append(
            obj(
                row.output_bucket,
                row.output_key,
                sha256=row.output_sha256,
                rows=row.rows_ok,
                schema=row.schema,
            )
        )
        if row.quarantine_key:
            outs.append(
                obj(
                    row.output_bucket,
                    row.quarantine_key,
                    sha256=row.quarantine_sha256,
                    rows=row.rows_rejected,
                )
            )
    return ins, outs


def dataset_cut(
    cur: Mapping[str, Any], source: Mapping[str, Any], table_name: str, cut: Any
) -> tuple[list[Dataset], list[Dataset]]:
    """A dataset version (:class:`trilha.domain.manifest.DatasetRecord`) cut from curated version
    ``cur``'s table ``table_name`` (``source``: its entry in the version's ``tables`` or ``files``):
    that table in (an Iceberg table at its snapshot, named by its location, or a v0001 Parquet file),
    the split files and the manifest out."""
    if "snapshot_id" in source:
        ins = [
            table(
                table_location(
                    str(cur["bucket"]), str(cur["project_prefix"]), str(cur["dataset"]), table_name
                ),
                str(source["identifier"]),
                snapshot_id=source["snapshot_id"],
                rows=source.get("rows"),
            )
        ]
    else:
        ins = [file_entry(str(cur["bucket"]), source)]
    outs = [file_entry(cut.bucket, f) for _, f in sorted(cut.files.items())]
    outs.append(obj(cut.bucket, cut.manifest_key, sha256=cut.manifest_sha256))
    return ins, outs


def located(path: str, **facts: Unpack[ObjectFacts]) -> Dataset:
    """The dataset of a file named by its URI: ``s3://bucket/key``; ``file:///path`` (a local warehouse,
    as the unit tests use) in OpenLineage's ``file`` namespace; any other ``scheme://authority/path``
    as ``scheme://authority`` and ``path`` (the OpenLineage convention for remote file systems)."""
    scheme, sep, rest = path.partition("://")
    if not sep or not scheme:
        raise ValueError(f"file location: expected a URI such as s3://<bucket>/<key>, got {path!r}")
    if scheme == "file":
        return _dataset("file", rest, facts)
    authority, _, name = rest.partition("/")
    return _dataset(f"{scheme}://{authority}", name or ROOT, facts)


def data_files(documents: Iterable[Mapping[str, Any]]) -> list[Dataset]:
    """Iceberg data files a curated write task wrote (uncommitted: the commit names them), each with
    its record count and size."""
    return [
        located(str(doc["file_path"]), rows=doc.get("record_count"), size=doc.get("file_size_in_bytes"))
        for doc in documents
    ]
