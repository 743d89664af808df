"""
### curated

Combines each dataset's staged parts into one conformed, deduplicated table and writes a new
curated version to `curated-data/<project>/<dataset>/v<NNNN>/` when, and only when, its staged
inputs changed. For INMET: `hourly.parquet` (one row per station and UTC hour, stable sort, so a
re-run is byte-identical), `daily.parquet` (per station and UTC day: precipitation sum,
temperature min/mean/max, mean humidity, max gust, and the hours behind each figure) and
`stations.parquet` (metadata keyed by WMO code). `manifest.json` lists the exact staged inputs
(key + sha256) and is written last.

When the `trilha_snowflake` connection names an account, the version is also loaded into
Snowflake (stage, then MERGE; SQL in `include/sql/snowflake/`). Runs on `trilha_staged` and daily;
emits `trilha_curated` when it made a new version (a run that changed nothing emits no event).
"""

from __future__ import annotations

from airflow.sdk import dag

from trilha import params
from trilha.assets import CURATED, DAG_DEFAULTS, STAGED, TAGS, bucket, changes, on_asset_or_cron
from trilha.operators.curated import CuratedOperator


@dag(
    dag_id="curated",
    schedule=on_asset_or_cron(STAGED, "0 3 * * *"),
    description="Staged parts -> versioned hourly/daily/stations tables. On trilha_staged; daily 03:00 UTC.",
    doc_md=__doc__,
    tags=[*TAGS, "processing"],
    **DAG_DEFAULTS,
    params={
        **params.project(required=False),
        **params.dataset(),
    },
)
def curated() -> None:
    CuratedOperator(
        task_id="curate",
        project="{{ params.project or '' }}",
        dataset="{{ params.dataset or '' }}",
        curated_bucket=bucket("curated"),
        outlets=[changes(CURATED)],
    )


curated()
