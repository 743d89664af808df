"""The Trilha page inside the Airflow UI: an Airflow 3 plugin (``plugins/trilha_plugin.py``).

The plugin mounts :data:`app` under :data:`URL_PREFIX` of the API server and adds the page to the
navigation (an external view, drawn by the Airflow UI in a frame at ``/plugin/trilha``). :data:`app`
is a thin ASGI callable that builds the FastAPI application (:func:`trilha.ui.app.create_app`) on
its first request: every Airflow process loads plugins (the scheduler, the dag-processor, each task
process), and none but the API server should pay for FastAPI, Jinja2 or the audit hooks, nor touch
a database at import.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

URL_PREFIX = "/trilha"
NAME = "Trilha"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[
    [Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]
]


class LazyApp:
    """An ASGI application that imports and builds the real one on first use (once, thread-safe)."""

    def __init__(self) -> None:
        self._app: ASGIApp | None = None
        self._lock = threading.Lock()

    def get(self) -> ASGIApp:
        if self._app is None:
            with self._lock:
                if self._app is None:
                    from trilha.ui.app import create_app

                    self._app = create_app()
        return self._app

    async def __call__(
        self,
        scope: Scope,
        receive: Callable[[], Awaitable[Message]],
        send: Callable[[Message], Awaitable[None]],
    ) -> None:
        await self.get()(scope, receive, send)

    def __repr__(self) -> str:
        return "trilha.ui.app:create_app (built on first request)"


app = LazyApp()

#: ``AirflowPlugin.fastapi_apps`` and ``external_views`` entries.
FASTAPI_APP = {"app": app, "url_prefix": URL_PREFIX, "name": NAME}
EXTERNAL_VIEW = {
    "name": NAME,
    "href": f"{URL_PREFIX}/",
    "url_route": "trilha",
    "destination": "nav",
}
