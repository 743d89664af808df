"""What ``make ui`` prints when it is ready (trilha.ops.ui.print_ready): the stop command names the
state directory when it is not the default one."""

from __future__ import annotations

from pathlib import Path

import pytest

from trilha import config
from trilha.ops.devstack import Stack
from trilha.ops.ui import UI, print_ready


@pytest.mark.parametrize("default", [True, False])
def test_the_stop_hint_names_a_state_directory_that_is_not_the_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], default: bool
) -> None:
    root = tmp_path / "repo"
    monkeypatch.setattr(config, "repo_root", lambda: root)
    state = root / ".trilha" if default else tmp_path / "elsewhere"
    ui = UI(Stack(state))
    monkeypatch.setattr(UI, "login", lambda self: ("admin", "secret"))
    monkeypatch.setattr(UI, "url", lambda self, port=None: "http://127.0.0.1:1")
    monkeypatch.setattr(UI, "airflow_home", property(lambda self: state / "airflow"))
    print_ready(ui, 3.0)
    (stop,) = [ln for ln in capsys.readouterr().out.splitlines() if "stop:" in ln]
    expected = "make down   (" if default else f"make down STATE={state.resolve()}   ("
    assert expected in stop
