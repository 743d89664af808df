"""The curated Iceberg tables' pure parts: per-year curation is exactly the whole-table curation
(trilha.domain.curate), and the planning of a run (trilha.domain.tables): which partitions it
rewrites, from which parts, and what its snapshots' summaries record."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from tests.unit.test_curate import SAMPLES, YEARLY, at, part
from trilha.domain import lineage, tables
from trilha.domain.contracts import validate
from trilha.domain.curate import (
    curate,
    curate_inmet_hourly_year,
    part_years,
    stations_from_years,
)
from trilha.domain.formats import parse_file
from trilha.domain.parquet import parquet_bytes_to_table, table_to_parquet_bytes
from trilha.hooks.include import load_contract


def _by_years(parts: list[pa.Table]) -> dict[str, pa.Table]:
    """Curate year by year, each year from the parts with rows in it (in their order), and put
    the years back together in the whole table's order (station, then time)."""
    years = sorted({y for p in parts for y in part_years(p)})
    out: dict[str, list[pa.Table]] = {"hourly": [], "daily": [], "daily_utc": [], "station_years": []}
    for year in years:
        contributors = [p for p in parts if year in part_years(p)]
        for name, table in curate_inmet_hourly_year(contributors, year).items():
            out[name].append(table)
    hourly = pa.concat_tables(out["hourly"]).sort_by(
        [("wmo_code", "ascending"), ("observed_at", "ascending")]
    )
    days = {
        name: pa.concat_tables(out[name]).sort_by([("wmo_code", "ascending"), ("date", "ascending")])
        for name in ("daily", "daily_utc")
    }
    return {
        "hourly": hourly.combine_chunks(),
        "daily": days["daily"].combine_chunks(),
        "daily_utc": days["daily_utc"].combine_chunks(),
        "stations": stations_from_years(pa.concat_tables(out["station_years"])),
    }


def _same(a: pa.Table, b: pa.Table) -> None:
    assert a.schema == b.schema
    assert a.to_pylist() == b.to_pylist()


def test_real_files_curated_year_by_year_equal_the_whole_table() -> None:
    contract = load_contract("inmet_hourly")
    parts = []
    for name in YEARLY:
        parsed = parse_file((SAMPLES / name).read_bytes(), name)
        ok, _ = validate(parsed.table, contract, name)
        parts.append(parquet_bytes_to_table(table_to_parquet_bytes(ok)))
    # The 2019 and 2024 files start at 00:00 UTC on 1 January: 31 December of the year before locally.
    assert [part_years(p) for p in parts] == [[2003], [2018, 2019], [2023, 2024]]
    whole = curate("inmet_hourly", parts)
    by_year = _by_years(parts)
    for name in ("hourly", "daily", "daily_utc", "stations"):
        _same(by_year[name], whole[name].combine_chunks())


def test_dedup_across_a_new_year_is_exact_per_partition() -> None:
    """Parts straddling New Year, overlapping and correcting each other: the later part wins hour by
    hour in both years, exactly as over the whole table; station metadata is the latest year's."""
    old = part(
        "A701", [at(31, 22, 12, 2023), at(31, 23, 12, 2023), at(1, 0), at(1, 1)], air_temp_c=[1, 2, 3, 4]
    )
    fix = part("A701", [at(31, 23, 12, 2023), at(1, 0), at(1, 1)], air_temp_c=[20, 30, 40], latitude=-20.0)
    other = part("A807", [at(5, 5)], air_temp_c=[9])
    parts = [old, fix, other]
    assert [part_years(p) for p in parts] == [[2023, 2024], [2023, 2024], [2024]]
    whole = curate("inmet_hourly", parts)
    by_year = _by_years(parts)
    for name in ("hourly", "daily", "daily_utc", "stations"):
        _same(by_year[name], whole[name].combine_chunks())
    assert by_year["hourly"].column("air_temp_c").to_pylist() == [1, 20, 30, 40, 9]
    # The correction moved the station from 23:00 on: a second stations row from then on.
    stations = by_year["stations"].to_pylist()
    assert [(s["wmo_code"], s["hours"], s["latitude"]) for s in stations] == [
        ("A701", 1, -23.5),
        ("A701", 3, -20.0),
        ("A807", 1, -23.5),
    ]
    assert stations[0]["first_observed_at"] == datetime(2023, 12, 31, 22, tzinfo=UTC)
    assert stations[0]["valid_to"] == stations[1]["valid_from"] == datetime(2023, 12, 31, 23, tzinfo=UTC)


def test_the_local_new_years_eve_is_in_one_partition_with_every_hour_once() -> None:
    """31 December 2023 in Sao Paulo (UTC-3) runs to 03:00 UTC on 1 January 2024: its last three
    hours are in the 2024 file, and the 2024 file's first three hours belong to the 2023 daily
    partition; 1 January 2024 starts at 03:00 UTC. No hour is lost or counted twice."""
    hours_2023 = [datetime(2023, 12, 31, h, tzinfo=UTC) for h in range(24)]
    hours_2024 = [datetime(2024, 1, 1, h, tzinfo=UTC) for h in range(24)]
    y2023 = part("A701", hours_2023, air_temp_c=[1.0] * 24)
    y2024 = part("A701", hours_2024, air_temp_c=[2.0] * 24)
    assert (part_years(y2023), part_years(y2024)) == ([2023], [2023, 2024])
    first = curate_inmet_hourly_year([y2023, y2024], 2023)
    second = curate_inmet_hourly_year([y2024], 2024)
    assert [(r["date"], r["hours_total"], r["air_temp_mean_c"]) for r in first["daily"].to_pylist()] == [
        (date(2023, 12, 30), 3, None),  # 00:00-02:00 UTC on the 31st: below the completeness rule
        (date(2023, 12, 31), 24, (21 * 1.0 + 3 * 2.0) / 24),
    ]
    assert [(r["date"], r["hours_total"]) for r in second["daily"].to_pylist()] == [(date(2024, 1, 1), 21)]
    # The hourly and UTC-day partitions stay by UTC year.
    assert (first["hourly"].num_rows, second["hourly"].num_rows) == (24, 24)
    assert first["daily_utc"].column("date").to_pylist() == [date(2023, 12, 31)]
    assert second["daily_utc"].column("date").to_pylist() == [date(2024, 1, 1)]
    total = sum(sum(t["daily"].column("hours_total").to_pylist()) for t in (first, second))
    assert total == 48


def test_part_years_refuses_null_times_with_the_part_named() -> None:
    bad = part("A701", [at(1, 0)]).set_column(0, "observed_at", pa.nulls(1, pa.timestamp("us", "UTC")))
    with pytest.raises(ValueError, match="part staged/x.parquet: expected observed_at on every row"):
        part_years(bad, "staged/x.parquet")


def test_station_years_carry_the_year_and_are_empty_for_an_empty_year() -> None:
    got = curate_inmet_hourly_year([part("A701", [at(1, 0)])], 2023)
    assert got["hourly"].num_rows == got["daily_utc"].num_rows == got["station_years"].num_rows == 0
    # 00:00 UTC on 1 January 2024 is 21:00 on 31 December 2023 in Sao Paulo: 2023's daily partition.
    assert got["daily"].to_pylist()[0]["date"] == date(2023, 12, 31)
    got = curate_inmet_hourly_year([part("A701", [at(1, 0)])], 2024)
    assert got["station_years"].column("year").to_pylist() == [2024]
    assert pc.sum(got["station_years"].column("hours")).as_py() == 1


# -------------------------------------------------------------------------------------------- plan


def inp(key: str, *years: int, sha: str = "") -> dict[str, object]:
    return {"key": key, "sha256": sha or f"sha-{key}", "years": list(years)}


def test_first_run_writes_every_partition() -> None:
    plan = tables.plan_run([inp("a", 2003), inp("b", 2019, 2020)], None)
    assert (plan.full, plan.years, plan.rewritten) == (True, (2003, 2019, 2020), (2003, 2019, 2020))
    assert plan.contributors == {2003: (0,), 2019: (1,), 2020: (1,)}


def test_adding_one_station_year_touches_one_partition() -> None:
    published = [inp(f"s{i}-{y}", y) for i in range(3) for y in range(2000, 2025)]
    current = [*published, inp("new-2010", 2010)]
    plan = tables.plan_run(current, published)
    assert (plan.full, plan.touched) == (False, (2010,))
    assert plan.added == (("new-2010", "sha-new-2010"),)
    # the partition is recomputed from every part with rows in 2010, in the inputs' order
    assert [current[i]["key"] for i in plan.contributors[2010]] == [
        "s0-2010",
        "s1-2010",
        "s2-2010",
        "new-2010",
    ]


def test_a_removed_or_corrected_part_touches_its_years() -> None:
    published = [inp("a", 2003), inp("b", 2019)]
    plan = tables.plan_run([inp("a", 2003), inp("b", 2019, sha="fixed")], published)
    assert plan.touched == (2019,)
    assert plan.removed == (("b", "sha-b"),)
    plan = tables.plan_run([inp("a", 2003)], published)
    # 2019 is emptied: rewritten with no contributor
    assert (plan.touched, plan.years) == ((2019,), (2003,))


def test_unpublished_snapshots_are_recomputed_too() -> None:
    published = [inp("a", 2003), inp("b", 2019)]
    plan = tables.plan_run(published, published, unpublished_years=[2019])
    assert (plan.full, plan.touched) == (False, (2019,))
    assert tables.plan_run(published, published, unpublished_years=None).full
    summaries = [{tables.PROP_PARTITIONS: "[2019]"}, {tables.PROP_PARTITIONS: "[2003, 2019]"}]
    assert tables.unpublished_partitions(summaries) == {2003, 2019}
    assert tables.unpublished_partitions([{tables.PROP_PARTITIONS: tables.ALL_PARTITIONS}]) is None
    assert tables.unpublished_partitions([{"operation": "append"}]) is None


def test_unpartitioned_datasets_are_rewritten_whole() -> None:
    plan = tables.plan_run([inp("a"), inp("b")], [inp("a")], partitioned=False)
    assert plan.full
    assert plan.added == (("b", "sha-b"),)


def test_snapshot_properties_name_the_runs_inputs() -> None:
    plan = tables.plan_run([inp("a", 2003), inp("b", 2019)], [inp("a", 2003)])
    props = tables.snapshot_properties(
        version="v0002", run_id="r1", fingerprint="f" * 64, inputs_count=2, plan=plan
    )
    assert props[tables.PROP_VERSION] == "v0002"
    assert json.loads(props[tables.PROP_ADDED]) == [{"key": "b", "sha256": "sha-b"}]
    assert json.loads(props[tables.PROP_REMOVED]) == []
    assert json.loads(props[tables.PROP_PARTITIONS]) == [2019]
    assert all(isinstance(v, str) for v in props.values())


def test_years_come_from_the_published_version_or_from_reading() -> None:
    published = [inp("a", 2003)]
    current = [{"key": "a", "sha256": "sha-a"}, {"key": "b", "sha256": "sha-b"}]
    assert tables.new_parts(current, published) == [current[1]]
    got = tables.with_years(current, published, {("b", "sha-b"): [2020, 2019]})
    assert [i["years"] for i in got] == [[2003], [2019, 2020]]
    with pytest.raises(tables.PlanError, match="'b': its years are not known"):
        tables.with_years(current, published, {})


def test_identifiers_and_locations_are_checked() -> None:
    assert tables.identifier("inmet-x", "inmet_hourly", "hourly") == ("inmet-x", "inmet_hourly__hourly")
    assert (
        tables.table_location("curated-data", "p", "d", "hourly") == "s3://curated-data/p/d/_iceberg/hourly"
    )
    with pytest.raises(tables.PlanError, match="dataset: expected lower-case"):
        tables.identifier("p", "../x", "hourly")


def test_written_objects_are_the_keys_no_version_claims() -> None:
    after = [("p/b", 2, '"e2"'), ("p/a", 1, '"e1"')]
    assert tables.written_objects({"p/a"}, after) == [{"key": "p/b", "bytes": 2, "etag": "e2"}]


def test_leftovers_of_a_dead_run_are_history_or_orphans() -> None:
    history, orphans = tables.leftovers(
        claimed={"t/metadata/1.json"},
        listed=["t/metadata/1.json", "t/metadata/2.json", "t/data/committed.parquet", "t/data/never.parquet"],
        referenced=["t/metadata/1.json", "t/metadata/2.json", "t/data/committed.parquet"],
    )
    assert history == ["t/data/committed.parquet", "t/metadata/2.json"]
    assert orphans == ["t/data/never.parquet"]


def station_inp(code: str, year: int, sha: str = "") -> dict[str, object]:
    return {**inp(f"{code}-{year}", year, sha=sha), "stations": [code]}


def test_units_cut_a_year_along_station_boundaries() -> None:
    """Parts of one station stay in one shard (a corrected part beside its original); shards hold at
    most batch_size parts unless one station alone has more; shards are in station order."""
    current = [station_inp(c, 2024) for c in ("A003", "A001", "A002", "A004")]
    current.append(station_inp("A002", 2024, sha="fixed"))
    plan = tables.plan_run(current, None)
    units = tables.plan_units(current, plan, 2)
    assert [[current[i]["key"] for i in u.parts] for u in units] == [
        ["A001-2024"],
        ["A002-2024", "A002-2024"],
        ["A003-2024", "A004-2024"],
    ]
    assert [u.shard for u in units] == [0, 1, 2]
    one = tables.plan_units(current, plan, 1)
    assert [len(u.parts) for u in one] == [1, 2, 1, 1]  # A002's two parts cannot be split
    with pytest.raises(tables.PlanError, match="expected 1 or more"):
        tables.plan_units(current, plan, 0)


def live(table: str, name: str, year: int, low: str | None, high: str | None) -> tables.LiveFile:
    return tables.LiveFile(table=table, path=f"s3://c/{table}/{name}", year=year, low=low, high=high)


#: v0001 of six stations in 2024 and 2023, written in shards of two: one file per shard and table.
SIX = [station_inp(f"A00{i}", y) for y in (2023, 2024) for i in range(1, 7)]
FILES = [
    live(t, f"{y}-{n}", y, f"A00{2 * n + 1}", f"A00{2 * n + 2}")
    for t in ("hourly", "daily")
    for y in (2023, 2024)
    for n in range(3)
]


def test_a_corrected_station_narrows_its_year_to_its_shard() -> None:
    current = [*SIX, station_inp("A003", 2024, sha="fixed")]
    plan = tables.plan_run(current, SIX)
    narrowed = tables.narrow(current, SIX, plan, FILES)
    assert list(narrowed) == [2024]
    assert [current[i]["key"] for i in narrowed[2024].parts] == ["A003-2024", "A004-2024", "A003-2024"]
    assert narrowed[2024].replaced == ("s3://c/daily/2024-1", "s3://c/hourly/2024-1")
    units = tables.plan_units(current, plan, 2, narrowed)
    assert [[current[i]["key"] for i in u.parts] for u in units] == [
        ["A003-2024", "A003-2024"],
        ["A004-2024"],
    ]


def test_a_new_station_replaces_no_file_and_a_removed_one_replaces_its_own() -> None:
    current = [*SIX, station_inp("A009", 2024)]
    narrowed = tables.narrow(current, SIX, tables.plan_run(current, SIX), FILES)
    assert narrowed[2024] == tables.Narrowed(
        parts=(len(SIX),), replaced=(), barriers=("A001", "A003", "A005")
    )
    gone = [i for i in SIX if i["key"] != "A005-2023"]
    narrowed = tables.narrow(gone, SIX, tables.plan_run(gone, SIX), FILES)
    assert [gone[i]["key"] for i in narrowed[2023].parts] == ["A006-2023"]  # its shard-mate, recomputed
    assert narrowed[2023].replaced == ("s3://c/daily/2023-2", "s3://c/hourly/2023-2")


def test_narrowing_grows_to_every_file_a_recomputed_part_reaches() -> None:
    """A new part holding stations of two shards (A002 and A005) makes both shards' files be
    replaced, and every part of both ranges be recomputed."""
    both = {**inp("multi-2024", 2024), "stations": ["A002", "A005"]}
    current = [*SIX, both]
    narrowed = tables.narrow(current, SIX, tables.plan_run(current, SIX), FILES)
    keys = [current[i]["key"] for i in narrowed[2024].parts]
    assert keys == ["A001-2024", "A002-2024", "A005-2024", "A006-2024", "multi-2024"]
    assert narrowed[2024].replaced == tuple(
        sorted(f"s3://c/{t}/2024-{n}" for t in ("hourly", "daily") for n in (0, 2))
    )


def test_a_year_is_rewritten_whole_when_stations_or_bounds_are_unknown() -> None:
    current = [*SIX, inp("nostations-2024", 2024)]
    assert tables.narrow(current, SIX, tables.plan_run(current, SIX), FILES) == {}
    current = [*SIX, station_inp("A003", 2024, sha="fixed")]
    plan = tables.plan_run(current, SIX)
    unbounded = [*FILES, live("hourly", "2024-x", 2024, None, None)]
    assert tables.narrow(current, SIX, plan, unbounded) == {}
    assert tables.narrow(current, None, tables.plan_run(current, None), FILES) == {}
    recovering = tables.plan_run(current, SIX, unpublished_years=[2024])
    assert tables.narrow(current, SIX, recovering, FILES) == {}


def test_new_shards_of_a_narrowed_year_never_span_a_kept_file() -> None:
    """A corrected A003 and a new A009: the shard of A003-A004 is recomputed and A009 written anew;
    with room for both in one shard they still go in two, so no new file's range covers the kept
    file of A005-A006 and the year's files stay in station order."""
    current = [*SIX, station_inp("A003", 2024, sha="fixed"), station_inp("A009", 2024)]
    plan = tables.plan_run(current, SIX)
    narrowed = tables.narrow(current, SIX, plan, FILES)
    assert narrowed[2024].barriers == ("A001", "A005")
    units = tables.plan_units(current, plan, 10, narrowed)
    assert [[current[i]["key"] for i in u.parts] for u in units] == [
        ["A003-2024", "A004-2024", "A003-2024"],
        ["A009-2024"],
    ]


def test_a_version_made_under_another_logic_is_not_built_on() -> None:
    """A lake whose tables an older Trilha made (no logic recorded: UTC-day daily, stations without
    history) or that another completeness rule made: the next run reads every part again and
    rewrites every table whole, as a new version even when the inputs are the same."""
    logic = tables.logic("inmet_hourly", 18)
    inputs = [inp("a", 2003), inp("b", 2018, 2019)]
    ours = {"table_format": "iceberg", "inputs": inputs, "tables": {"hourly": {"logic": logic}}}
    old = {"table_format": "iceberg", "inputs": inputs, "tables": {"hourly": {"snapshot_id": 1}}}
    stricter = {**ours, "tables": {"hourly": {"logic": tables.logic("inmet_hourly", 24)}}}
    assert tables.published_inputs(ours, logic) == inputs
    assert tables.published_inputs(old, logic) is None
    assert tables.published_inputs(stricter, logic) is None
    assert tables.published_inputs({**ours, "table_format": "parquet"}, logic) is None
    plan = tables.plan_run(inputs, tables.published_inputs(old, logic))
    assert (plan.full, plan.rewritten) == (True, (2003, 2018, 2019))
    assert tables.new_parts(inputs, tables.published_inputs(old, logic)) == inputs
    # Same inputs, another logic: another identity (the inventory makes a new version).
    assert tables.run_fingerprint(inputs, logic) != tables.run_fingerprint(
        inputs, tables.logic("inmet_hourly", 24)
    )
    assert tables.run_fingerprint(inputs, logic) != lineage.inputs_fingerprint(inputs)
    # Other datasets have no logic: their identity and builds are as before.
    assert tables.logic("data_x", 18) == ""
    assert tables.run_fingerprint(inputs, "") == lineage.inputs_fingerprint(inputs)
    with pytest.raises(
        tables.PlanError, match="min_hours_for_daily: expected 1 to 24 valid hours of 24, got 25"
    ):
        tables.logic("inmet_hourly", 25)


def test_a_concurrent_runs_data_files_are_not_claimed() -> None:
    """While this run commits, a run racing on the same inputs may still write data files under the
    same prefixes (it deletes them when it finds this version): only this run's data files, and a
    dead run's it took over, are claimed; metadata is this run's commits'."""
    after = [
        ("p/inmet_hourly/_iceberg/hourly/data/mine.parquet", 5, '"a"'),
        ("p/inmet_hourly/_iceberg/hourly/data/racer.parquet", 6, '"b"'),
        ("p/inmet_hourly/_iceberg/hourly/data/dead-committed.parquet", 7, '"c"'),
        ("p/inmet_hourly/_iceberg/hourly/metadata/00001.metadata.json", 8, '"d"'),
    ]
    got = tables.written_objects(
        set(),
        after,
        {
            "p/inmet_hourly/_iceberg/hourly/data/mine.parquet",
            "p/inmet_hourly/_iceberg/hourly/data/dead-committed.parquet",
        },
    )
    assert [o["key"] for o in got] == [
        "p/inmet_hourly/_iceberg/hourly/data/dead-committed.parquet",
        "p/inmet_hourly/_iceberg/hourly/data/mine.parquet",
        "p/inmet_hourly/_iceberg/hourly/metadata/00001.metadata.json",
    ]
    assert len(tables.written_objects(set(), after)) == 4  # without `ours`: everything unclaimed


def test_data_files_are_told_from_metadata_even_in_a_table_named_data() -> None:
    """The generic datasets' table is named ``data``: its metadata files are not data files, so a
    version claims them whoever's data files it leaves to a concurrent run."""
    assert tables.is_data_file("p/generic/_iceberg/data/data/00000-1-x.parquet")
    assert not tables.is_data_file("p/generic/_iceberg/data/metadata/00002-x.metadata.json")
    assert tables.is_data_file("p/inmet_hourly/_iceberg/hourly/data/observed_at_year=2024/f.parquet")
    assert not tables.is_data_file("p/inmet_hourly/_iceberg/hourly/metadata/snap-1.avro")
    assert not tables.is_data_file("p/inmet_hourly/v0001/manifest.json")
    after = [
        ("p/generic/_iceberg/data/metadata/00002-x.metadata.json", 10, '"e1"'),
        ("p/generic/_iceberg/data/data/mine.parquet", 20, '"e2"'),
        ("p/generic/_iceberg/data/data/theirs.parquet", 30, '"e3"'),
    ]
    got = tables.written_objects([], after, ours=["p/generic/_iceberg/data/data/mine.parquet"])
    assert [o["key"] for o in got] == [after[1][0], after[0][0]]
