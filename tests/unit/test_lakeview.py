"""The Trilha page's pure shaping (``trilha.domain.lakeview``) and the plugin's discovery.

The plugin test loads the plugins folder exactly as Airflow's plugin manager does, in a fresh
interpreter, and checks that only ``trilha_plugin.py`` is loaded, that it registers the FastAPI app
and the navigation entry, and that importing it pulls in neither FastAPI's application module, the
audit hooks nor a database driver (the application is built on the first request).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime

import pytest

from tests.conftest import REPO
from trilha.domain.lakeview import like_start, parse_size, reason_counts, run_summaries, timelines


def at(minute: int) -> datetime:
    return datetime(2026, 1, 1, 12, minute, tzinfo=UTC)


def test_like_start_escapes_wildcards_and_the_escape_character() -> None:
    assert like_start("a_b%c") == "a\\_b\\%c%"
    assert like_start("x\\y") == "x\\\\y%"
    assert like_start("") == "%"


def test_run_summaries_sum_counters_of_the_last_try_and_take_the_worst_status() -> None:
    rows = [
        {"dag_id": "staging", "run_id": "r", "task_id": "stage", "map_index": 0, "try_number": 1,
         "status": "failed", "counters": {"rows_ok": 99}, "error": "boom",
         "started_at": at(1), "ended_at": at(2)},
        {"dag_id": "staging", "run_id": "r", "task_id": "stage", "map_index": 0, "try_number": 2,
         "status": "success", "counters": {"rows_ok": 10, "bytes": 5}, "error": None,
         "started_at": at(3), "ended_at": at(4)},
        {"dag_id": "staging", "run_id": "r", "task_id": "stage", "map_index": 1, "try_number": 1,
         "status": "running", "counters": {"rows_ok": 7, "problems": ["x"], "done": True}, "error": None,
         "started_at": at(2), "ended_at": None},
        {"dag_id": "curated", "run_id": "c", "task_id": "commit", "map_index": -1, "try_number": 1,
         "status": "success", "counters": {}, "error": None, "started_at": at(5), "ended_at": at(9)},
    ]  # fmt: skip
    cur, stg = run_summaries(rows)
    assert (cur.dag_id, cur.status, cur.tasks) == ("curated", "success", 1)
    assert (stg.dag_id, stg.run_id, stg.status, stg.tasks) == ("staging", "r", "running", 2)
    assert stg.counters == {"rows_ok": 17, "bytes": 5}
    assert (stg.started_at, stg.ended_at) == (at(2), at(4))
    assert stg.errors == []


def test_timelines_put_the_source_first_and_layers_in_lake_order() -> None:
    sha = "a" * 64
    events = [
        {"layer": "staged", "sha256": sha, "bucket": "s", "key": "k3", "detail": "", "source": "",
         "at": at(3)},
        {"layer": "reception", "sha256": sha + "  ", "bucket": "r", "key": "k1", "detail": "new",
         "source": "local:/in/x.csv", "at": at(1)},
        {"layer": "stored", "sha256": sha, "bucket": "u", "key": "k2", "detail": "", "source": "r/k1",
         "at": at(2)},
    ]  # fmt: skip
    steps = timelines(events)[sha]
    assert [(s["layer"], s["key"]) for s in steps] == [
        ("source", "local:/in/x.csv"),
        ("reception", "k1"),
        ("stored", "k2"),
        ("staged", "k3"),
    ]


def test_reason_counts_most_frequent_first() -> None:
    assert reason_counts(["b", "a", "b", "c", "a", "b"]) == [("b", 3), ("a", 2), ("c", 1)]


@pytest.mark.parametrize(
    ("text", "size"), [("1024", 1024), ("1KiB", 1024), ("512MiB", 512 << 20), ("2g", 2 << 30), ("3 kb", 3072)]
)
def test_parse_size(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "lots", "-5", "0", "1.5GiB"])
def test_parse_size_refuses_what_is_not_a_size(text: str) -> None:
    with pytest.raises(ValueError, match="size limit: expected"):
        parse_size(text)


LOAD_PLUGINS = """
import json, sys
from airflow._shared.plugins_manager.plugins_manager import _load_plugins_from_plugin_directory
plugins, errors = _load_plugins_from_plugin_directory(sys.argv[1])
heavy = [m for m in ("trilha.ui.app", "trilha.hooks.audit", "trilha.hooks.lakeview", "psycopg2", "pyarrow")
         if m in sys.modules]
print(json.dumps({
    "plugins": [p.name for p in plugins],
    "sources": sorted(str(p.source) for p in plugins),
    "errors": errors,
    "apps": [{"url_prefix": a["url_prefix"], "name": a["name"]} for p in plugins for a in p.fastapi_apps],
    "views": [v for p in plugins for v in p.external_views],
    "heavy": heavy,
}))
"""


def test_the_plugin_manager_loads_only_the_plugin_file_and_it_imports_nothing_heavy() -> None:
    out = subprocess.run(
        [sys.executable, "-c", LOAD_PLUGINS, str(REPO / "plugins")],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
        # this checkout's package, whatever an editable install of another checkout says
        env={**os.environ, "PYTHONPATH": str(REPO / "plugins")},
    )
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["errors"] == {}
    assert got["plugins"] == ["trilha"]
    assert got["sources"] == ["$PLUGINS_FOLDER/trilha_plugin.py"]
    assert got["apps"] == [{"url_prefix": "/trilha", "name": "Trilha"}]
    assert [(v["name"], v["href"], v["url_route"]) for v in got["views"]] == [
        ("Trilha", "/trilha/", "trilha")
    ]
    assert got["heavy"] == []


def test_every_trilha_task_links_to_the_page_of_what_its_run_wrote(monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace

    from trilha.operators.links import TrilhaRunLink
    from trilha.operators.staging import StagingOperator

    op = StagingOperator(task_id="stage", project="p")
    (link,) = [x for x in op.operator_extra_links if isinstance(x, TrilhaRunLink)]
    key = SimpleNamespace(dag_id="staging", task_id="stage", run_id="manual__2026-01-01T00:00:00+00:00")
    monkeypatch.delenv("AIRFLOW__API__BASE_URL", raising=False)
    assert link.get_link(op, ti_key=key) == "/trilha/?run_id=manual__2026-01-01T00%3A00%3A00%2B00%3A00"
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "https://airflow.example/team/")
    assert link.get_link(op, ti_key=key).startswith("/team/trilha/?run_id=manual__")
