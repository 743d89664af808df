"""
### dataset_split

Cuts a curated version into train / validation / test under
`datasets/<project>/<dataset>/<version>/`, with a `manifest.json` (rows, sha256 of every file,
parameters, lineage back to the curated version) written **last**: a version is complete exactly
when its manifest exists.

* **hash** (default): deterministic by `key_columns`, so a row stays in its split when data is added.
  `ratios` are the train/validation/test fractions. Key on `["wmo_code"]` to keep stations whole.
* **temporal**: train before `validation_start`, validation until `test_start`, test after; nothing
  leaks from the future.

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
            "hash",
            type="string",
            enum=["hash", "temporal"],
            title="Strategy",
            description="hash: stable by key_columns. temporal: by time, nothing leaks from the future.",
        ),
        "ratios": Param(
            [0.7, 0.15, 0.15],
            type="array",
            items={"type": "number", "minimum": 0, "maximum": 1},
            minItems=3,
            maxItems=3,
            section="Hash split",
            description="hash: train, validation and test fractions, summing to 1.",
        ),
        "key_columns": Param(
            ["wmo_code", "observed_at"],
            type="array",
            items={"type": "string", "minLength": 1},
            minItems=1,
            section="Hash split",
            description="hash: columns whose values pick a row's split; ['wmo_code'] keeps stations whole.",
        ),
        "time_column": Param(
            "observed_at",
            type="string",
            minLength=1,
            section="Temporal split",
            description="temporal: the time column.",
        ),
        "validation_start": params.optional(
            "temporal (required for it): first day of validation, as YYYY-MM-DD.",
            section="Temporal split",
            format="date",
        ),
        "test_start": params.optional(
            "temporal (required for it): first day of test, as YYYY-MM-DD.",
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
        time_column="{{ params.time_column }}",
        validation_start="{{ params.validation_start or '' }}",
        test_start="{{ params.test_start or '' }}",
        curated_version="{{ params.curated_version or '' }}",
        drive_folder_id="{{ params.drive_folder_id or '' }}",
        datasets_bucket=bucket("datasets"),
        outlets=[changes(DATASETS)],
    )


dataset_split()
