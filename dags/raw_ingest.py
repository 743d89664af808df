"""
### raw_ingest

Registers every object of the reception bucket, once. Each object not yet registered (by key and
ETag) is streamed **once**, computing sha256 and md5 in the same pass, and recorded in
`reception_audit` (bucket, key, size, upload time, checksums, source): a record that outlives the
object. Its content is claimed in the uniqueness inventory `raw.data_files`; an object whose content
was claimed before is marked `duplicate` with the sha256 it duplicates.

* `landing_dir`: a local landing directory to ingest first (empty: the Variable `trilha_landing_dir`).
  Uniqueness is checked *before* uploading, so duplicate bytes never travel.
* `key_prefix`: only register objects whose key starts with this.

Empty files and unsafe keys are registered as `rejected` with the reason. Runs when
`drive_capture` emits `trilha_reception`, and every hour. Emits `trilha_raw_registered`
when it registered something; a run triggered by events lists only the projects they name.
"""

from __future__ import annotations

from airflow.sdk import dag

from trilha import params
from trilha.assets import DAG_DEFAULTS, RAW_REGISTERED, RECEPTION, TAGS, bucket, changes, on_asset_or_cron
from trilha.operators.ingest import RawIngestOperator


@dag(
    dag_id="raw_ingest",
    schedule=on_asset_or_cron(RECEPTION, "15 * * * *"),
    description="Registers reception objects once (sha256 + md5). On trilha_reception; hourly at :15.",
    doc_md=__doc__,
    tags=[*TAGS, "ingestion"],
    **DAG_DEFAULTS,
    params={
        **params.key_prefix("Only register reception keys starting with this; empty = every key."),
        "landing_dir": params.optional(
            "An absolute local directory to upload first (duplicates are not uploaded). "
            "Empty = the Variable trilha_landing_dir; none when that is empty too.",
            section=params.ADVANCED,
            maxLength=4096,
        ),
        "landing_prefix": params.relative_prefix(
            "Reception key prefix for the landing files; empty = the bucket's root."
        ),
    },
)
def raw_ingest() -> None:
    RawIngestOperator(
        task_id="register",
        key_prefix="{{ params.key_prefix or '' }}",
        landing_dir="{{ params.landing_dir or var.value.get('trilha_landing_dir', '') }}",
        landing_prefix="{{ params.landing_prefix or '' }}",
        reception_bucket=bucket("reception"),
        outlets=[changes(RAW_REGISTERED)],
    )


raw_ingest()
