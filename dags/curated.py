"""
### curated

Combines each dataset's staged parts into conformed, deduplicated Apache Iceberg tables and
publishes a new curated version (`v0001`, `v0002`, ...) when, and only when, its staged inputs
changed. For INMET: `hourly` (one row per station and UTC hour; the part stored later wins, hour by
hour), `daily` (per station and local standard day, the station's fixed UTC offset from its UF
and longitude in `utc_offset_hours`: precipitation sum, temperature min/mean/max, mean humidity,
max gust, and the hours behind each figure; a figure from fewer than `min_hours_for_daily` valid
hours is empty), `daily_utc` (the same by UTC day), `station_years` and `stations` (one row per
station and position, with `valid_from`/`valid_to`). The tables are partitioned by year: a run
rewrites only the years its new or removed inputs touch (and every table when the curated logic or
`min_hours_for_daily` changed). The catalog is in the audit PostgreSQL, the files under
`curated-data/<project>/<dataset>/_iceberg/`, and each version's `manifest.json` lists its exact
staged inputs (key + sha256) and snapshots.

Tasks: `plan` finds the datasets whose inputs changed and cuts the years to rewrite into shards of
at most `batch_size` staged parts (along station boundaries, so the result is the same whatever the
batch size); `write` is one mapped task per shard (any worker may run it; a failed shard is retried
alone, and nothing is published until every shard is written); `commit` commits one snapshot per
table and publishes the version, under the dataset's lock (the one serialised step).

Runs on `trilha_staged` and daily; emits `trilha_curated` when it made a new version (a run that
changed nothing emits no event).
"""

from __future__ import annotations

from airflow.sdk import dag

from trilha import params
from trilha.assets import CURATED, DAG_DEFAULTS, STAGED, TAGS, bucket, changes, on_asset_or_cron
from trilha.operators.curated import (
    BATCH_SIZE,
    MIN_HOURS_FOR_DAILY,
    CuratedCommitOperator,
    CuratedPlanOperator,
    CuratedWriteOperator,
)


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
        **params.batch_size("Staged parts (of one year)", BATCH_SIZE),
        **params.min_hours_for_daily(MIN_HOURS_FOR_DAILY),
    },
)
def curated() -> None:
    plan = CuratedPlanOperator(
        task_id="plan",
        project="{{ params.project or '' }}",
        dataset="{{ params.dataset or '' }}",
        batch_size="{{ params.batch_size }}",
        min_hours_for_daily="{{ params.min_hours_for_daily }}",
        curated_bucket=bucket("curated"),
    )
    write = CuratedWriteOperator.partial(task_id="write", curated_bucket=bucket("curated")).expand_kwargs(
        plan.output
    )
    commit = CuratedCommitOperator(
        task_id="commit",
        targets=plan.output["targets"],
        written=write.output,
        curated_bucket=bucket("curated"),
        trigger_rule="none_failed",
        outlets=[changes(CURATED)],
    )
    plan >> write >> commit


curated()
