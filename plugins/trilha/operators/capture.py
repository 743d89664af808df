"""drive_capture's operator: capture new files of a Drive folder or a local folder into reception."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from trilha import config
from trilha.assets import RAW_REGISTERED, RECEPTION
from trilha.domain.keys import validate_key_prefix
from trilha.exceptions import SourceError
from trilha.operators.base import Counters, TrilhaBaseOperator
from trilha.operators.reception import ReceptionOperator, resolve_project

if TYPE_CHECKING:
    from airflow.sdk import Context

    from trilha.hooks.sources import CaptureSource


class CaptureOperator(ReceptionOperator):
    """Capture new files from a Google Drive folder or a local/synced folder into reception.

    :param source: a Drive folder id, or an absolute local path (templated).
    :param project: the project whose prefix the files land under (templated).
    :param project_prefix: prefix to create the project with when it is new (templated).
    :param key_prefix: only capture files whose path under the source starts with this (templated).
    :param reception_bucket: reception bucket (templated).
    :param gcp_conn_id: Google connection for Drive sources (templated).
    :param workers: parallel transfers.
    """

    template_fields: Sequence[str] = (
        *TrilhaBaseOperator.template_fields,
        "source",
        "project",
        "project_prefix",
        "key_prefix",
        "reception_bucket",
        "gcp_conn_id",
    )

    def __init__(
        self,
        *,
        source: str,
        project: str,
        project_prefix: str | None = None,
        key_prefix: str = "",
        reception_bucket: str = config.DEFAULT_BUCKETS["bucket_reception"],
        gcp_conn_id: str = config.GOOGLE_CONN_ID,
        workers: int = 4,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.source = source
        self.project = project
        self.project_prefix = project_prefix
        self.key_prefix = key_prefix
        self.reception_bucket = reception_bucket
        self.gcp_conn_id = gcp_conn_id
        self.workers = workers

    def make_source(self) -> CaptureSource:
        """A path (absolute, or existing) is a local folder; anything else is a Drive folder id."""
        source = (self.source or "").strip()
        if not source:
            raise AirflowSkipException(
                "no source: set the 'source' parameter or the Variable trilha_capture_source to a Drive "
                "folder id or an absolute local path"
            )
        if source.startswith(("/", "./", "~")) or Path(source).exists():
            from trilha.hooks.sources import LocalFolderSource

            try:
                return LocalFolderSource(Path(source).expanduser(), compute_checksums=False)
            except SourceError as err:
                raise AirflowFailException(str(err)) from None
        from trilha.hooks.drive import TrilhaDriveHook

        return TrilhaDriveHook(gcp_conn_id=self.gcp_conn_id, folder_id=source)

    def run(self, context: Context, counters: Counters) -> dict[str, Any]:
        key_prefix = validate_key_prefix(self.key_prefix, what="key_prefix")
        source = self.make_source()
        self.minio.check_buckets([self.reception_bucket])
        project = resolve_project(self.audit, self.project, self.project_prefix, context["run_id"])
        self.capture_source(source, project["prefix"], key_prefix, counters, context["run_id"], self.workers)
        # Capture registers what it uploads, so it changes both layers: the objects (raw_ingest's
        # trigger) and their reception_audit rows (reception_promote's).
        changed = self.audit.reception_changes(str(context["run_id"]), self.reception_bucket)
        self.announce(context, [RECEPTION, RAW_REGISTERED], self.reception_bucket, changed)
        return {"project": project["name"], "prefix": project["prefix"], "source": source.describe()}
