"""Run DAGs one after another in one Python process: one Airflow start-up for a whole pipeline.

``python -m trilha.ops.run [DAG_ID ...] [--conf JSON] [--conf-for DAG_ID=JSON ...]``

``airflow dags test`` pays Airflow's start-up (8-18 s of imports, settings and provider discovery)
for every DAG; Trilha's own work on the bundled sample is well under a second per DAG. This runs each
DAG through ``dag.test()`` (the same code path as ``airflow dags test``) one after another, in the
order given (default: the pipeline's order), and prints one line per DAG: state, seconds, and the
summary its tasks returned.

Asset events are handed on as in a real run: the events a DAG's run emitted on the Assets another
DAG is scheduled on become the ``consumed_asset_events`` of that DAG's run, so its operators see
``triggering_asset_events`` and scope themselves to what changed, exactly as under the scheduler.

``--conf`` is given to every DAG, restricted to the Params each one declares (so one
``{"project": "inmet"}`` serves the whole chain); ``--conf-for`` adds keys for one DAG. A failed DAG
stops the chain, with the path of its failed task's log and the error's first lines. Each task's log is
also written where the Airflow UI reads it (:class:`trilha.ops.ui.TaskLogTee`), and Airflow's console
output goes to ``--log`` (default ``$TRILHA_STATE_DIR/demo-logs/run.log``) instead of the terminal.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

#: The pipeline, in the order its Assets chain it (reconcile is independent and opt-in).
PIPELINE = (
    "drive_capture",
    "raw_ingest",
    "reception_promote",
    "staging",
    "curated",
    "dataset_split",
    "reception_cleanup",
)


class RunError(Exception):
    """A DAG of the chain could not run, or failed."""


@dataclass
class Outcome:
    """What one DAG run did: its state, the wall time, the summaries its tasks returned."""

    dag_id: str
    run_id: str
    state: str
    seconds: float
    summaries: dict[str, Any] = field(default_factory=dict)
    consumed_events: int = 0
    failed: list[tuple[Path, BaseException | None]] = field(default_factory=list)


def parse_conf(text: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as err:
        raise RunError(f"{what}: not valid JSON ({err}): {text!r}") from None
    if not isinstance(value, dict):
        raise RunError(f"{what}: expected a JSON object, got {type(value).__name__}: {text!r}")
    return value


def conf_for(dag_params: Sequence[str], common: dict[str, Any], own: dict[str, Any]) -> dict[str, Any]:
    """``common`` restricted to the Params the DAG declares, then the DAG's own keys (which win)."""
    return {**{k: v for k, v in common.items() if k in dag_params}, **own}


@contextlib.contextmanager
def console_to(path: Path) -> Iterator[IO[str]]:
    """Send file descriptors 1 and 2 (Airflow's console logging) to ``path``; yield the terminal."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved_out, saved_err = os.dup(1), os.dup(2)
    terminal = os.fdopen(os.dup(saved_out), "w", buffering=1)
    with open(path, "wb") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield terminal
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved_out, 1)
            os.dup2(saved_err, 2)
            os.close(saved_out)
            os.close(saved_err)
            terminal.close()


class Runner:
    """Runs DAGs with ``dag.test()`` in this process, handing asset events from one run to the next."""

    def __init__(self) -> None:
        from airflow.models import dagrun as dagrun_module
        from airflow.sdk.execution_time import supervisor

        from trilha.ops.ui import TaskLogTee

        self._dagrun_module = dagrun_module
        self._supervisor = supervisor
        self.tee = TaskLogTee()
        self.tee.install()
        self.failed: list[tuple[Path, BaseException | None]] = []  # task log, error
        self.pending_events: list[Any] = []  # AssetEvent rows for the next run to consume
        self.produced: list[tuple[str, str]] = []  # (dag_id, run_id) of every run so far

    @contextlib.contextmanager
    def _patched(self) -> Iterator[None]:
        """Tee task logs, record failed tasks' log paths, attach the handed-on events to the new run."""
        run_in_process = self._supervisor.run_task_in_process
        get_or_create = self._dagrun_module.get_or_create_dagrun
        runner = self

        def run_task_in_process(ti: Any, task: Any, client: Any = None) -> Any:
            with runner.tee.to(ti) as path:
                result = run_in_process(ti=ti, task=task, client=client)
                if str(result.state) not in ("success", "skipped", "deferred"):
                    runner.failed.append((path, result.error))
                return result

        def get_or_create_dagrun(**kwargs: Any) -> Any:
            dr = get_or_create(**kwargs)
            if runner.pending_events:
                session = kwargs["session"]
                dr.consumed_asset_events.extend(runner.pending_events)
                session.commit()
            return dr

        self._supervisor.run_task_in_process = run_task_in_process
        self._dagrun_module.get_or_create_dagrun = get_or_create_dagrun
        try:
            yield
        finally:
            self._supervisor.run_task_in_process = run_in_process
            self._dagrun_module.get_or_create_dagrun = get_or_create

    def events_for(self, dag_id: str) -> list[Any]:
        """The asset events of this chain's runs on Assets that ``dag_id`` is scheduled on."""
        from airflow.models.asset import AssetEvent, DagScheduleAssetReference
        from airflow.utils.session import create_session
        from sqlalchemy import select, tuple_

        if not self.produced:
            return []
        with create_session() as session:
            assets = select(DagScheduleAssetReference.asset_id).where(
                DagScheduleAssetReference.dag_id == dag_id
            )
            rows = session.scalars(
                select(AssetEvent)
                .where(AssetEvent.asset_id.in_(assets))
                .where(tuple_(AssetEvent.source_dag_id, AssetEvent.source_run_id).in_(self.produced))
                .order_by(AssetEvent.id)
            ).all()
            session.expunge_all()
        return list(rows)

    def run(self, dag: Any, conf: dict[str, Any]) -> Outcome:
        from airflow.utils.session import create_session

        self.failed = []
        events = self.events_for(dag.dag_id)
        start = time.monotonic()
        with create_session() as session:
            self.pending_events = [session.merge(e) for e in events]
            session.commit()
        with self._patched():
            dr = dag.test(run_conf=conf)
        self.pending_events = []
        self.produced.append((dag.dag_id, dr.run_id))
        outcome = Outcome(
            dag_id=dag.dag_id,
            run_id=dr.run_id,
            state=str(dr.state),
            seconds=time.monotonic() - start,
            consumed_events=len(events),
            failed=list(self.failed),
        )
        outcome.summaries = task_summaries(dag.dag_id, dr.run_id)
        return outcome


def task_summaries(dag_id: str, run_id: str) -> dict[str, Any]:
    """Each task's returned summary (its ``return_value`` XCom), by task id (``stage[2]`` for map
    index 2 of a mapped task)."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(
            select(XComModel.task_id, XComModel.map_index, XComModel.value).where(
                XComModel.dag_id == dag_id, XComModel.run_id == run_id, XComModel.key == "return_value"
            )
        ).all()
    return {
        task_id if map_index < 0 else f"{task_id}[{map_index}]": XComModel.deserialize_value(_Row(value))
        for task_id, map_index, value in rows
    }


@dataclass
class _Row:
    value: Any


def load_dags(dag_ids: Sequence[str]) -> dict[str, Any]:
    """The DAGs of the configured bundles, parsed once; a clear error for an unknown id or a broken file."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import BundleDagBag

    manager = DagBundlesManager()
    manager.sync_bundles_to_db()
    found: dict[str, Any] = {}
    errors: list[str] = []
    for bundle in manager.get_all_dag_bundles():
        bundle.initialize()
        bag = BundleDagBag(dag_folder=bundle.path, bundle_path=bundle.path, bundle_name=bundle.name)
        errors += [f"{path}: {err.strip().splitlines()[-1]}" for path, err in bag.import_errors.items()]
        found = {**bag.dags, **found}
    if errors:
        raise RunError("DAG files failed to parse: " + "; ".join(errors))
    unknown = [d for d in dag_ids if d not in found]
    if unknown:
        raise RunError(f"unknown DAG id(s) {', '.join(unknown)}; known: {', '.join(sorted(found))}")
    return {d: found[d] for d in dag_ids}


def first_error_lines(path: Path, limit: int = 6) -> list[str]:
    """The first lines of the error in a task log file (JSON lines, as the UI reads them)."""
    lines: list[str] = []
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return lines
    for raw in text.splitlines():
        try:
            event = json.loads(raw)
        except ValueError:
            continue
        if str(event.get("level", "")).lower() not in ("error", "critical"):
            continue
        lines.append(str(event.get("event", "")))
        for detail in event.get("error_detail") or []:
            if isinstance(detail, dict):
                lines.append(f"{detail.get('exc_type', '')}: {detail.get('exc_value', '')}")
        if len(lines) >= limit:
            break
    return lines[:limit]


def summary_text(summaries: dict[str, Any], width: int = 160) -> str:
    """One line of each task's counters; a mapped task's instances summed as ``task[xN]``."""
    grouped: dict[str, list[Any]] = {}
    for task_id, value in sorted(summaries.items()):
        grouped.setdefault(task_id.split("[", 1)[0], []).append(value)
    parts = []
    for task_id, values in grouped.items():
        shown = [_shown(v) for v in values]
        if len(shown) > 1:
            total: dict[str, int] = {}
            for counters in shown:
                for k, v in (counters if isinstance(counters, dict) else {}).items():
                    if isinstance(v, int):
                        total[k] = total.get(k, 0) + v
            task_id, shown = f"{task_id}[x{len(values)}]", [total]
        parts.append(f"{task_id}: {json.dumps(shown[0], default=str, separators=(',', ':'))}")
    text = "  ".join(parts)
    return text if len(text) <= width else text[: width - 1] + "…"


def _shown(value: Any) -> Any:
    """What a task's return value shows: its non-zero counters, or its batch count for a plan."""
    counters = value.get("counters", value) if isinstance(value, dict) else value
    if isinstance(counters, list):  # a plan: what its mapped tasks expand over
        return f"{len(counters)} batch(es)"
    if isinstance(counters, dict):
        return {k: v for k, v in counters.items() if v}
    return counters


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trilha.ops.run", description=__doc__.split("\n")[0])
    parser.add_argument("dag_ids", nargs="*", metavar="DAG_ID", help=f"default: {' '.join(PIPELINE)}")
    parser.add_argument("--conf", default="{}", help="JSON given to every DAG (only the Params it declares)")
    parser.add_argument(
        "--conf-for", action="append", default=[], metavar="DAG_ID=JSON", help="JSON for one DAG (repeatable)"
    )
    parser.add_argument("--log", type=Path, default=None, help="where Airflow's console output goes")
    args = parser.parse_args(argv)
    dag_ids = args.dag_ids or list(PIPELINE)
    try:
        common = parse_conf(args.conf, "--conf")
        own: dict[str, dict[str, Any]] = {}
        for item in args.conf_for:
            dag_id, sep, text = item.partition("=")
            if not sep or dag_id not in dag_ids:
                raise RunError(f"--conf-for {item!r}: expected DAG_ID=JSON with a DAG_ID of this run")
            own[dag_id] = {**own.get(dag_id, {}), **parse_conf(text, f"--conf-for {dag_id}")}
    except RunError as err:
        print(f"trilha run: {err}", file=sys.stderr)
        return 2
    state_dir = Path(os.environ.get("TRILHA_STATE_DIR") or Path.cwd() / ".trilha")
    log_path = args.log or state_dir / "demo-logs" / "run.log"
    with console_to(log_path) as out:
        try:
            return _run_chain(dag_ids, common, own, out, log_path)
        except RunError as err:
            print(f"trilha run: {err}", file=out)
            return 2


def _run_chain(
    dag_ids: Sequence[str], common: dict[str, Any], own: dict[str, dict[str, Any]], out: IO[str], log: Path
) -> int:
    start = time.monotonic()
    import airflow  # noqa: F401  # configures settings, the ORM and logging
    from airflow.utils.providers_configuration_loader import providers_configuration_loaded

    dags = providers_configuration_loaded(load_dags)(dag_ids)
    runner = Runner()
    print(f"Airflow ready in {time.monotonic() - start:.1f}s (console log: {log})", file=out)
    for dag_id in dag_ids:
        dag = dags[dag_id]
        conf = conf_for(list(dag.params), common, own.get(dag_id, {}))
        outcome = runner.run(dag, conf)
        via = f" ({outcome.consumed_events} asset events)" if outcome.consumed_events else ""
        if outcome.state != "success":
            print(f"{dag_id:<18} FAILED {outcome.seconds:5.1f}s{via}  run {outcome.run_id}", file=out)
            for path, error in outcome.failed or [(log, None)]:
                print(f"  log: {path}", file=out)
                lines = [f"{type(error).__name__}: {error}"] if error else first_error_lines(path)
                for line in lines:
                    print(f"    {line[:300]}", file=out)
            return 1
        print(f"{dag_id:<18} ok {outcome.seconds:5.1f}s{via}  {summary_text(outcome.summaries)}", file=out)
    print(f"{len(dag_ids)} DAG(s) in {time.monotonic() - start:.1f}s, one Airflow start-up", file=out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
