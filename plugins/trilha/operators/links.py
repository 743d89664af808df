"""The extra link of every Trilha task instance: the Trilha page of what its run wrote.

Airflow 3 computes an operator's extra links when the task ends (in the task process) and keeps
each URL as an XCom the UI reads, so the link needs no plugin registration and works for any run
the task ran in. The page (``/trilha/?run_id=...``) lists the objects the run wrote at each layer,
each with its trace.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from airflow.sdk import BaseOperatorLink

if TYPE_CHECKING:
    from airflow.sdk.types import TaskInstanceKey

#: Where the plugin mounts the page (``trilha.ui.URL_PREFIX``; not imported, to keep this light).
URL_PREFIX = "/trilha"


def base_path() -> str:
    """The path of ``[api] base_url`` (empty when the UI is served at the root)."""
    from airflow.configuration import conf

    return urlsplit(conf.get("api", "base_url", fallback="") or "").path.rstrip("/")


class TrilhaRunLink(BaseOperatorLink):
    """``Trilha: what this run wrote``: the Trilha page of the task's DAG run."""

    name = "Trilha: what this run wrote"

    def get_link(self, operator: Any, *, ti_key: TaskInstanceKey) -> str:
        return f"{base_path()}{URL_PREFIX}/?run_id={quote(str(ti_key.run_id), safe='')}"
