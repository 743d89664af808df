"""The ingestion operators without a stack: their declared counters, and their DAGs' templates rendered
the way Airflow renders them (params -> operator fields)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from trilha.domain import drift
from trilha.operators.base import COUNTER_NAMES, DECLARED_COUNTERS, Counters
from trilha.operators.capture import CaptureOperator
from trilha.operators.cleanup import CleanupOperator
from trilha.operators.ingest import RawIngestOperator
from trilha.operators.promote import PromoteOperator

DAGS = Path(__file__).resolve().parents[2] / "dags"


def test_counters_report_every_base_name_and_only_the_optional_ones_counted() -> None:
    counters = Counters()
    counters.add("seen", 3)
    counters.add("would_delete", 2)
    counters.problem("rejected", "inmet/vazio.csv", "empty file (0 bytes)")
    assert counters.as_dict() == {
        **dict.fromkeys(COUNTER_NAMES, 0),
        "seen": 3,
        "rejected": 1,
        "would_delete": 2,
    }
    assert "deleted" not in counters.as_dict()
    assert counters["deleted"] == 0


def test_an_undeclared_counter_is_a_bug() -> None:
    counters = Counters()
    with pytest.raises(KeyError, match="'copeid' is not declared"):
        counters.add("copeid")
    with pytest.raises(KeyError, match="not declared"):
        counters.problem("faild", "x.csv", "typo in the kind")
    assert counters.as_dict() == dict.fromkeys(COUNTER_NAMES, 0)


def test_reconcile_statuses_are_declared_counters() -> None:
    assert set(drift.STATUSES) <= DECLARED_COUNTERS


def load_dag(name: str) -> Any:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS / f"{name}.py"))
    assert bag.import_errors == {}
    return bag.dags[name]


def rendered(dag: Any, task_id: str, **params: Any) -> Any:
    task = dag.get_task(task_id)
    values = {name: p.value for name, p in dag.params.items()}
    values.update(params)
    context: dict[str, Any] = {"params": values, "var": {"value": {}}}
    task.render_template_fields(context)
    return task


@pytest.mark.parametrize(
    ("dag_id", "task_id", "cls"),
    [
        ("drive_capture", "capture", CaptureOperator),
        ("raw_ingest", "register", RawIngestOperator),
        ("reception_promote", "promote", PromoteOperator),
        ("reception_cleanup", "cleanup", CleanupOperator),
    ],
)
def test_each_ingestion_dag_runs_its_operator(dag_id: str, task_id: str, cls: type) -> None:
    assert type(load_dag(dag_id).get_task(task_id)) is cls


def test_cleanup_defaults_render_a_dry_run_over_every_key() -> None:
    task = rendered(load_dag("reception_cleanup"), "cleanup")
    assert (task.key_prefix, task.dry_run_only, task.retention_days) == ("", "True", "7")


def test_cleanup_user_values_reach_the_operator() -> None:
    task = rendered(
        load_dag("reception_cleanup"), "cleanup", dry_run=False, retention_days=30, key_prefix="inmet/"
    )
    assert (task.key_prefix, task.dry_run_only, task.retention_days) == ("inmet/", "False", "30")


def test_promote_renders_the_project_from_params_and_an_empty_prefix_not_none() -> None:
    dag = load_dag("reception_promote")
    task = rendered(dag, "promote", project="clima sp", project_prefix=None, key_prefix=None)
    assert (task.project, task.project_prefix, task.key_prefix) == ("clima sp", "", "")
    task = rendered(load_dag("reception_promote"), "promote", project="clima sp", key_prefix="clima-sp/2024/")
    assert task.key_prefix == "clima-sp/2024/"
