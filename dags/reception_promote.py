"""
### reception_promote

Promotes registered reception objects into `storage-unique/<project prefix>/`: the controlled move
from reception into the lake's content-unique storage.

* `project`: the project (from `projects_registry`); `project_prefix` creates it when new.
* `key_prefix`: reception keys to promote; empty means the project's prefix.

For each object, the **double check**: a `storage_audit` row *and* an object physically present in
storage with the same sha256 means skip (duplicate). Otherwise a **server-side copy**, verified
(size, md5 ETag, sha256 metadata), and only then the `storage_audit` row. The same name with
different content becomes a new version (`name__v2.ext`, recorded in `meta.version_history`), never
an overwrite. Reports copied / duplicates / failed. Runs on `trilha_raw_registered` and hourly;
emits `trilha_stored_raw` when it stored something. A run triggered by events promotes the keys they
name (the projects come from the events, not from `project`).
"""

from __future__ import annotations

from airflow.sdk import dag

from trilha import params
from trilha.assets import DAG_DEFAULTS, RAW_REGISTERED, STORED_RAW, TAGS, bucket, changes, on_asset_or_cron
from trilha.operators.promote import PromoteOperator


@dag(
    dag_id="reception_promote",
    schedule=on_asset_or_cron(RAW_REGISTERED, "30 * * * *"),
    description="Verified copies of registered files into storage. On trilha_raw_registered; hourly :30.",
    doc_md=__doc__,
    tags=[*TAGS, "ingestion"],
    **DAG_DEFAULTS,
    params={
        **params.project(),
        **params.key_prefix("Only reception keys starting with this; empty = the project's prefix."),
    },
)
def reception_promote() -> None:
    PromoteOperator(
        task_id="promote",
        project="{{ params.project }}",
        project_prefix="{{ params.project_prefix or '' }}",
        key_prefix="{{ params.key_prefix or '' }}",
        reception_bucket=bucket("reception"),
        storage_bucket=bucket("storage"),
        outlets=[changes(STORED_RAW)],
    )


reception_promote()
