"""The Trilha page in the Airflow UI as a user drives it: headless Chromium through Playwright.

``make ui`` on a private stack (tests/ui/support.py; one start-up for the whole test). The lake gets
data the way the pipeline writes it: files put into reception, then the real operators of
raw_ingest, reception_promote and staging run in this process against that stack, each under its
DAG's id. One file sits under the key ``<prefix>/<script>alert(1)</script>.csv`` and has three rows
that break the contract.

Then, in the browser: logged out, the page sends the visitor to the Airflow login; logged in, the
"Trilha" entry of the UI's navigation shows the page in its frame; the page lists the project with
its layers and the last runs; a search finds the script-named file, whose name renders as text (no
dialog ever opens), with its timeline, its staged rows and its quarantine reasons counted; the
upload form stores a file named ``<img src=x onerror=alert(2)>.csv`` in reception, registered in the
audit, and the page then finds it by name. Screenshots of every step are kept in the test's tmp dir;
with ``TRILHA_DOCS_SCREENSHOT=1`` the page's screenshot is also written to docs/img/trilha-page.png.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg2
import pytest

from tests.helpers import environ, run_operator
from tests.integration.process_support import SAMPLES, unreadable_rows
from tests.ui.support import REPO, RunningUI, Shots, log_in, running_ui

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SAMPLE = SAMPLES / "INMET_S_PR_A807_CURITIBA_01-01-2019_A_31-12-2019.CSV"
SCRIPT_NAME = "<script>alert(1)</script>.csv"
IMG_NAME = "<img src=x onerror=alert(2)>.csv"
DOCS_SHOT = REPO / "docs" / "img" / "trilha-page.png"


@contextmanager
def stack_connections(ui: RunningUI) -> Iterator[Any]:
    """The UI's stack, with its connections and buckets in this process's environment."""
    from trilha.ops.devstack import Stack

    st = Stack(ui.state, log=lambda _msg: None)
    wanted = {k: v for k, v in st.env_vars().items() if k.startswith(("AIRFLOW_CONN_", "TRILHA_BUCKET_"))}
    with environ(wanted):
        yield st


def fill_lake(st: Any, project: str, prefix: str) -> dict[str, str]:
    """Two files through reception, storage and staging; the run id of each DAG."""
    from trilha.operators.ingest import RawIngestOperator
    from trilha.operators.promote import PromoteOperator
    from trilha.operators.staging import StagingOperator

    s3 = st.s3_client()
    s3.put_object(Bucket="recepcao-raw", Key=f"{prefix}/{SCRIPT_NAME}", Body=unreadable_rows())
    s3.put_object(Bucket="recepcao-raw", Key=f"{prefix}/plain.csv", Body=SAMPLE.read_bytes())
    ops = {
        "raw_ingest": RawIngestOperator(task_id="register", key_prefix=f"{prefix}/"),
        "reception_promote": PromoteOperator(task_id="promote", project=project, project_prefix=prefix),
        "staging": StagingOperator(task_id="stage", project=project),
    }
    runs = {}
    for dag_id, op in ops.items():
        runs[dag_id] = f"manual__trilha_ui_{uuid.uuid4().hex[:8]}"
        run_operator(op, run_id=runs[dag_id], dag_id=dag_id)
    return runs


def audit_rows(st: Any, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    conn = psycopg2.connect(st.postgres_dsn())
    try:
        with conn.cursor() as cur:
            cur.execute(sql, params)
            return list(cur.fetchall())
    finally:
        conn.close()


def test_the_trilha_page_shows_the_lake_traces_a_file_and_takes_an_upload(
    browser: Any, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    tag = uuid.uuid4().hex[:6]
    project, prefix = f"UI project {tag}", f"ui-{tag}"
    with running_ui(AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE="False") as ui, stack_connections(ui) as st:
        runs = fill_lake(st, project, prefix)
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        dialogs: list[str] = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        shots = Shots(page, tmp_path / "screenshots")
        try:
            # logged out: the page itself sends the visitor to the Airflow login
            page.goto(f"{ui.url}/trilha/")
            page.wait_for_url(re.compile(r"/auth/login"))
            shots("trilha-logged-out")
            log_in(page, ui, shots)
            expect(page.get_by_text("Trilha", exact=True).first).to_be_visible()  # in the navigation

            # the navigation entry: the Airflow UI draws the page in a frame
            page.goto(f"{ui.url}/plugin/trilha")
            frame = page.frame_locator("iframe").first
            heading = frame.get_by_role("heading", name=re.compile("Trilha: the lake"))
            expect(heading).to_be_visible(timeout=30_000)
            expect(frame.locator("#projects")).to_contain_text(project)
            shots("trilha-in-airflow")

            # the page alone: projects with layers, last runs with counters
            page.goto(f"{ui.url}/trilha/")
            projects = page.locator("#projects")
            row = projects.locator("tr", has_text=project)
            expect(row).to_contain_text("2 files")  # reception and storage
            expect(row.locator("td").nth(5)).to_have_text("3")  # rows quarantined
            expect(page.locator("#runs tr", has_text="staging")).to_contain_text(runs["staging"])
            expect(page.locator("#runs tr", has_text="staging")).to_contain_text("rows_rejected 3")

            # search the script-named file: its name is text, its trace and quarantine are shown
            page.locator("#q").fill(f"{prefix}/{SCRIPT_NAME}")
            page.get_by_role("button", name="Search").click()
            page.wait_for_url(re.compile(r"\?q="))
            timeline = page.locator("#timeline")
            expect(timeline).to_contain_text(f"{prefix}/{SCRIPT_NAME}")
            # (no source step: raw_ingest registered objects put straight into the bucket)
            for layer in ("reception", "stored", "staged"):
                expect(timeline.locator(".layer", has_text=re.compile(f"^{layer}$")).first).to_be_visible()
            link = timeline.get_by_role("link", name=f"staging / {runs['staging']}")
            expect(link).to_have_attribute("href", f"/dags/staging/runs/{runs['staging']}")
            reasons = page.locator(".quarantine .reasons tr")
            expect(reasons).to_have_count(3)  # header, the "2500 UTC" reason (2 rows), the bad day (1)
            expect(reasons.nth(1).locator("td").nth(1)).to_have_text("2")
            expect(page.locator(".quarantine .first-rows tr")).to_have_count(4)
            assert page.locator("script", has_text="alert(1)").count() == 0
            shots("trilha-trace")
            if os.environ.get("TRILHA_DOCS_SCREENSHOT") == "1":
                DOCS_SHOT.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(DOCS_SHOT), full_page=False)

            # upload a file through the form
            data = b"Data;Hora UTC;valor;\n2024/01/01;0000 UTC;1,5;\n"
            page.locator("#upload-project").select_option(label=project)
            page.locator("#upload-file").set_input_files(
                files=[{"name": IMG_NAME, "mimeType": "text/csv", "buffer": data}]
            )
            page.get_by_role("button", name="Upload").click()
            result = page.locator("#upload-result")
            expect(result).to_contain_text(f"Stored {prefix}/{IMG_NAME} in reception", timeout=30_000)
            shots("trilha-uploaded")
            rows = audit_rows(
                st,
                "SELECT status, source_kind, size_bytes FROM reception_audit WHERE object_key = %s",
                (f"{prefix}/{IMG_NAME}",),
            )
            assert rows == [("new", "upload", len(data))]

            page.locator("#q").fill(IMG_NAME)
            page.get_by_role("button", name="Search").click()
            expect(page.locator("#timeline")).to_contain_text(f"{prefix}/{IMG_NAME}")
            # the upload's own source step: the user and the key asked for
            expect(page.locator("#timeline")).to_contain_text(f"upload:admin:{prefix}/{IMG_NAME}")
            assert page.locator("img[src=x]").count() == 0
            shots("trilha-uploaded-trace")
            assert dialogs == []
        finally:
            context.close()
