"""Asset events: the ``extra`` a layer change carries, and the scope a run triggered by it takes.

Pure: no Airflow, no I/O. A producer asks the audit store what its DAG run added to the layer (one
row per project, from ``include/sql/queries/*_changes.sql``) and :func:`change_extra` turns that into
the event's ``extra``, or ``None`` when the run added nothing (then no event is emitted). A consumer
hands the extras of the events that triggered it to :func:`scope_from_extras` and works on what they
name instead of listing everything.

The extra, bounded in size whatever the run did (lists are capped and say how much they left out)::

    {"trilha_event": 1, "layer": "trilha_stored_raw", "run_id": "...", "bucket": "storage-unique",
     "counts": {"items": 3, "bytes": 10240, ...},
     "projects": [{"name": "inmet", "prefix": "inmet", "counts": {...},
                   "keys": ["inmet/a.csv", ...], "keys_total": 3, "keys_omitted": 0,
                   "datasets": [...], "datasets_total": ..., "versions": [...], "versions_total": ...}],
     "projects_total": 1, "projects_omitted": 0, "keys_total": 3, "keys_omitted": 0,
     "unowned_keys": 0}

Safety of a scoped run: whatever an event does not list completely widens the scope instead of
narrowing it. Keys left out of a project's list make the scope that whole project; projects left out,
or an event that is not in this format (an event sent through the REST API, another producer), make
the run unscoped: it does what a manual run does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from trilha.domain.keys import validate_project_name, validate_project_prefix
from trilha.exceptions import InvalidProjectError

#: Version of the extra's layout; a consumer does not scope by an extra of another version.
FORMAT = 1
FORMAT_KEY = "trilha_event"
#: Keys (object keys, paths) listed per event, over all its projects together.
MAX_KEYS = 100
#: Projects listed per event.
MAX_PROJECTS = 20
#: Versions (curated or dataset) and datasets listed per event, over all its projects together.
MAX_VERSIONS = 50
MAX_DATASETS = 50


# -------------------------------------------------------------------------------------------------
# producing: what a run changed -> the event's extra


@dataclass
class ProjectChange:
    """What one run added to a layer for one project (``name`` ``None``: keys under no project)."""

    name: str | None
    prefix: str | None
    counts: dict[str, int]
    keys: list[str]
    keys_total: int
    datasets: list[str] = field(default_factory=list)
    versions: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class RunChanges:
    """What one run added to a layer: per project, and the totals over every project."""

    projects: list[ProjectChange]
    projects_total: int
    totals: dict[str, int]


def changes_from_rows(rows: Sequence[Mapping[str, Any]], counts: Sequence[str]) -> RunChanges:
    """Read the rows of a ``*_changes.sql`` query.

    Each row is one project: ``project_name`` (NULL for keys under no registered project),
    ``project_prefix``, ``items``, ``keys`` (the first ones, sorted), ``projects_total`` (named
    projects, including those past the query's LIMIT), ``all_items`` and, for every name in
    ``counts``, the project's ``<name>`` and the run's ``all_<name>``. Optional: ``datasets``
    (distinct), or ``versions`` with the parallel ``version_datasets``, ``version_paths`` and
    ``version_rows`` (then ``keys`` are the versions' manifests, in the same order).
    """
    projects: list[ProjectChange] = []
    totals: dict[str, int] = {}
    projects_total = 0
    for row in rows:
        projects_total = int(row["projects_total"] or 0)
        totals = {"items": int(row["all_items"] or 0)}
        totals.update({c: int(row[f"all_{c}"] or 0) for c in counts})
        keys = [str(k) for k in (row.get("keys") or [])]
        change = ProjectChange(
            name=row["project_name"],
            prefix=row["project_prefix"],
            counts={"items": int(row["items"] or 0), **{c: int(row[c] or 0) for c in counts}},
            keys=keys,
            keys_total=int(row["items"] or 0),
            datasets=sorted({str(d) for d in (row.get("datasets") or []) if d}),
        )
        if row.get("versions") is not None:
            parallel = zip(
                row["version_datasets"],
                row["versions"],
                row["version_paths"],
                keys,
                row["version_rows"],
                strict=True,
            )
            change.versions = [
                {"dataset": d, "version": v, "path": p, "manifest": m, "rows": int(n or 0)}
                for d, v, p, m, n in parallel
            ]
            change.datasets = sorted({v["dataset"] for v in change.versions})
        projects.append(change)
    return RunChanges(projects=projects, projects_total=projects_total, totals=totals)


def with_keys(changes: RunChanges, name: str, prefix: str, keys: Sequence[str], counter: str) -> RunChanges:
    """``changes`` plus ``keys`` of project ``name`` that no audit row records (promotion's repairs:
    a missing stored object copied again under its existing ``storage_audit`` row), counted as
    ``counter``."""
    if not keys:
        return changes
    projects = list(changes.projects)
    found = next((p for p in projects if p.name == name), None)
    if found is None:
        found = ProjectChange(name=name, prefix=prefix, counts={"items": 0}, keys=[], keys_total=0)
        projects.append(found)
        projects.sort(key=lambda p: (p.name is None, p.name or ""))
    new = sorted(set(keys) - set(found.keys))
    found.keys = sorted(found.keys + new)
    found.keys_total += len(new)
    found.counts["items"] = found.counts.get("items", 0) + len(new)
    found.counts[counter] = found.counts.get(counter, 0) + len(new)
    totals = dict(changes.totals)
    totals["items"] = totals.get("items", 0) + len(new)
    totals[counter] = totals.get(counter, 0) + len(new)
    total = changes.projects_total + (1 if not any(p.name == name for p in changes.projects) else 0)
    return RunChanges(projects=projects, projects_total=total, totals=totals)


def allot(sizes: Sequence[int], budget: int) -> list[int]:
    """Share ``budget`` list slots fairly among lists of ``sizes``: the short ones whole, the rest
    of the budget evenly over the long ones (water filling). ``sum(result) <= budget``."""
    shares = [0] * len(sizes)
    remaining = max(budget, 0)
    order = sorted(range(len(sizes)), key=lambda i: sizes[i])
    for done, i in enumerate(order):
        share = remaining // (len(order) - done)
        shares[i] = min(sizes[i], share)
        remaining -= shares[i]
    return shares


def change_extra(
    layer: str,
    *,
    run_id: str,
    bucket: str,
    changes: RunChanges,
    max_keys: int = MAX_KEYS,
    max_projects: int = MAX_PROJECTS,
    max_versions: int = MAX_VERSIONS,
) -> dict[str, Any] | None:
    """The ``extra`` of the event announcing ``changes`` to ``layer`` (an asset name), or ``None``
    when the run changed nothing there. Lists are capped; each says how many it left out."""
    if changes.totals.get("items", 0) <= 0:
        return None
    named = [p for p in changes.projects if p.name is not None][:max_projects]
    unowned = sum(p.keys_total for p in changes.projects if p.name is None)
    key_shares = allot([len(p.keys) for p in named], max_keys)
    version_shares = allot([len(p.versions) for p in named], max_versions)
    dataset_shares = allot([len(p.datasets) for p in named], MAX_DATASETS)
    projects: list[dict[str, Any]] = []
    for p, n_keys, n_versions, n_datasets in zip(
        named, key_shares, version_shares, dataset_shares, strict=True
    ):
        entry: dict[str, Any] = {
            "name": p.name,
            "prefix": p.prefix,
            "counts": dict(p.counts),
            "keys": p.keys[:n_keys],
            "keys_total": p.keys_total,
            "keys_omitted": p.keys_total - n_keys,
        }
        if p.datasets:
            entry.update(
                datasets=p.datasets[:n_datasets],
                datasets_total=len(p.datasets),
                datasets_omitted=len(p.datasets) - n_datasets,
            )
        if p.versions:
            entry.update(
                versions=p.versions[:n_versions],
                versions_total=len(p.versions),
                versions_omitted=len(p.versions) - n_versions,
            )
        projects.append(entry)
    listed = sum(len(e["keys"]) for e in projects)
    total_keys = changes.totals.get("items", 0)
    return {
        FORMAT_KEY: FORMAT,
        "layer": layer,
        "run_id": run_id,
        "bucket": bucket,
        "counts": dict(changes.totals),
        "projects": projects,
        "projects_total": changes.projects_total,
        "projects_omitted": changes.projects_total - len(projects),
        "keys_total": total_keys,
        "keys_omitted": total_keys - listed,
        "unowned_keys": unowned,
    }


def describe(extra: Mapping[str, Any]) -> str:
    """One log line for an emitted extra."""
    projects = ", ".join(
        f"{p['name']!r} ({p['keys_total']} key(s)"
        + (f", {p['keys_omitted']} not listed" if p.get("keys_omitted") else "")
        + (
            f", {', '.join(v['dataset'] + ' ' + v['version'] for v in p['versions'])}"
            if p.get("versions")
            else ""
        )
        + ")"
        for p in extra["projects"]
    )
    more = f" and {extra['projects_omitted']} more project(s)" if extra.get("projects_omitted") else ""
    unowned = f"; {extra['unowned_keys']} key(s) under no project" if extra.get("unowned_keys") else ""
    return f"{extra['counts']} for {projects or 'no project'}{more}{unowned}"


# -------------------------------------------------------------------------------------------------
# consuming: the triggering events' extras -> the run's scope


@dataclass(frozen=True)
class ProjectScope:
    """One project a scoped run works on: only ``items`` (keys or datasets), or all of it (``None``)."""

    name: str
    prefix: str
    items: frozenset[str] | None

    def describe(self) -> str:
        if self.items is None:
            return f"{self.name!r} (whole project)"
        return f"{self.name!r} ({len(self.items)} named)"


@dataclass(frozen=True)
class Scope:
    """What a run works on. ``projects`` ``None``: unscoped, the run does what a manual run does."""

    projects: tuple[ProjectScope, ...] | None
    why: str

    @property
    def scoped(self) -> bool:
        return self.projects is not None


UNSCOPED_NO_EVENTS = "not triggered by asset events"


def unscoped(why: str) -> Scope:
    return Scope(projects=None, why=why)


def scope_from_extras(extras: Sequence[Mapping[str, Any]], *, layer: str, items: str | None) -> Scope:
    """The scope named by the extras of the events of ``layer`` that triggered a run.

    :param items: the per-project list that narrows the work (``"keys"``, ``"datasets"``), or ``None``
        to scope by whole projects only. A project whose list is incomplete is taken whole.
    """
    if not extras:
        return unscoped(UNSCOPED_NO_EVENTS)
    merged: dict[str, tuple[str, set[str] | None]] = {}
    for n, extra in enumerate(extras, start=1):
        problem = _format_problem(extra, layer)
        if problem:
            return unscoped(f"event {n} of {len(extras)} on {layer}: {problem}; the run is not scoped")
        omitted = extra["projects_omitted"]
        if omitted:
            return unscoped(
                f"event {n} of {len(extras)} on {layer} lists {len(extra['projects'])} of "
                f"{extra['projects_total']} projects; the run is not scoped"
            )
        for project in extra["projects"]:
            name, prefix = project["name"], project["prefix"]
            wanted = _listed(project, items)
            if name in merged:
                known_prefix, known = merged[name]
                if known_prefix != prefix:
                    return unscoped(
                        f"events on {layer} give project {name!r} two prefixes; the run is not scoped"
                    )
                merged[name] = (prefix, None if known is None or wanted is None else known | wanted)
            else:
                merged[name] = (prefix, wanted)
    projects = tuple(
        ProjectScope(name=name, prefix=prefix, items=None if wanted is None else frozenset(wanted))
        for name, (prefix, wanted) in sorted(merged.items())
    )
    where = ", ".join(p.describe() for p in projects) or "no project"
    return Scope(projects=projects, why=f"scoped by {len(extras)} event(s) on {layer} to {where}")


def _listed(project: Mapping[str, Any], items: str | None) -> set[str] | None:
    """The project's complete list of ``items``, or ``None`` (the whole project) when it has none or
    left some out."""
    if items is None:
        return None
    listed = project.get(items)
    total = project.get(f"{items}_total")
    if not isinstance(listed, list) or not isinstance(total, int) or total != len(listed):
        return None
    return {str(i) for i in listed}


def _format_problem(extra: Mapping[str, Any], layer: str) -> str | None:
    """Why ``extra`` cannot scope a run, or ``None`` when it is a complete extra of this format."""
    if not isinstance(extra, Mapping) or extra.get(FORMAT_KEY) != FORMAT:
        return f"its extra is not a Trilha change (format {FORMAT})"
    if extra.get("layer") != layer:
        return f"its extra describes layer {extra.get('layer')!r}"
    projects = extra.get("projects")
    if not isinstance(projects, list) or not all(isinstance(p, Mapping) for p in projects):
        return "its extra has no list of projects"
    for key in ("projects_total", "projects_omitted"):
        if not isinstance(extra.get(key), int):
            return f"its extra has no {key}"
    for project in projects:
        try:
            validate_project_name(project.get("name"))
            validate_project_prefix(project.get("prefix"))
        except InvalidProjectError:
            return f"its extra names an invalid project {project.get('name')!r}/{project.get('prefix')!r}"
        for listed in ("keys", "datasets"):
            values = project.get(listed)
            if values is not None and not (
                isinstance(values, list) and all(isinstance(v, str) for v in values)
            ):
                return f"its extra has a malformed {listed} list for project {project.get('name')!r}"
    return None


def per_project(scope: Scope, default: str | None) -> list[tuple[str | None, list[str] | None]]:
    """``(project, items)`` to query for: each scoped project with its sorted items (``None``: all of
    it), or, for an unscoped run, ``default`` (the run's own project filter) with no items filter."""
    if scope.projects is None:
        return [(default, None)]
    return [(p.name, names(p.items)) for p in scope.projects]


def names(items: Iterable[str] | None) -> list[str] | None:
    """A scope's items as a sorted list for a bind parameter (``None`` stays ``None``: no filter)."""
    return None if items is None else sorted(items)
