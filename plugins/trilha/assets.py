"""The Assets that chain Trilha's DAGs (data-aware scheduling), and the defaults every DAG shares.

A DAG that changes a layer emits that layer's asset; the next DAG is scheduled on it, with a cron
fallback so a missed event never leaves data waiting for long. A task lists ``changes(<layer asset>)``
in its outlets, not the asset itself: Airflow registers an event for every static Asset outlet of a
successful task, while through the alias only the events the task adds at run time are registered,
so a run that changed nothing emits nothing (see :mod:`trilha.domain.events` for what an event carries).
Light on purpose: DAG files import this at parse time.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import Asset, AssetAlias, AssetOrTimeSchedule, CronTriggerTimetable

from trilha import config

# The URIs name the layer in Trilha's own ``x-trilha`` scheme, not an ``s3://`` bucket: bucket names
# are settings (a static URI would name the default bucket whatever the deployment uses), and
# Airflow normalises any other scheme through every installed provider's asset-URI handler, which
# imports boto3 and the Google Cloud clients into every DAG parse (about 700 modules, ~2/3 of
# ``airflow.sdk``'s own import time; ``bench/dag_import.py``). ``x-`` schemes are left as written.
RECEPTION = Asset(name="trilha_reception", uri="x-trilha://reception")
RAW_REGISTERED = Asset(name="trilha_raw_registered", uri="x-trilha://audit/reception_audit")
STORED_RAW = Asset(name="trilha_stored_raw", uri="x-trilha://stored")
STAGED = Asset(name="trilha_staged", uri="x-trilha://staged")
CURATED = Asset(name="trilha_curated", uri="x-trilha://curated")
DATASETS = Asset(name="trilha_datasets", uri="x-trilha://datasets")

START_DATE = datetime(2026, 1, 1, tzinfo=UTC)
#: Where templated SQL is looked up: ``include/sql`` as :func:`trilha.config.sql_dir` locates it.
SQL_SEARCHPATH = [str(config.sql_dir())]

DEFAULT_ARGS = {
    "owner": "trilha",
    "retries": 2,
    "retry_delay": timedelta(seconds=30),
}
TAGS = ["trilha"]


def on_asset_or_cron(asset: Asset, cron: str) -> AssetOrTimeSchedule:
    """Run when ``asset`` is updated, and on ``cron`` (UTC) as a fallback."""
    return AssetOrTimeSchedule(timetable=CronTriggerTimetable(cron, timezone="UTC"), assets=[asset])


#: Every layer asset, in pipeline order.
LAYERS = (RECEPTION, RAW_REGISTERED, STORED_RAW, STAGED, CURATED, DATASETS)


def changes(asset: Asset) -> AssetAlias:
    """The outlet through which a task emits ``asset``'s event only when it changed that layer.

    The task adds the event at run time (``outlet_events[alias].add(asset, extra=...)``, see
    :meth:`trilha.operators.base.TrilhaBaseOperator.emit_change`) to the layer asset itself, so
    consumers keep scheduling on the plain layer asset.
    """
    return AssetAlias(name=f"{asset.name}_changes")


def bucket(name: str) -> str:
    """A templated bucket name: the Airflow Variable ``trilha_bucket_<name>``, else the seeds' default."""
    default = config.DEFAULT_BUCKETS[f"bucket_{name}"]
    return "{{ var.value.get('trilha_bucket_" + name + "', '" + default + "') }}"


#: What every Trilha DAG shares; each DAG file still states its id, schedule, doc, tags and params.
DAG_DEFAULTS = {
    "start_date": START_DATE,
    "catchup": False,
    "max_active_runs": 1,
    "default_args": DEFAULT_ARGS,
    "template_searchpath": SQL_SEARCHPATH,
}
