"""Helpers for the tests of ``make ui``: a private stack and UI in a temporary state directory, and
the browser's side (Chromium's path and flags, numbered screenshots, logging in).

The UI is started the way a user starts it, ``make ui STATE=<dir>`` (``make up``, then
``python -m trilha.ops.ui up``), from an environment without this test session's Airflow settings, and
stopped with ``make down STATE=<dir>``. What ``make ui`` printed (URL, login) is what the tests use.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import pytest

REPO = Path(__file__).resolve().parents[2]
REQUIRE_SERVICES = os.environ.get("TRILHA_REQUIRE_SERVICES") == "1"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
READY = re.compile(r"^Airflow UI ready in \d+s: (http://127\.0\.0\.1:(\d+))$", re.MULTILINE)
LOGIN = re.compile(r"^  login:  (\S+) / (\S+)$", re.MULTILINE)


def clean_env(state: Path, **extra: str) -> dict[str, str]:
    """A user's shell: none of this test session's Airflow settings or connections."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "TRILHA_"))}
    return {**env, "TRILHA_STATE_DIR": str(state), **extra}


def make(
    state: Path, *args: str, timeout: float = 600, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", *args, f"STATE={state}"],
        cwd=REPO,
        env=env or clean_env(state),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def state_base() -> Path:
    """A temporary directory for a state directory. Not under pytest's 0700 basetemp: as root,
    PostgreSQL runs as an unprivileged user that must traverse every parent directory."""
    base = Path(tempfile.mkdtemp(prefix="trilha-ui-"))
    base.chmod(0o711)
    return base


@dataclass
class RunningUI:
    state: Path
    url: str
    port: int
    user: str
    password: str
    out: str

    def token(self, password: str | None = None) -> str:
        """``POST /auth/token`` with the printed login (or another password): a JWT for the REST API."""
        body = {"username": self.user, "password": self.password if password is None else password}
        return str(request(self.url, "POST", "/auth/token", body)["access_token"])

    def api(self, method: str, path: str, body: Any = None) -> Any:
        return request(self.url, method, "/api/v2" + path, body, token=self.token())


def request(url: str, method: str, path: str, body: Any = None, token: str | None = None) -> Any:
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url + path, data=data, method=method, headers=headers)  # noqa: S310
    with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310
        raw = resp.read()
    return json.loads(raw) if raw else None


def http_status(url: str, method: str, path: str, body: Any = None) -> int:
    try:
        request(url, method, path, body)
    except urllib.error.HTTPError as err:
        return err.code
    return 200


def ui_logs(state: Path) -> str:
    logs = sorted((state / "ui").glob("*.log"))
    return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-2000:]}" for p in logs)


@contextmanager
def running_ui(**extra_env: str) -> Iterator[RunningUI]:
    """``make ui`` on a private state directory; ``make down`` and the directory removed at the end.

    A UI that cannot start skips the test, or fails it with ``TRILHA_REQUIRE_SERVICES=1``.
    """
    base = state_base()
    state = base / "state"
    try:
        res = make(state, "ui", env=clean_env(state, **extra_env))
        ready, login = READY.search(res.stdout), LOGIN.search(res.stdout)
        if res.returncode != 0 or not ready or not login:
            why = f"make ui failed ({res.returncode}):\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
            if REQUIRE_SERVICES:
                pytest.fail(f"{why}\n{ui_logs(state)}")
            pytest.skip(why)
        yield RunningUI(
            state=state,
            url=ready.group(1),
            port=int(ready.group(2)),
            user=login.group(1),
            password=login.group(2),
            out=res.stdout,
        )
    finally:
        down = make(state, "down", timeout=180)
        shutil.rmtree(base, ignore_errors=True)
        assert down.returncode == 0, down.stderr


def unavailable(why: str) -> NoReturn:
    if REQUIRE_SERVICES:
        pytest.fail(f"{why} (TRILHA_REQUIRE_SERVICES=1)")
    pytest.skip(why)


class Shots:
    """Numbered screenshots of the steps, in the test's tmp dir."""

    def __init__(self, page: Any, folder: Path) -> None:
        self.page, self.folder, self.n = page, folder, 0
        folder.mkdir(parents=True, exist_ok=True)

    def __call__(self, name: str) -> Path:
        self.n += 1
        path = self.folder / f"{self.n:02d}-{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


def log_in(page: Any, ui: RunningUI, shots: Shots) -> None:
    from playwright.sync_api import expect

    page.goto(ui.url)
    page.wait_for_url(re.compile(r"/auth/login"))
    page.get_by_label("Username").fill(ui.user)
    page.get_by_label("Password").fill(ui.password)
    shots("login")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{ui.url}/")
    expect(page.get_by_role("link", name="Dags").first).to_be_visible()
    shots("home")
