"""
### dataset_split

Cuts a curated version into train / validation / test under
`datasets/<project>/<dataset>/<version>/`, with a `manifest.json` (rows, sha256 of every file,
parameters, lineage back to the curated version) written **last**: a version is complete exactly
when its manifest exists.

* **temporal** (default): train before `validation_start`, validation until `test_start`, test
  after; nothing leaks from the future. Without the dates, the cut-offs are the `ratios` of the
  table's time span (the days are in the manifest).
* **hash**: deterministic by group, so a row stays in its split when data is added. `group_by`
  makes the group: `month` (default) puts all rows of a `key_columns` value and a month (a station-
  month) in one split; `row` hashes each row by `key_columns`, which on hourly weather puts a
  station's neighbouring hours in train and test (a leak).

Versions are named `v<NNNN>-<how>` (`v0001-temporal`, `v0002-hash-station-month`): the project's
N-th cut of the dataset and how it was cut. The manifest holds the content digest
(`content_sha256`), the strategy, the grouping and the lineage.

The same cut of the same curated version is made once. With `drive_folder_id`, the version is also
uploaded to that Google Drive folder (for Colab). Runs on `trilha_curated`; emits `trilha_datasets`
when it made a new cut. A run triggered by events cuts only the projects they name.
"""

from __future__ import annotations

from airflow.sdk import Param, dag

from trilha import params
from trilha.assets import CURATED, DAG_DEFAULTS, DATASETS, TAGS, bucket, changes
from trilha.operators.split import DatasetSplitOperator


@dag(
    dag_id="dataset_split",
    schedule=[CURATED],
    description="Curated version -> train/validation/test files with a manifest. On trilha_curated.",
    doc_md=__doc__,
    tags=[*TAGS, "processing", "datasets"],
    **DAG_DEFAULTS,
    params={
        **params.project(can_create=False),
        **params.dataset("Required. The curated dataset to split (inmet_hourly, inmet_bdmep_daily, ...)."),
        "table": Param(
            "hourly",
            type="string",
            minLength=1,
            title="Table",
            description="Required. The curated table to split (hourly, daily or stations for INMET).",
        ),
        "strategy": Param(
            "temporal",
            type="string",
            enum=["temporal", "hash"],
            title="Strategy",
            description="temporal (for time series): train before validation before test, so nothing "
            "leaks from the future. hash: by a stable hash of each row's group (see group_by); a "
            "group never changes split when data is added, but train and test cover the same period.",
        ),
        "ratios": Param(
            [0.7, 0.15, 0.15],
            type="array",
            items={"type": "number", "minimum": 0, "maximum": 1},
            minItems=3,
            maxItems=3,
            title="Ratios",
            description="Train, validation and test fractions, summing to 1: of the groups for hash; of "
            "the time span for temporal without dates.",
        ),
        "key_columns": Param(
            ["wmo_code", "observed_at"],
            type="array",
            items={"type": "string", "minLength": 1},
            minItems=1,
            section="Hash split",
            description="hash: the columns that make a row's group, with time_column replaced by its "
            "period when group_by is one; ['wmo_code'] keeps stations whole.",
        ),
        "group_by": Param(
            "month",
            type="string",
            enum=["month", "week", "day", "year", "row"],
            section="Hash split",
            description="hash: month puts every row of a station-month (the key_columns and the month of "
            "time_column) in one split, so neighbouring hours cannot be in train and test (a leak that "
            "flatters a model); week, day and year likewise. row hashes each row alone: finer, but leaky "
            "for time series.",
        ),
        "time_column": Param(
            "observed_at",
            type="string",
            minLength=1,
            section="Temporal split",
            description="temporal: the time column (date for the daily tables); hash: the one grouped "
            "by period.",
        ),
        "validation_start": params.optional(
            "temporal: first day of validation, as YYYY-MM-DD; empty (with test_start): from ratios.",
            section="Temporal split",
            format="date",
        ),
        "test_start": params.optional(
            "temporal: first day of test, as YYYY-MM-DD; empty (with validation_start): from ratios.",
            section="Temporal split",
            format="date",
        ),
        "curated_version": params.optional(
            "The curated version to split (v0001, ...); empty = the latest.",
            section=params.ADVANCED,
            pattern=r"^v[0-9]{4,}$",
        ),
        "drive_folder_id": params.optional(
            "Also upload the dataset version to this Google Drive folder id; empty = no export.",
            section=params.EXPORT,
            pattern=r"^[A-Za-z0-9_-]+$",
        ),
    },
)
def dataset_split() -> None:
    DatasetSplitOperator(
        task_id="split",
        project="{{ params.project }}",
        dataset="{{ params.dataset }}",
        table="{{ params.table }}",
        strategy="{{ params.strategy }}",
        ratios="{{ params.ratios | tojson }}",
        key_columns="{{ params.key_columns | tojson }}",
        group_by="{{ params.group_by }}",
        time_column="{{ params.time_column }}",
        validation_start="{{ params.validation_start or '' }}",
        test_start="{{ params.test_start or '' }}",
        curated_version="{{ params.curated_version or '' }}",
        drive_folder_id="{{ params.drive_folder_id or '' }}",
        datasets_bucket=bucket("datasets"),
        outlets=[changes(DATASETS)],
    )


dataset_split()
