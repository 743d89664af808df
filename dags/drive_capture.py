"""
### drive_capture

Captures new files from a **Google Drive folder** (recursively, shared drives too) or a **local or
synced folder** into the reception bucket, under the project's prefix.

* `source`: a Drive folder id, or an absolute local path (an rclone mount of Drive works too).
  Empty means the Variable `trilha_capture_source`; when that is empty too, the run is skipped.
* `project`: the project whose prefix the files land under; `project_prefix` creates it when new.
* `key_prefix`: only files whose path under the source starts with this.

Content already captured (same sha256, or Drive md5 when Drive has no sha256) is skipped **before
any byte moves**. Google Docs/Sheets/Slides are exported (PDF/XLSX/PDF). Each captured file is
registered in `reception_audit` and claimed in `raw.data_files`. Emits `trilha_reception` and
`trilha_raw_registered` when it captured something (nothing new, no event).
"""

from __future__ import annotations

from airflow.sdk import dag

from trilha import params
from trilha.assets import DAG_DEFAULTS, RAW_REGISTERED, RECEPTION, TAGS, bucket, changes
from trilha.operators.capture import CaptureOperator


@dag(
    dag_id="drive_capture",
    schedule="@hourly",
    description="Drive folder or local folder -> reception bucket, skipping known content. Hourly.",
    doc_md=__doc__,
    tags=[*TAGS, "ingestion"],
    **DAG_DEFAULTS,
    params={
        "source": params.optional(
            "A Google Drive folder id, or an absolute local path. Empty = the Variable "
            "trilha_capture_source (the run is skipped when that is empty too).",
            maxLength=4096,
        ),
        **params.project(),
        **params.key_prefix("Only capture files whose path under the source starts with this."),
    },
)
def drive_capture() -> None:
    CaptureOperator(
        task_id="capture",
        source="{{ params.source or var.value.get('trilha_capture_source', '') }}",
        project="{{ params.project }}",
        project_prefix="{{ params.project_prefix or '' }}",
        key_prefix="{{ params.key_prefix or '' }}",
        reception_bucket=bucket("reception"),
        outlets=[changes(RECEPTION), changes(RAW_REGISTERED)],
    )


drive_capture()
