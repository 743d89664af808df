"""Pure shaping of what the Trilha page in the Airflow UI shows: runs per DAG, a content's timeline,
quarantine reasons counted, and the search term made safe for ``LIKE``. No Airflow, no I/O.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

#: The layers of a content's path through the lake, in the order the page draws them.
TIMELINE = ("source", "reception", "deleted from reception", "stored", "staged", "curated", "dataset")
#: Run states, worst first: a DAG run is as bad as its worst task run.
_SEVERITY = ("failed", "abandoned", "running", "skipped", "success")


def like_start(q: str) -> str:
    """A ``LIKE`` pattern matching the strings that start with ``q`` literally (``%``, ``_`` and
    ``\\`` escaped with PostgreSQL's default escape character)."""
    escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


@dataclass
class DagRunSummary:
    """The last run of one DAG, as ``meta.audit_log`` recorded its task runs."""

    dag_id: str
    run_id: str
    status: str
    started_at: datetime | None
    ended_at: datetime | None
    tasks: int
    counters: dict[str, float] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


def run_summaries(rows: Iterable[Mapping[str, Any]]) -> list[DagRunSummary]:
    """One :class:`DagRunSummary` per DAG from the task-run rows of each DAG's last run.

    Counters are summed over the run's task runs (the mapped ``stage`` tasks add up to the run's
    total); only numbers are summed, so a counter that is a list or a text is left out. Of a task
    retried, only its last try counts, or a retried copy would be counted twice.
    """
    last_try: dict[tuple[str, str, str, int], Mapping[str, Any]] = {}
    for row in rows:
        ident = (str(row["dag_id"]), str(row["run_id"]), str(row["task_id"]), int(row.get("map_index", -1)))
        if ident not in last_try or int(row.get("try_number", 1)) >= int(
            last_try[ident].get("try_number", 1)
        ):
            last_try[ident] = row
    out: dict[str, DagRunSummary] = {}
    for (dag_id, run_id, _task, _map), row in sorted(last_try.items()):
        run = out.setdefault(dag_id, DagRunSummary(dag_id, run_id, "success", None, None, 0))
        run.tasks += 1
        status = str(row["status"])
        if _SEVERITY.index(status if status in _SEVERITY else "failed") < _SEVERITY.index(run.status):
            run.status = status
        started, ended = row.get("started_at"), row.get("ended_at")
        if started is not None and (run.started_at is None or started < run.started_at):
            run.started_at = started
        if ended is not None and (run.ended_at is None or ended > run.ended_at):
            run.ended_at = ended
        for name, value in dict(row.get("counters") or {}).items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                run.counters[name] = run.counters.get(name, 0) + value
        if row.get("error"):
            run.errors.append(f"{row['task_id']}: {row['error']}")
    return [out[d] for d in sorted(out)]


def timelines(events: Sequence[Mapping[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Each content's events (``trace_layers`` rows) as a timeline, sha256 → steps in lake order.

    The source a reception row names (``drive:<id>``, ``local:<path>``, ``upload:<name>``) becomes a
    step of its own before it, so the page reads source → reception → stored → staged → curated →
    dataset. Steps of the same layer keep the time order the query gave them.
    """
    out: dict[str, list[dict[str, Any]]] = {}
    for ev in events:
        steps = out.setdefault(str(ev["sha256"]).strip(), [])
        if ev["layer"] == "reception" and ev.get("source"):
            steps.append({**ev, "layer": "source", "key": ev["source"], "bucket": "", "detail": ""})
        steps.append(dict(ev))
    order = {layer: i for i, layer in enumerate(TIMELINE)}
    for steps in out.values():
        steps.sort(key=lambda s: order.get(str(s["layer"]), len(order)))
    return out


def reason_counts(reasons: Iterable[str]) -> list[tuple[str, int]]:
    """Quarantine reasons with how many rows gave each, most frequent first (ties by reason)."""
    counts = Counter(str(r) for r in reasons)
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))


def parse_size(text: str) -> int:
    """A byte count such as ``1073741824``, ``512MiB``, ``2GB`` or ``100k`` (binary multiples);
    raises :class:`ValueError` naming what was expected."""
    units = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
    raw = text.strip().lower().removesuffix("ib").removesuffix("b")
    number, unit = raw, ""
    if raw and raw[-1] in units:
        number, unit = raw[:-1], raw[-1]
    try:
        size = int(number.strip()) * units[unit]
    except ValueError:
        raise ValueError(f"size limit: expected bytes such as 536870912 or 512MiB, got {text!r}") from None
    if size <= 0:
        raise ValueError(f"size limit: expected a positive size, got {text!r}")
    return size
