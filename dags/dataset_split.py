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
uploaded to that Google Drive folder (for Colab). Runs on `trilha_curated`; emits `trilha_datasets`.
"""

from __future__ import annotations

from airflow.sdk import Param, dag

from trilha.assets import CURATED, DAG_DEFAULTS, DATASETS, TAGS, bucket
from trilha.operators.process import DatasetSplitOperator


@dag(
    dag_id="dataset_split",
    schedule=[CURATED],
    doc_md=__doc__,
    tags=[*TAGS, "processing", "datasets"],
    **DAG_DEFAULTS,
    params={
        "project": Param("inmet", type="string", minLength=1, description="Project name."),
        "dataset": Param("inmet_hourly", type="string", description="Curated dataset to split."),
        "table": Param("hourly", type="string", description="Curated table to split (hourly, daily, ...)."),
        "strategy": Param("hash", type="string", enum=["hash", "temporal"], description="Split strategy."),
        "ratios": Param(
            [0.7, 0.15, 0.15], type="array", description="hash: train, validation, test fractions (sum 1)."
        ),
        "key_columns": Param(
            ["wmo_code", "observed_at"],
            type="array",
            description="hash: columns whose values pick the split.",
        ),
        "time_column": Param("observed_at", type="string", description="temporal: the time column."),
        "validation_start": Param("", type="string", description="temporal: first day of validation (ISO)."),
        "test_start": Param("", type="string", description="temporal: first day of test (ISO)."),
        "curated_version": Param(
            "", type="string", description="Curated version (v0001...); empty = latest."
        ),
        "drive_folder_id": Param(
            "", type="string", description="Also export to this Drive folder; empty = no."
        ),
    },
)
def dataset_split() -> None:
    DatasetSplitOperator(
        task_id="split",
        project="{{ params.project or var.value.get('trilha_default_project', 'inmet') }}",
        dataset="{{ params.dataset }}",
        table="{{ params.table }}",
        strategy="{{ params.strategy }}",
        ratios="{{ params.ratios | tojson }}",
        key_columns="{{ params.key_columns | tojson }}",
        time_column="{{ params.time_column }}",
        validation_start="{{ params.validation_start }}",
        test_start="{{ params.test_start }}",
        curated_version="{{ params.curated_version }}",
        drive_folder_id="{{ params.drive_folder_id }}",
        datasets_bucket=bucket("datasets"),
        outlets=[DATASETS],
    )


dataset_split()
