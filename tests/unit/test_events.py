"""The asset events' extras (trilha.domain.events): built from a run's change rows, bounded, and read back
into the scope of a triggered run, widening whenever a list is incomplete or an extra is foreign."""

from __future__ import annotations

import json
from typing import Any

import pytest

from trilha.domain import events


def row(name: str | None, prefix: str | None, keys: list[str], **extra: Any) -> dict[str, Any]:
    """One row of a *_changes.sql query, totals filled in later by ``rows``."""
    return {"project_name": name, "project_prefix": prefix, "items": len(keys), "keys": keys, **extra}


def rows(
    *per_project: dict[str, Any], counts: tuple[str, ...] = (), projects_total: int | None = None
) -> list:
    """The rows with the window columns SQL computes over every project (before its LIMIT)."""
    named = sum(1 for r in per_project if r["project_name"] is not None)
    out = []
    for r in per_project:
        r = dict(r)
        r["projects_total"] = named if projects_total is None else projects_total
        r["all_items"] = sum(p["items"] for p in per_project)
        for c in counts:
            r[f"all_{c}"] = sum(p[c] for p in per_project)
        out.append(r)
    return out


def extra_of(*per_project: dict[str, Any], counts: tuple[str, ...] = (), **kwargs: Any) -> dict[str, Any]:
    projects_total = kwargs.pop("projects_total", None)
    changes = events.changes_from_rows(
        rows(*per_project, counts=counts, projects_total=projects_total), counts
    )
    extra = events.change_extra(
        "trilha_stored_raw", run_id="r1", bucket="storage-unique", changes=changes, **kwargs
    )
    assert extra is not None
    # What the consumer gets back went through Airflow's JSON column.
    return dict(json.loads(json.dumps(extra)))


# ------------------------------------------------------------------------------------------- building


def test_a_run_that_changed_nothing_has_no_extra() -> None:
    changes = events.changes_from_rows([], ("bytes",))
    assert events.change_extra("trilha_staged", run_id="r", bucket="b", changes=changes) is None


def test_the_extra_names_projects_counts_and_keys() -> None:
    extra = extra_of(
        row("inmet", "inmet", ["inmet/a.csv", "inmet/b.csv"], bytes=30, new_versions=1),
        row("Other one", "other", ["other/x.csv"], bytes=5, new_versions=0),
        counts=("bytes", "new_versions"),
    )
    assert extra["trilha_event"] == events.FORMAT
    assert (extra["layer"], extra["run_id"], extra["bucket"]) == ("trilha_stored_raw", "r1", "storage-unique")
    assert extra["counts"] == {"items": 3, "bytes": 35, "new_versions": 1}
    assert (
        extra["keys_total"],
        extra["keys_omitted"],
        extra["projects_total"],
        extra["projects_omitted"],
    ) == (
        3,
        0,
        2,
        0,
    )
    inmet, other = extra["projects"]
    assert inmet == {
        "name": "inmet",
        "prefix": "inmet",
        "counts": {"items": 2, "bytes": 30, "new_versions": 1},
        "keys": ["inmet/a.csv", "inmet/b.csv"],
        "keys_total": 2,
        "keys_omitted": 0,
    }
    assert (other["name"], other["keys"], other["counts"]["bytes"]) == ("Other one", ["other/x.csv"], 5)


def test_keys_are_capped_over_all_projects_and_say_how_many_were_left_out() -> None:
    big = [f"big/{i:04d}" for i in range(500)]  # the SQL hands over its first MAX_KEYS, and the count
    extra = extra_of(
        {**row("big", "big", big[: events.MAX_KEYS]), "items": 500},
        row("small", "small", ["small/1", "small/2"]),
    )
    big_entry, small_entry = extra["projects"]
    assert small_entry["keys"] == ["small/1", "small/2"]  # the short list whole...
    assert len(big_entry["keys"]) == events.MAX_KEYS - 2  # ...the long one gets the rest of the budget
    assert big_entry["keys"] == big[: events.MAX_KEYS - 2]
    assert (big_entry["keys_total"], big_entry["keys_omitted"]) == (500, 500 - (events.MAX_KEYS - 2))
    assert (extra["keys_total"], extra["keys_omitted"]) == (502, 502 - events.MAX_KEYS)
    assert len(json.dumps(extra)) < 20_000


def test_projects_past_the_cap_are_counted_not_listed() -> None:
    listed = [row(f"p{i:02d}", f"p{i:02d}", [f"p{i:02d}/k"]) for i in range(3)]
    extra = extra_of(*listed, projects_total=30, max_projects=3)
    assert [p["name"] for p in extra["projects"]] == ["p00", "p01", "p02"]
    assert (extra["projects_total"], extra["projects_omitted"]) == (30, 27)


def test_keys_under_no_project_are_counted_apart() -> None:
    extra = extra_of(row("inmet", "inmet", ["inmet/a"]), row(None, None, ["loose.csv", "x/y.csv"]))
    assert [p["name"] for p in extra["projects"]] == ["inmet"]
    assert extra["unowned_keys"] == 2
    assert extra["keys_total"] == 3


@pytest.mark.parametrize(
    ("sizes", "budget", "expected"),
    [
        ([], 10, []),
        ([1, 2], 10, [1, 2]),
        ([50, 2], 10, [8, 2]),
        ([50, 50, 50], 10, [3, 3, 4]),
        ([4, 50, 50], 10, [3, 3, 4]),
        ([1, 50, 50], 10, [1, 4, 5]),
        ([5, 5], 0, [0, 0]),
    ],
)
def test_allot_shares_a_budget_fairly(sizes: list[int], budget: int, expected: list[int]) -> None:
    shares = events.allot(sizes, budget)
    assert shares == expected
    assert sum(shares) == min(budget, sum(sizes))  # never wasted, never over
    assert all(s <= n for s, n in zip(shares, sizes, strict=True))


def test_versions_come_with_their_dataset_path_manifest_and_rows() -> None:
    curated_row = row(
        "inmet",
        "inmet",
        ["inmet/bdmep/v0001/manifest.json", "inmet/inmet_hourly/v0003/manifest.json"],
        rows=17,
        version_datasets=["inmet_bdmep_daily", "inmet_hourly"],
        versions=["v0001", "v0003"],
        version_paths=["inmet/bdmep/v0001", "inmet/inmet_hourly/v0003"],
        version_rows=[7, 10],
    )
    extra = extra_of(curated_row, counts=("rows",))
    (project,) = extra["projects"]
    assert project["datasets"] == ["inmet_bdmep_daily", "inmet_hourly"]
    assert project["datasets_total"] == 2
    assert project["versions"] == [
        {
            "dataset": "inmet_bdmep_daily",
            "version": "v0001",
            "path": "inmet/bdmep/v0001",
            "manifest": "inmet/bdmep/v0001/manifest.json",
            "rows": 7,
        },
        {
            "dataset": "inmet_hourly",
            "version": "v0003",
            "path": "inmet/inmet_hourly/v0003",
            "manifest": "inmet/inmet_hourly/v0003/manifest.json",
            "rows": 10,
        },
    ]
    assert extra["counts"] == {"items": 2, "rows": 17}


def test_repaired_keys_join_the_project_they_belong_to() -> None:
    changes = events.changes_from_rows(rows(row("inmet", "inmet", ["inmet/a"])), ())
    changes = events.with_keys(changes, "inmet", "inmet", ["inmet/z", "inmet/a"], "repaired")
    changes = events.with_keys(changes, "new one", "new-one", ["new-one/q"], "repaired")
    extra = events.change_extra("trilha_stored_raw", run_id="r", bucket="b", changes=changes)
    assert extra is not None
    inmet, new_one = extra["projects"]
    # inmet/a was recorded and repaired: counted once
    assert (inmet["keys"], inmet["keys_total"], inmet["counts"]) == (
        ["inmet/a", "inmet/z"],
        2,
        {"items": 2, "repaired": 1},
    )
    assert (new_one["name"], new_one["keys"], new_one["counts"]["repaired"]) == ("new one", ["new-one/q"], 1)
    assert (extra["counts"], extra["projects_total"]) == ({"items": 3, "repaired": 2}, 2)
    assert events.with_keys(changes, "inmet", "inmet", [], "repaired") is changes


def test_a_run_with_only_repairs_announces_them() -> None:
    changes = events.with_keys(events.changes_from_rows([], ()), "inmet", "inmet", ["inmet/a"], "repaired")
    extra = events.change_extra("trilha_stored_raw", run_id="r", bucket="b", changes=changes)
    assert extra is not None
    assert extra["projects"][0]["keys"] == ["inmet/a"]


def test_describe_is_one_line_with_what_was_left_out() -> None:
    extra = extra_of({**row("big", "big", ["big/1"]), "items": 5}, projects_total=4)
    line = events.describe(extra)
    assert "\n" not in line
    assert "'big' (5 key(s), 4 not listed)" in line
    assert "and 3 more project(s)" in line


# ------------------------------------------------------------------------------------------- scoping


def scope(extras: list[dict[str, Any]], items: str | None = "keys") -> events.Scope:
    return events.scope_from_extras(extras, layer="trilha_stored_raw", items=items)


def test_no_events_means_no_scope() -> None:
    s = scope([])
    assert not s.scoped
    assert s.why == events.UNSCOPED_NO_EVENTS


def test_complete_key_lists_scope_to_their_keys_and_events_merge() -> None:
    first = extra_of(row("inmet", "inmet", ["inmet/a", "inmet/b"]))
    second = extra_of(row("inmet", "inmet", ["inmet/c"]), row("other", "other", ["other/x"]))
    s = scope([first, second])
    assert s.scoped
    assert s.projects == (
        events.ProjectScope("inmet", "inmet", frozenset({"inmet/a", "inmet/b", "inmet/c"})),
        events.ProjectScope("other", "other", frozenset({"other/x"})),
    )
    assert "2 event(s)" in s.why
    assert "'inmet' (3 named)" in s.why


def test_a_truncated_key_list_widens_to_the_whole_project_and_stays_wide() -> None:
    truncated = extra_of({**row("inmet", "inmet", ["inmet/a"]), "items": 2})
    complete = extra_of(row("inmet", "inmet", ["inmet/b"]), row("other", "other", ["other/x"]))
    for extras in ([truncated, complete], [complete, truncated]):
        s = scope(extras)
        assert s.projects == (
            events.ProjectScope("inmet", "inmet", None),
            events.ProjectScope("other", "other", frozenset({"other/x"})),
        )
    assert "'inmet' (whole project)" in scope([truncated]).why


def test_truncated_by_the_global_budget_also_widens() -> None:
    many = [f"inmet/{i:03d}" for i in range(events.MAX_KEYS + 5)]
    extra = extra_of({**row("inmet", "inmet", many[: events.MAX_KEYS]), "items": len(many)})
    assert extra["projects"][0]["keys_omitted"] == 5
    assert scope([extra]).projects == (events.ProjectScope("inmet", "inmet", None),)


def test_left_out_projects_make_the_run_unscoped() -> None:
    extra = extra_of(row("p", "p", ["p/k"]), projects_total=25)
    s = scope([extra, extra_of(row("q", "q", ["q/k"]))])
    assert not s.scoped
    assert "lists 1 of 25 projects" in s.why


def test_scoping_by_projects_only_ignores_the_lists() -> None:
    s = scope([extra_of(row("inmet", "inmet", ["inmet/a"]))], items=None)
    assert s.projects == (events.ProjectScope("inmet", "inmet", None),)


def test_datasets_scope_by_their_own_list() -> None:
    staged = extra_of(row("inmet", "inmet", ["inmet/ds/a.parquet"], datasets=["inmet_hourly"]))
    assert scope([staged], items="datasets").projects == (
        events.ProjectScope("inmet", "inmet", frozenset({"inmet_hourly"})),
    )


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (lambda e: {}, "not a Trilha change"),
        (lambda e: {**e, "trilha_event": 2}, "not a Trilha change"),
        (lambda e: {**e, "layer": "trilha_staged"}, "describes layer 'trilha_staged'"),
        (lambda e: {**e, "projects": "inmet"}, "no list of projects"),
        (lambda e: {**e, "projects_omitted": None}, "no projects_omitted"),
        (lambda e: {**e, "projects": [{**e["projects"][0], "prefix": "../x"}]}, "invalid project"),
        (lambda e: {**e, "projects": [{**e["projects"][0], "name": ""}]}, "invalid project"),
        (lambda e: {**e, "projects": [{**e["projects"][0], "keys": "inmet/a"}]}, "malformed keys"),
        (lambda e: {**e, "projects": [{**e["projects"][0], "keys": [1]}]}, "malformed keys"),
    ],
)
def test_a_foreign_or_malformed_extra_makes_the_run_unscoped(change: Any, why: str) -> None:
    good = extra_of(row("inmet", "inmet", ["inmet/a"]))
    s = scope([good, change(good)])
    assert not s.scoped
    assert why in s.why
    assert "event 2 of 2" in s.why


def test_one_project_with_two_prefixes_is_not_trusted() -> None:
    a = extra_of(row("inmet", "inmet", ["inmet/a"]))
    b = extra_of(row("inmet", "other", ["other/a"]))
    assert not scope([a, b]).scoped


def test_per_project_queries_each_scoped_project_or_the_default() -> None:
    scoped = scope([extra_of(row("b", "b", ["b/2", "b/1"]), {**row("a", "a", ["a/1"]), "items": 9})])
    assert events.per_project(scoped, "ignored") == [("a", None), ("b", ["b/1", "b/2"])]
    assert events.per_project(events.unscoped("manual"), "inmet") == [("inmet", None)]
    assert events.per_project(events.unscoped("manual"), None) == [(None, None)]


def test_names_sorts_and_keeps_none() -> None:
    assert events.names(frozenset({"b", "a"})) == ["a", "b"]
    assert events.names(None) is None
