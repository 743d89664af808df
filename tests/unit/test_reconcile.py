"""The parts of :mod:`trilha.ops.reconcile` that need no service: parameters, names, the printed table."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from trilha.domain import drift
from trilha.domain.keys import validate_key
from trilha.exceptions import ReconcileError
from trilha.ops import reconcile as rc

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_params_arrive_as_strings_and_empty_means_every() -> None:
    options = rc.parse_options(
        project="", bucket="", grace_minutes="15", rehash="True", abandon_after_hours="6"
    )
    assert options == rc.Options(
        project=None, layer=None, grace=timedelta(minutes=15), rehash=True, abandon_after=timedelta(hours=6)
    )
    assert rc.parse_options(project=" inmet ", bucket="Storage", rehash="False").project == "inmet"
    assert rc.parse_options(bucket="Storage").layer == "storage"
    assert rc.parse_options(rehash="False").rehash is False


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"bucket": "recepcao-raw"},
            "bucket: expected one of reception, storage, staging, curated, datasets or ",
        ),
        (
            {"grace_minutes": "an hour"},
            "grace_minutes: expected a whole number of minutes (0 or more), got 'an hour'",
        ),
        ({"grace_minutes": "-5"}, "grace_minutes: expected a whole number of minutes (0 or more), got -5"),
        ({"abandon_after_hours": "1.5"}, "abandon_after_hours: expected a whole number of hours (1 or more)"),
        (
            {"abandon_after_hours": "0"},
            "abandon_after_hours: expected a whole number of hours (1 or more), got 0",
        ),
        ({"rehash": "maybe"}, "rehash: expected true or false, got 'maybe'"),
    ],
)
def test_bad_params_say_what_was_expected(kwargs: dict[str, str], message: str) -> None:
    with pytest.raises(ReconcileError) as caught:
        rc.parse_options(**kwargs)
    assert str(caught.value).startswith(message)


def test_the_report_key_is_a_safe_key_named_by_time_and_run() -> None:
    when = datetime(2026, 3, 1, 3, 0, 5, 123456, tzinfo=UTC)
    key = rc.report_key(when, "scheduled__2026-03-01T03:00:00+00:00")
    assert key == "_reconcile/20260301T030005.123Z__scheduled__2026-03-01T03_00_00_00_00.json"
    assert validate_key(key) == key
    assert rc.report_key(when, "../..").endswith("__run.json")
    assert len(rc.report_key(when, "x" * 500)) < 200


def test_bucket_names_outside_airflow_follow_the_variables_then_the_stack() -> None:
    env = {"AIRFLOW_VAR_TRILHA_BUCKET_STAGING": "var-staging", "TRILHA_BUCKET_STAGING": "stack-staging"}
    env["TRILHA_BUCKET_CURATED"] = "stack-curated"
    buckets = rc.configured_buckets(env)
    assert buckets["staging"] == "var-staging"
    assert buckets["curated"] == "stack-curated"
    assert set(buckets) == set(rc.LAYERS)


def test_pid_alive() -> None:
    assert rc.pid_alive(os.getpid())
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert not rc.pid_alive(child.pid)
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        for _ in range(200):  # exited but not reaped: a zombie, which kill(0) still answers
            if Path(f"/proc/{zombie.pid}/stat").read_text().rsplit(") ", 1)[1].startswith("Z"):
                break
            time.sleep(0.01)
        assert not rc.pid_alive(zombie.pid)
    finally:
        zombie.wait()
    assert not rc.pid_alive(0)


def test_the_table_names_each_bucket_its_drift_and_the_report() -> None:
    found = [drift.Found("st", "p/orphan.csv", 3, "a" * 32, NOW - timedelta(days=1))]
    report = drift.compare([], found, NOW, timedelta(minutes=60), buckets=["rc"])
    outcome = rc.Outcome(
        run_id="r1",
        checked_at=NOW,
        options=rc.Options(project="inmet"),
        project_prefix="inmet",
        layers={"rc": ["reception"], "st": ["storage"]},
        report=report,
        abandoned=[drift.Abandoned(7, "raw_ingest", "m1", "register", 1, "process 12 on h is gone")],
        duration_s=0.25,
        report_bucket="st",
        report_key="_reconcile/x.json",
        report_sha256="f" * 64,
    )
    lines = rc.format_table(outcome).splitlines()
    assert (
        lines[0]
        == "reconcile r1: project 'inmet' (inmet/), grace 60 min, checked 2026-03-01T12:00:00+00:00 in 0.2 s"
    )
    assert lines[2].split() == ["rc", "reception", "0", "0", "0", "0", "0", "0"]
    assert lines[3].split() == ["st", "storage", "0", "0", "1", "0", "0", "1"]
    assert lines[4] == (
        "  missing_in_audit s3://st/p/orphan.csv: no audit row claims this object (3 bytes, written "
        "2026-02-28T12:00:00+00:00)"
    )
    assert lines[5] == "  abandoned: meta.audit_log id 7 raw_ingest/m1/register: process 12 on h is gone"
    assert lines[6] == f"report: s3://st/_reconcile/x.json (sha256 {'f' * 64})"
    assert lines[7] == (
        "reconcile found 1 drift item(s): st: missing_in_audit 1. Report: s3://st/_reconcile/x.json "
        "(meta.reconcile_report run_id 'r1')"
    )
    assert outcome.summary()["buckets"]["st"]["drift"][0]["status"] == "missing_in_audit"
    assert outcome.document()["buckets"]["st"]["by_project"] == {
        "p": {**dict.fromkeys(drift.STATUSES, 0), "missing_in_audit": 1}
    }
