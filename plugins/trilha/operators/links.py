"""Extra links of every Trilha task: from a task instance to what it wrote, on the Trilha page.

The Trilha page is served by Trilha's Airflow plugin under the API server at ``/trilha/``, and
searches by file name, key or sha256 (``?q=``). The links are relative, so they follow the API
server's host and base URL. Airflow 3 evaluates an operator's own links on the worker right after the
task succeeds and stores each URL as an XCom (``_link_<class name>``), which the UI reads: so a link
can use what the operator declared during its run (its first output), with no lookup afterwards.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from airflow.sdk import BaseOperatorLink

if TYPE_CHECKING:
    from trilha.domain.touched import Dataset

#: Where the Trilha page is mounted under the API server (the UI plugin's ``url_prefix``).
PAGE = "/trilha/"


def search_url(query: str) -> str:
    """The Trilha page's search for ``query`` (a key, name or sha256), as a relative URL."""
    return f"{PAGE}?q={quote(query, safe='/')}"


def first_output(operator: Any) -> Dataset | None:
    """The first object or table the operator's last run declared it wrote, if any."""
    ran = getattr(operator, "lineage_run", None)
    if ran is None:
        return None
    first: Dataset | None = ran[1].lineage.outputs.first
    return first


class TrilhaOutputLink(BaseOperatorLink):
    """ "Trilha: output": the first object (or table) this task wrote, searched by its key."""

    name = "Trilha: output"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        out = first_output(operator)
        return "" if out is None else search_url(out.name)


class TrilhaTraceLink(BaseOperatorLink):
    """ "Trilha: trace": the trace of the first object this task wrote, by its sha256 (content), or by
    its key when it has none (a table, an aggregate)."""

    name = "Trilha: trace"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        out = first_output(operator)
        return "" if out is None else search_url(out.sha256 or out.name)
