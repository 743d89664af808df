"""trilha.ops.run without a stack: which conf each DAG gets, bad arguments, summaries and error lines.

The chain itself (seven DAGs in one process, asset events handed on, a failure that stops it) runs
against real services in tests/integration/test_pipeline.py, through ``make demo``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from trilha.ops import run


def test_the_common_conf_reaches_only_the_dags_that_declare_its_params() -> None:
    common = {"project": "inmet", "dry_run": False}
    assert run.conf_for(["project", "key_prefix"], common, {}) == {"project": "inmet"}
    assert run.conf_for(["dry_run", "retention_days"], common, {"dry_run": True}) == {"dry_run": True}
    # A DAG's own keys are given even when its Params do not list them (Airflow then validates them).
    assert run.conf_for([], common, {"source": "/in"}) == {"source": "/in"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [("{nope", "not valid JSON"), ("[1, 2]", "expected a JSON object, got list"), ('"x"', "got str")],
)
def test_bad_conf_is_refused_with_what_was_expected(text: str, expected: str) -> None:
    with pytest.raises(run.RunError, match=expected):
        run.parse_conf(text, "--conf")


def test_bad_arguments_exit_2_before_airflow_starts(capsys: pytest.CaptureFixture[str]) -> None:
    assert run.main(["staging", "--conf", "[1]"]) == 2
    assert "--conf: expected a JSON object" in capsys.readouterr().err
    assert run.main(["staging", "--conf-for", 'curated={"project": "x"}']) == 2
    assert "expected DAG_ID=JSON with a DAG_ID of this run" in capsys.readouterr().err
    assert run.main(["staging", "--conf-for", "staging"]) == 2


def test_the_summary_line_shows_each_tasks_nonzero_counters_and_stays_short() -> None:
    summaries = {
        "stage": {"counters": {"seen": 4, "new": 4, "failed": 0, "rows_ok": 34443}, "audit_log_id": 9},
        "announce": None,
    }
    text = run.summary_text(summaries)
    assert text == 'announce: null  stage: {"seen":4,"new":4,"rows_ok":34443}'
    long = run.summary_text({"t": {"counters": {f"c{i}": i + 1 for i in range(60)}}}, width=80)
    assert len(long) == 80
    assert long.endswith("…")


def test_the_first_error_lines_come_from_the_task_log_as_the_ui_reads_it(tmp_path: Path) -> None:
    log = tmp_path / "attempt=1.log"
    events = [
        {"level": "info", "event": "scope: whole project"},
        {"level": "error", "event": "local folder '/x': does not exist"},
        {
            "level": "error",
            "event": "Task failed with exception",
            "error_detail": [{"exc_type": "AirflowFailException", "exc_value": "local folder '/x'"}],
        },
    ]
    log.write_text("\n".join(json.dumps(e) for e in events) + "\nnot json\n")
    assert run.first_error_lines(log) == [
        "local folder '/x': does not exist",
        "Task failed with exception",
        "AirflowFailException: local folder '/x'",
    ]
    assert run.first_error_lines(tmp_path / "missing.log") == []


def test_console_output_goes_to_the_log_and_the_terminal_is_restored(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "run.log"
    before = os.fstat(1).st_ino, os.fstat(2).st_ino
    with run.console_to(log) as terminal:
        os.write(1, b"airflow says hello\n")
        os.write(2, b"and warns\n")
        assert not terminal.closed
    assert (os.fstat(1).st_ino, os.fstat(2).st_ino) == before
    assert log.read_text() == "airflow says hello\nand warns\n"


def test_a_mapped_tasks_instances_are_summed_on_one_entry() -> None:
    summaries = {
        "plan": [{"unit": 1}, {"unit": 2}, {"unit": 3}],
        "write[0]": {"files": {"hourly": ["..."]}, "counters": {"new": 1, "bytes": 100, "failed": 0}},
        "write[1]": {"files": {}, "counters": {"new": 1, "bytes": 50}},
        "write[2]": {"files": {}, "counters": {"bytes": 7}},
        "commit": {"counters": {"new": 1}},
    }
    text = run.summary_text(summaries)
    assert text == 'commit: {"new":1}  plan: "3 batch(es)"  write[x3]: {"new":2,"bytes":157}'
