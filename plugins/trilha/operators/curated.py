"""The curated operators: each dataset's staged parts become a new curated version when its inputs changed.

A version is one snapshot of each of the dataset's Apache Iceberg tables (``hourly``, ``daily``,
``station_years``, ``stations``; or ``data``), committed through :class:`~trilha.hooks.iceberg.IcebergHook`,
then a ``manifest.json``, then its inventory row, all in one audit transaction that holds the
dataset's version lock. The row is the publication point: readers (dataset_split, trace) go
through its snapshot ids.

The work is in three steps, each an operator, so that the DAG spreads the heavy one over workers:

* :class:`CuratedPlanOperator` (``plan``): which datasets changed; reads the staged parts new since
  the published version (their UTC years and stations), widens the tables' schemas, and cuts the
  years to rewrite into :class:`~trilha.domain.tables.Unit` shards of at most ``batch_size`` parts
  (:func:`trilha.domain.tables.plan_units`). Returns ``{"targets", "units"}``.
* :class:`CuratedWriteOperator` (``write``, one mapped task per unit): reads its parts (each checked
  against its sha256), computes its shard (:mod:`trilha.domain.curate`) and writes its data files,
  uncommitted. Returns the data files.
* :class:`CuratedCommitOperator` (``commit``): per dataset, under the version lock, checks that
  nothing changed since the plan (else the run's files are deleted and it exits cleanly: the next run
  makes the version), claims or deletes what a dead run left, commits the tables' snapshots, writes
  the manifest and publishes the row. The only serialised step.

:class:`CuratedOperator` runs the three in one task (tests, benchmarks, a DAG of one's own).
pandas/pyarrow/pyiceberg are imported inside ``execute`` only.

The optional Snowflake load is not wired for Iceberg versions yet (``snowflake_conn_id`` is kept so
the DAG and its Params do not change): see docs/operations.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException

from trilha import config
from trilha.assets import CURATED, STAGED
from trilha.domain import events, lineage, manifest, tables
from trilha.domain.keys import join_key
from trilha.domain.touched import curated_version as curated_lineage
from trilha.domain.touched import data_files as data_file_lineage
from trilha.exceptions import IntegrityError, ObjectMissingError
from trilha.hooks import include
from trilha.operators.base import Counters, TaskRecord, TrilhaBaseOperator, parallel

if TYPE_CHECKING:
    import pyarrow as pa
    from airflow.sdk import Context

    from trilha.hooks.iceberg import IcebergHook

#: Staged parts per mapped write task (within one year), by default: ~64 station-years, ~560 k rows.
BATCH_SIZE = 64
#: The daily completeness rule by default (the DAG's ``min_hours_for_daily``).
MIN_HOURS_FOR_DAILY = tables.MIN_HOURS_FOR_DAILY
#: Years or stations per staged part (key, sha256), as the plan read them.
_Read = dict[tuple[str, str], list[Any]]
#: The tables a mapped write of ``inmet_hourly`` writes (``stations`` is built at the commit).
WRITTEN_INMET_TABLES: tuple[str, ...] = ("hourly", "daily", "daily_utc", "station_years")


class _Unusable(Exception):
    """A staged part cannot be used (already a failed item): no version is made."""


class _Superseded(Exception):
    """The dataset changed between the plan and the commit; the message says how."""


class _CuratedBase(TrilhaBaseOperator):
    """What the curated operators share: the curated bucket, the Iceberg hook, reading staged parts.

    :param workers: staged parts downloaded, checked against their sha256 and decoded at once.
    """

    consumes = STAGED

    template_fields: Sequence[str] = (*TrilhaBaseOperator.template_fields, "curated_bucket")

    def __init__(
        self,
        *,
        curated_bucket: str = config.DEFAULT_BUCKETS["bucket_curated"],
        workers: int = 2,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.curated_bucket = curated_bucket
        self.workers = workers

    @cached_property
    def iceberg(self) -> IcebergHook:
        from trilha.hooks.iceberg import IcebergHook

        return IcebergHook(postgres_conn_id=self.postgres_conn_id, aws_conn_id=self.aws_conn_id)

    def run(self, context: Context, counters: Counters) -> dict[str, Any]:
        try:
            self.minio.check_buckets([self.curated_bucket])
            return self.curate(context, counters)
        finally:
            if "iceberg" in self.__dict__:
                self.iceberg.close()

    def curate(self, context: Context, counters: Counters) -> dict[str, Any]:
        raise NotImplementedError

    def ident(self, target: Mapping[str, Any], name: str) -> tuple[str, str]:
        return tables.identifier(str(target["project_prefix"]), str(target["dataset"]), name)

    def fetch(self, inp: Mapping[str, Any], counters: Counters) -> pa.Table:
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
            counters.read(
                inp["bucket"], inp["key"], sha256=inp["sha256"], rows=inp.get("rows"), size=len(data)
            )
            return parquet_bytes_to_table(data)
        counters.problem("failed", inp["key"], why)
        raise _Unusable(inp["key"])

    def fetch_all(self, inputs: Sequence[Mapping[str, Any]], counters: Counters) -> list[pa.Table]:
        """Parts on threads (boto3 and Arrow release the GIL), in the inputs' order, which decides
        which duplicate hour wins; every unusable part is named before :class:`_Unusable` is raised."""
        fetched = parallel(lambda inp: self.fetch(inp, counters), inputs, self.workers)
        for outcome in fetched:
            if isinstance(outcome, BaseException) and not isinstance(outcome, _Unusable):
                raise outcome
        if any(isinstance(o, BaseException) for o in fetched):
            raise _Unusable("staged parts")
        return [o for o in fetched if not isinstance(o, BaseException)]

    def delete_files(self, paths: Iterable[str]) -> int:
        """Delete data files this run wrote and will not commit (``s3://bucket/key`` each)."""
        keys = [p.split("/", 3)[3] for p in paths if p.startswith(f"s3://{self.curated_bucket}/")]
        if keys:
            self.minio.delete_keys(self.curated_bucket, keys)
        return len(keys)


# --------------------------------------------------------------------------------------------------
# plan
# --------------------------------------------------------------------------------------------------


class CuratedPlanOperator(_CuratedBase):
    """Plan a curated run: for each dataset whose staged inputs changed, the shards of the years to
    rewrite, for the mapped ``write`` tasks. Writes no data file (it creates a missing table and adds
    new columns to a table's schema, so that the writers all write one schema).

    Returns the units (``[{"unit": {...}}, ...]``: what ``write`` maps over) and pushes the
    datasets' plans as the XCom ``targets`` (what ``commit`` reads).

    In a run triggered by ``trilha_staged`` events (and no ``project`` or ``dataset``), only the
    projects and datasets the events name are considered.

    :param project: only this project (templated; empty = all).
    :param dataset: only this dataset (templated; empty = all).
    :param batch_size: staged parts per mapped write task, within one year (templated).
    :param min_hours_for_daily: the daily tables' completeness rule: a day's sum, mean or extreme
        from fewer valid hours is null (templated). A change of it rewrites the tables whole.
    """

    template_fields: Sequence[str] = (
        *_CuratedBase.template_fields,
        "project",
        "dataset",
        "batch_size",
        "min_hours_for_daily",
    )

    def __init__(
        self,
        *,
        project: str = "",
        dataset: str = "",
        batch_size: int | str = BATCH_SIZE,
        min_hours_for_daily: int | str = MIN_HOURS_FOR_DAILY,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.project = project
        self.dataset = dataset
        self.batch_size = batch_size
        self.min_hours_for_daily = min_hours_for_daily
        self.planned: dict[str, list[dict[str, Any]]] = {"targets": [], "units": []}

    def size(self) -> int:
        size = _whole(self.batch_size, "batch_size: expected a whole number of staged parts")
        if size < 1:
            raise AirflowFailException(f"batch_size: expected 1 or more staged parts per task, got {size}")
        return size

    def min_hours(self) -> int:
        """``min_hours_for_daily`` as a whole number of hours from 1 to 24."""
        hours = _whole(self.min_hours_for_daily, "min_hours_for_daily: expected a whole number of hours")
        try:
            tables.logic("inmet_hourly", hours)
        except tables.PlanError as err:
            raise AirflowFailException(str(err)) from None
        return hours

    def curate(self, context: Context, counters: Counters) -> dict[str, Any]:
        size = self.size()
        min_hours = self.min_hours()
        explicit = "project" if self.project else "dataset" if self.dataset else ""
        scope = self.event_scope(context, explicit=explicit, items="datasets")
        targets = [
            target
            for project, datasets in events.per_project(scope, self.project or None)
            for target in self.audit.curated_targets(project, self.dataset or None, datasets)
        ]
        self.planned = {"targets": [], "units": []}
        for target in targets:
            counters.add("seen")
            try:
                planned = _Planner(self, target, counters).plan(size, min_hours)
            except _Unusable:
                continue  # each unusable part is a failed item; the dataset gets no version
            if planned is None:
                counters.add("skipped")
                continue
            doc, units = planned
            self.planned["targets"].append(doc)
            self.planned["units"] += [{"unit": u} for u in units]
        ti = context["ti"]
        if hasattr(ti, "xcom_push"):
            ti.xcom_push(key="targets", value=self.planned["targets"])
        self.log.info(
            "%s dataset(s) to curate in %s write task(s) of <= %s part(s) (%s)",
            len(self.planned["targets"]),
            len(self.planned["units"]),
            size,
            scope.why,
        )
        return {
            "datasets": len(self.planned["targets"]),
            "units": len(self.planned["units"]),
            "scope": scope.why,
        }

    def returned(self, record: TaskRecord) -> list[dict[str, Any]]:
        return self.planned["units"]


def _whole(value: Any, expected: str) -> int:
    """A templated Param as an int; a task failure saying what was ``expected`` when it is not one."""
    try:
        return int(value)
    except (TypeError, ValueError):
        raise AirflowFailException(f"{expected}, got {value!r}") from None


class _Planner:
    """One dataset's plan (see :class:`CuratedPlanOperator`)."""

    def __init__(self, op: _CuratedBase, target: Mapping[str, Any], counters: Counters) -> None:
        self.op, self.target, self.counters = op, target, counters
        self.pid, self.dataset = int(target["project_id"]), str(target["dataset"])
        self.prefix = str(target["project_prefix"])
        self.hourly = self.dataset == "inmet_hourly"

    def plan(
        self, batch_size: int, min_hours: int = MIN_HOURS_FOR_DAILY
    ) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
        """The target document (for the commit) and the unit documents; ``None``: the inputs (and
        the curated logic) are unchanged since a version (nothing to do)."""
        op = self.op
        inputs = manifest.curated_inputs(op.audit.curated_inputs(self.pid, self.dataset))
        logic = tables.logic(self.dataset, min_hours)
        fp = tables.run_fingerprint(inputs, logic)
        made = op.audit.curated_made_from(self.pid, self.dataset, fp)
        if made is not None:
            op.log.info("%s/%s: inputs unchanged since %s; no new version", self.prefix, self.dataset, made)
            return None
        latest = op.audit.curated_latest(self.pid, self.dataset)
        published = tables.published_inputs(latest, logic)
        read, stations, schemas = self._read_new(inputs, published)
        with_years = tables.with_years(inputs, published, read, stations)
        opened = self._open(schemas)
        unpublished = _unpublished(op.iceberg, opened, latest) if self.hourly else ()
        plan = tables.plan_run(with_years, published, partitioned=self.hourly, unpublished_years=unpublished)
        replace: dict[str, dict[str, list[str]]] = {}
        if self.hourly:
            narrowed, replace = self._narrow(with_years, published, plan, opened)
            units = tables.plan_units(with_years, plan, batch_size, narrowed)
        else:
            units = [tables.Unit(year=None, shard=0, parts=tuple(range(len(with_years))))]
        key = _target_key(self.target, fp)
        doc = {
            **key,
            "project_name": self.target["project_name"],
            "basis": None if latest is None else latest["version"],
            "logic": logic,
            "min_hours": min_hours,
            "full": plan.full,
            "rewritten": list(plan.rewritten),
            "replace": replace,
            "units": len(units),
            "read": [[k, s, list(read[(k, s)]), list(stations.get((k, s), ()))] for k, s in sorted(read)],
        }
        unit_docs = [
            {
                "target": key,
                "min_hours": min_hours,
                "year": u.year,
                "shard": u.shard,
                "parts": [
                    {
                        "bucket": with_years[i]["bucket"],
                        "key": with_years[i]["key"],
                        "sha256": with_years[i]["sha256"],
                    }
                    for i in u.parts
                ],
            }
            for u in units
        ]
        op.log.info(
            "%s/%s: %s inputs (%s new); years rewritten: %s; %s write task(s)",
            self.prefix,
            self.dataset,
            len(inputs),
            len(read),
            "all" if plan.full else list(plan.rewritten),
            len(units),
        )
        return doc, unit_docs

    def _narrow(
        self,
        inputs: list[dict[str, Any]],
        published: list[dict[str, Any]] | None,
        plan: tables.Plan,
        opened: Mapping[str, Any],
    ) -> tuple[dict[int, tables.Narrowed], dict[str, dict[str, list[str]]]]:
        """The years rewritten only in part (:func:`trilha.domain.tables.narrow`), and the data files
        each table replaces in them (``{table: {year: [path, ...]}}``: what the commit deletes)."""
        if plan.full:
            return {}, {}
        files = [f for name in WRITTEN_INMET_TABLES for f in self.op.iceberg.live_files(name, opened[name])]
        narrowed = tables.narrow(inputs, published, plan, files)
        table_of = {f.path: f.table for f in files}
        replace: dict[str, dict[str, list[str]]] = {name: {} for name in WRITTEN_INMET_TABLES}
        for year, how in narrowed.items():
            for name in WRITTEN_INMET_TABLES:
                replace[name][str(year)] = [p for p in how.replaced if table_of[p] == name]
            self.op.log.info(
                "%s/%s %s: %s of %s part(s) recomputed, %s of %s data file(s) replaced (the other "
                "stations' files are kept)",
                self.prefix,
                self.dataset,
                year,
                len(how.parts),
                len(plan.contributors.get(year, ())),
                len(how.replaced),
                sum(1 for f in files if f.year == year),
            )
        return narrowed, replace

    def _read_new(
        self, inputs: list[dict[str, Any]], published: list[dict[str, Any]] | None
    ) -> tuple[
        dict[tuple[str, str], list[int]], dict[tuple[str, str], list[str]], dict[str, list[pa.Schema]]
    ]:
        """The parts new since the published version, read a few at a time (each checked against its
        sha256): the UTC years and stations each has rows of, and per table the curated schemas they
        make (what the tables must hold before the writers run)."""
        from trilha.domain.curate import curate_generic, curate_inmet_hourly_year, part_stations, part_years

        read: dict[tuple[str, str], list[int]] = {}
        stations: dict[tuple[str, str], list[str]] = {}
        schemas: dict[str, list[pa.Schema]] = {}
        new = tables.new_parts(inputs, published)
        step = max(1, self.op.workers)
        for start in range(0, len(new), step):
            batch = [dict(i) for i in new[start : start + step]]
            parts = self.op.fetch_all(batch, self.counters)
            for inp, part in zip(batch, parts, strict=True):
                ident = tables.input_id(inp)
                try:
                    read[ident] = part_years(part, inp["key"]) if self.hourly else []
                except ValueError as err:
                    self.counters.problem("failed", inp["key"], str(err))
                    raise _Unusable(inp["key"]) from None
                stations[ident] = part_stations(part) if self.hourly else []
            empty = [p.slice(0, 0) for p in parts]
            made = curate_inmet_hourly_year(empty, 1970) if self.hourly else {"data": curate_generic(empty)}
            for name, table in made.items():
                schemas.setdefault(name, []).append(table.schema)
            del parts, empty
        return read, stations, schemas

    def _open(self, schemas: dict[str, list[pa.Schema]]) -> dict[str, Any]:
        """The dataset's tables, created when missing and widened to every new column, so that the
        mapped writers (which cannot change a schema) all write the schema the commit finds."""
        from trilha.domain.curate import curate_inmet_hourly_year, stations_from_years

        hook, bucket = self.op.iceberg, self.op.curated_bucket
        if self.hourly:
            empty = curate_inmet_hourly_year([], 1970)
            base = {**empty, "stations": stations_from_years(empty["station_years"])}
        elif schemas.get("data"):
            base = {"data": schemas["data"][0].empty_table()}
        else:  # no new part: the table exists (its inputs are in a published Iceberg version)
            return {"data": hook.load(self.ident("data"))}
        opened: dict[str, Any] = {}
        for name in tables.table_names(self.dataset):
            location = hook.location(bucket, self.prefix, self.dataset, name)
            table = hook.open_or_create(self.ident(name), name, base[name].schema, location)
            for schema in schemas.get(name, ()):
                table = hook.widen(table, schema)
            opened[name] = table
        return opened

    def ident(self, name: str) -> tuple[str, str]:
        return tables.identifier(self.prefix, self.dataset, name)


def _target_key(target: Mapping[str, Any], fingerprint: str) -> dict[str, Any]:
    return {
        "project_id": int(target["project_id"]),
        "project_prefix": str(target["project_prefix"]),
        "dataset": str(target["dataset"]),
        "fingerprint": fingerprint,
    }


def _unpublished(
    hook: IcebergHook, opened: Mapping[str, Any], latest: Mapping[str, Any] | None
) -> set[int] | None:
    """Years rewritten by commits after the published snapshots (a run that died before its
    inventory row); ``None``: a table must be rewritten whole."""
    iceberg = latest is not None and latest["table_format"] == tables.FORMAT_ICEBERG
    published = (latest or {}).get("tables") or {} if iceberg else {}
    years: set[int] = set()
    for name, table in opened.items():
        recorded = published.get(name, {}).get("snapshot_id")
        summaries = hook.unpublished(table, None if recorded is None else int(recorded))
        if summaries is None or (recorded is None and iceberg):
            return None
        got = tables.unpublished_partitions(summaries)
        if got is None:
            return None
        years |= got
    return years


# --------------------------------------------------------------------------------------------------
# write
# --------------------------------------------------------------------------------------------------


class CuratedWriteOperator(_CuratedBase):
    """Write one unit of a curated run (a mapped task; see :class:`CuratedPlanOperator`): read its
    staged parts, each checked against its sha256, compute its shard of the year and write the
    shard's data files to each table, uncommitted (the commit names them, or deletes them).

    A part that cannot be used (changed or lost behind the audit's back) is a failed item naming it,
    and the task fails: the commit does not run, nothing is published, and a retry redoes this unit
    alone. Returns ``{"target", "year", "shard", "files": {table: [data file, ...]}}``.

    :param unit: the unit, as the plan returned it.
    """

    def __init__(self, *, unit: Mapping[str, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.unit = dict(unit)
        self.written: dict[str, Any] = {}

    def curate(self, context: Context, counters: Counters) -> dict[str, Any]:
        self.written = write_unit(self, self.unit, counters)
        files = self.written["files"]
        if files:
            counters.add("new")
            counters.add("bytes", sum(int(d["file_size_in_bytes"]) for docs in files.values() for d in docs))
        return {
            "dataset": self.unit["target"]["dataset"],
            "year": self.unit["year"],
            "shard": self.unit["shard"],
            "parts": len(self.unit["parts"]),
            "files": sum(len(v) for v in files.values()),
        }

    def returned(self, record: TaskRecord) -> dict[str, Any]:
        # The data files for the commit, and the counters every task's summary carries.
        return {**self.written, "counters": record.counters}


def write_unit(op: _CuratedBase, unit: Mapping[str, Any], counters: Counters) -> dict[str, Any]:
    """:class:`CuratedWriteOperator`'s work (also run in-process by :class:`CuratedOperator`)."""
    from trilha.domain.curate import curate_generic, curate_inmet_hourly_year

    target, year, shard = unit["target"], unit["year"], int(unit["shard"])
    out: dict[str, Any] = {"target": dict(target), "year": year, "shard": shard, "files": {}}
    try:
        parts = op.fetch_all(unit["parts"], counters)
    except _Unusable:
        return out  # each unusable part is a failed item: the task fails, nothing is written
    if year is None:
        made = {"data": curate_generic(parts)}
    else:
        # The contract's temporal QC rules (step, persistence) need a station's hours together.
        qc = include.load_contract(str(target["dataset"])).qc
        min_hours = int(unit.get("min_hours", MIN_HOURS_FOR_DAILY))
        made = curate_inmet_hourly_year(parts, int(year), min_hours, qc)
    del parts
    rows = 0
    for name, table in made.items():
        written = op.iceberg.write_files(
            op.iceberg.load(op.ident(target, name)), table, shard=shard, widen=False
        )
        out["files"][name] = [op.iceberg.data_file_document(f) for f in written]
        counters.lineage_of([], data_file_lineage(out["files"][name]))
        if name in ("hourly", "data"):
            rows = table.num_rows
    op.log.info(
        "%s/%s year %s shard %s: %s part(s) -> %s rows, %s data file(s)",
        target["project_prefix"],
        target["dataset"],
        "all" if year is None else year,
        shard,
        len(unit["parts"]),
        rows,
        sum(len(v) for v in out["files"].values()),
    )
    return out


# --------------------------------------------------------------------------------------------------
# commit
# --------------------------------------------------------------------------------------------------


class CuratedCommitOperator(_CuratedBase):
    """Commit and publish a curated run (see :class:`CuratedPlanOperator`): per planned dataset, under
    its version lock, one snapshot of each table from the data files the writers wrote, then the
    manifest, then the inventory row. Emits ``trilha_curated`` for what it published.

    When the dataset changed since the plan (another run published a version, or new inputs were
    staged), its data files are deleted and it is skipped, cleanly: the next run makes the version.

    :param targets: the plan's ``targets`` (templated: an XCom).
    :param written: every write task's return value (templated: the mapped tasks' XComs).
    """

    template_fields: Sequence[str] = (*_CuratedBase.template_fields, "targets", "written")

    def __init__(
        self,
        *,
        targets: Any = None,
        written: Any = None,
        snowflake_conn_id: str = config.SNOWFLAKE_CONN_ID,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.targets = targets
        self.written = written
        self.snowflake_conn_id = snowflake_conn_id

    def curate(self, context: Context, counters: Counters) -> dict[str, Any]:
        counters.add("seen", len(self.targets or ()))
        versions = commit_targets(self, self.targets, self.written, str(context["run_id"]), counters)
        changed = self.audit.curated_changes(str(context["run_id"]), self.curated_bucket)
        self.announce(context, [CURATED], self.curated_bucket, changed)
        return {"versions": versions}


def commit_targets(
    op: _CuratedBase, targets: Any, written: Any, run_id: str, counters: Counters
) -> list[dict[str, Any]]:
    """:class:`CuratedCommitOperator`'s work: the summaries of the versions it published (counts
    ``new`` and ``skipped`` datasets, and the ``bytes`` of the objects each new version claims)."""
    results = [w for w in (written or ()) if w]
    versions = []
    for target in targets or ():
        key = _target_key(target, str(target["fingerprint"]))
        mine = [w for w in results if w["target"] == key]
        if len(mine) != int(target["units"]):
            raise AirflowFailException(
                f"{target['project_prefix']}/{target['dataset']}: expected {target['units']} written "
                f"unit(s) from the write tasks, got {len(mine)}; a write task did not finish"
            )
        made = _Committer(op, target, mine, run_id, counters).commit()
        if made:
            versions.append(made)
    return versions


@dataclass(frozen=True)
class _Made:
    """What a version's commits made: each table's snapshot, and every object written."""

    tables: dict[str, dict[str, Any]]
    objects: list[dict[str, Any]]


class _Committer:
    """One dataset's commit (see :class:`CuratedCommitOperator`)."""

    def __init__(
        self,
        op: _CuratedBase,
        target: Mapping[str, Any],
        written: list[dict[str, Any]],
        run_id: str,
        counters: Counters,
    ) -> None:
        self.op, self.target, self.run_id, self.counters = op, target, run_id, counters
        self.pid, self.dataset = int(target["project_id"]), str(target["dataset"])
        self.prefix = str(target["project_prefix"])
        self.hook = op.iceberg
        self.names = tables.table_names(self.dataset)
        ordered = sorted(written, key=lambda w: (w["year"] is None, w["year"] or 0, int(w["shard"])))
        self.files: dict[str, list[Any]] = {}
        for w in ordered:
            for name, docs in w["files"].items():
                self.files.setdefault(name, []).extend(self.hook.data_file_from_document(d) for d in docs)
        self.paths = {str(f.file_path) for files in self.files.values() for f in files}

    def ident(self, name: str) -> tuple[str, str]:
        return tables.identifier(self.prefix, self.dataset, name)

    def commit(self) -> dict[str, Any] | None:
        op, where = self.op, f"{self.prefix}/{self.dataset}"
        inputs = manifest.curated_inputs(op.audit.curated_inputs(self.pid, self.dataset))
        fp = tables.run_fingerprint(inputs, str(self.target.get("logic") or ""))
        try:
            if fp != self.target["fingerprint"]:
                raise _Superseded("its staged inputs changed since the plan")
            made = op.audit.record_curated(
                self.pid, self.dataset, fp, lambda version, latest: self._publish(version, inputs, latest)
            )
        except _Superseded as err:
            deleted = op.delete_files(self.paths)
            op.log.warning(
                "%s: %s; this run's %s data file(s) are deleted and the next run makes the version",
                where,
                err,
                deleted,
            )
            self.counters.add("skipped")
            return None
        if isinstance(made, str):
            # A run that started at the same time made a version from these inputs meanwhile.
            op.delete_files(self.paths)
            op.log.info("%s: inputs unchanged since %s; no new version", where, made)
            self.counters.add("skipped")
            return None
        self.counters.add("new")
        self.counters.touched(f"{op.curated_bucket}/{made.manifest_key}")
        self.counters.lineage_of(*curated_lineage(made, self.prefix, self.dataset))
        op.log.info(
            "%s: new curated version %s from %s inputs: %s",
            where,
            made.version,
            len(inputs),
            {name: (t["rows"], t["snapshot_id"]) for name, t in (made.tables or {}).items()},
        )
        return {
            "project": self.target["project_name"],
            "dataset": self.dataset,
            "version": made.version,
            "tables": len(made.tables or {}),
        }

    def _publish(
        self, version: str, inputs: list[dict[str, Any]], latest: dict[str, Any] | None
    ) -> manifest.CuratedRecord:
        """Inside :meth:`~trilha.hooks.audit.AuditHook.record_curated`'s transaction, under the
        dataset's version lock: check the plan still holds, commit, write the manifest; the record."""
        basis = None if latest is None else str(latest["version"])
        if basis != self.target["basis"]:
            raise _Superseded(
                f"version {basis} was published since the plan "
                f"(made on {self.target['basis'] or 'no version'})"
            )
        published = tables.published_inputs(latest, str(self.target.get("logic") or ""))
        read = {(k, s): years for k, s, years, _ in self.target["read"]}
        codes = {(k, s): stations for k, s, _, stations in self.target["read"]}
        with_years = tables.with_years(inputs, published, read, codes)
        made = self._commit_tables(version, with_years, published, latest)
        return self._record(version, with_years, made)

    def _commit_tables(
        self,
        version: str,
        inputs: list[dict[str, Any]],
        published: list[dict[str, Any]] | None,
        latest: dict[str, Any] | None,
    ) -> _Made:
        from trilha.domain.curate import stations_from_years

        hourly = self.dataset == "inmet_hourly"
        opened = {name: self.hook.load(self.ident(name)) for name in self.names}
        unpublished = _unpublished(self.hook, opened, latest) if hourly else ()
        plan = tables.plan_run(inputs, published, partitioned=hourly, unpublished_years=unpublished)
        if plan.full != bool(self.target["full"]) or list(plan.rewritten) != list(self.target["rewritten"]):
            raise _Superseded("a run committed to its tables since the plan")
        claimed: set[str] = set((latest or {}).get("claimed") or ())
        history = self._settle_leftovers(claimed)
        props = tables.snapshot_properties(
            version=version,
            run_id=self.run_id,
            fingerprint=str(self.target["fingerprint"]),
            inputs_count=len(inputs),
            plan=plan,
            run_logic=str(self.target.get("logic") or ""),
        )
        rewritten = None if plan.full else plan.rewritten
        made: dict[str, dict[str, Any]] = {}
        replace = self.target.get("replace") or {}
        for name in WRITTEN_INMET_TABLES if hourly else ("data",):
            only = {int(y): paths for y, paths in (replace.get(name) or {}).items()}
            made[name] = self._commit(name, opened[name], self.files.get(name, []), rewritten, props, only)
        if hourly:
            station_years = self.hook.read(self.ident("station_years"), made["station_years"]["snapshot_id"])
            done = self.hook.committed(opened["stations"], props)
            added = (
                [] if done else self.hook.write_files(opened["stations"], stations_from_years(station_years))
            )
            self.paths |= {str(f.file_path) for f in added}
            made["stations"] = self._commit("stations", opened["stations"], added, None, props)
        # Only this run's data files (and a dead run's it took over): a run racing on the same inputs
        # may still be writing its own under the same prefixes, and deletes them when it finds this
        # version, so claiming them would record objects that vanish.
        bucket = self.op.curated_bucket
        ours = {p.split("/", 3)[3] for p in self.paths if p.startswith(f"s3://{bucket}/")} | set(history)
        objects = tables.written_objects(claimed, self._listing(), ours)
        for obj in objects:
            self.counters.add("bytes", obj["bytes"])
        return _Made(tables=made, objects=objects)

    def _record(self, version: str, inputs: list[dict[str, Any]], made: _Made) -> manifest.CuratedRecord:
        op = self.op
        base = lineage.curated_prefix(self.prefix, self.dataset, version)
        document = manifest.curated_manifest(
            project=self.target["project_name"],
            project_prefix=self.prefix,
            dataset=self.dataset,
            version=version,
            created_at=datetime.now(UTC).isoformat(),
            run_id=self.run_id,
            code_version=include.code_version(),
            inputs_fingerprint=str(self.target["fingerprint"]),
            inputs=inputs,
            files={},
            tables=made.tables,
        )
        manifest_key = join_key(base, lineage.MANIFEST)
        m_digest = op.minio.put_bytes(
            op.curated_bucket, manifest_key, lineage.manifest_bytes(document), content_type="application/json"
        )
        return manifest.CuratedRecord(
            project_id=self.pid,
            dataset=self.dataset,
            version=version,
            fingerprint=str(self.target["fingerprint"]),
            inputs=inputs,
            files={},
            bucket=op.curated_bucket,
            prefix=base,
            manifest_key=manifest_key,
            manifest_sha256=m_digest.sha256,
            run_id=self.run_id,
            table_format=tables.FORMAT_ICEBERG,
            tables=made.tables,
            objects=made.objects,
        )

    def _listing(self) -> list[tuple[str, int, str]]:
        bucket = self.op.curated_bucket
        found = []
        for name in self.names:
            under = tables.table_prefix(self.prefix, self.dataset, name) + "/"
            found += [(o.key, o.size, o.etag) for o in self.op.minio.iter_objects(bucket, under)]
        return found

    def _settle_leftovers(self, claimed: set[str]) -> list[str]:
        """Objects under the tables' prefixes that no version claims and this run did not write are
        what a run that died (or lost to this one) left: those the tables' metadata references (its
        commits, now history) are claimed by this version (:func:`trilha.domain.tables.written_objects`);
        data files it wrote and never committed are deleted, so no orphan remains. Under the version
        lock; a run still writing files for an older plan is superseded by this version anyway.
        Returns the committed files taken over (history)."""
        bucket = self.op.curated_bucket
        mine = {p.split("/", 3)[3] for p in self.paths if p.startswith(f"s3://{bucket}/")}
        listed = [key for key, _, _ in self._listing() if key not in mine]
        if all(key in claimed for key in listed):
            return []
        referenced: set[str] = set()
        for name in self.names:
            if self.hook.exists(self.ident(name)):
                located = self.hook.referenced(self.hook.load(self.ident(name)))
                referenced |= {p.split("/", 3)[3] for p in located if p.startswith(f"s3://{bucket}/")}
        history, orphans = tables.leftovers(claimed, listed, referenced)
        if orphans:
            self.op.minio.delete_keys(bucket, orphans)
        self.op.log.warning(
            "%s/%s: earlier runs left %s committed file(s) (claimed by this version) and %s "
            "never-committed file(s) (deleted)",
            self.prefix,
            self.dataset,
            len(history),
            len(orphans),
        )
        return history

    def _commit(
        self,
        name: str,
        table: Any,
        added: list[Any],
        rewritten: tuple[int, ...] | None,
        props: dict[str, str],
        replace: Mapping[int, Sequence[str]] | None = None,
    ) -> dict[str, Any]:
        commit = self.hook.commit(table, added, rewritten, props, replace=replace)
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
            "identifier": ".".join(self.ident(name)),
            "snapshot_id": commit.snapshot_id,
            "metadata_location": commit.metadata_location,
            "rows": commit.rows,
            "partitions_rewritten": tables.ALL_PARTITIONS if rewritten is None else list(rewritten),
            "files_added": commit.files_added,
            "files_removed": commit.files_removed,
            "logic": str(self.target.get("logic") or ""),
        }


# --------------------------------------------------------------------------------------------------
# all three in one task
# --------------------------------------------------------------------------------------------------


class CuratedOperator(CuratedPlanOperator):
    """Plan, write every unit and commit in one task: what the ``curated`` DAG does in three, for a
    DAG of one's own, the tests and the benchmarks. Same parameters as :class:`CuratedPlanOperator`;
    returns the commit's summary (``versions``) and emits ``trilha_curated``.

    :param snowflake_conn_id: kept for the DAG's Params; the Snowflake load of Iceberg versions is not
        wired yet (templated).
    """

    template_fields: Sequence[str] = (*CuratedPlanOperator.template_fields, "snowflake_conn_id")

    def __init__(self, *, snowflake_conn_id: str = config.SNOWFLAKE_CONN_ID, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.snowflake_conn_id = snowflake_conn_id

    def curate(self, context: Context, counters: Counters) -> dict[str, Any]:
        planned = super().curate(context, counters)
        written = [write_unit(self, u["unit"], counters) for u in self.planned["units"]]
        if counters["failed"]:
            for w in written:
                self.delete_files(str(d["file_path"]) for docs in w["files"].values() for d in docs)
            return {"versions": [], "scope": planned["scope"]}
        run_id = str(context["run_id"])
        versions = commit_targets(self, self.planned["targets"], written, run_id, counters)
        changed = self.audit.curated_changes(run_id, self.curated_bucket)
        self.announce(context, [CURATED], self.curated_bucket, changed)
        return {"versions": versions, "scope": planned["scope"]}

    def returned(self, record: TaskRecord) -> Any:
        return record.summary()
