"""Pure planning of the curated Iceberg tables: names, partitions a run touches, snapshot properties.

Each curated dataset is a few Iceberg tables (``inmet_hourly``: ``hourly``, ``daily``,
``station_years`` and ``stations``; any other dataset: ``data``). A curated run of a dataset makes
one new snapshot of each of its tables and then one inventory row (the version, ``v0003``), which is
the publication point: readers go through the row's snapshot ids (see docs/architecture.md).

Partitions and exactness. ``hourly`` is partitioned by the year of ``observed_at``, ``daily`` by the
year of ``date`` and ``station_years`` by ``year``. The dedup key (station, UTC hour) lies in exactly
one year, so deduplicating a year's rows from *all* the staged parts that hold rows of that year
gives exactly the rows a whole-table dedup gives for that year. A run therefore recomputes only the
years its changed inputs touch (the years of every part added or removed since the table's last
published snapshot), each from all the parts that contribute to it, in the inputs' order ("the part
stored later wins, hour by hour"). Removals and corrections stay exact; adding one station-year to a
25-year table rewrites one partition. ``stations`` (one row per station, small) is rebuilt from
``station_years`` on every run. Datasets other than ``inmet_hourly`` have no known key or time
column: their ``data`` table is unpartitioned and rewritten whole.

No Airflow, no I/O: the hook (:mod:`trilha.hooks.iceberg`) and the operator do the reading and writing.
"""

from __future__ import annotations

import bisect
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from trilha.domain import lineage
from trilha.domain.keys import join_key

FORMAT_ICEBERG = "iceberg"
FORMAT_PARQUET = "parquet"
#: The catalog's name in ``iceberg_tables.catalog_name``.
CATALOG_NAME = "trilha"
#: Every table of an ``inmet_hourly`` version, in commit order (``stations`` is built from
#: ``station_years``, so it goes after it).
INMET_TABLES: tuple[str, ...] = ("hourly", "daily", "daily_utc", "station_years", "stations")
#: The partition source column of each partitioned table, and its transform. ``daily``'s ``date``
#: is the station's local date: its year's partition is computed with the year's UTC partition of
#: ``hourly`` plus the first hours of the next (see :func:`trilha.domain.curate.part_years`).
PARTITIONS: dict[str, tuple[str, str]] = {
    "hourly": ("observed_at", "year"),
    "daily": ("date", "year"),
    "daily_utc": ("date", "year"),
    "station_years": ("year", "identity"),
}
#: What the rows of ``inmet_hourly``'s curated tables mean. Change it with any change of that
#: meaning: a lake whose tables were made under another one (or before it was recorded: UTC-day
#: ``daily``, ``stations`` without history) is rewritten whole by its next run (the run's
#: fingerprint includes it, and the published version is not built on; :func:`published_inputs`),
#: so no table mixes old and new rows by partition.
CURATED_LOGIC = "inmet_hourly/2"
#: The daily completeness rule (the curated DAG's ``min_hours_for_daily``): a day's sum, mean or
#: extreme from fewer valid hours is null; and its bounds (hours of 24).
MIN_HOURS_FOR_DAILY = 18
MIN_HOURS_RANGE = (1, 24)
#: Snapshot summary properties Trilha sets (Iceberg keeps its own next to them).
PROP_VERSION = "trilha.version"
PROP_RUN_ID = "trilha.run-id"
PROP_FINGERPRINT = "trilha.inputs-fingerprint"
PROP_INPUTS_COUNT = "trilha.inputs-count"
PROP_ADDED = "trilha.inputs-added"
PROP_REMOVED = "trilha.inputs-removed"
PROP_PARTITIONS = "trilha.partitions-rewritten"
PROP_LOGIC = "trilha.curated-logic"
#: ``PROP_PARTITIONS`` of a snapshot that rewrote the whole table.
ALL_PARTITIONS = "all"

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,127}$")


class PlanError(ValueError):
    """A curated run cannot be planned; the message names what was expected."""


def logic(dataset: str, min_hours: int) -> str:
    """The curated logic of a run of ``dataset`` (empty for datasets other than ``inmet_hourly``,
    whose ``data`` table does not depend on it): :data:`CURATED_LOGIC` and the completeness rule.

    :raises PlanError: ``min_hours`` outside 1..24.
    """
    low, high = MIN_HOURS_RANGE
    if not low <= int(min_hours) <= high:
        raise PlanError(f"min_hours_for_daily: expected {low} to {high} valid hours of 24, got {min_hours!r}")
    if dataset != "inmet_hourly":
        return ""
    return f"{CURATED_LOGIC};min_hours_for_daily={int(min_hours)}"


def run_fingerprint(inputs: Sequence[Mapping[str, Any]], run_logic: str) -> str:
    """A curated version's identity: its inputs (:func:`trilha.domain.lineage.inputs_fingerprint`)
    and, when not empty, the logic that made it: the same inputs under a new logic are a new version."""
    base = lineage.inputs_fingerprint([dict(i) for i in inputs])
    return base if not run_logic else lineage.fingerprint([base, run_logic])


def logic_of(latest: Mapping[str, Any] | None) -> str:
    """The logic a published version was made with, from its tables' entries (empty: none
    recorded, as before :data:`CURATED_LOGIC` existed)."""
    entries = ((latest or {}).get("tables") or {}).values()
    found = {str(t.get("logic") or "") for t in entries}
    return found.pop() if len(found) == 1 else ""


def published_inputs(latest: Mapping[str, Any] | None, run_logic: str) -> list[dict[str, Any]] | None:
    """The inputs (with years) of the latest version that a run under ``run_logic`` builds on:
    ``None`` (every part read again and every table rewritten whole) when there is none, when it
    is not an Iceberg version, or when it was made under another logic."""
    if latest is None or latest.get("table_format") != FORMAT_ICEBERG:
        return None
    if logic_of(latest) != run_logic:
        return None
    return [dict(i) for i in latest["inputs"]]


def table_names(dataset: str) -> tuple[str, ...]:
    """The Iceberg tables of ``dataset``'s versions, in commit order."""
    return INMET_TABLES if dataset == "inmet_hourly" else ("data",)


def partition_of(table: str) -> tuple[str, str] | None:
    """``(source column, transform)`` of ``table``'s partition, ``None`` when it is unpartitioned."""
    return PARTITIONS.get(table)


def _segment(value: str, what: str) -> str:
    text = str(value)
    if not _NAME.match(text):
        raise PlanError(
            f"{what}: expected lower-case letters, digits, '_' or '-' (at most 128), got {value!r}"
        )
    return text


def identifier(project_prefix: str, dataset: str, table: str) -> tuple[str, str]:
    """The catalog identifier ``(namespace, table name)``: namespace = the project prefix, name =
    ``<dataset>__<table>`` (``inmet_hourly__hourly``)."""
    return (
        _segment(project_prefix, "project prefix"),
        f"{_segment(dataset, 'dataset')}__{_segment(table, 'table')}",
    )


def table_location(bucket: str, project_prefix: str, dataset: str, table: str) -> str:
    """``s3://<curated bucket>/<prefix>/<dataset>/_iceberg/<table>``: every data and metadata file of
    the table, under the project's prefix (so reconcile and per-project listings see it)."""
    return f"s3://{bucket}/{table_prefix(project_prefix, dataset, table)}"


def table_prefix(project_prefix: str, dataset: str, table: str) -> str:
    """The object key prefix of a table's files in the curated bucket (no trailing ``/``)."""
    return join_key(project_prefix, dataset, "_iceberg", table)


def input_id(inp: Mapping[str, Any]) -> tuple[str, str]:
    return str(inp["key"]), str(inp["sha256"])


@dataclass(frozen=True)
class Plan:
    """What one curated run of a dataset does to its tables.

    :ivar full: rewrite every partition (no published Iceberg version to build on, or the dataset's
        table is unpartitioned).
    :ivar touched: the years to recompute (empty when ``full``: every year of ``years``).
    :ivar years: every year with data after the run.
    :ivar contributors: year -> indexes (into the run's inputs, in their order) of the parts with rows
        in that year: what each touched year is recomputed from.
    :ivar added: inputs new since the published version (key, sha256).
    :ivar removed: inputs of the published version no longer current.
    """

    full: bool
    touched: tuple[int, ...]
    years: tuple[int, ...]
    contributors: dict[int, tuple[int, ...]]
    added: tuple[tuple[str, str], ...]
    removed: tuple[tuple[str, str], ...]
    unpublished: tuple[int, ...] = field(default=())

    @property
    def rewritten(self) -> tuple[int, ...]:
        """The years whose partition this run replaces (written, or emptied)."""
        return self.years if self.full else self.touched


def plan_run(
    inputs: Sequence[Mapping[str, Any]],
    published: Sequence[Mapping[str, Any]] | None,
    *,
    partitioned: bool = True,
    unpublished_years: Iterable[int] | None = (),
) -> Plan:
    """Plan a curated run.

    :param inputs: the run's inputs in their order, each with ``key``, ``sha256`` and ``years`` (the
        UTC years it has rows in; known from the published version, or read for new parts).
    :param published: the inputs (with ``years``) of the dataset's latest published Iceberg
        version; ``None``: there is none, every partition is written.
    :param partitioned: ``False`` for an unpartitioned dataset: always a full rewrite.
    :param unpublished_years: years rewritten by snapshots committed after the published one but
        never published (a run that died between its commits and its inventory row); ``None``: such
        a snapshot rewrote everything. They are recomputed too, so the table converges.
    """
    current = {input_id(i): i for i in inputs}
    before = {input_id(i): i for i in (published or ())}
    added = tuple(k for k in current if k not in before)
    removed = tuple(k for k in before if k not in current)
    contributors: dict[int, list[int]] = {}
    for index, inp in enumerate(inputs):
        if "years" not in inp:
            raise PlanError(f"input {inp.get('key')!r}: expected its years, got {sorted(inp)}")
        for year in sorted({int(y) for y in inp["years"]}):
            contributors.setdefault(year, []).append(index)
    years = tuple(sorted(contributors))
    unpublished = None if unpublished_years is None else tuple(sorted({int(y) for y in unpublished_years}))
    full = published is None or not partitioned or unpublished is None
    touched: set[int] = set()
    if not full:
        for key in added:
            touched.update(int(y) for y in current[key]["years"])
        for key in removed:
            touched.update(int(y) for y in before[key].get("years", ()))
        touched.update(unpublished or ())
    return Plan(
        full=full,
        touched=() if full else tuple(sorted(touched)),
        years=years,
        contributors={y: tuple(v) for y, v in contributors.items()},
        added=added,
        removed=removed,
        unpublished=unpublished or (),
    )


def unpublished_partitions(summaries: Sequence[Mapping[str, str]]) -> set[int] | None:
    """The years rewritten by snapshots newer than the published one, from their summaries
    (Trilha's :data:`PROP_PARTITIONS`); ``None`` when one rewrote everything or is not Trilha's."""
    years: set[int] = set()
    for summary in summaries:
        value = summary.get(PROP_PARTITIONS)
        if value is None or value == ALL_PARTITIONS:
            return None
        years.update(int(y) for y in json.loads(value))
    return years


def snapshot_properties(
    *,
    version: str,
    run_id: str,
    fingerprint: str,
    inputs_count: int,
    plan: Plan,
    run_logic: str = "",
) -> dict[str, str]:
    """The summary properties of a run's snapshots: the version, the run, the fingerprint of all its
    inputs, the staged inputs (key + sha256) the run added and removed, and the partitions it rewrote.

    The full input list of a version is in its inventory row (``inputs``): a snapshot summary is
    copied into every later metadata file, so listing 15,000 parts there would make each commit
    carry megabytes of history.
    """
    return {
        PROP_VERSION: version,
        PROP_RUN_ID: run_id,
        PROP_FINGERPRINT: fingerprint,
        PROP_INPUTS_COUNT: str(inputs_count),
        PROP_ADDED: json.dumps([{"key": k, "sha256": s} for k, s in plan.added], separators=(",", ":")),
        PROP_REMOVED: json.dumps([{"key": k, "sha256": s} for k, s in plan.removed], separators=(",", ":")),
        PROP_PARTITIONS: ALL_PARTITIONS if plan.full else json.dumps(list(plan.touched)),
        PROP_LOGIC: run_logic,
    }


def with_years(
    inputs: Sequence[Mapping[str, Any]],
    published: Sequence[Mapping[str, Any]] | None,
    read: Mapping[tuple[str, str], Sequence[int]],
    stations: Mapping[tuple[str, str], Sequence[str]] | None = None,
) -> list[dict[str, Any]]:
    """The run's inputs, each with its ``years`` (and ``stations``, the WMO codes it has rows of,
    when known: what :func:`plan_units` shards by): from the published version when it had the same
    part (key + sha256), else from ``read`` and ``stations`` (found by reading the part).

    :raises PlanError: a part whose years are known from neither.
    """
    known = {input_id(i): i for i in (published or ()) if "years" in i}
    out = []
    for inp in inputs:
        ident = input_id(inp)
        before = known.get(ident)
        years = before["years"] if before is not None else read.get(ident)
        if years is None:
            raise PlanError(f"input {ident[0]!r}: its years are not known; read the part first")
        codes = before.get("stations") if before is not None else (stations or {}).get(ident)
        entry = {**inp, "years": sorted(int(y) for y in years)}
        if codes:
            entry["stations"] = sorted(str(c) for c in codes)
        out.append(entry)
    return out


def new_parts(
    inputs: Sequence[Mapping[str, Any]], published: Sequence[Mapping[str, Any]] | None
) -> list[Mapping[str, Any]]:
    """The inputs whose years must be read: not in the published version (with their years)."""
    known = {input_id(i) for i in (published or ()) if "years" in i}
    return [i for i in inputs if input_id(i) not in known]


def written_objects(
    claimed: Iterable[str], after: Iterable[tuple[str, int, str]], ours: Iterable[str] | None = None
) -> list[dict[str, Any]]:
    """The objects under a dataset's table prefixes that no earlier version claims, listed after the
    run (``(key, bytes, etag)`` each), sorted by key, as ``curated_inventory.objects`` records them:
    what this version's commits wrote, and what the commits of a run that died before publishing
    wrote (part of the tables' history now; see :func:`leftovers`).

    :param ours: when given, the data files (:func:`is_data_file`) this run wrote or took
        over (a dead run's committed ones): any other data file is a concurrent run's, still writing
        the same inputs; it is not claimed (that run deletes it when it finds this version, or a later
        run's clean-up does).
    """
    seen = set(claimed)
    mine = None if ours is None else set(ours)
    return [
        {"key": key, "bytes": int(size), "etag": etag.strip('"')}
        for key, size, etag in sorted(after)
        if key not in seen and (mine is None or not is_data_file(key) or key in mine)
    ]


def is_data_file(key: str) -> bool:
    """Whether ``key`` is a table's data file (``.../_iceberg/<table>/data/...``) rather than its
    metadata (``.../_iceberg/<table>/metadata/...``); a table may itself be named ``data``."""
    _, found, rest = key.partition("/_iceberg/")
    parts = rest.split("/")
    return bool(found) and len(parts) > 2 and parts[1] == "data"


def leftovers(
    claimed: Iterable[str], listed: Iterable[str], referenced: Iterable[str]
) -> tuple[list[str], list[str]]:
    """Objects under the tables' prefixes that no version claims, found before a run writes: those
    the tables' metadata references (committed by a run that died before its inventory row: history
    the next version claims) and those it does not (data files written and never committed: orphans,
    deleted). Returns ``(history, orphans)``, each sorted."""
    seen, used = set(claimed), set(referenced)
    unclaimed = sorted(k for k in set(listed) if k not in seen)
    return [k for k in unclaimed if k in used], [k for k in unclaimed if k not in used]


@dataclass(frozen=True)
class Unit:
    """One mapped write of a curated run: a shard of one rewritten year (``year`` ``None``: an
    unpartitioned table, written whole), made from ``parts`` (indexes into the run's inputs, in
    their order).

    A year's contributing parts are cut into shards along station boundaries: every part with rows
    of a station lies in the same shard (parts that share a station are kept together, and a part
    whose stations are not known keeps the whole year in one shard), so deduplicating each shard
    alone gives exactly the rows of deduplicating the year. Shards are in station order and hold at
    most ``batch_size`` parts, except where one station group alone has more."""

    year: int | None
    shard: int
    parts: tuple[int, ...]


def _station_groups(indexes: Sequence[int], inputs: Sequence[Mapping[str, Any]]) -> list[list[int]]:
    """The parts of one year in groups that share no station, each group in the inputs' order, the
    groups ordered by their smallest station; one group when a part's stations are unknown."""
    if any(not inputs[i].get("stations") for i in indexes):
        return [list(indexes)] if indexes else []
    parent: dict[str, str] = {}

    def root(code: str) -> str:
        while parent.setdefault(code, code) != code:
            parent[code] = parent[parent[code]]
            code = parent[code]
        return code

    for i in indexes:
        codes = [str(c) for c in inputs[i]["stations"]]
        for code in codes[1:]:
            a, b = root(codes[0]), root(code)
            if a != b:
                parent[max(a, b)] = min(a, b)
    groups: dict[str, list[int]] = {}
    for i in indexes:
        groups.setdefault(root(str(inputs[i]["stations"][0])), []).append(i)
    first = {r: min(str(c) for i in g for c in inputs[i]["stations"]) for r, g in groups.items()}
    return [groups[r] for r in sorted(groups, key=lambda r: first[r])]


def plan_units(
    inputs: Sequence[Mapping[str, Any]],
    plan: Plan,
    batch_size: int,
    narrowed: Mapping[int, Narrowed] | None = None,
) -> list[Unit]:
    """The mapped writes of a run of a partitioned table: for each year it rewrites that has data,
    its contributing parts in station-bounded shards of at most ``batch_size`` parts (see
    :class:`Unit`); for a year in ``narrowed`` (see :func:`narrow`), only the parts it recomputes. A
    rewritten year with no contributor anymore has no unit: the commit empties it.

    :raises PlanError: ``batch_size`` below 1.
    """
    if batch_size < 1:
        raise PlanError(f"batch_size: expected 1 or more staged parts per task, got {batch_size}")
    units: list[Unit] = []
    for year in plan.rewritten:
        shards: list[list[int]] = []
        how = narrowed.get(year) if narrowed else None
        some = how.parts if how is not None else plan.contributors.get(year, ())
        barriers = list(how.barriers) if how is not None else []
        segment = -1
        for group in _station_groups(some, inputs):
            # the kept file a group follows: a shard never mixes groups on both sides of one
            first = min(str(c) for i in group for c in inputs[i].get("stations") or [""])
            here = bisect.bisect_right(barriers, first)
            if shards and here == segment and len(shards[-1]) + len(group) <= batch_size:
                shards[-1].extend(group)
            else:
                shards.append(list(group))
            segment = here
        units += [Unit(year=year, shard=n, parts=tuple(sorted(s))) for n, s in enumerate(shards)]
    return units


@dataclass(frozen=True)
class LiveFile:
    """A data file of a table's current snapshot, as a narrowed plan sees it: its table, path,
    partition year and the range of WMO codes it holds (``low``/``high`` from the file's column
    bounds; ``None`` when the file has no bounds for ``wmo_code``)."""

    table: str
    path: str
    year: int | None
    low: str | None
    high: str | None

    def holds(self, code: str) -> bool:
        return self.low is not None and self.high is not None and self.low <= code <= self.high


@dataclass(frozen=True)
class Narrowed:
    """How a rewritten year is rewritten when only some of its stations changed: ``parts`` (indexes
    into the run's inputs) are recomputed, and ``replaced`` (data file paths of the written tables)
    are the files their new data files replace; every other file of the year is kept as it is."""

    parts: tuple[int, ...]
    replaced: tuple[str, ...]
    #: The first station of each data file the year keeps: no new shard spans one, so that the
    #: year's files still hold disjoint, ordered ranges of stations.
    barriers: tuple[str, ...] = ()


def _changed_parts(
    plan: Plan, inputs: Sequence[Mapping[str, Any]], published: Sequence[Mapping[str, Any]]
) -> list[Mapping[str, Any]]:
    """The parts the run adds (from ``inputs``) or removes (from ``published``)."""
    current = {input_id(i): i for i in inputs}
    before = {input_id(i): i for i in published}
    return [current[k] for k in plan.added] + [before[k] for k in plan.removed]


def _touched_stations(year: int, changed: Sequence[Mapping[str, Any]]) -> set[str] | None:
    """The stations of the ``changed`` parts with rows in ``year``; ``None`` when one's are unknown."""
    touched: set[str] = set()
    for inp in changed:
        if year not in {int(y) for y in inp.get("years", ())}:
            continue
        codes = inp.get("stations")
        if not codes:
            return None
        touched.update(str(c) for c in codes)
    return touched


def narrow(
    inputs: Sequence[Mapping[str, Any]],
    published: Sequence[Mapping[str, Any]] | None,
    plan: Plan,
    files: Sequence[LiveFile],
) -> dict[int, Narrowed]:
    """The rewritten years that need not be rewritten whole, and how each is rewritten instead.

    Deduplication is per station and hour, and the mapped writers write station-bounded shards, so a
    year's data files hold disjoint ranges of stations. When a run adds or removes parts of a few
    stations, only the files whose range holds one of them are replaced, recomputed from every part
    with a station in those files' ranges (the rows of a station come from its parts alone, so this
    is exact). The set of stations grows to a fixed point: the parts of a replaced file's range may
    name more stations, whose files are replaced too. A year is rewritten whole (left out here) when
    the plan is full, the year holds unpublished commits, or a changed or contributing part's
    stations, or a file's station range, are unknown.

    :param files: the live data files of the tables the writers write (all years).
    """
    if plan.full or published is None:
        return {}
    out: dict[int, Narrowed] = {}
    unpublished = set(plan.unpublished)
    changed = _changed_parts(plan, inputs, published)
    for year in plan.touched:
        touched = None if year in unpublished else _touched_stations(year, changed)
        contributors = plan.contributors.get(year, ())
        in_year = [f for f in files if f.year == year]
        if touched is None or any(not inputs[i].get("stations") for i in contributors):
            continue
        if any(f.low is None or f.high is None for f in in_year):
            continue
        stations = set(touched)
        while True:
            replaced = [f for f in in_year if any(f.holds(c) for c in stations)]
            parts = [
                i
                for i in contributors
                if any(c in stations or any(f.holds(c) for f in replaced) for c in inputs[i]["stations"])
            ]
            grown = stations | {str(c) for i in parts for c in inputs[i]["stations"]}
            if grown == stations:
                break
            stations = grown
        kept = sorted({str(f.low) for f in in_year if f not in replaced})
        out[year] = Narrowed(
            parts=tuple(parts), replaced=tuple(sorted(f.path for f in replaced)), barriers=tuple(kept)
        )
    return out
