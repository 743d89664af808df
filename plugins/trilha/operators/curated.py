"""The curated operator: each dataset's staged parts become a new curated version when its inputs changed.

A version is one snapshot of each of the dataset's Apache Iceberg tables (``hourly``, ``daily``,
``station_years``, ``stations``; or ``data``), committed through :class:`~trilha.hooks.iceberg.IcebergHook`,
then a ``manifest.json``, then its inventory row, all in one audit transaction that holds the
dataset's version lock. The row is the publication point: readers (dataset_split, trace) go
through its snapshot ids. :mod:`trilha.domain.tables` plans which partitions (UTC years) a run
rewrites, and from which staged parts; :mod:`trilha.domain.curate` computes each of them. The staged
parts are read through :class:`~trilha.hooks.minio.MinioHook`, each checked against its sha256.
pandas/pyarrow/pyiceberg are imported inside ``execute`` only.

The optional Snowflake load is not wired for Iceberg versions yet (``snowflake_conn_id`` is kept so
the DAG and its Params do not change): see docs/operations.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

from trilha import config
from trilha.assets import CURATED, STAGED
from trilha.domain import events, lineage, manifest, tables
from trilha.domain.keys import join_key
from trilha.exceptions import IntegrityError, ObjectMissingError
from trilha.hooks import include
from trilha.operators.base import Counters, TrilhaBaseOperator, parallel

if TYPE_CHECKING:
    import pyarrow as pa
    from airflow.sdk import Context

    from trilha.hooks.iceberg import IcebergHook


class _Unusable(Exception):
    """A staged part cannot be used (already a failed item): no version is made."""


class CuratedOperator(TrilhaBaseOperator):
    """Combine each dataset's staged parts into a new curated version when its inputs changed.

    INMET hourly data becomes one conformed table (one row per station and UTC hour, deduplicated),
    a daily aggregate per station, the stations of each year and the station table, as Iceberg
    tables partitioned by year: a run rewrites only the years its new or removed inputs touch. The
    version's ``manifest.json`` lists the exact staged inputs (key + sha256) and each table's
    snapshot. The same inputs never make a second version.

    In a run triggered by ``trilha_staged`` events (and no ``project`` or ``dataset``), only the
    projects and datasets the events name are considered.

    :param project: only this project (templated; empty = all).
    :param dataset: only this dataset (templated; empty = all).
    :param snowflake_conn_id: kept for the DAG's Params; the Snowflake load of Iceberg versions is not
        wired yet (templated).
    :param workers: staged parts downloaded, checked against their sha256 and decoded at once.
    """

    consumes = STAGED

    template_fields: Sequence[str] = (
        *TrilhaBaseOperator.template_fields,
        "project",
        "dataset",
        "curated_bucket",
        "snowflake_conn_id",
    )

    def __init__(
        self,
        *,
        project: str = "",
        dataset: str = "",
        curated_bucket: str = config.DEFAULT_BUCKETS["bucket_curated"],
        snowflake_conn_id: str = config.SNOWFLAKE_CONN_ID,
        workers: int = 2,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.project = project
        self.dataset = dataset
        self.curated_bucket = curated_bucket
        self.snowflake_conn_id = snowflake_conn_id
        self.workers = workers

    @cached_property
    def iceberg(self) -> IcebergHook:
        from trilha.hooks.iceberg import IcebergHook

        return IcebergHook(postgres_conn_id=self.postgres_conn_id, aws_conn_id=self.aws_conn_id)

    def run(self, context: Context, counters: Counters) -> dict[str, Any]:
        try:
            return self._run(context, counters)
        finally:
            if "iceberg" in self.__dict__:
                self.iceberg.close()

    def _run(self, context: Context, counters: Counters) -> dict[str, Any]:
        run_id = context["run_id"]
        self.minio.check_buckets([self.curated_bucket])
        explicit = "project" if self.project else "dataset" if self.dataset else ""
        scope = self.event_scope(context, explicit=explicit, items="datasets")
        targets = [
            target
            for project, datasets in events.per_project(scope, self.project or None)
            for target in self.audit.curated_targets(project, self.dataset or None, datasets)
        ]
        versions = []
        for target in targets:
            counters.add("seen")
            made = self._curate(target, run_id, counters)
            if made:
                versions.append(made)
        changed = self.audit.curated_changes(str(run_id), self.curated_bucket)
        self.announce(context, [CURATED], self.curated_bucket, changed)
        return {"versions": versions, "scope": scope.why}

    def _curate(self, target: dict[str, Any], run_id: str, counters: Counters) -> dict[str, Any] | None:
        """Make the target dataset's next version unless its inputs are unchanged; its summary."""
        pid, dataset, prefix = int(target["project_id"]), target["dataset"], target["project_prefix"]
        inputs = manifest.curated_inputs(self.audit.curated_inputs(pid, dataset))
        fp = lineage.inputs_fingerprint(inputs)
        if self._made_before(self.audit.curated_made_from(pid, dataset, fp), prefix, dataset, counters):
            return None
        try:
            made = self.audit.record_curated(
                pid,
                dataset,
                fp,
                lambda version, latest: self._write_version(
                    target, version, fp, inputs, latest, run_id, counters
                ),
            )
        except _Unusable:
            return None  # each unusable part is a failed item; nothing was committed
        if isinstance(made, str):
            # A run that started at the same time made a version from these inputs meanwhile.
            self._made_before(made, prefix, dataset, counters)
            return None
        counters.add("new")
        counters.touched(f"{self.curated_bucket}/{made.manifest_key}")
        self.log.info(
            "%s/%s: new curated version %s from %s inputs: %s",
            prefix,
            dataset,
            made.version,
            len(inputs),
            {name: (t["rows"], t["snapshot_id"]) for name, t in (made.tables or {}).items()},
        )
        return {
            "project": target["project_name"],
            "dataset": dataset,
            "version": made.version,
            "tables": len(made.tables or {}),
        }

    def _fetch(self, inp: dict[str, Any], counters: Counters) -> pa.Table:
        """One staged part's table, checked against its sha256; :class:`_Unusable` (and a failed
        item naming the part) when it cannot be used."""
        from trilha.domain.parquet import parquet_bytes_to_table

        try:
            data = self.minio.get_verified(inp["bucket"], inp["key"], inp["sha256"])
        except IntegrityError:
            why = "staged file does not match its inventory sha256"
        except ObjectMissingError:
            why = f"staged file is missing from bucket {inp['bucket']}"
        else:
            return parquet_bytes_to_table(data)
        counters.problem("failed", inp["key"], why)
        raise _Unusable(inp["key"])

    def _fetch_all(self, inputs: list[dict[str, Any]], counters: Counters) -> list[pa.Table]:
        """Parts on threads (boto3 and Arrow release the GIL), in the inputs' order, which decides
        which duplicate hour wins; every unusable part is named before :class:`_Unusable` is raised."""
        fetched = parallel(lambda inp: self._fetch(inp, counters), inputs, self.workers)
        for outcome in fetched:
            if isinstance(outcome, BaseException) and not isinstance(outcome, _Unusable):
                raise outcome
        if any(isinstance(o, BaseException) for o in fetched):
            raise _Unusable("staged parts")
        return [o for o in fetched if not isinstance(o, BaseException)]

    def _years(
        self,
        dataset: str,
        inputs: list[dict[str, Any]],
        published: list[dict[str, Any]] | None,
        counters: Counters,
    ) -> list[dict[str, Any]]:
        """The inputs with the UTC years each has rows in: known from the published version, or read
        (and checked against their sha256) for the parts new since, a few at a time."""
        from trilha.domain.curate import part_years

        read: dict[tuple[str, str], list[int]] = {}
        new = tables.new_parts(inputs, published)
        for start in range(0, len(new), max(1, self.workers)):
            batch = [dict(i) for i in new[start : start + max(1, self.workers)]]
            for inp, part in zip(batch, self._fetch_all(batch, counters), strict=True):
                try:
                    years = part_years(part, inp["key"]) if dataset == "inmet_hourly" else []
                except ValueError as err:
                    counters.problem("failed", inp["key"], str(err))
                    raise _Unusable(inp["key"]) from None
                read[tables.input_id(inp)] = years
        return tables.with_years(inputs, published, read)

    def _write_version(
        self,
        target: dict[str, Any],
        version: str,
        fp: str,
        inputs: list[dict[str, Any]],
        latest: dict[str, Any] | None,
        run_id: str,
        counters: Counters,
    ) -> manifest.CuratedRecord:
        """Commit one snapshot of each of the version's tables, then write its manifest; return its
        inventory record (inserted by the caller: the publication point).

        Runs inside :meth:`~trilha.hooks.audit.AuditHook.record_curated`'s transaction, under the
        dataset's version lock."""
        prefix, dataset = target["project_prefix"], target["dataset"]
        iceberg = latest is not None and latest["table_format"] == tables.FORMAT_ICEBERG
        published = latest["inputs"] if iceberg and latest else None
        with_years = self._years(dataset, inputs, published, counters)
        writer = _TableWriter(self, target, latest if iceberg else None, counters)
        made = writer.write(version, fp, with_years, published, run_id)
        base = lineage.curated_prefix(prefix, dataset, version)
        document = manifest.curated_manifest(
            project=target["project_name"],
            project_prefix=prefix,
            dataset=dataset,
            version=version,
            created_at=datetime.now(UTC).isoformat(),
            run_id=run_id,
            code_version=include.code_version(),
            inputs_fingerprint=fp,
            inputs=with_years,
            files={},
            tables=made.tables,
        )
        manifest_key = join_key(base, lineage.MANIFEST)
        m_digest = self.minio.put_bytes(
            self.curated_bucket,
            manifest_key,
            lineage.manifest_bytes(document),
            content_type="application/json",
        )
        return manifest.CuratedRecord(
            project_id=int(target["project_id"]),
            dataset=dataset,
            version=version,
            fingerprint=fp,
            inputs=with_years,
            files={},
            bucket=self.curated_bucket,
            prefix=base,
            manifest_key=manifest_key,
            manifest_sha256=m_digest.sha256,
            run_id=run_id,
            table_format=tables.FORMAT_ICEBERG,
            tables=made.tables,
            objects=made.objects,
        )

    def _made_before(self, version: str | None, prefix: str, dataset: str, counters: Counters) -> bool:
        """Whether a version from these very inputs exists (``version``: its name, or ``None``)."""
        if version is None:
            return False
        self.log.info("%s/%s: inputs unchanged since %s; no new version", prefix, dataset, version)
        counters.add("skipped")
        return True


@dataclass(frozen=True)
class _Made:
    """What a version's commits made: each table's snapshot, and every object written."""

    tables: dict[str, dict[str, Any]]
    objects: list[dict[str, Any]]


class _TableWriter:
    """One curated run's writes to a dataset's Iceberg tables: plan (domain/tables), recompute each
    rewritten partition from its contributing parts (domain/curate), write its data files, then
    commit one snapshot per table (hooks/iceberg) in :func:`trilha.domain.tables.table_names` order.

    :param latest: the dataset's latest version when it is an Iceberg one (what this run builds on).
    """

    def __init__(
        self,
        op: CuratedOperator,
        target: dict[str, Any],
        latest: dict[str, Any] | None,
        counters: Counters,
    ) -> None:
        self.op, self.target, self.latest, self.counters = op, target, latest, counters
        self.prefix, self.dataset = str(target["project_prefix"]), str(target["dataset"])
        self.hook = op.iceberg
        self.names = tables.table_names(self.dataset)

    def _ident(self, name: str) -> tuple[str, str]:
        return tables.identifier(self.prefix, self.dataset, name)

    def _listing(self) -> list[tuple[str, int, str]]:
        bucket = self.op.curated_bucket
        found = []
        for name in self.names:
            under = tables.table_prefix(self.prefix, self.dataset, name) + "/"
            found += [(o.key, o.size, o.etag) for o in self.op.minio.iter_objects(bucket, under)]
        return found

    def _unpublished(self, opened: dict[str, Any]) -> set[int] | None:
        """Years rewritten by commits after the published snapshots (a run that died before its
        inventory row); ``None``: a table must be rewritten whole."""
        published = (self.latest or {}).get("tables") or {}
        years: set[int] = set()
        for name, table in opened.items():
            recorded = published.get(name, {}).get("snapshot_id")
            summaries = self.hook.unpublished(table, None if recorded is None else int(recorded))
            if summaries is None or (recorded is None and self.latest is not None):
                return None
            got = tables.unpublished_partitions(summaries)
            if got is None:
                return None
            years |= got
        return years

    def write(
        self,
        version: str,
        fp: str,
        inputs: list[dict[str, Any]],
        published: list[dict[str, Any]] | None,
        run_id: str,
    ) -> _Made:
        from trilha.domain.curate import curate_generic, curate_inmet_hourly_year, stations_from_years

        hourly = self.dataset == "inmet_hourly"
        schemas = self._empty_schemas() if hourly else {}
        claimed: set[str] = set((self.latest or {}).get("claimed") or ())
        self._settle_leftovers(claimed)
        opened: dict[str, Any] = {}
        for name, schema in schemas.items():
            location = self.hook.location(self.op.curated_bucket, self.prefix, self.dataset, name)
            opened[name] = self.hook.open_or_create(self._ident(name), name, schema, location)
        plan = tables.plan_run(
            inputs,
            published,
            partitioned=hourly,
            unpublished_years=self._unpublished(opened) if hourly else (),
        )
        props = tables.snapshot_properties(
            version=version, run_id=run_id, fingerprint=fp, inputs_count=len(inputs), plan=plan
        )
        rewritten = None if plan.full else plan.rewritten
        made: dict[str, dict[str, Any]] = {}
        if hourly:
            files: dict[str, list[Any]] = {name: [] for name in ("hourly", "daily", "station_years")}
            for year in plan.rewritten:
                contributors = [inputs[i] for i in plan.contributors.get(year, ())]
                parts = self.op._fetch_all(contributors, self.counters)
                for name, table in curate_inmet_hourly_year(parts, year).items():
                    files[name] += self.hook.write_files(opened[name], table)
                del parts
            for name, added in files.items():
                made[name] = self._commit(name, opened[name], added, rewritten, props, plan)
            station_years = self.hook.read(self._ident("station_years"), made["station_years"]["snapshot_id"])
            stations = stations_from_years(station_years)
            added = self.hook.write_files(opened["stations"], stations)
            made["stations"] = self._commit("stations", opened["stations"], added, None, props, plan)
        else:
            data = curate_generic(self.op._fetch_all(list(inputs), self.counters))
            location = self.hook.location(self.op.curated_bucket, self.prefix, self.dataset, "data")
            table = self.hook.open_or_create(self._ident("data"), "data", data.schema, location)
            made["data"] = self._commit("data", table, self.hook.write_files(table, data), None, props, plan)
        objects = tables.written_objects(claimed, self._listing())
        for obj in objects:
            self.counters.add("bytes", obj["bytes"])
        return _Made(tables=made, objects=objects)

    def _settle_leftovers(self, claimed: set[str]) -> None:
        """Objects under the tables' prefixes that no version claims are what a run that died wrote:
        the ones the tables' metadata references (its commits, now history) are claimed by this
        version (:func:`trilha.domain.tables.written_objects`); data files it wrote and never
        committed are deleted, so no orphan remains (under the version lock: no run writes them)."""
        listed = [key for key, _, _ in self._listing()]
        if all(key in claimed for key in listed):
            return
        bucket = self.op.curated_bucket
        referenced: set[str] = set()
        for name in self.names:
            if self.hook.exists(self._ident(name)):
                located = self.hook.referenced(self.hook.load(self._ident(name)))
                referenced |= {p.split("/", 3)[3] for p in located if p.startswith(f"s3://{bucket}/")}
        history, orphans = tables.leftovers(claimed, listed, referenced)
        if orphans:
            self.op.minio.delete_keys(bucket, orphans)
        self.op.log.warning(
            "%s/%s: a run that died left %s committed file(s) (claimed by this version) and %s "
            "never-committed file(s) (deleted)",
            self.prefix,
            self.dataset,
            len(history),
            len(orphans),
        )

    @staticmethod
    def _empty_schemas() -> dict[str, pa.Schema]:
        from trilha.domain.curate import curate_inmet_hourly_year, stations_from_years

        empty = curate_inmet_hourly_year([], 1970)
        return {
            "hourly": empty["hourly"].schema,
            "daily": empty["daily"].schema,
            "station_years": empty["station_years"].schema,
            "stations": stations_from_years(empty["station_years"]).schema,
        }

    def _commit(
        self,
        name: str,
        table: Any,
        added: list[Any],
        rewritten: tuple[int, ...] | None,
        props: dict[str, str],
        plan: tables.Plan,
    ) -> dict[str, Any]:
        commit = self.hook.commit(table, added, rewritten, props)
        self.op.log.info(
            "%s/%s %s: snapshot %s, %s rows, partitions rewritten %s (%s files in, %s out)",
            self.prefix,
            self.dataset,
            name,
            commit.snapshot_id,
            commit.rows,
            "all" if rewritten is None else list(rewritten),
            commit.files_added,
            commit.files_removed,
        )
        return {
            "identifier": ".".join(self._ident(name)),
            "snapshot_id": commit.snapshot_id,
            "metadata_location": commit.metadata_location,
            "rows": commit.rows,
            "partitions_rewritten": tables.ALL_PARTITIONS if rewritten is None else list(rewritten),
            "files_added": commit.files_added,
            "files_removed": commit.files_removed,
        }
