"""Extra links of every Trilha task instance, to the Trilha page (the UI plugin's ``/trilha/``).

Airflow 3 evaluates an operator's own links on the worker right after the task succeeds and keeps
each URL as an XCom (``_link_<class name>``) that the UI reads, so the links need no plugin
registration and can use what the operator declared during its run (its first output), with no
lookup afterwards. The URLs are relative to the API server, under ``[api] base_url``'s path:

* "Trilha: what this run wrote": the page of the task's DAG run (``?run_id=``): the objects the
  run wrote at each layer, each with its trace;
* "Trilha: output": a search for the first object (or table) the task wrote, by its key;
* "Trilha: trace": the trace of that object by its sha256 (its key when it has none).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from airflow.sdk import BaseOperatorLink

if TYPE_CHECKING:
    from airflow.sdk.types import TaskInstanceKey

    from trilha.domain.touched import Dataset

#: Where the plugin mounts the page (``trilha.ui.URL_PREFIX``; not imported, to keep this light).
URL_PREFIX = "/trilha"


def base_path() -> str:
    """The path of ``[api] base_url`` (empty when the UI is served at the root)."""
    from airflow.configuration import conf

    return urlsplit(conf.get("api", "base_url", fallback="") or "").path.rstrip("/")


def search_url(query: str) -> str:
    """The Trilha page's search for ``query`` (a key, name or sha256)."""
    return f"{base_path()}{URL_PREFIX}/?q={quote(query, safe='/')}"


def first_output(operator: Any) -> Dataset | None:
    """The first object or table the operator's last run declared it wrote, if any."""
    ran = getattr(operator, "lineage_run", None)
    if ran is None:
        return None
    first: Dataset | None = ran[1].lineage.outputs.first
    return first


class TrilhaRunLink(BaseOperatorLink):
    """``Trilha: what this run wrote``: the Trilha page of the task's DAG run."""

    name = "Trilha: what this run wrote"

    def get_link(self, operator: Any, *, ti_key: TaskInstanceKey) -> str:
        return f"{base_path()}{URL_PREFIX}/?run_id={quote(str(ti_key.run_id), safe='')}"


class TrilhaOutputLink(BaseOperatorLink):
    """``Trilha: output``: the first object (or table) this task wrote, searched by its key."""

    name = "Trilha: output"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        out = first_output(operator)
        return "" if out is None else search_url(out.name)


class TrilhaTraceLink(BaseOperatorLink):
    """``Trilha: trace``: the trace of the first object this task wrote, by its sha256 (content), or
    by its key when it has none (a table, an aggregate)."""

    name = "Trilha: trace"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        out = first_output(operator)
        return "" if out is None else search_url(out.sha256 or out.name)
