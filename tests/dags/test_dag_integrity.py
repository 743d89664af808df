"""DagBag integrity and policy over ``dags/``.

The DagBag is loaded the way Airflow 3.3 loads it, with DeprecationWarning and FutureWarning turned into
errors (an Airflow-2 import fails the load), with no connection and no variable defined anywhere and
nothing mocked: a parse-time ``Variable.get`` or connection lookup becomes an import error here.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import textwrap
import warnings
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from airflow.dag_processing.dagbag import DagBag
from airflow.sdk import Asset, AssetAlias
from airflow.sdk.definitions.asset import AssetBooleanCondition, BaseAsset
from airflow.sdk.definitions.timetables.assets import AssetOrTimeSchedule, AssetTriggeredTimetable
from croniter import croniter

from trilha.assets import LAYERS, changes

REPO = Path(__file__).resolve().parents[2]
DAGS_DIR = REPO / "dags"
EXPECTED_DAG_IDS = {
    "drive_capture",
    "raw_ingest",
    "reception_promote",
    "staging",
    "curated",
    "dataset_split",
    "reception_cleanup",
    "reconcile",
}
#: What no DAG file may load at parse time (each costs 0.1-1 s of import on every parse).
HEAVY_MODULES = (
    "pandas",
    "pyarrow",
    "boto3",
    "botocore",
    "pyiceberg",
    "googleapiclient",
    "snowflake.connector",
    # The OpenLineage client: loaded only when the listener asks a task for its lineage.
    "openlineage.client",
)
#: The DAGs that change a lake layer (and emit its event); all but the first are scoped by events.
LAYER_PRODUCERS = {"drive_capture", "raw_ingest", "reception_promote", "staging", "curated", "dataset_split"}


def load_dagbag(folder: Path) -> DagBag:
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        warnings.simplefilter("error", FutureWarning)
        return DagBag(dag_folder=str(folder))


@pytest.fixture(scope="module")
def no_connections_or_variables() -> Iterator[None]:
    """Whatever ran before in the session (the integration stack sets AIRFLOW_CONN_*), none is visible."""
    with pytest.MonkeyPatch.context() as mp:
        for key in list(os.environ):
            if key.startswith(("AIRFLOW_CONN_", "AIRFLOW_VAR_")):
                mp.delenv(key)
        yield


@pytest.fixture(scope="module")
def dagbag(no_connections_or_variables: None) -> DagBag:
    return load_dagbag(DAGS_DIR)


@pytest.fixture(scope="module")
def dags(dagbag: DagBag) -> dict[str, Any]:
    return dict(dagbag.dags)


def test_no_connection_or_variable_is_defined(no_connections_or_variables: None) -> None:
    defined = [k for k in os.environ if k.startswith(("AIRFLOW_CONN_", "AIRFLOW_VAR_"))]
    assert defined == []


def test_no_import_errors(dagbag: DagBag) -> None:
    assert dagbag.import_errors == {}
    assert dagbag.size() >= len(EXPECTED_DAG_IDS)


def test_expected_dag_ids(dags: dict[str, Any]) -> None:
    assert set(dags) >= EXPECTED_DAG_IDS, f"missing: {sorted(EXPECTED_DAG_IDS - set(dags))}"
    # One DAG per file, named after it.
    for dag_id, dag in dags.items():
        assert Path(dag.fileloc).name == f"{dag_id}.py"


def test_every_dag_follows_the_policy(dags: dict[str, Any]) -> None:
    problems = []
    for dag_id, dag in sorted(dags.items()):
        if not dag.tags:
            problems.append(f"{dag_id}: no tags")
        if dag.catchup:
            problems.append(f"{dag_id}: catchup is on")
        if not (dag.doc_md or "").strip():
            problems.append(f"{dag_id}: no doc_md")
        if dag.start_date is None or dag.start_date.tzinfo is None:
            problems.append(f"{dag_id}: start_date {dag.start_date!r} is not timezone-aware")
        for task in dag.tasks:
            if task.owner in ("airflow", "", None):
                problems.append(f"{dag_id}.{task.task_id}: owner is {task.owner!r}")
            if (task.retries or 0) < 2:
                problems.append(f"{dag_id}.{task.task_id}: retries {task.retries} < 2")
        for name in dag.params:
            description = dag.params.get_param(name).description
            if not (description or "").strip():
                problems.append(f"{dag_id}: Param {name!r} has no description")
    assert problems == []


def test_doc_md_is_the_module_docstring(dags: dict[str, Any]) -> None:
    for dag_id, dag in dags.items():
        docstring = ast.get_docstring(ast.parse(Path(dag.fileloc).read_text(encoding="utf-8")), clean=False)
        assert docstring, f"{dag_id}: the DAG file has no module docstring"
        assert dag.doc_md == docstring, f"{dag_id}: doc_md is not the module docstring"
        assert dag_id in docstring.strip().splitlines()[0], (
            f"{dag_id}: the docstring does not open with its id"
        )


# --------------------------------------------------------------------------------------------------
# the asset hand-off between DAGs


def assets_of(condition: BaseAsset | None) -> set[Asset]:
    """Every Asset in a schedule condition (AssetAll / AssetAny nest)."""
    if condition is None:
        return set()
    if isinstance(condition, Asset):
        return {condition}
    if isinstance(condition, AssetBooleanCondition):
        return set().union(*(assets_of(o) for o in condition.objects))
    raise AssertionError(f"unexpected schedule element {condition!r}")


def scheduled_on(dag: Any) -> set[Asset]:
    timetable = dag.timetable
    if isinstance(timetable, AssetTriggeredTimetable):  # AssetOrTimeSchedule is one too
        return assets_of(timetable.asset_condition)
    return set()


#: The layer asset each ``changes(<asset>)`` alias emits.
EMITTED_THROUGH = {changes(a).name: a for a in LAYERS}


def outlets(dag: Any) -> set[Asset]:
    """The layer assets a DAG's tasks emit (only when they changed the layer) through their aliases."""
    return {
        EMITTED_THROUGH[o.name]
        for task in dag.tasks
        for o in (task.outlets or [])
        if isinstance(o, AssetAlias) and o.name in EMITTED_THROUGH
    }


def test_layer_assets_are_emitted_only_through_their_change_alias(dags: dict[str, Any]) -> None:
    """A static Asset outlet is registered on every successful run, changed or not: none may be left,
    every alias must be a layer's, and the operator must be one that adds the alias's events."""
    from trilha.operators.base import TrilhaBaseOperator

    problems = []
    for dag_id, dag in sorted(dags.items()):
        for task in dag.tasks:
            for o in task.outlets or []:
                where = f"{dag_id}.{task.task_id}"
                if not isinstance(o, AssetAlias):
                    problems.append(f"{where}: static outlet {o!r}")
                elif o.name not in EMITTED_THROUGH:
                    problems.append(f"{where}: alias {o.name!r} emits no layer asset")
                elif not isinstance(task, TrilhaBaseOperator):
                    problems.append(f"{where}: {type(task).__name__} does not add the alias's events")
    assert problems == []
    assert {d for d in dags if outlets(dags[d])} == LAYER_PRODUCERS
    # Capture registers what it uploads: it changes reception and reception_audit both.
    assert {a.name for a in outlets(dags["drive_capture"])} == {"trilha_reception", "trilha_raw_registered"}


def test_each_consumer_reads_the_events_of_the_asset_its_dag_waits_for(dags: dict[str, Any]) -> None:
    """An operator scopes its run by the events of ``consumes``; if that were not the asset its DAG
    is scheduled on, a triggered run would never be scoped (and nothing would say so)."""
    consumers = {
        dag_id: {task.task_id: getattr(task, "consumes", None) for task in dag.tasks}
        for dag_id, dag in dags.items()
    }
    for dag_id, tasks in sorted(consumers.items()):
        waits_for = {(a.name, a.uri) for a in scheduled_on(dags[dag_id])}
        for task_id, consumes in tasks.items():
            if consumes is not None:
                assert (consumes.name, consumes.uri) in waits_for, f"{dag_id}.{task_id} reads {consumes.name}"
    readers = {d for d, t in consumers.items() if any(t.values())}
    assert readers == LAYER_PRODUCERS - {"drive_capture"}


@pytest.mark.parametrize(
    ("producer", "consumer"),
    [
        ("drive_capture", "raw_ingest"),
        ("raw_ingest", "reception_promote"),
        ("reception_promote", "staging"),
        ("staging", "curated"),
        ("curated", "dataset_split"),
    ],
)
def test_asset_hand_off(dags: dict[str, Any], producer: str, consumer: str) -> None:
    assert producer in dags, f"{producer} missing from the DagBag"
    assert consumer in dags, f"{consumer} missing from the DagBag"
    waits_for = scheduled_on(dags[consumer])
    assert waits_for, f"{consumer} is not scheduled on any asset"
    emitted = outlets(dags[producer])
    # Compared by (name, uri): the consumer must wait on exactly what the producer emits.
    assert {(a.name, a.uri) for a in waits_for} <= {(a.name, a.uri) for a in emitted}, (
        f"{consumer} waits for {sorted(a.name for a in waits_for)}, {producer} emits "
        f"{sorted(a.name for a in emitted)}"
    )


def test_every_emitted_asset_has_a_consumer_except_the_last(dags: dict[str, Any]) -> None:
    consumed = {(a.name, a.uri) for d in dags.values() for a in scheduled_on(d)}
    emitted = {(a.name, a.uri): dag_id for dag_id, d in dags.items() for a in outlets(d)}
    dangling = {key: dag_id for key, dag_id in emitted.items() if key not in consumed}
    assert set(dangling.values()) <= {"dataset_split"}, dangling


def test_asset_or_time_schedules_have_a_cron_fallback(dags: dict[str, Any]) -> None:
    with_fallback = [d for d in dags.values() if isinstance(d.timetable, AssetOrTimeSchedule)]
    assert {d.dag_id for d in with_fallback} >= {"raw_ingest", "reception_promote", "staging"}
    for dag in with_fallback:
        assert croniter.is_valid(dag.timetable.timetable.expression), dag.dag_id


def test_reception_cleanup_runs_daily_on_a_cron(dags: dict[str, Any]) -> None:
    dag = dags["reception_cleanup"]
    expression = getattr(dag.timetable, "expression", None)
    assert expression is not None, f"reception_cleanup timetable {dag.timetable!r} has no cron expression"
    it = croniter(expression, dag.start_date)
    first, second, third = (it.get_next(type(dag.start_date)) for _ in range(3))
    assert second - first == timedelta(days=1)
    assert third - second == timedelta(days=1)
    assert scheduled_on(dag) == set()  # time-based, not waiting on an asset


# --------------------------------------------------------------------------------------------------
# parse cost and parse-time lookups


@pytest.mark.parametrize("provider_uri_handlers", [False, True], ids=["dag-files-alone", "as-airflow-parses"])
def test_dag_files_do_not_import_heavy_modules(provider_uri_handlers: bool) -> None:
    """In a fresh interpreter, import every DAG file; none of :data:`HEAVY_MODULES` may be loaded after.

    Airflow itself loads boto3, botocore and the Google client the first time an ``s3://`` Asset is
    made: it asks every installed provider for its asset-URI normaliser. So the check runs twice:
    with that lookup answered "none" (what the DAG files and the trilha modules they import load, alone),
    and as Airflow parses, where the baseline is ``airflow.sdk`` plus one ``s3://`` Asset and the DAG
    files must add nothing to it.
    """
    script = textwrap.dedent(
        f"""
        import importlib.util, json, pathlib, sys
        heavy = {HEAVY_MODULES!r}
        import airflow.sdk  # the baseline every DAG file pays anyway
        from airflow.sdk.definitions._internal.contextmanager import DagContext
        if {provider_uri_handlers!r}:
            airflow.sdk.Asset(name="baseline", uri="s3://baseline-bucket/")
        else:
            import airflow.sdk.definitions.asset as asset_module
            asset_module._get_uri_normalizer = lambda scheme: None
        report = {{"baseline": [m for m in heavy if m in sys.modules], "files": {{}}, "dags": {{}}}}
        for path in sorted(pathlib.Path({str(DAGS_DIR)!r}).glob("*.py")):
            name = "dagfile_" + path.stem
            spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            # As the DagBag does: DAGs created while this module runs are registered against it.
            DagContext.current_autoregister_module_name = name
            spec.loader.exec_module(module)
            DagContext.current_autoregister_module_name = None
            report["files"][path.name] = [
                m for m in heavy if m in sys.modules and m not in report["baseline"]
            ]
            report["dags"][path.name] = sorted(
                d.dag_id for d, mod in DagContext.autoregistered_dags if mod is module
            )
        print(json.dumps(report))
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_CONN_", "AIRFLOW_VAR_"))}
    res = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=300,
        check=False,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    report = json.loads(res.stdout.strip().splitlines()[-1])
    if provider_uri_handlers:
        # The baseline really holds what Airflow loads (else this mode would prove nothing new).
        assert {"boto3", "botocore"} <= set(report["baseline"])
    else:
        assert report["baseline"] == []
    assert set(report["files"]) >= {f"{d}.py" for d in EXPECTED_DAG_IDS}
    # The files were really executed: each defined its DAG.
    for dag_id in EXPECTED_DAG_IDS:
        assert report["dags"][f"{dag_id}.py"] == [dag_id], report["dags"]
    assert {name: mods for name, mods in report["files"].items() if mods} == {}


def test_the_loader_catches_parse_time_lookups_and_airflow2_idioms(
    tmp_path: Path, no_connections_or_variables: None
) -> None:
    """The integrity test can fail: a DAG that reads a Variable at parse time, and one written with an
    Airflow 2 import, are both import errors under the same loader."""
    header = "from datetime import datetime, UTC\nfrom airflow.sdk import dag, task\n"
    body = (
        "@dag(schedule=None, start_date=datetime(2026, 1, 1, tzinfo=UTC), catchup=False, tags=['t'])\n"
        "def {name}():\n    @task\n    def t():\n        return 1\n    t()\n\n{name}()\n"
    )
    (tmp_path / "reads_variable.py").write_text(
        header
        + "from airflow.sdk import Variable\nBUCKET = Variable.get('trilha_bucket_reception')\n"
        + body.format(name="reads_variable")
    )
    (tmp_path / "airflow2_import.py").write_text(
        header.replace("from airflow.sdk import dag, task", "from airflow.decorators import dag, task")
        + body.format(name="airflow2_import")
    )
    (tmp_path / "fine.py").write_text(header + body.format(name="fine"))
    bag = load_dagbag(tmp_path)
    assert set(bag.dags) == {"fine"}
    assert {Path(p).name for p in bag.import_errors} == {"reads_variable.py", "airflow2_import.py"}


# --------------------------------------------------------------------------------------------------
# the trigger form


def form_blockers(dag: Any) -> list[str]:
    """What keeps the Airflow 3.3 trigger form's button disabled with the defaults.

    The form's rule (airflow/ui, FlexibleForm): a Param whose schema ``type`` is set and does not
    admit ``"null"`` is required, and a required value that is ``None`` or ``""`` is an error.
    """
    blockers = []
    for name in dag.params:
        param = dag.params.get_param(name)
        kind = param.schema.get("type")
        required = bool(kind) and not (isinstance(kind, list) and "null" in kind)
        if required and param.value in (None, ""):
            blockers.append(f"{dag.dag_id}: Param {name!r} is required by the form but defaults to empty")
    return blockers


def test_every_dag_triggers_from_its_form_with_the_defaults(dags: dict[str, Any]) -> None:
    problems = [b for dag in dags.values() for b in form_blockers(dag)]
    for dag_id, dag in sorted(dags.items()):
        if not (dag.description or "").strip():
            problems.append(f"{dag_id}: no description (the DAG list shows none)")
        try:
            dag.params.validate()  # what a trigger with the defaults is checked against
        except Exception as err:
            problems.append(f"{dag_id}: defaults fail their own schema: {err}")
    assert problems == []


def test_the_form_rule_catches_an_empty_string_param() -> None:
    """The check above on the shape that blocked every DAG in wave 1: ``Param("", type="string")``."""
    from airflow.sdk import DAG, Param

    from trilha.params import optional

    dag = DAG(
        "form_rule",
        schedule=None,
        params={"bad": Param("", type="string", description="x"), "ok": optional("y")},
    )
    assert form_blockers(dag) == ["form_rule: Param 'bad' is required by the form but defaults to empty"]


def test_templates_render_no_none_with_the_defaults(dags: dict[str, Any]) -> None:
    """An optional Param is ``None`` by default; Jinja renders that as the text "None", which an
    operator would take for a project, prefix or key. Every templated field renders without it."""
    from types import SimpleNamespace

    variables = SimpleNamespace(value=SimpleNamespace(get=lambda _key, default="": default))
    rendered_none = []
    for dag_id, dag in sorted(dags.items()):
        context = {"params": dag.params.validate(), "var": variables}
        env = dag.get_template_env()
        for task in dag.tasks:
            # A mapped task holds what ``partial()`` set; the rest comes from its expansion.
            fields = getattr(task, "partial_kwargs", None)
            for field in task.template_fields:
                value = fields.get(field) if fields is not None else getattr(task, field)
                if isinstance(value, str) and "{{" in value:
                    out = env.from_string(value).render(**context)
                    if "None" in out:
                        rendered_none.append(f"{dag_id}.{task.task_id}.{field} = {out!r}")
    assert rendered_none == []


def test_every_layer_asset_is_known_to_airflow(dags: dict[str, Any]) -> None:
    """Events go out through ``changes(<asset>)`` aliases, and Airflow drops an alias event for an
    asset no DAG references ("AssetModel ... not found; cannot create asset event"). So each layer
    asset must appear in some DAG's schedule or in a task's inlets or outlets."""
    from trilha.assets import LAYERS

    referenced: set[Any] = set()
    for dag in dags.values():
        referenced |= scheduled_on(dag)
        for task in dag.tasks:
            referenced |= {a for a in [*task.inlets, *task.outlets] if isinstance(a, Asset)}
    assert [a.name for a in LAYERS if a not in referenced] == []


#: Params every DAG declares through :mod:`trilha.params` (one declaration each), never inline.
SHARED_PARAMS = {"project", "project_prefix", "key_prefix", "dataset"}


def test_shared_params_are_declared_once_in_trilha_params(dags: dict[str, Any]) -> None:
    """``project``, ``project_prefix``, ``key_prefix`` and ``dataset`` come from ``**params.<helper>()``
    in every DAG file, so each has one schema; what the DAGs get is one of those schemas."""
    from trilha import params

    inline = []
    for path in sorted(DAGS_DIR.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.keyword) and node.arg == "params" and isinstance(node.value, ast.Dict):
                inline += [
                    f"{path.name}:{key.lineno}: {key.value}"
                    for key in node.value.keys
                    if isinstance(key, ast.Constant) and key.value in SHARED_PARAMS
                ]
    assert inline == []

    declared = {
        **params.project(),
        "project_filter": params.project(required=False)["project"],
        "dataset_filter": params.dataset()["dataset"],
    }
    for dag_id, dag in sorted(dags.items()):
        if "project" in dag.params:
            schema = dag.params.get_param("project").schema
            assert schema in (declared["project"].schema, declared["project_filter"].schema), dag_id
        if "project_prefix" in dag.params:
            assert dag.params.get_param("project_prefix").schema == declared["project_prefix"].schema
        if "key_prefix" in dag.params:
            # The schema is shared; the description (what the prefix narrows) is the DAG's own.
            assert dag.params.get_param("key_prefix").schema == params.key_prefix("x")["key_prefix"].schema
    assert dags["curated"].params.get_param("dataset").schema == declared["dataset_filter"].schema
    assert dags["dataset_split"].params.get_param("dataset").value == "inmet_hourly"
    # Capture and promotion can create a project; the filters (staging, curated, reconcile) cannot.
    creators = {d for d, dag in dags.items() if "project_prefix" in dag.params}
    assert creators == {"drive_capture", "reception_promote"}
