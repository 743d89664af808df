"""The FastAPI application of the Trilha page, mounted by Airflow's API server under ``/trilha``.

Airflow does not protect a plugin's endpoints: every route here depends on :func:`require_user`,
which asks the API server's own authentication (``airflow.api_fastapi.core_api.security.get_user``:
the JWT of an ``Authorization: Bearer`` header, else the ``_token`` cookie the Airflow UI keeps after
login, validated by the configured auth manager). No valid token: ``401`` for the JSON endpoints and
a redirect to the Airflow login for the page.

Routes (all under ``/trilha``):

* ``GET /`` the page: projects and their layers, the last run of each DAG, the drift status, and
  with ``?q=`` a search, with ``?sha256=`` a content's trace, staged files and version history,
  with ``?run_id=`` what that run wrote (the extra link of every Trilha task instance);
* ``GET /api/overview``, ``GET /api/search?q=``, ``GET /api/trace?sha256=``, ``GET /api/run?run_id=``:
  the same as JSON;
* ``POST /api/upload?project=&name=`` (raw body): a file into the reception bucket.

This module is thin: the reads and the upload are :mod:`trilha.hooks.lakeview`.
"""

from __future__ import annotations

import os
import re
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from starlette.requests import ClientDisconnect

from trilha import config
from trilha.domain.keys import printable
from trilha.domain.lakeview import parse_size, reason_counts, run_summaries, timelines
from trilha.exceptions import InvalidKeyError, InvalidProjectError
from trilha.hooks.lakeview import (
    LakeViewHook,
    ProjectNotRegisteredError,
    UploadSpool,
    UploadTooLargeError,
    read_quarantine,
    upload_into_reception,
    upload_target,
)
from trilha.ui import URL_PREFIX

#: The default upload limit; ``TRILHA_UPLOAD_MAX_BYTES`` (bytes, or ``512MiB``, ``2GiB``) changes it.
DEFAULT_UPLOAD_LIMIT = 512 << 20
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
#: A search term longer than any key (1024 bytes) finds nothing; refusing it bounds the query.
MAX_QUERY = 1024
PAGE = 20
#: Objects of one run per page (a run may write thousands).
RUN_PAGE = 200
#: Staged files whose quarantine the trace reads and shows (each is one object read).
QUARANTINES_SHOWN = 3
TEMPLATES = Path(__file__).with_name("templates")


def upload_limit() -> int:
    raw = os.environ.get("TRILHA_UPLOAD_MAX_BYTES")
    return parse_size(raw) if raw else DEFAULT_UPLOAD_LIMIT


class NotAuthenticatedError(Exception):
    """No valid Airflow token on a request (the handler answers 401, or redirects the page)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


async def require_user(request: Request) -> Any:
    """The Airflow user of the request, authenticated by the API server's own ``get_user``.

    Airflow answers 403 to a token it cannot validate; here every missing, expired or invalid token
    is a 401 (not authenticated), so a client knows to log in again.
    """
    from airflow.api_fastapi.core_api.security import bearer_scheme, get_user

    credentials = await bearer_scheme(request)
    try:
        return await get_user(request, None, credentials)
    except HTTPException as err:
        if err.status_code in (401, 403):
            raise NotAuthenticatedError(str(err.detail)) from None
        raise


class LoginRequiredError(NotAuthenticatedError):
    """Not authenticated on the page: the browser is sent to the Airflow login, then back."""


async def require_page_user(request: Request) -> Any:
    try:
        return await require_user(request)
    except NotAuthenticatedError as err:
        raise LoginRequiredError(err.detail) from None


User = Annotated[Any, Depends(require_user)]
PageUser = Annotated[Any, Depends(require_page_user)]


def user_name(user: Any) -> str:
    name = str(user.get_name())
    return re.sub(r"[^A-Za-z0-9_.@-]", "_", name)[:64] or "unknown"


def buckets() -> dict[str, str]:
    """The lake's buckets: the defaults, or the ``TRILHA_BUCKET_<NAME>`` environment overrides."""
    return config.default_buckets()


def check_query(q: str) -> str:
    if len(q) > MAX_QUERY or printable(q) != q or any(ord(ch) < 32 for ch in q):
        raise HTTPException(
            422, detail=f"q: expected a file name, key or sha256 (at most {MAX_QUERY} printable characters)"
        )
    return q.strip()


def check_run_id(run_id: str) -> str:
    if not run_id or len(run_id) > 250 or any(ord(ch) < 32 for ch in run_id):
        raise HTTPException(422, detail=f"run_id: expected an Airflow run id, got {run_id[:80]!r}")
    return run_id


def check_sha256(sha256: str) -> str:
    if not SHA256_RE.fullmatch(sha256):
        raise HTTPException(422, detail=f"sha256: expected 64 lowercase hex digits, got {sha256[:80]!r}")
    return sha256


# --------------------------------------------------------------------------------------------------
# reads (each opens one audit connection, runs its few indexed statements and closes it)


#: Projects per page of the overview (by name).
PROJECTS_PAGE = 100


def overview(project: str | None = None, offset: int = 0) -> dict[str, Any]:
    """The projects (a page of them by name, or the one named), the last runs and the drift."""
    hook = LakeViewHook()
    try:
        projects = hook.projects(buckets()["bucket_reception"], PROJECTS_PAGE + 1, offset, project or None)
        runs = run_summaries(hook.last_runs())
        drift = hook.latest_reconcile_reports(None)
    finally:
        hook.close()
    return {
        "projects": projects[:PROJECTS_PAGE],
        "projects_offset": offset,
        "more_projects": len(projects) > PROJECTS_PAGE,
        "runs": [vars(r) for r in runs],
        "drift": drift,
    }


def search(q: str, offset: int) -> dict[str, Any]:
    hook = LakeViewHook()
    try:
        results = hook.search(q, PAGE + 1, offset)
    finally:
        hook.close()
    return {"q": q, "offset": offset, "results": results[:PAGE], "more": len(results) > PAGE}


def trace(sha256: str, quarantines: int = QUARANTINES_SHOWN) -> dict[str, Any]:
    hook = LakeViewHook()
    try:
        steps = timelines(hook.content_events([sha256])).get(sha256, [])
        staged = hook.staged([sha256])
        versions = hook.versions([sha256])
        run_ids = [s["run_id"] for s in steps if s.get("run_id")] + [
            s["run_id"] for s in staged if s["run_id"]
        ]
        dags = hook.run_dags(run_ids)
    finally:
        hook.close()
    for row in [*steps, *staged, *versions]:
        row["dag_id"] = dags.get(str(row.get("run_id")))
    with_quarantine = [s for s in staged if s["quarantine_key"] and s["quarantine_sha256"]][:quarantines]
    if with_quarantine:
        from trilha.hooks.minio import MinioHook

        minio = MinioHook()
        for row in with_quarantine:
            q = read_quarantine(minio, row["output_bucket"] or buckets()["bucket_staging"], row)
            row["quarantine"] = {
                "reasons": reason_counts(q["reasons"]),
                "first": q["first"],
                "rows": q["rows"],
            }
    return {"sha256": sha256, "timeline": steps, "staged": staged, "versions": versions}


def run_objects(run_id: str, offset: int) -> dict[str, Any]:
    hook = LakeViewHook()
    try:
        rows = hook.run_objects(run_id, RUN_PAGE + 1, offset)
        dag_id = hook.run_dags([run_id]).get(run_id)
    finally:
        hook.close()
    return {"run_id": run_id, "dag_id": dag_id, "offset": offset, "objects": rows[:RUN_PAGE],
            "more": len(rows) > RUN_PAGE}  # fmt: skip


def run_url(base: str, dag_id: str | None, run_id: str | None) -> str | None:
    """The Airflow UI's page of a DAG run (``None`` for a run id no DAG run recorded)."""
    if not dag_id or not run_id:
        return None
    return f"{base}/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}"


# --------------------------------------------------------------------------------------------------
# the application


def create_app() -> FastAPI:
    """The Trilha page's FastAPI application (built by :class:`trilha.ui.LazyApp` on first use)."""
    from jinja2 import Environment, FileSystemLoader

    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True)
    env.filters["bytes"] = human_bytes
    env.filters["when"] = when
    page_template = env.get_template("lake.html")
    app = FastAPI(title="Trilha", description=__doc__, docs_url=None, redoc_url=None)

    @app.exception_handler(NotAuthenticatedError)
    async def not_authenticated(request: Request, exc: NotAuthenticatedError) -> Any:
        if isinstance(exc, LoginRequiredError):
            from airflow.api_fastapi.app import get_auth_manager

            login = get_auth_manager().get_url_login(next_url=str(request.url))
            return RedirectResponse(login, status_code=303)
        return JSONResponse(
            {"detail": f"not authenticated ({exc.detail}): log in to Airflow or send a Bearer token"},
            status_code=401,
            headers={"WWW-Authenticate": "Bearer"},
        )

    @app.get("/", response_class=HTMLResponse)
    def page(
        request: Request,
        user: PageUser,
        q: str = "",
        sha256: str = "",
        run_id: str = "",
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> HTMLResponse:
        q = check_query(q)
        data: dict[str, Any] = {"overview": overview(), "q": q, "search": None, "trace": None, "run": None}
        if run_id:
            data["run"] = run_objects(check_run_id(run_id), offset)
        if q:
            data["search"] = search(q, offset)
            if not sha256 and len(data["search"]["results"]) == 1 and offset == 0:
                sha256 = data["search"]["results"][0]["sha256"]
        if sha256:
            data["trace"] = trace(check_sha256(sha256))
        base = base_of(request)
        html = page_template.render(
            **data,
            user=user_name(user),
            base=base,
            prefix=base + URL_PREFIX,
            run_url=lambda dag_id, run_id: run_url(base, dag_id, run_id),
            upload_limit=upload_limit(),
            page_size=PAGE,
        )
        return HTMLResponse(html)

    @app.get("/api/overview")
    def api_overview(user: User, project: str = "", projects_offset: Annotated[int, Query(ge=0)] = 0) -> Any:
        """The overview; ``project``: that project only; ``projects_offset``: the next page of them."""
        if len(project) > 200 or any(ord(ch) < 32 for ch in project):
            raise HTTPException(422, detail=f"project: expected a project name, got {project[:80]!r}")
        return jsonable(overview(project.strip() or None, projects_offset))

    @app.get("/api/search")
    def api_search(user: User, q: str, offset: Annotated[int, Query(ge=0)] = 0) -> Any:
        q = check_query(q)
        if not q:
            raise HTTPException(422, detail="q: expected a file name, key or sha256, got nothing")
        return jsonable(search(q, offset))

    @app.get("/api/trace")
    def api_trace(user: User, sha256: str) -> Any:
        return jsonable(trace(check_sha256(sha256)))

    @app.get("/api/run")
    def api_run(user: User, run_id: str, offset: Annotated[int, Query(ge=0)] = 0) -> Any:
        return jsonable(run_objects(check_run_id(run_id), offset))

    @app.post("/api/upload")
    async def api_upload(request: Request, user: User, project: str, name: str) -> Any:
        return await upload(request, user_name(user), project, name)

    return app


async def upload(request: Request, user: str, project: str, name: str) -> Any:
    """Receive the body into a spool (hashing it), then store and register it (in a worker thread).

    Refusals come before any byte is stored: a bad project or name (422/404), a declared or actual
    size over the limit (413), a client gone mid-body (nothing stored; no answer to give).
    """
    limit = upload_limit()
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, detail=too_large(int(declared), limit))
    hook = LakeViewHook()
    spool = UploadSpool(limit)
    try:
        try:
            target = await run_in_threadpool(upload_target, hook, project, name)
        except (InvalidProjectError, InvalidKeyError) as err:
            raise HTTPException(422, detail=str(err)) from None
        except ProjectNotRegisteredError as err:
            raise HTTPException(404, detail=str(err)) from None
        try:
            async for chunk in request.stream():
                spool.write(chunk)
        except UploadTooLargeError as err:
            raise HTTPException(413, detail=str(err)) from None
        except ClientDisconnect:
            # Nothing reached the lake yet; the client is gone, so there is no one to answer.
            raise HTTPException(400, detail="upload: the client disconnected; nothing was stored") from None
        from trilha.hooks.minio import MinioHook

        try:
            result = await run_in_threadpool(
                upload_into_reception, hook, MinioHook(), buckets()["bucket_reception"], target, spool, user
            )
        except InvalidKeyError as err:
            raise HTTPException(422, detail=str(err)) from None
    finally:
        spool.close()
        hook.close()
    return JSONResponse(result, status_code=201 if result["stored"] else 200)


def too_large(size: int, limit: int) -> str:
    return (
        f"upload: the file has {size} bytes, more than the limit of {limit} bytes; nothing was stored "
        "(raise TRILHA_UPLOAD_MAX_BYTES, or put large files in reception with raw_ingest)"
    )


def base_of(request: Request) -> str:
    """The Airflow UI's base path (``[api] base_url``'s path): the mount's root path less ``/trilha``."""
    root = str(request.scope.get("root_path") or "")
    return root.removesuffix(URL_PREFIX)


def jsonable(value: Any) -> Any:
    from fastapi.encoders import jsonable_encoder

    return jsonable_encoder(value)


def human_bytes(value: Any) -> str:
    size = float(value or 0)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"


def when(value: Any) -> str:
    return value.isoformat(sep=" ", timespec="seconds") if isinstance(value, datetime) else ""
