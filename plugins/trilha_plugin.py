"""Airflow's plugin manager loads this file from the plugins folder: the Trilha page in the UI.

Only this file is scanned (``plugins/.airflowignore`` keeps the plugin manager out of the ``trilha``
package, whose modules are imported as a package, not one by one as plugins). Importing it costs
the two small modules below; the page's application is built on its first request
(:class:`trilha.ui.LazyApp`).
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from trilha.ui import EXTERNAL_VIEW, FASTAPI_APP


class TrilhaPlugin(AirflowPlugin):
    """The lake view, the trace of a file and the upload into reception, behind the Airflow login."""

    name = "trilha"
    fastapi_apps = [FASTAPI_APP]
    external_views = [EXTERNAL_VIEW]
