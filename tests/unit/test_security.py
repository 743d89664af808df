"""Security checks that run with the suite (so CI runs them on every submission).

* ``bandit`` over ``plugins/``: no finding. Where a check does not apply, the line says why, next to
  its ``# nosec <id>`` (for example the local stack starting its own fixed binaries). B404 (the
  mere import of ``subprocess``) is skipped: every call is checked by B603/B607 at its own line.
* ``detect-secrets`` over every tracked file: nothing beyond ``.secrets.baseline``, where each known
  finding is a reviewed placeholder or test value (``"is_secret": false``).

Each check is also shown to fire on a planted problem, so a tool that silently stopped working
(a wrong path, a changed CLI) fails here instead of passing.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def bandit(*targets: Path) -> list[dict[str, object]]:
    proc = subprocess.run(
        [str(BIN / "bandit"), "-q", "-r", "-f", "json", "--skip", "B404", *map(str, targets)],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
    )
    assert proc.returncode in (0, 1), proc.stderr[-2000:]
    return list(json.loads(proc.stdout)["results"])


def test_bandit_finds_nothing_in_plugins() -> None:
    found = [
        f"{r['filename']}:{r['line_number']} {r['test_id']} {r['issue_text']}"
        for r in bandit(REPO / "plugins")
    ]
    assert found == []


def test_bandit_would_catch_a_shell_injection(tmp_path: Path) -> None:
    planted = tmp_path / "bad.py"
    planted.write_text("import subprocess\n\ndef run(name):\n    subprocess.call('ls ' + name, shell=True)\n")
    assert "B602" in {r["test_id"] for r in bandit(planted)}


def secret_findings(files: list[str], cwd: Path) -> set[tuple[str, str, str]]:
    """(file, type, hashed secret) of every potential secret ``detect-secrets scan`` reports."""
    proc = subprocess.run(
        [str(BIN / "detect-secrets"), "scan", *files], capture_output=True, text=True, check=False, cwd=cwd
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads(proc.stdout)["results"]
    return {(f, r["type"], r["hashed_secret"]) for f, items in results.items() for r in items}


def test_no_secret_in_the_repository() -> None:
    """Every potential secret in a tracked file is one reviewed in ``.secrets.baseline``."""
    tracked = subprocess.run(["git", "ls-files", "-z"], capture_output=True, check=True, cwd=REPO).stdout
    # The baseline itself holds the findings' hashes, which look like secrets.
    files = [
        f for f in tracked.decode().split("\0") if f and f != ".secrets.baseline" and (REPO / f).is_file()
    ]
    assert len(files) > 50
    baseline = json.loads((REPO / ".secrets.baseline").read_text())["results"]
    reviewed = {
        (f, r["type"], r["hashed_secret"])
        for f, items in baseline.items()
        for r in items
        if not r["is_secret"]
    }
    assert sorted(secret_findings(files, REPO) - reviewed) == []


def test_the_secret_scan_would_catch_a_committed_key(tmp_path: Path) -> None:
    planted = tmp_path / "settings.py"
    planted.write_text('AWS_SECRET_ACCESS_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY9"\n')
    assert "Secret Keyword" in {kind for _, kind, _ in secret_findings(["settings.py"], tmp_path)}
