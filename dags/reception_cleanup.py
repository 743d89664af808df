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

from trilha.assets import DAG_DEFAULTS, TAGS, bucket
from trilha.operators.ingest import CleanupOperator


@dag(
    dag_id="reception_cleanup",
    schedule="@daily",
    doc_md=__doc__,
    tags=[*TAGS, "ingestion", "cleanup"],
    **DAG_DEFAULTS,
    params={
        "retention_days": Param(7, type="integer", minimum=0, description="Keep objects younger than this."),
        "dry_run": Param(True, type="boolean", description="Only report; delete nothing."),
        "key_prefix": Param("", type="string", description="Only consider keys starting with this."),
    },
)
def reception_cleanup() -> None:
    CleanupOperator(
        task_id="cleanup",
        retention_days="{{ params.retention_days }}",
        dry_run="{{ params.dry_run }}",
        key_prefix="{{ params.key_prefix }}",
        reception_bucket=bucket("reception"),
    )


reception_cleanup()
