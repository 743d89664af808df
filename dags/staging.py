"""
### staging

For each stored raw file not yet staged by the current code version (a fingerprint of the parsers
and contracts), parses it, cleans it and validates it against its dataset's schema contract
(`include/contracts/<dataset>.yaml`), and writes typed Parquet to
`staging-data/<project>/<dataset>/<name>__<sha12>.parquet`.

* INMET layouts (yearly files before 2019, 2019, 2020+, BDMEP exports) are detected from the
  content; other CSVs go through the generic path (delimiter, encoding, decimal and header sniffed).
* Columns become snake_case ASCII, decimal commas numbers, `-9999`/empty/`null` nulls, times UTC.
* Rows that break the contract, or cannot be parsed, go to a quarantine Parquet with a reason and
  line number per row. A file that matches no layout is recorded as rejected with the reason.

The staging inventory records rows in / ok / rejected and every output's sha256. Runs when
`reception_promote` emits `trilha_stored_raw`, and hourly; a run triggered by events stages only the
keys they name.

Tasks: `plan` lists the files to stage and cuts them into batches of `batch_size`; `stage` is one
mapped task per batch (any worker may run it; a failed batch is retried alone); `announce` emits
`trilha_staged` once, for everything the run staged, after every batch succeeded.
"""

from __future__ import annotations

from airflow.sdk import dag

from trilha import params
from trilha.assets import DAG_DEFAULTS, STAGED, STORED_RAW, TAGS, bucket, changes, on_asset_or_cron
from trilha.operators.base import AnnounceOperator
from trilha.operators.staging import StagingOperator, StagingPlanOperator


@dag(
    dag_id="staging",
    schedule=on_asset_or_cron(STORED_RAW, "45 * * * *"),
    description="Stored raw files -> typed, validated Parquet + quarantine. On trilha_stored_raw; hourly :45",
    doc_md=__doc__,
    tags=[*TAGS, "processing"],
    **DAG_DEFAULTS,
    params={
        **params.project(required=False),
        **params.key_prefix("Only stored keys starting with this; empty = every key."),
        **params.batch_size("Stored files", 100),
    },
)
def staging() -> None:
    plan = StagingPlanOperator(
        task_id="plan",
        project="{{ params.project or '' }}",
        key_prefix="{{ params.key_prefix or '' }}",
        batch_size="{{ params.batch_size }}",
        staging_bucket=bucket("staging"),
    )
    stage = StagingOperator.partial(
        task_id="stage", staging_bucket=bucket("staging"), announce_changes=False
    ).expand_kwargs(plan.output)
    announce = AnnounceOperator(
        task_id="announce", layer=STAGED, bucket=bucket("staging"), outlets=[changes(STAGED)]
    )
    plan >> stage >> announce


staging()
