"""Field-level quality control (trilha.domain.qc): each rule kind of the bundled inmet_hourly contract
fires on a real-looking faulty value and stays quiet on a real one; the hand-made INMET fixture is
staged and curated with exactly the flags its faults call for, and nothing else of those hours lost."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from trilha.domain import qc
from trilha.domain.contracts import ContractError, parse_contract
from trilha.domain.curate import curate_inmet_hourly_year
from trilha.domain.formats import HOURLY_MEASUREMENTS, parse_file
from trilha.domain.staging import StagedFile, stage_file
from trilha.hooks.include import load_contract

FIXTURE = (
    Path(__file__).parents[1]
    / "fixtures"
    / "inmet"
    / "INMET_SE_SP_A701_SAO PAULO - MIRANTE_01-01-2024_A_02-01-2024.CSV"
)
#: São Paulo - Mirante (A701), as its 2024 file describes it.
LAT, LON, ALT = -23.49638888, -46.61999999, 785.64


@pytest.fixture(scope="module")
def spec() -> qc.QcSpec:
    contract = load_contract("inmet_hourly")
    assert contract.qc is not None
    return contract.qc


def hours(start: datetime, n: int, **values: list[Any]) -> pa.Table:
    """``n`` consecutive hours of station A701 from ``start``: a plausible summer night (the
    values of 2024-01-02 00:00 UTC in the real file, every other hour 0.1 higher so that no
    sensor looks stuck), with ``values`` overriding columns. An overridden temperature or dew
    point gets extremes around it unless they are given too."""
    base = {
        "precipitation_mm": 0.0,
        "pressure_station_hpa": 925.6,
        "pressure_max_hpa": 925.6,
        "pressure_min_hpa": 924.9,
        "radiation_kj_m2": None,
        "air_temp_c": 20.8,
        "dew_point_c": 16.1,
        "air_temp_max_c": 21.5,
        "air_temp_min_c": 20.8,
        "dew_point_max_c": 16.3,
        "dew_point_min_c": 16.0,
        "rel_humidity_max_pct": 74.0,
        "rel_humidity_min_pct": 71.0,
        "rel_humidity_pct": 74.0,
        "wind_dir_deg": 169.0,
        "wind_gust_ms": 6.1,
        "wind_speed_ms": 2.0,
    }
    columns: dict[str, Any] = {
        "observed_at": pa.array([start + timedelta(hours=h) for h in range(n)], pa.timestamp("us", tz="UTC")),
        "wmo_code": ["A701"] * n,
        "latitude": [LAT] * n,
        "longitude": [LON] * n,
        "altitude": [ALT] * n,
    }
    wiggle = [0.1 * (h % 2) for h in range(n)]
    for value, low, high in (
        ("air_temp_c", "air_temp_min_c", "air_temp_max_c"),
        ("dew_point_c", "dew_point_min_c", "dew_point_max_c"),
    ):
        if value in values:
            readings = values[value]
            values.setdefault(low, [None if v is None else v - 0.3 for v in readings])
            values.setdefault(high, [None if v is None else v + 0.3 for v in readings])
    for name in HOURLY_MEASUREMENTS:
        default = [None] * n if base[name] is None else [base[name] + w for w in wiggle]
        columns[name] = pa.array(values.get(name, default), pa.float64())
    return pa.table(columns)


NIGHT = datetime(2024, 1, 2, 0, tzinfo=UTC)


def flags(table: pa.Table, column: str) -> list[tuple[str | None, str | None]]:
    return list(
        zip(
            table.column(qc.flag_column(column)).to_pylist(),
            table.column(qc.rule_column(column)).to_pylist(),
            strict=True,
        )
    )


def not_ok(table: pa.Table) -> dict[tuple[int, str], tuple[str, str]]:
    """Every flag other than ok (or no value), by (row, column)."""
    out = {}
    for column in HOURLY_MEASUREMENTS:
        for row, (flag, rule) in enumerate(flags(table, column)):
            if flag not in ("ok", None):
                out[row, column] = (flag, rule)
    return out


def staged(spec: qc.QcSpec, table: pa.Table) -> tuple[pa.Table, dict[str, dict[str, int]]]:
    return qc.apply(table, spec, qc.STAGING)


# --------------------------------------------------------------------------------------------------
# One rule at a time
# --------------------------------------------------------------------------------------------------


def test_a_clean_night_gets_ok_everywhere_and_null_flags_where_no_value(spec: qc.QcSpec) -> None:
    out, counts = staged(spec, hours(NIGHT, 3))
    assert counts == {}
    assert flags(out, "air_temp_c") == [("ok", None)] * 3
    assert flags(out, "radiation_kj_m2") == [(None, None)] * 3  # nothing measured: nothing judged
    assert out.schema.field("air_temp_c_qc").type == qc.FLAG_TYPE
    assert out.column("air_temp_c").to_pylist() == [20.8, 20.900000000000002, 20.8]


def test_gross_limits_null_the_value_and_keep_the_hour(spec: qc.QcSpec) -> None:
    # The 2024 radiation reading of 6,503 kJ/m2 that used to cost its hour every other field.
    table = hours(datetime(2024, 1, 1, 15, tzinfo=UTC), 2, radiation_kj_m2=[6503.0, 1607.1])
    out, counts = staged(spec, table)
    assert flags(out, "radiation_kj_m2") == [("bad", "gross_limits"), ("ok", None)]
    assert out.column("radiation_kj_m2").to_pylist() == [None, 1607.1]
    assert out.column("air_temp_c").to_pylist()[0] == 20.8
    assert counts == {"gross_limits": {"radiation_kj_m2": 1}}


def test_climate_limits_flag_a_suspect_value_and_keep_it(spec: qc.QcSpec) -> None:
    # A dew point of -33 °C (seen in curated before QC) and a 41.2 m/s gust: possible, not for Brazil.
    table = hours(NIGHT, 3, dew_point_c=[-33.0, 16.1, 16.1], wind_gust_ms=[6.1, 41.2, 34.9])
    out, counts = staged(spec, table)
    assert flags(out, "dew_point_c") == [("suspect", "climate_limits"), ("ok", None), ("ok", None)]
    assert flags(out, "wind_gust_ms") == [("ok", None), ("suspect", "climate_limits"), ("ok", None)]
    assert out.column("dew_point_c").to_pylist() == [-33.0, 16.1, 16.1]  # suspect values stay
    assert counts == {
        "climate_limits": {"dew_point_c": 1, "dew_point_min_c": 1, "dew_point_max_c": 1, "wind_gust_ms": 1}
    }


def test_radiation_above_the_top_of_the_atmosphere_is_bad(spec: qc.QcSpec) -> None:
    # 09:00 UTC is 06:00 at São Paulo: the sun just rose, the top of the atmosphere gets ~1,175 kJ/m2
    # in the hour after. 1,500 is impossible; 962.3 (the real reading of 11:00) is not, at 11:00.
    table = hours(datetime(2024, 1, 1, 9, tzinfo=UTC), 3, radiation_kj_m2=[1500.0, 243.3, 962.3])
    out, _ = staged(spec, table)
    assert flags(out, "radiation_kj_m2") == [("bad", "radiation_above_toa"), ("ok", None), ("ok", None)]
    # At night the bound is the margin: a few kJ/m2 of sensor offset pass, a daytime value does not.
    night = hours(datetime(2024, 1, 2, 3, tzinfo=UTC), 2, radiation_kj_m2=[4.1, 850.0])
    out, _ = staged(spec, night)
    assert flags(out, "radiation_kj_m2") == [("ok", None), ("bad", "radiation_above_toa")]


def test_top_of_atmosphere_hours_add_up_to_the_daily_extraterrestrial_radiation() -> None:
    """24 hourly integrals of a day equal FAO-56's closed-form daily value (Allen et al. 1998, eqs.
    21-25: its own, simpler declination and distance formulas, the solar constant 1361 W/m2): the
    hour angles, the sunrise/sunset clipping and the midnight wrap add nothing and lose nothing."""
    for day in (datetime(2024, 12, 21, tzinfo=UTC), datetime(2024, 6, 21, tzinfo=UTC)):
        micros = np.array([int((day + timedelta(hours=h)).timestamp()) * 1_000_000 for h in range(24)])
        j = day.timetuple().tm_yday
        dr = 1 + 0.033 * math.cos(2 * math.pi * j / 365)
        decl = 0.409 * math.sin(2 * math.pi * j / 365 - 1.39)
        for lat, lon in ((LAT, LON), (-3.1, -60.0), (-33.7, -53.4), (5.2, -60.7)):
            hourly = qc.extraterrestrial_kj_m2(micros, np.full(24, lat), np.full(24, lon))
            phi = math.radians(lat)
            ws = math.acos(-math.tan(phi) * math.tan(decl))
            daily = (
                (24 * 3600 / math.pi)
                * 1361
                * dr
                * (ws * math.sin(phi) * math.sin(decl) + math.cos(phi) * math.cos(decl) * math.sin(ws))
            )
            assert hourly.sum() == pytest.approx(daily / 1000, rel=5e-3), (day, lat)
            assert hourly.max() < 1361 * 3.6 * 1.035  # never above the solar constant for an hour
    # São Paulo at the summer solstice, sun overhead at noon: FAO-56 eq. 21 by hand (Gsc 0.0820
    # MJ/m2/min, dr 1.033, ws 1.7605) gives 42.9 MJ/m2; with 1361 W/m2 instead of 1367, 42.75.
    day = datetime(2024, 12, 21, tzinfo=UTC)
    micros = np.array([int((day + timedelta(hours=h)).timestamp()) * 1_000_000 for h in range(24)])
    sp = qc.extraterrestrial_kj_m2(micros, np.full(24, LAT), np.full(24, LON)).sum() / 1000
    assert sp == pytest.approx(42.75, abs=0.1)


def test_station_pressure_far_from_its_altitude_is_bad(spec: qc.QcSpec) -> None:
    # 1,012.4 hPa is a sea-level pressure: at 786 m the standard atmosphere gives ~922 hPa.
    table = hours(NIGHT, 2, pressure_station_hpa=[1012.4, 925.6])
    out, _ = staged(spec, table)
    assert flags(out, "pressure_station_hpa") == [("bad", "pressure_vs_altitude"), ("ok", None)]
    assert qc.expected_station_pressure(np.array([0.0, ALT]))[0] == pytest.approx(1013.25)
    assert qc.expected_station_pressure(np.array([ALT]))[0] == pytest.approx(922.4, abs=0.1)
    # Its extremes are not judged against a value that was removed.
    assert flags(out, "pressure_max_hpa") == [("ok", None), ("ok", None)]


def test_dew_point_above_air_temperature(spec: qc.QcSpec) -> None:
    # Saturated air at 0.3 °C above (rounding, fog) is fine; 1.3 °C above is suspect; 4.2 °C is bad.
    table = hours(
        datetime(2024, 1, 1, 19, tzinfo=UTC),
        4,
        air_temp_c=[22.8, 23.8, 22.8, 22.2],
        dew_point_c=[23.1, 25.1, 27.0, 16.1],
        dew_point_max_c=[23.2, 25.3, 27.2, 16.3],
    )
    out, counts = staged(spec, table)
    assert flags(out, "dew_point_c") == [
        ("ok", None),
        ("suspect", "dew_point_above_temp"),
        ("bad", "dew_point_well_above_temp"),
        ("ok", None),
    ]
    assert out.column("dew_point_c").to_pylist() == [23.1, 25.1, None, 16.1]
    assert flags(out, "air_temp_c") == [("ok", None)] * 4  # the temperature is not accused
    assert counts["dew_point_above_temp"] == {"dew_point_c": 1}


def test_a_temperature_already_bad_does_not_condemn_the_dew_point(spec: qc.QcSpec) -> None:
    table = hours(NIGHT, 1, air_temp_c=[-45.0], air_temp_min_c=[-45.0])
    out, _ = staged(spec, table)
    assert flags(out, "air_temp_c") == [("bad", "gross_limits")]
    assert flags(out, "dew_point_c") == [("ok", None)]


def test_reading_outside_the_hours_own_extremes(spec: qc.QcSpec) -> None:
    # 24.9 °C read in an hour whose maximum was 21.5: the three are suspect together; 21.9 is
    # within the 0.5 °C tolerance (the extremes come from 1-minute samples, the reading is rounded).
    table = hours(
        NIGHT, 3, air_temp_c=[24.9, 21.9, 20.8], air_temp_max_c=[21.5] * 3, air_temp_min_c=[20.8] * 3
    )
    out, counts = staged(spec, table)
    suspect = ("suspect", "outside_hour_extremes")
    for column in ("air_temp_c", "air_temp_max_c", "air_temp_min_c"):
        assert flags(out, column) == [suspect, ("ok", None), ("ok", None)]
    assert counts == {"outside_hour_extremes": {"air_temp_c": 1, "air_temp_max_c": 1, "air_temp_min_c": 1}}
    # A minimum above the maximum is the same fault.
    swapped = hours(
        NIGHT, 1, rel_humidity_min_pct=[80.0], rel_humidity_max_pct=[70.0], rel_humidity_pct=[75.0]
    )
    out, _ = staged(spec, swapped)
    assert flags(out, "rel_humidity_min_pct") == [suspect]


def test_gust_weaker_than_the_mean_wind(spec: qc.QcSpec) -> None:
    table = hours(NIGHT, 3, wind_gust_ms=[1.5, 2.0, 6.1], wind_speed_ms=[2.1, 2.0, 2.0])
    out, _ = staged(spec, table)
    assert flags(out, "wind_gust_ms") == [("suspect", "gust_below_speed"), ("ok", None), ("ok", None)]


def test_step_flags_both_hours_of_a_jump_only_between_consecutive_hours(spec: qc.QcSpec) -> None:
    # 33.6 -> 22.0 °C in one hour; the same values 2 hours apart (a missing hour between) are no step.
    table = hours(datetime(2024, 1, 8, 17, tzinfo=UTC), 4, air_temp_c=[32.6, 33.6, 22.0, 22.1])
    table = pa.concat_tables([table, hours(datetime(2024, 1, 8, 23, tzinfo=UTC), 1, air_temp_c=[33.0])])
    out, counts = qc.apply(table, spec, qc.CURATED)
    assert [f for f, _ in flags(out, "air_temp_c")] == ["ok", "suspect", "suspect", "ok", "ok"]
    assert counts == {"step": {"air_temp_c": 2}}
    # Staging leaves temporal rules to curated.
    assert staged(spec, table)[1] == {}


def test_a_spike_flags_its_middle_hour_only(spec: qc.QcSpec) -> None:
    # A relative humidity sensor reading 9 % for one hour of a humid night: out and straight back.
    table = hours(NIGHT, 4, rel_humidity_pct=[74.0, 9.0, 74.0, 75.0], rel_humidity_min_pct=[8.0] * 4)
    out, counts = qc.apply(table, spec, qc.CURATED)
    assert [f for f, _ in flags(out, "rel_humidity_pct")] == ["ok", "suspect", "ok", "ok"]
    assert counts == {"step": {"rel_humidity_pct": 1}}


def test_steps_are_not_seen_across_stations(spec: qc.QcSpec) -> None:
    a = hours(NIGHT, 2, air_temp_c=[20.8, 20.9])
    b = hours(NIGHT + timedelta(hours=2), 2, air_temp_c=[35.0, 35.1])  # another station's next hour
    table = pa.concat_tables([a, b])
    _, one_station = qc.apply(table, spec, qc.CURATED)
    _, two_stations = qc.apply(table, spec, qc.CURATED, np.array([0, 2]))
    assert (one_station, two_stations) == ({"step": {"air_temp_c": 2}}, {})


def test_persistence_flags_a_stuck_sensor_but_not_calm_nights_or_no_rain(spec: qc.QcSpec) -> None:
    stuck = [20.7] * 8 + [21.9]
    calm = [0.0] * 9  # 9 calm hours: wind speed 0 is excluded
    table = hours(NIGHT, 9, air_temp_c=stuck, air_temp_max_c=[22.0] * 9, wind_speed_ms=calm)
    out, counts = qc.apply(table, spec, qc.CURATED)
    assert [f for f, _ in flags(out, "air_temp_c")] == ["suspect"] * 8 + ["ok"]
    assert counts == {"persistence": {"air_temp_c": 8}}
    # 7 equal hours is below the air temperature's 8.
    out, counts = qc.apply(hours(NIGHT, 8, air_temp_c=[20.7] * 7 + [20.5]), spec, qc.CURATED)
    assert counts == {}


def test_curated_keeps_staging_flags_and_only_raises_them(spec: qc.QcSpec) -> None:
    table = hours(NIGHT, 9, air_temp_c=[20.7] * 9, dew_point_c=[-33.0] + [16.1] * 8)
    first, _ = qc.apply(table, spec, qc.STAGING)
    assert flags(first, "dew_point_c")[0] == ("suspect", "climate_limits")
    second, counts = qc.apply(first, spec, qc.CURATED)
    assert flags(second, "dew_point_c")[0] == ("suspect", "climate_limits")  # not replaced by an equal
    assert flags(second, "air_temp_c") == [("suspect", "persistence")] * 9
    # Counts are of the final flags: the staging flag is counted again, and the jump from -33 °C
    # makes the next hour's dew point suspect too.
    assert counts == {
        "climate_limits": {"dew_point_c": 1, "dew_point_min_c": 1, "dew_point_max_c": 1},
        "step": {"dew_point_c": 1},
        "persistence": {"air_temp_c": 9},
    }


def test_a_part_without_flags_is_judged_in_curated_and_stays_unflagged_where_nothing_fires(
    spec: qc.QcSpec,
) -> None:
    """A staged part from before QC reaches curated with null flags (curate fills the columns it
    lacks): its values were not judged hour by hour, so they stay unflagged, except where a
    temporal rule fires."""
    table = hours(NIGHT, 9, air_temp_c=[20.7] * 9)
    unflagged = table
    for column in HOURLY_MEASUREMENTS:
        unflagged = unflagged.append_column(qc.flag_column(column), pa.nulls(9, qc.FLAG_TYPE))
    out, counts = qc.apply(unflagged, spec, qc.CURATED)
    assert flags(out, "air_temp_c") == [("suspect", "persistence")] * 9
    assert flags(out, "dew_point_c") == [(None, None)] * 9
    assert counts == {"persistence": {"air_temp_c": 9}}


# --------------------------------------------------------------------------------------------------
# The qc section of a contract
# --------------------------------------------------------------------------------------------------

CONTRACT = """dataset: d
version: 1
columns:
  - {name: observed_at, type: "timestamp[us, tz=UTC]"}
  - {name: t, type: float64}
qc:
  columns: [t]
  rules:
"""


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ("    - {name: r, kind: spline, severity: bad}", r"kind: expected one of \[.*'range'.*got 'spline'"),
        (
            "    - {name: r, kind: range, severity: fatal, limits: {t: [0, 1]}}",
            "severity: expected 'suspect'",
        ),
        ("    - {name: r, kind: range, severity: bad}", r"got missing \['limits'\]"),
        ("    - {name: r, kind: range, severity: bad, limits: {u: [0, 1]}}", r"unknown \['u'\]"),
        ("    - {name: r, kind: range, severity: bad, limits: {t: [0]}}", r"limits.t: expected \[min, max\]"),
        ("    - {name: r, kind: step, severity: bad, limits: {t: 1}, hours: 3}", r"unknown \['hours'\]"),
        (
            "    - {name: r, kind: persistence, severity: bad, hours: {t: 1}}",
            "hours.t: expected a whole number",
        ),
        (
            "    - {name: r, kind: step, severity: bad, limits: {t: 1}}\n"
            "    - {name: r, kind: step, severity: bad, limits: {t: 2}}",
            r"duplicates \['r'\]",
        ),
    ],
)
def test_a_malformed_qc_section_names_the_rule_and_what_was_expected(rules: str, message: str) -> None:
    with pytest.raises(ContractError, match=message) as info:
        parse_contract(CONTRACT + rules + "\n", "d.yaml")
    assert str(info.value).startswith("d.yaml: qc")


def test_rules_parse_in_contract_order_with_their_stage() -> None:
    contract = parse_contract(
        CONTRACT
        + "    - {name: lim, kind: range, severity: bad, limits: {t: [null, 50]}}\n"
        + "    - {name: jump, kind: step, severity: suspect, limits: {t: 5}}\n",
        "d.yaml",
    )
    assert contract.qc is not None
    assert [(r.name, r.kind, r.stage) for r in contract.qc.rules] == [
        ("lim", "range", "staging"),
        ("jump", "step", "curated"),
    ]
    table = pa.table({"t": [-300.0, 51.0, None]})
    out, counts = qc.apply(table, contract.qc, qc.STAGING)
    assert flags(out, "t") == [("ok", None), ("bad", "lim"), (None, None)]  # null min: no lower bound
    assert counts == {"lim": {"t": 1}}


# --------------------------------------------------------------------------------------------------
# The hand-made fixture: real A701 hours with a radiation spike, dew points above the temperature,
# a stuck temperature sensor, a weak gust and a sea-level pressure (tests/fixtures/inmet/README.md)
# --------------------------------------------------------------------------------------------------


def test_the_fixture_is_staged_with_exactly_its_faults_flagged_and_every_other_field_kept() -> None:
    data = FIXTURE.read_bytes()
    result = stage_file(data, FIXTURE.name, load_contract)
    assert isinstance(result, StagedFile)
    assert (result.rows_in, result.rows_ok, result.rows_rejected, result.quarantine) == (48, 48, 0, None)
    out = result.ok
    assert not_ok(out) == {
        (6, "wind_gust_ms"): ("suspect", "gust_below_speed"),
        (9, "radiation_kj_m2"): ("bad", "radiation_above_toa"),
        (13, "radiation_kj_m2"): ("bad", "gross_limits"),
        (20, "dew_point_c"): ("suspect", "dew_point_above_temp"),
        (21, "dew_point_c"): ("bad", "dew_point_well_above_temp"),
        (40, "pressure_station_hpa"): ("bad", "pressure_vs_altitude"),
    }
    assert result.qc_counts == {
        "gross_limits": {"radiation_kj_m2": 1},
        "radiation_above_toa": {"radiation_kj_m2": 1},
        "pressure_vs_altitude": {"pressure_station_hpa": 1},
        "dew_point_above_temp": {"dew_point_c": 1},
        "dew_point_well_above_temp": {"dew_point_c": 1},
        "gust_below_speed": {"wind_gust_ms": 1},
    }
    # Every value but the four bad ones is exactly as parsed; the bad ones are null.
    parsed = parse_file(data, FIXTURE.name).table
    bad = {(r, c) for (r, c), (f, _) in not_ok(out).items() if f == "bad"}
    for column in HOURLY_MEASUREMENTS:
        source, kept = parsed.column(column).to_pylist(), out.column(column).to_pylist()
        for row in range(48):
            assert kept[row] == (None if (row, column) in bad else source[row]), (row, column)
    assert parsed.column("radiation_kj_m2")[13].as_py() == 6503.0
    # The hours of the bad values keep their other fields, e.g. 13:00 UTC's temperature and wind.
    assert (out.column("air_temp_c")[13].as_py(), out.column("wind_speed_ms")[13].as_py()) == (22.5, 3.1)

    curated = curate_inmet_hourly_year([out], 2024, qc=load_contract("inmet_hourly").qc)["hourly"]
    # In curated the stuck sensor (20.7 °C from 01:00 to 09:00 on 2 January) is found too.
    stuck = {(r, "air_temp_c"): ("suspect", "persistence") for r in range(25, 34)}
    assert not_ok(curated) == {**not_ok(out), **stuck}
    assert curated.column("air_temp_c").to_pylist()[25:34] == [20.7] * 9


def test_temporal_rules_see_across_staged_parts_and_daily_leaves_bad_values_out() -> None:
    """The stuck sensor's 9 hours split over two staged parts (a part-year file and the rest, given
    in any order): curated still sees one run of 9 equal hours. The daily radiation sum of 1 January
    is the sum of the hours not found bad."""
    result = stage_file(FIXTURE.read_bytes(), FIXTURE.name, load_contract)
    assert isinstance(result, StagedFile)
    whole = curate_inmet_hourly_year([result.ok], 2024, qc=load_contract("inmet_hourly").qc)
    first, second = result.ok.slice(0, 29), result.ok.slice(29)
    split = curate_inmet_hourly_year([second, first], 2024, qc=load_contract("inmet_hourly").qc)
    assert not_ok(split["hourly"]) == not_ok(whole["hourly"])
    assert [f for f, _ in flags(split["hourly"], "air_temp_c")[25:34]] == ["suspect"] * 9
    # Each part alone has a run of 4 and of 5 equal hours: below 8, nothing fires.
    alone = curate_inmet_hourly_year([first], 2024, qc=load_contract("inmet_hourly").qc)
    assert "air_temp_c" not in {c for _, c in not_ok(alone["hourly"])}
    radiation = result.ok.column("radiation_kj_m2").to_pylist()[:24]
    daily = split["daily"].to_pylist()[0]
    assert daily["radiation_sum_kj_m2"] == pytest.approx(sum(r for r in radiation if r is not None))
    assert (radiation[9], radiation[13]) == (None, None)  # the two bad hours
    assert daily["hours_with_radiation"] == sum(r is not None for r in radiation) == 12
