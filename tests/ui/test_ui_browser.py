"""The Airflow UI as a user drives it: headless Chromium (Debian's ``chromium``) through Playwright.

``make ui`` on a private stack (tests/ui/support.py), the sample INMET files as the Variable
``trilha_capture_source``; then, logged in through the login page with the login ``make ui``
printed, each of the seven DAGs in pipeline order is triggered from its trigger form with the
defaults (the Trigger button must be enabled as the form opens; only drive_capture also gets the new
project's prefix, as a new install needs), must succeed, and its task log must show the operator's
``summary:`` line in the browser. Then ``reception_promote`` with an unknown
project fails, and the reason is in its task log in the browser.

The scheduler runs with ``[scheduler] use_job_schedule = False``: the trigger form unpauses a DAG,
and a cron run started at once (``CronTriggerTimetable`` with ``catchup=False``) would run before
the form's run and double the test's time; asset-triggered runs cannot happen, because each DAG is
still paused when its upstream DAG emits. Screenshots of every step are kept in the test's tmp dir.
With ``TRILHA_REQUIRE_SERVICES=1`` (CI) a missing browser or a UI that does not start fails the test.
"""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import pytest

from tests.ui.support import REPO, RunningUI, Shots, log_in, running_ui

pytestmark = [pytest.mark.integration, pytest.mark.slow]

#: The DAGs in pipeline order, with the task whose log is read (``stage[0]``: map index 0 of the
#: mapped ``stage``).
DAGS = {
    "drive_capture": "capture",
    "raw_ingest": "register",
    "reception_promote": "promote",
    "staging": "stage[0]",
    "curated": "commit",
    "dataset_split": "split",
    "reception_cleanup": "cleanup",
}
#: A new install has no project yet: the first capture creates ``inmet`` the way the form says to,
#: with its key prefix in the "New project" section. Every other field keeps its default.
FILL = {"drive_capture": {"project_prefix": ("New project", "inmet")}}
RUN_TIMEOUT = 240.0
UNKNOWN = "no_such_project"
UNKNOWN_ERROR = f"project '{UNKNOWN}' is not registered and no project_prefix was given"


def wait_for_dags(ui: RunningUI, timeout: float = 120) -> None:
    """Until the dag-processor has parsed every DAG into the metadata DB."""
    deadline = time.monotonic() + timeout
    found: set[str] = set()
    while time.monotonic() < deadline:
        found = {d["dag_id"] for d in ui.api("GET", "/dags?limit=100")["dags"]}
        if found >= set(DAGS):
            return
        time.sleep(1)
    raise AssertionError(f"DAGs not parsed within {timeout:.0f}s: missing {sorted(set(DAGS) - found)}")


def wait_for_run(ui: RunningUI, dag_id: str, run_id: str) -> str:
    """The run's final state (polled through the REST API, with a bound)."""
    deadline = time.monotonic() + RUN_TIMEOUT
    state = "?"
    while time.monotonic() < deadline:
        state = ui.api("GET", f"/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}")["state"]
        if state in ("success", "failed"):
            return str(state)
        time.sleep(2)
    raise AssertionError(f"{dag_id} {run_id} still {state} after {RUN_TIMEOUT:.0f}s")


def mapped(task_id: str) -> tuple[str, int | None]:
    """``("stage", 0)`` for ``stage[0]``; ``(task_id, None)`` for a task that is not mapped."""
    match = re.fullmatch(r"(.+)\[(\d+)\]", task_id)
    return (match.group(1), int(match.group(2))) if match else (task_id, None)


def task_log(ui: RunningUI, dag_id: str, run_id: str, task_id: str) -> str:
    """The task log as the REST API serves it (for the message of a failed assertion)."""
    task, map_index = mapped(task_id)
    query = "" if map_index is None else f"?map_index={map_index}"
    path = f"/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances/{task}/logs/1{query}"
    return "\n".join(str(line.get("event")) for line in ui.api("GET", path)["content"])


def trigger(page: Any, ui: RunningUI, dag_id: str, shots: Shots, **fill: tuple[str | None, str]) -> str:
    """Open the DAG's trigger form, check it can trigger as it opens (the defaults), fill in ``fill``
    (field: (form section or None, value)), trigger; the new run's id."""
    from playwright.sync_api import expect

    page.goto(f"{ui.url}/dags/{dag_id}")
    page.get_by_role("button", name="Trigger Dag").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_text(f"Trigger Dag - {dag_id}")).to_be_visible()
    page.wait_for_load_state("networkidle")
    button = dialog.get_by_role("button", name="Trigger", exact=True)
    expect(button).to_be_enabled()
    for field, (section, value) in fill.items():
        if section:
            dialog.get_by_role("button", name=section, exact=True).click()
        page.locator(f"#element_{field}").fill(value)
        expect(button).to_be_enabled()
    shots(f"{dag_id}-form")
    button.click()
    page.wait_for_url(re.compile(rf"/dags/{dag_id}/runs/[^/]+$"))
    return unquote(page.url.rsplit("/runs/", 1)[1])


def see_in_log(
    page: Any, ui: RunningUI, dag_id: str, run_id: str, task_id: str, text: str, shots: Shots
) -> None:
    """Open the task's log page and wait until ``text`` is shown."""
    from playwright.sync_api import expect

    task, map_index = mapped(task_id)
    where = task if map_index is None else f"{task}/mapped/{map_index}"
    page.goto(f"{ui.url}/dags/{dag_id}/runs/{quote(run_id, safe='')}/tasks/{where}")
    line = page.get_by_text(text).first
    try:
        expect(line).to_be_visible(timeout=30_000)
    finally:
        shots(f"{dag_id}-log")


def test_every_dag_triggers_from_its_form_with_the_defaults_and_shows_its_log(
    browser: Any, tmp_path: Path
) -> None:
    inbox = tmp_path / "inmet"
    shutil.copytree(REPO / "include" / "sample" / "inmet", inbox)
    with running_ui(AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE="False") as ui:
        ui.api(
            "PATCH", "/variables/trilha_capture_source", {"key": "trilha_capture_source", "value": str(inbox)}
        )
        wait_for_dags(ui)
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        shots = Shots(page, tmp_path / "screenshots")
        try:
            log_in(page, ui, shots)
            for dag_id, task_id in DAGS.items():
                run_id = trigger(page, ui, dag_id, shots, **FILL.get(dag_id, {}))
                state = wait_for_run(ui, dag_id, run_id)
                assert state == "success", (
                    f"{dag_id} {run_id}: {state}\n{task_log(ui, dag_id, run_id, task_id)}"
                )
                see_in_log(page, ui, dag_id, run_id, task_id, "summary:", shots)

            run_id = trigger(page, ui, "reception_promote", shots, project=(None, UNKNOWN))
            assert wait_for_run(ui, "reception_promote", run_id) == "failed"
            see_in_log(page, ui, "reception_promote", run_id, "promote", UNKNOWN_ERROR, shots)
        finally:
            context.close()
