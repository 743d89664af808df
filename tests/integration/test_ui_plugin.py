"""The Trilha page's FastAPI application (``trilha.ui``) against the session stack's real services.

The application is mounted under ``/trilha`` of a parent FastAPI app, as Airflow's API server mounts
it, and authenticated the way the API server authenticates: Airflow's SimpleAuthManager, initialised
here with a JWT secret, issues the token; requests carry it as ``Authorization: Bearer`` or as the UI's
``_token`` cookie. A module fixture puts two files through the real operators (upload to reception,
raw_ingest, reception_promote, staging, curated, dataset_split), each task run under a real DAG id,
one of them with three rows that break the contract and one under the key
``<script>alert(1)</script>.csv``.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest

from tests.helpers import environ, run_operator
from tests.integration.ingest_support import (
    RECEPTION,
    Scope,
    ingest,
    list_keys,
    new_scope,
    promote,
    put,
    query,
    read,
    sha,
)
from tests.integration.process_support import (
    NAME_2003,
    curated,
    sample,
    split,
    staging,
    tagged,
    unreadable_rows,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SCRIPT_NAME = "<script>alert(1)</script>.csv"
BAD_NAME = "bad-ranges.csv"
JWT_SECRET = "trilha-ui-test-secret-" + "0123456789abcdef" * 4  # pragma: allowlist secret
AUTH_ENV = {
    "AIRFLOW__CORE__AUTH_MANAGER": (
        "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
    ),
    "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
    "AIRFLOW__API_AUTH__JWT_SECRET": JWT_SECRET,
}


def run_as(dag_id: str, op: Any) -> tuple[str, dict[str, Any]]:
    run_id = f"manual__ui_{dag_id}_{os.urandom(4).hex()}"
    return run_id, dict(run_operator(op, run_id=run_id, dag_id=dag_id))


@pytest.fixture(scope="module")
def token() -> Iterator[str]:
    """A JWT for ``admin`` from the real auth manager, with the auth settings in the environment."""
    with environ(AUTH_ENV):
        from airflow import settings
        from airflow.api_fastapi.app import create_auth_manager
        from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
        from airflow.models.revoked_token import RevokedToken

        # Token validation looks the token up among the revoked (logged out) ones in Airflow's
        # metadata DB: this session's SQLite DB needs that one table.
        assert settings.engine is not None
        RevokedToken.__table__.create(settings.engine, checkfirst=True)
        manager = create_auth_manager()
        manager.init()
        yield manager.generate_jwt(SimpleAuthManagerUser(username="admin", role="admin"))


@pytest.fixture(scope="module")
def client(stack: Any, token: str) -> Iterator[Any]:
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from trilha.ui import URL_PREFIX, LazyApp

    parent = FastAPI()
    parent.mount(URL_PREFIX, LazyApp())
    with TestClient(parent, follow_redirects=False) as c:
        c.headers["Authorization"] = f"Bearer {token}"
        yield c


@pytest.fixture(scope="module")
def lake(stack: Any) -> dict[str, Any]:
    """Two files through every layer, each operator run under its DAG's id."""
    s = new_scope("ui")
    # Tagged: the session's stack has seen the sample (other tests), and the lake dedups by content.
    files = {SCRIPT_NAME: tagged(sample(NAME_2003), s.name), BAD_NAME: unreadable_rows()}
    for rel, data in files.items():
        put(stack, s.key(rel), data)
    runs = {}
    runs["raw_ingest"] = run_as("raw_ingest", ingest(key_prefix=s.keys))
    from trilha.operators.promote import PromoteOperator

    runs["reception_promote"] = run_as(
        "reception_promote", PromoteOperator(task_id="promote", project=s.name, project_prefix=s.prefix)
    )
    runs["staging"] = run_as("staging", staging(s))
    runs["curated"] = run_as("curated", curated(s))
    runs["dataset_split"] = run_as("dataset_split", split(s))
    return {"scope": s, "files": files, "runs": runs}


def project_row(client: Any, s: Scope) -> dict[str, Any]:
    # By name: the session's stack holds every test's projects, more than one page of them.
    resp = client.get("/trilha/api/overview", params={"project": s.name})
    assert resp.status_code == 200, resp.text
    (row,) = resp.json()["projects"]
    assert row["project"] == s.name
    return dict(row)


def test_the_overview_pages_projects_by_name(
    stack: Any, client: Any, lake: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pages of projects in name order (a page of one here): each page says whether more follow, the
    next starts where it ended, and together they list every registered project once."""
    import trilha.ui.app as app

    monkeypatch.setattr(app, "PROJECTS_PAGE", 1)
    registered = sorted(r["name"] for r in query(stack, "SELECT name FROM projects_registry", ()))
    seen: list[str] = []
    for offset in range(len(registered)):
        page = client.get("/trilha/api/overview", params={"projects_offset": offset}).json()
        assert (len(page["projects"]), page["more_projects"]) == (1, offset < len(registered) - 1)
        seen.append(page["projects"][0]["project"])
    assert seen == registered
    assert client.get("/trilha/api/overview", params={"project": "no such project"}).json()["projects"] == []
    assert client.get("/trilha/api/overview", params={"project": "a\nb"}).status_code == 422


def sha_of(lake: dict[str, Any], name: str) -> str:
    return sha(lake["files"][name])


# -------------------------------------------------------------------------------------- security


ENDPOINTS = [
    ("GET", "/trilha/api/overview"),
    ("GET", "/trilha/api/search?q=x.csv"),
    ("GET", "/trilha/api/trace?sha256=" + "0" * 64),
    ("POST", "/trilha/api/upload?project=p&name=x.csv"),
]


def other_secret_token() -> str:
    import jwt

    return jwt.encode({"sub": "admin", "role": "admin", "exp": 4102444800}, "not-the-secret" * 5, "HS512")


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
@pytest.mark.parametrize("credential", ["none", "garbage", "other-secret", "garbage-cookie"])
def test_every_endpoint_answers_401_without_a_valid_airflow_token(
    stack: Any, client: Any, method: str, path: str, credential: str
) -> None:
    headers = {"Authorization": ""}
    if credential == "garbage":
        headers["Authorization"] = "Bearer not.a.jwt"
    elif credential == "other-secret":
        headers["Authorization"] = f"Bearer {other_secret_token()}"
    elif credential == "garbage-cookie":
        client.cookies.set("_token", "not.a.jwt")
    before = query(stack, "SELECT count(*) AS n FROM reception_audit")[0]["n"]
    try:
        resp = client.request(method, path, headers=headers, content=b"a,b\n1,2\n")
    finally:
        client.cookies.clear()
    assert resp.status_code == 401, resp.text
    assert resp.headers["www-authenticate"] == "Bearer"
    assert "not authenticated" in resp.json()["detail"]
    assert query(stack, "SELECT count(*) AS n FROM reception_audit")[0]["n"] == before


def test_the_page_sends_a_visitor_without_a_token_to_the_airflow_login(client: Any) -> None:
    resp = client.get("/trilha/?q=abc", headers={"Authorization": ""})
    assert resp.status_code == 303
    assert resp.headers["location"].startswith("/auth/login")
    assert quote("/trilha/?q=abc", safe="") in resp.headers["location"]


def test_the_ui_cookie_authenticates_like_the_bearer_header(client: Any, token: str) -> None:
    client.cookies.set("_token", token)
    try:
        resp = client.get("/trilha/api/overview", headers={"Authorization": ""})
    finally:
        client.cookies.clear()
    assert resp.status_code == 200
    assert isinstance(resp.json()["projects"], list)


# -------------------------------------------------------------------------------------- the view


def test_overview_counts_each_layer_of_the_project(stack: Any, client: Any, lake: dict[str, Any]) -> None:
    s, files = lake["scope"], lake["files"]
    row = project_row(client, s)
    size = sum(len(d) for d in files.values())
    assert (row["prefix"], row["reception_files"], row["reception_bytes"]) == (s.prefix, 2, size)
    assert (row["stored_files"], row["stored_bytes"]) == (2, size)
    assert (row["staged_files"], row["staging_rejected_files"], row["rows_quarantined"]) == (2, 0, 3)
    assert row["rows_in"] == row["rows_ok"] + 3
    (cur,) = query(
        stack,
        "SELECT version, rows FROM curated_inventory c JOIN projects_registry p "
        "ON p.id = c.project_id WHERE p.name = %s",
        (s.name,),
    )
    assert (row["curated_version"], row["curated_rows"], row["curated_versions"]) == (
        cur["version"],
        cur["rows"],
        1,
    )
    assert row["dataset_version"] is not None
    assert row["dataset_versions"] == 1
    assert row["dataset_files"] >= 3
    assert row["dataset_bytes"] > 0


def test_last_run_of_each_dag_carries_its_counters(client: Any, lake: dict[str, Any]) -> None:
    runs = {r["dag_id"]: r for r in client.get("/trilha/api/overview").json()["runs"]}
    for dag_id, (run_id, _summary) in lake["runs"].items():
        assert runs[dag_id]["run_id"] == run_id
        assert runs[dag_id]["status"] == "success"
    run_id, summary = lake["runs"]["staging"]
    assert runs["staging"]["counters"]["rows_rejected"] == 3 == summary["rows_rejected"]
    assert runs["raw_ingest"]["counters"]["new"] == 2


@pytest.mark.parametrize(
    "how",
    ["file name", "start of name", "object key", "sha256"],
)
def test_search_finds_a_file_by_name_start_key_or_sha256(client: Any, lake: dict[str, Any], how: str) -> None:
    s = lake["scope"]
    q = {
        "file name": BAD_NAME,
        "start of name": "bad-ran",
        "object key": s.key(BAD_NAME),
        "sha256": sha_of(lake, BAD_NAME),
    }[how]
    results = client.get("/trilha/api/search", params={"q": q}).json()["results"]
    assert sha_of(lake, BAD_NAME) in [r["sha256"] for r in results]
    assert sha_of(lake, SCRIPT_NAME) not in [r["sha256"] for r in results]


def test_search_treats_like_wildcards_as_text(client: Any, lake: dict[str, Any]) -> None:
    assert client.get("/trilha/api/search", params={"q": "%"}).json()["results"] == []
    assert client.get("/trilha/api/search", params={"q": "bad_ranges"}).json()["results"] == []


def test_trace_is_a_timeline_through_every_layer_with_its_runs(client: Any, lake: dict[str, Any]) -> None:
    s = lake["scope"]
    data = client.get("/trilha/api/trace", params={"sha256": sha_of(lake, BAD_NAME)}).json()
    layers = [step["layer"] for step in data["timeline"]]
    assert layers == ["reception", "stored", "staged", "curated", "dataset"]
    by_layer = {step["layer"]: step for step in data["timeline"]}
    assert by_layer["reception"]["key"] == s.key(BAD_NAME)
    for layer, dag_id in [
        ("reception", "raw_ingest"),
        ("stored", "reception_promote"),
        ("staged", "staging"),
        ("curated", "curated"),
        ("dataset", "dataset_split"),
    ]:
        assert (by_layer[layer]["dag_id"], by_layer[layer]["run_id"]) == (dag_id, lake["runs"][dag_id][0])


def test_a_staged_file_shows_rows_and_its_quarantine_reasons_counted(
    client: Any, lake: dict[str, Any]
) -> None:
    data = client.get("/trilha/api/trace", params={"sha256": sha_of(lake, BAD_NAME)}).json()
    (staged,) = data["staged"]
    assert (staged["rows_in"] - staged["rows_ok"], staged["rows_rejected"]) == (3, 3)
    q = staged["quarantine"]
    assert q["rows"] == 3
    counts = [n for _reason, n in q["reasons"]]
    assert counts == [2, 1]
    assert "2500 UTC" in q["reasons"][0][0]
    assert "2019/13/45" in q["reasons"][1][0]
    assert [r["_line_number"] for r in q["first"]] == [10, 11, 12]


def test_the_page_escapes_a_script_named_file_and_links_runs(client: Any, lake: dict[str, Any]) -> None:
    s = lake["scope"]
    resp = client.get("/trilha/", params={"q": s.key(SCRIPT_NAME)})
    assert resp.status_code == 200
    html = resp.text
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;.csv" in html
    run_id = lake["runs"]["staging"][0]
    assert f'href="/dags/staging/runs/{quote(run_id, safe="")}"' in html
    assert "Quarantine of" not in html  # the 2003 file had nothing to quarantine


def test_the_run_page_lists_what_a_run_wrote_at_each_layer(client: Any, lake: dict[str, Any]) -> None:
    s = lake["scope"]
    raw_run = lake["runs"]["raw_ingest"][0]
    data = client.get("/trilha/api/run", params={"run_id": raw_run}).json()
    assert data["dag_id"] == "raw_ingest"
    got = sorted((o["layer"], o["key"], o["content_sha256"]) for o in data["objects"])
    assert got == sorted(("reception", s.key(n), sha_of(lake, n)) for n in (SCRIPT_NAME, BAD_NAME))
    staging_run = lake["runs"]["staging"][0]
    objects = client.get("/trilha/api/run", params={"run_id": staging_run}).json()["objects"]
    assert sorted((o["layer"], o["content_sha256"]) for o in objects) == sorted(
        ("staged", sha_of(lake, n)) for n in (SCRIPT_NAME, BAD_NAME)
    )
    html = client.get("/trilha/", params={"run_id": staging_run}).text
    assert f'href="/trilha/?sha256={sha_of(lake, BAD_NAME)}"' in html
    assert f'href="/dags/staging/runs/{quote(staging_run, safe="")}"' in html
    assert client.get("/trilha/api/run", params={"run_id": "no_such_run"}).json()["objects"] == []


def test_version_history_of_a_name(stack: Any, client: Any, lake: dict[str, Any]) -> None:
    s = new_scope("uiv")
    first, second = b"a;b\n1;2\n", b"a;b\n1;3\n"
    put(stack, s.key("same.csv"), first)
    run_operator(ingest(key_prefix=s.keys))
    run_operator(promote(s))
    put(stack, s.key("same.csv"), second)
    run_operator(ingest(key_prefix=s.keys))
    run_operator(promote(s))
    versions = client.get("/trilha/api/trace", params={"sha256": sha(second)}).json()["versions"]
    assert [(v["version"], v["sha256"]) for v in versions] == [(2, sha(second)), (1, sha(first))]


def test_drift_status_is_shown(stack: Any, client: Any) -> None:
    bucket = f"ui-drift-{os.urandom(3).hex()}"
    query(
        stack,
        "INSERT INTO meta.reconcile_report (run_id, bucket, layers, checked_at, grace_minutes, rehash, "
        "counts, drift_total, report_bucket, report_key, report_sha256, report_md5, report_bytes) VALUES "
        "('r1', %s, ARRAY['reception'], now(), 5, false, "
        '\'{"match": 4, "missing_in_lake": 1, "missing_in_audit": 0, "differ": 0, "pending": 0}\', '
        "1, 'storage-unique', 'reports/r1.json', repeat('a', 64), repeat('b', 32), 10) RETURNING id",
        (bucket,),
    )
    drift = {d["bucket"]: d for d in client.get("/trilha/api/overview").json()["drift"]}
    assert drift[bucket]["drift_total"] == 1
    assert f"<td>{bucket}</td>" in client.get("/trilha/").text
    assert "DRIFT 1" in client.get("/trilha/").text


# -------------------------------------------------------------------------------------- upload


def upload(client: Any, s: Scope, name: str, body: Any, **kw: Any) -> Any:
    return client.post("/trilha/api/upload", params={"project": s.name, "name": name}, content=body, **kw)


def reception_rows(stack: Any, key: str) -> list[dict[str, Any]]:
    return query(
        stack, "SELECT * FROM reception_audit WHERE bucket = %s AND object_key = %s", (RECEPTION, key)
    )


def test_upload_stores_hashes_and_registers_as_raw_ingest_would(
    stack: Any, client: Any, lake: dict[str, Any]
) -> None:
    s = lake["scope"]
    data = b"station;value\nA001;1,5\n" * 1000
    resp = upload(client, s, "uploads/new.csv", data)
    assert resp.status_code == 201, resp.text
    body = resp.json()
    key = s.key("uploads/new.csv")
    assert (body["key"], body["sha256"], body["size"], body["known"], body["status"]) == (
        key,
        sha(data),
        len(data),
        False,
        "new",
    )
    assert read(stack, RECEPTION, key) == data
    (row,) = reception_rows(stack, key)
    assert (row["sha256"], row["status"], row["source_kind"], row["size_bytes"]) == (
        sha(data),
        "new",
        "upload",
        len(data),
    )
    (claim,) = query(stack, "SELECT first_key FROM raw.data_files WHERE sha256 = %s", (sha(data),))
    assert claim["first_key"] == key
    # raw_ingest finds the object already registered: nothing new, nothing to register again
    _run_id, summary = run_as("raw_ingest", ingest(key_prefix=f"{s.prefix}/uploads/"))
    assert (summary["counters"]["new"], summary["counters"]["skipped"]) == (0, 1)

    again = upload(client, s, "uploads/again.csv", data)
    assert again.status_code == 200
    assert (again.json()["known"], again.json()["stored"]) == (True, False)
    assert s.key("uploads/again.csv") not in list_keys(stack, RECEPTION, s.keys)
    assert reception_rows(stack, s.key("uploads/again.csv")) == []


def test_upload_refuses_bad_input_with_a_clear_message(client: Any, lake: dict[str, Any]) -> None:
    s = lake["scope"]
    resp = client.post(
        "/trilha/api/upload", params={"project": "no such project", "name": "x.csv"}, content=b"1"
    )
    assert resp.status_code == 404
    assert "'no such project' is not registered" in resp.json()["detail"]
    resp = upload(client, s, "../x.csv", b"1")
    assert resp.status_code == 422
    assert "'..'" in resp.json()["detail"]
    resp = upload(client, s, "empty.csv", b"")
    assert resp.status_code == 422
    assert "empty file" in resp.json()["detail"]


def test_an_upload_over_the_limit_leaves_no_object_and_no_row(
    stack: Any, client: Any, lake: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    s = lake["scope"]
    monkeypatch.setenv("TRILHA_UPLOAD_MAX_BYTES", "1KiB")
    declared = upload(client, s, "big.csv", b"x" * 2000)
    assert declared.status_code == 413
    assert "2000 bytes, more than the limit of 1024 bytes" in declared.json()["detail"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit is found while receiving
        yield b"y" * 800
        yield b"y" * 800

    streamed = upload(client, s, "big2.csv", chunks())
    assert streamed.status_code == 413
    assert "larger than the limit of 1024 bytes" in streamed.json()["detail"]
    for name in ("big.csv", "big2.csv"):
        assert s.key(name) not in list_keys(stack, RECEPTION, s.keys)
        assert reception_rows(stack, s.key(name)) == []
    assert (
        query(stack, "SELECT count(*) AS n FROM raw.data_files WHERE sha256 = %s", (sha(b"y" * 1600),))[0][
            "n"
        ]
        == 0
    )


def test_a_client_that_disconnects_mid_upload_leaves_no_object_and_no_row(
    stack: Any, lake: dict[str, Any], token: str
) -> None:
    from trilha.ui import LazyApp

    s = lake["scope"]
    app = LazyApp()
    messages = iter(
        [
            {"type": "http.request", "body": b"half of a file;", "more_body": True},
            {"type": "http.disconnect"},
        ]
    )
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return next(messages)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/upload",
        "raw_path": b"/api/upload",
        "root_path": "",
        "query_string": f"project={quote(s.name)}&name=gone.csv".encode(),
        "headers": [(b"authorization", f"Bearer {token}".encode()), (b"host", b"testserver")],
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
    }
    asyncio.run(app(scope, receive, send))
    assert sent[0]["status"] == 400
    assert s.key("gone.csv") not in list_keys(stack, RECEPTION, s.keys)
    assert reception_rows(stack, s.key("gone.csv")) == []
