"""Asset events against the real stack: each layer's operator emits its layer's event only when its DAG
run changed the layer, with an extra naming the projects, counts and keys or versions it produced
(read back here from the audit store and the buckets); an unchanged re-run emits nothing; and a run
triggered by events works on what they name (keys, datasets, projects) instead of everything, widening
to the whole project when an event's list was cut.

Operators run with the Task SDK's own outlet and triggering-event accessors (events_support.py).
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.integration.events_support import Emitted, only, project_entry, run_emitting
from tests.integration.ingest_support import (
    RECEPTION,
    STORAGE,
    Scope,
    ingest,
    list_keys,
    new_scope,
    promote,
    put,
    reception_rows,
    storage_rows,
)
from tests.integration.process_support import (
    CURATED,
    DATASETS,
    STAGING,
    curated,
    curated_rows,
    dataset_rows,
    load,
    staged_rows,
    staging,
)
from trilha.assets import CURATED as CURATED_ASSET
from trilha.assets import DATASETS as DATASETS_ASSET
from trilha.assets import RAW_REGISTERED, STAGED, STORED_RAW, changes
from trilha.assets import RECEPTION as RECEPTION_ASSET
from trilha.domain import events

pytestmark = pytest.mark.integration


def table(tag: str, rows: int = 3) -> bytes:
    """A small generic CSV whose bytes no other test uploads (content is unique lake-wide)."""
    body = "".join(f"S{i};{i * 1.5}\n" for i in range(rows))
    return f"station;value\n{body}T{uuid.uuid4().hex[:8]};{tag}\n".encode()


def cut(**kwargs: Any) -> Any:
    """dataset_split of the generic dataset, for the Param's default project: events pick the real one."""
    from trilha.operators.split import DatasetSplitOperator

    return DatasetSplitOperator(
        task_id="split",
        project="inmet",
        dataset="generic",
        table="data",
        key_columns=["station"],
        strategy="hash",  # the generic table has no time column (temporal, the default, needs one)
        group_by="row",
        **kwargs,
    )


def with_outlets(op: Any, *assets: Any) -> Any:
    op.outlets = [changes(a) for a in assets]
    return op


def promoted(stack: Any, s: Scope, files: dict[str, bytes]) -> Emitted:
    """Upload, register and promote ``files`` of project ``s``; the promotion's trilha_stored_raw event."""
    for rel, data in files.items():
        put(stack, s.key(rel), data)
    run_emitting(ingest(key_prefix=s.keys))
    summary, emitted = run_emitting(with_outlets(promote(s), STORED_RAW))
    assert summary["copied"] == len(files), summary
    (event,) = emitted
    return event


def staged(stack: Any, s: Scope, files: dict[str, bytes]) -> Emitted:
    """``files`` of project ``s`` promoted and staged (scoped by the promotion's event)."""
    event = promoted(stack, s, files)
    summary, emitted = run_emitting(with_outlets(staging(s, project=""), STAGED), triggered_by=[event])
    assert summary["files"] == len(files), summary
    (out,) = emitted
    return out


# ------------------------------------------------------------------------------------------ producers


def test_promote_emits_one_event_naming_what_it_stored_then_none_when_unchanged(stack: Any) -> None:
    s = new_scope("ev")
    files = {"a.csv": table("a"), "sub/b.csv": table("b", rows=5)}
    for rel, data in files.items():
        put(stack, s.key(rel), data)
    stray = f"no-project-{uuid.uuid4().hex[:8]}/x.csv"  # under no registered project's prefix
    put(stack, stray, table("stray"))

    # Keys under no project yet are counted apart: a project is registered by capture or promote.
    _, emitted = run_emitting(with_outlets(ingest(key_prefix=stray), RAW_REGISTERED))
    assert (only(emitted, "trilha_raw_registered")["projects"], emitted[0].extra["unowned_keys"]) == ([], 1)
    run_emitting(promote(s, key_prefix="nothing/"))  # registers the project

    summary, emitted = run_emitting(with_outlets(ingest(key_prefix=s.keys), RAW_REGISTERED))
    registered = only(emitted, "trilha_raw_registered")
    entry = project_entry(registered, s.name)
    assert (entry["prefix"], entry["keys"], entry["keys_omitted"]) == (s.prefix, sorted(map(s.key, files)), 0)
    assert entry["counts"] == {"items": 2, "new": 2, "duplicate": 0, "bytes": sum(map(len, files.values()))}
    assert registered["bucket"] == RECEPTION

    first_run = f"promote__{uuid.uuid4().hex[:8]}"
    summary, emitted = run_emitting(with_outlets(promote(s), STORED_RAW), run_id=first_run)
    extra = only(emitted, "trilha_stored_raw")
    rows = storage_rows(stack, s.name)
    assert summary["copied"] == 2
    assert extra["run_id"] == first_run
    assert extra["bucket"] == STORAGE
    assert (
        extra["projects_total"],
        extra["projects_omitted"],
        extra["keys_total"],
        extra["keys_omitted"],
    ) == (
        1,
        0,
        2,
        0,
    )
    assert extra["counts"] == {"items": 2, "new_versions": 0, "bytes": sum(map(len, files.values()))}
    entry = project_entry(extra, s.name)
    assert entry["prefix"] == s.prefix
    assert entry["keys"] == sorted(r["dest_key"] for r in rows) == sorted(list_keys(stack, STORAGE, s.keys))

    # The same inputs again (a new DAG run): nothing copied, nothing announced.
    again, emitted = run_emitting(with_outlets(promote(s), STORED_RAW))
    assert (again["copied"], again["duplicates"]) == (0, 2)
    assert emitted == []
    # A retry of the first DAG run (same run id) announces what its earlier try stored.
    _, emitted = run_emitting(with_outlets(promote(s), STORED_RAW), run_id=first_run)
    assert project_entry(only(emitted, "trilha_stored_raw"), s.name)["keys"] == entry["keys"]


def test_an_unchanged_run_says_so_in_one_line(stack: Any, capsys: pytest.CaptureFixture[str]) -> None:
    s = new_scope("ev")
    promoted(stack, s, {"a.csv": table("a")})
    capsys.readouterr()
    _, emitted = run_emitting(with_outlets(promote(s), STORED_RAW))
    assert emitted == []
    # The task log (Airflow's structlog writes it to stdout here).
    lines = [ln for ln in capsys.readouterr().out.splitlines() if "asset event" in ln]
    assert len(lines) == 1, lines
    assert "trilha_stored_raw: this run changed nothing; no asset event" in lines[0]


def test_capture_emits_reception_and_registration_once(stack: Any, tmp_path: Path) -> None:
    from trilha.operators.capture import CaptureOperator

    s = new_scope("ev")
    folder = tmp_path / "inbox"
    folder.mkdir()
    (folder / "one.csv").write_bytes(table("one"))
    (folder / "two.csv").write_bytes(table("two"))

    def capture() -> Any:
        op = CaptureOperator(task_id="capture", source=str(folder), project=s.name, project_prefix=s.prefix)
        return with_outlets(op, RECEPTION_ASSET, RAW_REGISTERED)

    _, emitted = run_emitting(capture())
    assert sorted(e.asset for e in emitted) == ["trilha_raw_registered", "trilha_reception"]
    keys = sorted(r["object_key"] for r in reception_rows(stack, s.keys))
    assert keys == [s.key("one.csv"), s.key("two.csv")]
    for event in emitted:
        assert event.alias == f"{event.asset}_changes"
        assert event.extra["layer"] == event.asset
        entry = project_entry(event.extra, s.name)
        assert (entry["keys"], entry["counts"]["new"]) == (keys, 2)

    _, emitted = run_emitting(capture())
    assert emitted == []


def test_staging_curated_and_split_announce_their_outputs_then_nothing(stack: Any) -> None:
    s = new_scope("ev")
    files = {"x.csv": table("x", rows=4), "y.csv": table("y", rows=6)}
    event = staged(stack, s, files)
    extra = event.extra
    rows = staged_rows(stack, s)
    assert extra["layer"] == "trilha_staged"
    assert extra["bucket"] == STAGING
    entry = project_entry(extra, s.name)
    assert entry["datasets"] == ["generic"]
    assert entry["keys"] == sorted(r["output_key"] for r in rows)
    assert entry["counts"] == {"items": 2, "rows_ok": 12, "rows_rejected": 0}  # 4 + 6 rows + a tag row each

    summary, cur_events = run_emitting(
        with_outlets(curated(s, project=""), CURATED_ASSET), triggered_by=[event]
    )
    cur = only(cur_events, "trilha_curated")
    (row,) = curated_rows(stack, s)
    entry = project_entry(cur, s.name)
    assert entry["versions"] == [
        {
            "dataset": "generic",
            "version": "v0001",
            "path": row["prefix"],
            "manifest": row["manifest_key"],
            "rows": int(row["rows"]),
        }
    ]
    assert entry["keys"] == [row["manifest_key"]]
    assert cur["bucket"] == CURATED
    assert list_keys(stack, CURATED, row["manifest_key"])  # the manifest it names is there

    summary, emitted = run_emitting(with_outlets(cut(), DATASETS_ASSET), triggered_by=cur_events)
    made = only(emitted, "trilha_datasets")
    (drow,) = dataset_rows(stack, s)
    assert summary["project"] == s.name  # the events' project, not the Param's "inmet"
    entry = project_entry(made, s.name)
    (version,) = entry["versions"]
    assert (version["version"], version["manifest"], version["path"]) == (
        drow["version"],
        drow["manifest_key"],
        drow["prefix"],
    )
    # the curated table's rows (x and y share 4 identical rows, kept once), all of them cut
    assert version["rows"] == sum(drow["rows"].values()) == int(row["rows"]) == 8
    assert made["bucket"] == DATASETS

    # Unchanged: every one of them again, triggered by the same events, emits nothing.
    assert run_emitting(with_outlets(staging(s), STAGED))[1] == []
    assert run_emitting(with_outlets(curated(s, project=""), CURATED_ASSET), triggered_by=[event])[1] == []
    summary, emitted = run_emitting(with_outlets(cut(), DATASETS_ASSET), triggered_by=cur_events)
    assert (summary["created"], emitted) == (False, [])


# ------------------------------------------------------------------------------------------ consumers


def test_staging_triggered_by_events_stages_only_the_keys_they_name(stack: Any) -> None:
    a, b = new_scope("eva"), new_scope("evb")
    event = promoted(stack, a, {"one.csv": table("one"), "two.csv": table("two")})
    load(stack, b, {"other.csv": table("other")})  # stored, not staged, not in the event
    # A's older stored file, not in the event either: left for the cron run.
    load(stack, a, {"older.csv": table("older")})

    summary, emitted = run_emitting(with_outlets(staging(a, project=""), STAGED), triggered_by=[event])
    assert summary["files"] == 2
    assert f"'{a.name}' (2 named)" in summary["scope"]
    assert sorted(Path(r["source_key"]).name for r in staged_rows(stack, a)) == ["one.csv", "two.csv"]
    assert staged_rows(stack, b) == []
    assert sorted(project_entry(only(emitted, "trilha_staged"), a.name)["keys"]) == sorted(
        r["output_key"] for r in staged_rows(stack, a)
    )
    # What a manual run of B would have done was still to do: the scoped run skipped it.
    assert run_emitting(staging(b))[0]["files"] == 1


def test_a_cut_key_list_widens_the_scope_to_the_whole_project(
    stack: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = new_scope("eva"), new_scope("evb")
    load(stack, a, {"older.csv": table("older")})
    load(stack, b, {"other.csv": table("other")})
    monkeypatch.setattr(events, "MAX_KEYS", 1)  # the event lists 1 of its 2 keys
    event = promoted(stack, a, {"one.csv": table("one"), "two.csv": table("two")})
    entry = project_entry(event.extra, a.name)
    assert (len(entry["keys"]), entry["keys_total"], entry["keys_omitted"]) == (1, 2, 1)

    summary, _ = run_emitting(staging(a, project=""), triggered_by=[event])
    assert f"'{a.name}' (whole project)" in summary["scope"]
    # Every pending file of the project, not just the one listed; nothing of the other project.
    assert summary["files"] == 3
    assert sorted(Path(r["source_key"]).name for r in staged_rows(stack, a)) == [
        "older.csv",
        "one.csv",
        "two.csv",
    ]
    assert staged_rows(stack, b) == []


def test_a_foreign_event_or_an_explicit_scope_leaves_the_run_unscoped(stack: Any) -> None:
    a = new_scope("eva")
    event = promoted(stack, a, {"one.csv": table("one")})
    # An explicit project wins over the events (only a manual run can set one).
    summary, _ = run_emitting(staging(a), triggered_by=[event])
    assert summary["scope"].startswith("project set explicitly")
    # An event with an extra of no Trilha layout (sent through the REST API, say): not scoped.
    foreign = Emitted(
        asset=RAW_REGISTERED.name,
        uri=RAW_REGISTERED.uri,
        alias="",
        extra={"note": "sent through the REST API"},
        run_id="manual__api",
        task_id="api",
    )
    put(stack, a.key("two.csv"), table("two"))
    run_emitting(ingest(key_prefix=a.keys))
    summary, _ = run_emitting(promote(a, project_prefix=""), triggered_by=[foreign])
    assert "not a Trilha change" in summary["scope"]
    assert (summary["project"], summary["copied"]) == (a.name, 1)  # what a manual run does


def test_curated_triggered_by_events_curates_only_the_named_projects(stack: Any) -> None:
    a, b = new_scope("eva"), new_scope("evb")
    event = staged(stack, a, {"one.csv": table("one")})
    staged(stack, b, {"two.csv": table("two")})  # B staged too, by its own event, not this one

    summary, emitted = run_emitting(with_outlets(curated(a, project=""), CURATED_ASSET), triggered_by=[event])
    assert [(v["project"], v["dataset"], v["version"]) for v in summary["versions"]] == [
        (a.name, "generic", "v0001")
    ]
    assert curated_rows(stack, b) == []
    assert [p["name"] for p in only(emitted, "trilha_curated")["projects"]] == [a.name]


def test_raw_ingest_and_promote_follow_the_capture_events(stack: Any, tmp_path: Path) -> None:
    from trilha.operators.capture import CaptureOperator
    from trilha.operators.promote import PromoteOperator

    a, b = new_scope("eva"), new_scope("evb")
    folder = tmp_path / "inbox"
    folder.mkdir()
    (folder / "captured.csv").write_bytes(table("captured"))
    capture = CaptureOperator(task_id="capture", source=str(folder), project=a.name, project_prefix=a.prefix)
    _, captured = run_emitting(with_outlets(capture, RECEPTION_ASSET, RAW_REGISTERED))
    run_emitting(promote(b, key_prefix="nothing/"))  # registers project B
    # Uploaded by hand meanwhile, not registered yet: one in A's prefix, one in B's.
    put(stack, a.key("by-hand.csv"), table("hand a"))
    put(stack, b.key("by-hand.csv"), table("hand b"))

    reception_event = [e for e in captured if e.asset == "trilha_reception"]
    summary, emitted = run_emitting(with_outlets(ingest(), RAW_REGISTERED), triggered_by=reception_event)
    assert summary["registered"] == 1  # A's prefix listed, not the bucket
    assert f"'{a.name}' (whole project)" in summary["scope"]
    assert reception_rows(stack, b.keys) == []
    assert project_entry(only(emitted, "trilha_raw_registered"), a.name)["keys"] == [a.key("by-hand.csv")]

    registered = [e for e in captured if e.asset == "trilha_raw_registered"] + emitted
    op = PromoteOperator(task_id="promote", project="inmet")  # the Param default; the events decide
    summary, emitted = run_emitting(with_outlets(op, STORED_RAW), triggered_by=registered)
    assert (summary["project"], summary["copied"]) == (a.name, 2)
    assert sorted(Path(r["dest_key"]).name for r in storage_rows(stack, a.name)) == [
        "by-hand.csv",
        "captured.csv",
    ]
    assert storage_rows(stack, b.name) == []
    assert len(project_entry(only(emitted, "trilha_stored_raw"), a.name)["keys"]) == 2


def test_promote_scoped_to_keys_leaves_the_others_for_the_cron_run(stack: Any) -> None:
    s = new_scope("ev")
    run_emitting(promote(s, key_prefix="nothing/"))  # registers the project
    for rel in ("one.csv", "two.csv"):
        put(stack, s.key(rel), table(rel))
    _, emitted = run_emitting(with_outlets(ingest(key_prefix=s.keys), RAW_REGISTERED))
    event = emitted[0]
    narrowed = dict(event.extra)
    narrowed["projects"] = [
        {**p, "keys": [s.key("one.csv")], "keys_total": 1} for p in event.extra["projects"]
    ]
    one_key = Emitted(**{**vars(event), "extra": narrowed})

    summary, _ = run_emitting(promote(s, project_prefix=""), triggered_by=[one_key])
    assert summary["copied"] == 1
    assert [Path(r["dest_key"]).name for r in storage_rows(stack, s.name)] == ["one.csv"]
    assert run_emitting(promote(s))[0]["copied"] == 1  # the manual/cron run does the rest
