"""
### reconcile

The `rclone check` of the lake: every bucket and every project compared with the audit. It never
deletes or changes an object.

Each object is **match**, **missing_in_lake** (an audit row, no object), **missing_in_audit** (an
orphan: no audit row), **differ** (size, ETag or sha256, named) or **pending** (younger than
`grace_minutes`: a run in flight writes the object first and its row after). The listing decides
most objects; only those it cannot (no md5 recorded, multipart ETags) get a HEAD for their sha256
metadata, and `rehash` reads and hashes every audited object instead (slow).

The report is one `meta.reconcile_report` row per bucket, a JSON object
`storage-unique/_reconcile/<UTC time>__<run id>.json` (its sha256 in the rows; later runs expect it)
and the run log document. `meta.audit_log` rows still `running` whose process is gone (a dead pid on
this host, or older than `abandon_after_hours`) are marked `abandoned`, with the time. Drift fails
the task, after everything is recorded, with one line naming the counts per bucket and the report.
Daily; `python -m trilha.ops.reconcile` does the same from a shell.
"""

from __future__ import annotations

from airflow.sdk import CronTriggerTimetable, Param, dag

from trilha import params
from trilha.assets import DAG_DEFAULTS, TAGS, bucket
from trilha.assets import LAYERS as LAYER_ASSETS
from trilha.operators.reconcile import ReconcileOperator

LAYERS = ["reception", "storage", "staging", "curated", "datasets"]


@dag(
    dag_id="reconcile",
    schedule=CronTriggerTimetable("@daily", timezone="UTC"),
    description="Compares every bucket and project with the audit; reports drift and fails on it. Daily.",
    doc_md=__doc__,
    tags=[*TAGS, "governance", "reconcile"],
    **DAG_DEFAULTS,
    params={
        **params.project(required=False),
        "bucket": params.optional(
            "Only this layer's bucket (the Variable trilha_bucket_<layer>); empty = every bucket.",
            title="Bucket",
            enum=[None, *LAYERS],
            values_display={"null": "every bucket", **{layer: layer for layer in LAYERS}},
        ),
        "grace_minutes": Param(
            60,
            type="integer",
            minimum=0,
            title="Grace (minutes)",
            description="Differences younger than this are 'pending', not drift (a run in flight).",
        ),
        "rehash": Param(
            False,
            type="boolean",
            title="Rehash",
            description="Read and hash every audited object instead of trusting its metadata (slow).",
            section=params.ADVANCED,
        ),
        "abandon_after_hours": Param(
            24,
            type="integer",
            minimum=1,
            title="Abandon after (hours)",
            description="A task run still 'running' in meta.audit_log after this long is marked abandoned.",
            section=params.ADVANCED,
        ),
    },
)
def reconcile() -> None:
    ReconcileOperator(
        task_id="reconcile",
        project="{{ params.project or '' }}",
        bucket="{{ params.bucket or '' }}",
        grace_minutes="{{ params.grace_minutes }}",
        rehash="{{ params.rehash }}",
        abandon_after_hours="{{ params.abandon_after_hours }}",
        reception_bucket=bucket("reception"),
        storage_bucket=bucket("storage"),
        staging_bucket=bucket("staging"),
        curated_bucket=bucket("curated"),
        datasets_bucket=bucket("datasets"),
        # It reads every layer. Declaring them also registers each layer's asset with Airflow, the
        # last one (trilha_datasets) included: no DAG schedules on that one, and an event emitted
        # through an alias for an asset Airflow does not know is dropped with a warning.
        inlets=list(LAYER_ASSETS),
    )


reconcile()
