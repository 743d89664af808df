"""
### reception_cleanup

The controlled cleanup of the reception bucket. An object is deleted only when **all** hold:

1. its `reception_audit` row exists;
2. its content is in `storage_audit` **and** 3. verified present in storage (same size and sha256);
4. it still is the audited content (size and ETag unchanged since audit);
5. it is older than `retention_days`.

`dry_run` is **on by default**: the run lists what it would delete and why every other object is
kept. Every decision is recorded in `meta.cleanup_log`, deletions before they are sent. Daily.
"""

from __future__ import annotations

from airflow.sdk import Param, dag

from trilha import params
from trilha.assets import DAG_DEFAULTS, TAGS, bucket
from trilha.operators.cleanup import CleanupOperator


@dag(
    dag_id="reception_cleanup",
    schedule="@daily",
    description="Deletes only verified-stored, unchanged, old reception objects. Dry run by default. Daily.",
    doc_md=__doc__,
    tags=[*TAGS, "ingestion", "cleanup"],
    **DAG_DEFAULTS,
    params={
        "dry_run": Param(
            True,
            type="boolean",
            title="Dry run",
            description="Only report what would be deleted; untick to delete.",
        ),
        "retention_days": Param(
            7,
            type="integer",
            minimum=0,
            title="Retention (days)",
            description="Keep reception objects younger than this many days.",
        ),
        **params.key_prefix("Only consider reception keys starting with this; empty = every key."),
    },
)
def reception_cleanup() -> None:
    CleanupOperator(
        task_id="cleanup",
        retention_days="{{ params.retention_days }}",
        dry_run="{{ params.dry_run }}",
        key_prefix="{{ params.key_prefix or '' }}",
        reception_bucket=bucket("reception"),
    )


reception_cleanup()
