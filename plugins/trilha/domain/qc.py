"""Field-level quality control: every measurement of an hour gets its own flag, so one implausible
value no longer costs the hour its other, valid fields.

Rules are data (the ``qc:`` section of a contract, ``include/contracts/<dataset>.yaml``); this module
is the small vocabulary of rule *kinds* they are written in, implemented over whole columns with
numpy (a year of 600 stations is ~5 M rows: no per-row Python). Every threshold and its source is in
docs/data-quality.md.

Flags. Each flagged column ``<col>`` gets two dictionary-encoded string columns:

* ``<col>_qc``: ``ok``, ``suspect`` or ``bad``; null when the source had no value (nothing to judge).
* ``<col>_qc_rule``: the name of the rule that decided the flag (null when ``ok``). When several
  rules fire on one value, the most severe wins, and among equals the first in the contract.

A ``bad`` value is nulled (its flag says why it is missing); a ``suspect`` value is kept. Rules run
in contract order and see the values earlier ``bad`` rules left, so a temperature already rejected by
its gross limits does not also condemn the dew point it is compared with.

Stages. ``staging`` rules judge one hour at a time (a staged file is one station-year);
``curated`` rules (``step``, ``persistence``) compare consecutive hours of a station and run where a
station's rows for the year are together (:func:`trilha.domain.curate.curate_inmet_hourly_year`).

YAML format (``qc:`` in a contract)::

    qc:
      columns: [precipitation_mm, air_temp_c, ...]   # the measurements that carry flags
      rules:
        - {name: gross_limits, kind: range, severity: bad, limits: {air_temp_c: [-40, 60]}}
        - {name: radiation_above_toa, kind: toa_radiation, severity: bad, column: radiation_kj_m2,
           factor: 1.1, margin: 30}
        - {name: dew_point_above_temp, kind: not_above, severity: suspect, column: dew_point_c,
           reference: air_temp_c, tolerance: 0.5}
        - {name: gust_below_speed, kind: not_below, ..., column: wind_gust_ms, reference: wind_speed_ms}
        - {name: outside_hour_extremes, kind: within_extremes, severity: suspect, tolerance: 0.5,
           pairs: {air_temp_c: [air_temp_min_c, air_temp_max_c]}}
        - {name: pressure_vs_altitude, kind: pressure_altitude, severity: bad, column: pressure_station_hpa,
           tolerance: 60}
        - {name: step, kind: step, severity: suspect, limits: {air_temp_c: 10}}
        - {name: persistence, kind: persistence, severity: suspect, hours: {air_temp_c: 8},
           exclude: {precipitation_mm: [0]}}
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from trilha.exceptions import TrilhaError

OK, SUSPECT, BAD = "ok", "suspect", "bad"
#: Flag values in severity order: a flag's code is its index.
FLAGS: tuple[str, ...] = (OK, SUSPECT, BAD)
FLAG_SUFFIX = "_qc"
RULE_SUFFIX = "_qc_rule"
#: The Arrow type of the flag and rule columns: a handful of distinct strings over millions of rows.
FLAG_TYPE = pa.dictionary(pa.int8(), pa.string())
RULE_TYPE = pa.dictionary(pa.int16(), pa.string())
STAGING, CURATED = "staging", "curated"

#: Solar constant (W/m²): the total solar irradiance of Kopp & Lean (2011), the IAU 2015 nominal value.
SOLAR_CONSTANT = 1361.0
_HOUR_MICROS = 3_600_000_000
_DAY_MICROS = 86_400_000_000
#: Standard atmosphere (ICAO): sea-level pressure (hPa) and the barometric formula's constants.
_P0_HPA = 1013.25
_LAPSE_FACTOR = 2.25577e-5  # 1/m: L / T0 = 0.0065 K/m / 288.15 K
_EXPONENT = 5.25588  # g M / (R L)


class QcError(TrilhaError, ValueError):
    """A ``qc:`` section is malformed; the message names the rule and what was expected."""


def flag_column(column: str) -> str:
    return f"{column}{FLAG_SUFFIX}"


def rule_column(column: str) -> str:
    return f"{column}{RULE_SUFFIX}"


@dataclass(frozen=True)
class Rule:
    """One declared rule: its name (what ``<col>_qc_rule`` says), kind, severity and parameters."""

    name: str
    kind: str
    severity: str
    # Not hashed (nested mappings): a rule is identified by its name within its contract.
    params: Mapping[str, Any] = field(default_factory=dict, hash=False)

    @property
    def stage(self) -> str:
        return _KINDS[self.kind].stage


@dataclass(frozen=True)
class QcSpec:
    """The ``qc:`` section of a contract: the flagged columns and the rules, in order."""

    columns: tuple[str, ...]
    rules: tuple[Rule, ...]

    @property
    def rule_names(self) -> tuple[str, ...]:
        return tuple(r.name for r in self.rules)


# --------------------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Kind:
    stage: str
    required: frozenset[str]
    optional: frozenset[str]
    check: Callable[[Rule, _Frame], dict[str, np.ndarray]]
    columns: Callable[[Mapping[str, Any]], set[str]]  # the columns a rule's parameters name


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise QcError(f"{where}: expected a number, got {value!r}")
    return float(value)


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping) or not value:
        raise QcError(f"{where}: expected a non-empty mapping of column to value, got {value!r}")
    return value


def parse_qc(raw: Any, source: str, known: set[str]) -> QcSpec:
    """The :class:`QcSpec` a contract's ``qc:`` section declares.

    :param raw: the section as YAML loaded it.
    :param source: the contract file, named in every error.
    :param known: the contract's column names: a rule naming another column is an error.
    :raises QcError: an unknown kind or parameter, a missing parameter, an unknown column, a
        duplicate rule name, or a value of the wrong type.
    """
    where = f"{source}: qc"
    if not isinstance(raw, Mapping) or set(raw) - {"columns", "rules"}:
        raise QcError(f"{where}: expected a mapping with 'columns' and 'rules', got {raw!r}")
    columns = tuple(str(c) for c in raw.get("columns") or ())
    unknown = [c for c in columns if c not in known]
    if not columns or unknown:
        raise QcError(f"{where}.columns: expected contract columns, got unknown {unknown or 'none'}")
    rules: list[Rule] = []
    for index, entry in enumerate(raw.get("rules") or ()):
        rules.append(_parse_rule(entry, f"{where}.rules[{index}]", known))
    names = [r.name for r in rules]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise QcError(f"{where}.rules: expected unique rule names, got duplicates {duplicates}")
    return QcSpec(columns=columns, rules=tuple(rules))


def _parse_rule(entry: Any, where: str, known: set[str]) -> Rule:
    if not isinstance(entry, Mapping) or not {"name", "kind", "severity"} <= set(entry):
        raise QcError(f"{where}: expected a mapping with name, kind and severity, got {entry!r}")
    name, kind, severity = str(entry["name"]), str(entry["kind"]), str(entry["severity"])
    where = f"{where} ({name})"
    if kind not in _KINDS:
        raise QcError(f"{where}: kind: expected one of {sorted(_KINDS)}, got {kind!r}")
    if severity not in (SUSPECT, BAD):
        raise QcError(f"{where}: severity: expected 'suspect' or 'bad', got {severity!r}")
    spec = _KINDS[kind]
    params = {k: v for k, v in entry.items() if k not in ("name", "kind", "severity", "description")}
    missing = sorted(spec.required - set(params))
    extra = sorted(set(params) - spec.required - spec.optional)
    if missing or extra:
        raise QcError(
            f"{where}: expected parameters {sorted(spec.required)} "
            f"(optional {sorted(spec.optional)}), got missing {missing}, unknown {extra}"
        )
    try:
        named = spec.columns(params)
    except (TypeError, ValueError, AttributeError) as exc:
        raise QcError(f"{where}: {exc}") from None
    unknown = sorted(named - known)
    if unknown:
        raise QcError(f"{where}: expected columns of the contract, got unknown {unknown}")
    for key in ("tolerance", "factor", "margin"):
        if key in params:
            _number(params[key], f"{where}: {key}")
    return Rule(name=name, kind=kind, severity=severity, params=dict(params))


def _columns_of_limits(params: Mapping[str, Any]) -> set[str]:
    limits = _mapping(params["limits"], "limits")
    for column, bounds in limits.items():
        if isinstance(bounds, list):
            if len(bounds) != 2 or not all(b is None or isinstance(b, int | float) for b in bounds):
                raise ValueError(f"limits.{column}: expected [min, max] (null for none), got {bounds!r}")
        else:
            _number(bounds, f"limits.{column}")
    return set(limits)


# --------------------------------------------------------------------------------------------------
# Applying
# --------------------------------------------------------------------------------------------------


class _Frame:
    """The working state of one :func:`apply`: the values as float64 (NaN for null, and for a value an
    earlier ``bad`` rule removed), the table for the other columns, and the rows' time and station."""

    def __init__(self, table: pa.Table, starts: np.ndarray | None) -> None:
        self.table = table
        self.n = table.num_rows
        self.values: dict[str, np.ndarray] = {}
        self._micros: np.ndarray | None = None
        self.starts = np.zeros(1 if self.n else 0, dtype=np.int64) if starts is None else starts

    def value(self, name: str) -> np.ndarray:
        if name not in self.values:
            if name in self.table.column_names:
                column = self.table.column(name)
                # A copy: bad rules write NaN into it, and Arrow's zero-copy view is read-only.
                self.values[name] = np.array(pc.cast(column, pa.float64()).to_numpy(), dtype=np.float64)
            else:  # a column this file lacks: every value missing, no rule fires on it
                self.values[name] = np.full(self.n, np.nan)
        return self.values[name]

    @property
    def micros(self) -> np.ndarray:
        if self._micros is None:
            column = self.table.column("observed_at")
            self._micros = np.asarray(column.cast(pa.int64()).to_numpy(), dtype=np.int64)
        return self._micros

    def follows(self) -> np.ndarray:
        """``out[i]``: row ``i`` is the hour right after row ``i - 1`` of the same station."""
        out = np.zeros(self.n, dtype=bool)
        if self.n > 1:
            out[1:] = np.diff(self.micros) == _HOUR_MICROS
            out[self.starts] = False
        return out


def apply(
    table: pa.Table, spec: QcSpec, stage: str, station_starts: np.ndarray | None = None
) -> tuple[pa.Table, dict[str, dict[str, int]]]:
    """Run ``spec``'s rules of ``stage`` over ``table``: bad values nulled, flag columns set.

    :param table: rows with the measurements (and ``observed_at``, ``latitude``, ``longitude``,
        ``altitude`` where a rule needs them). Flag columns already present (a staged part
        reaching curated) are the starting point; otherwise a present value starts ``ok``.
    :param stage: :data:`STAGING` or :data:`CURATED`: which rules run.
    :param station_starts: first row of each station (rows grouped by station, in time order);
        ``None``: one station. Only the temporal rules use it.
    :returns: the table with every measurement of ``spec.columns`` it has, followed by its flag and
        rule columns (replaced in place when present), and the count of flags per rule and column
        (``{rule: {column: n}}``, the rule that decided each flag; ok values are not counted).
    """
    if stage not in (STAGING, CURATED):
        raise ValueError(f"stage: expected {STAGING!r} or {CURATED!r}, got {stage!r}")
    frame = _Frame(table, station_starts)
    columns = [c for c in spec.columns if c in table.column_names]
    names = spec.rule_names
    flags: dict[str, np.ndarray] = {}
    rules: dict[str, np.ndarray] = {}
    # Only a value the table holds can be flagged (not one missing, nor one already removed). A
    # present value with no flag (a part staged before QC) is judged by the rules that run now.
    present: dict[str, np.ndarray] = {}
    for column in columns:
        # From the validity bitmap: a column no rule reads is never converted to floats (contract
        # validation has already refused NaN, so null is the only way to be absent).
        present[column] = np.asarray(table.column(column).is_valid().to_numpy(), dtype=bool)
        flags[column], rules[column] = _initial(table, column, present[column], names)
    for index, rule in enumerate(spec.rules):
        if rule.stage != stage:
            continue
        level = FLAGS.index(rule.severity)
        for column, fired in _KINDS[rule.kind].check(rule, frame).items():
            if column not in flags:
                continue
            upgrade = fired & present[column] & (flags[column] < level)
            flags[column][upgrade] = level
            rules[column][upgrade] = index
            if level == FLAGS.index(BAD):
                frame.values[column][fired] = np.nan
    counts: dict[str, dict[str, int]] = {}
    out = table
    for column in columns:
        decided = rules[column][rules[column] >= 0]
        for index, n in enumerate(np.bincount(decided, minlength=len(names)) if len(decided) else ()):
            if n:
                counts.setdefault(names[index], {})[column] = int(n)
        out = _with_flags(out, column, flags[column], rules[column], names)
    return out, counts


def _initial(
    table: pa.Table, column: str, present: np.ndarray, names: tuple[str, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """The flag codes (-1: no value) and rule indexes (-1: none) a column starts from: its flag
    columns when it has them (codes mapped by text, so a part flagged under other rules still
    reads right), else ``ok`` for every present value. A bad value is null, so its flag is what
    tells it from a missing one."""
    n = len(present)
    flag_name, rule_name = flag_column(column), rule_column(column)
    if flag_name not in table.column_names:
        return np.where(present, 0, -1).astype(np.int8), np.full(n, -1, dtype=np.int16)
    flags = _codes(table.column(flag_name), FLAGS).astype(np.int8)
    if rule_name in table.column_names:
        rules = _codes(table.column(rule_name), names).astype(np.int16)
    else:
        rules = np.full(n, -1, dtype=np.int16)
    return flags, rules


def _codes(column: pa.ChunkedArray | pa.Array, vocabulary: tuple[str, ...]) -> np.ndarray:
    """Each value's index in ``vocabulary``, -1 for null or a value it does not have (a rule no
    longer declared), through the dictionary so no string is decoded per row."""
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    out = []
    for chunk in chunks:
        if not pa.types.is_dictionary(chunk.type):
            chunk = pc.dictionary_encode(chunk)
        lookup = np.array(
            [vocabulary.index(v) if v in vocabulary else -1 for v in chunk.dictionary.to_pylist()] + [-1],
            dtype=np.int64,
        )
        indices = np.asarray(pc.fill_null(chunk.indices.cast(pa.int64()), -1).to_numpy(), dtype=np.int64)
        out.append(lookup[indices])  # -1 (null) reads the sentinel appended last
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


def _dictionary(codes: np.ndarray, vocabulary: tuple[str, ...], type_: pa.DataType) -> pa.Array:
    indices = pa.array(np.where(codes < 0, 0, codes), type_.index_type, mask=codes < 0)
    return pa.DictionaryArray.from_arrays(indices, pa.array(vocabulary, pa.string()))


def _with_flags(
    table: pa.Table, column: str, flags: np.ndarray, rules: np.ndarray, names: tuple[str, ...]
) -> pa.Table:
    """``table`` with ``column``'s bad values nulled and its flag and rule columns set."""
    bad = flags == FLAGS.index(BAD)
    original = table.column(column)
    nulled = bad & ~np.asarray(original.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    if nulled.any():
        index = table.schema.get_field_index(column)
        kept = pc.if_else(pa.array(nulled), pa.scalar(None, original.type), original)
        table = table.set_column(index, column, kept)
    for name, array in (
        (flag_column(column), _dictionary(flags, FLAGS, FLAG_TYPE)),
        (rule_column(column), _dictionary(rules, names, RULE_TYPE)),
    ):
        index = table.schema.get_field_index(name)
        if index >= 0:
            table = table.set_column(index, name, array)
        else:
            table = table.append_column(name, array)
    return table


# --------------------------------------------------------------------------------------------------
# The kinds
# --------------------------------------------------------------------------------------------------


def _bounds(value: Any) -> tuple[float, float]:
    low, high = value if isinstance(value, list) else (None, value)
    return (-math.inf if low is None else float(low)), (math.inf if high is None else float(high))


def _range(rule: Rule, frame: _Frame) -> dict[str, np.ndarray]:
    """``range``: a value outside ``limits.<col>: [min, max]`` (inclusive; null: no bound)."""
    out = {}
    for column, bounds in rule.params["limits"].items():
        low, high = _bounds(bounds)
        v = frame.value(column)
        out[column] = (v < low) | (v > high)  # NaN compares False: a missing value never fires
    return out


def _compare(rule: Rule, frame: _Frame, sign: float) -> dict[str, np.ndarray]:
    column = rule.params["column"]
    tolerance = float(rule.params.get("tolerance", 0.0))
    difference = (frame.value(column) - frame.value(rule.params["reference"])) * sign
    return {column: difference > tolerance}


def _not_above(rule: Rule, frame: _Frame) -> dict[str, np.ndarray]:
    """``not_above``: ``column`` above ``reference`` + ``tolerance`` (dew point above the air
    temperature: relative humidity above 100 %)."""
    return _compare(rule, frame, 1.0)


def _not_below(rule: Rule, frame: _Frame) -> dict[str, np.ndarray]:
    """``not_below``: ``column`` below ``reference`` - ``tolerance`` (a gust weaker than the mean)."""
    return _compare(rule, frame, -1.0)


def _within_extremes(rule: Rule, frame: _Frame) -> dict[str, np.ndarray]:
    """``within_extremes``: for each ``pairs.<col>: [min col, max col]``, the hour's reading outside
    its own minimum..maximum (± ``tolerance``), or a minimum above the maximum. The three values
    are flagged: which of them is wrong cannot be told from the hour alone."""
    tolerance = float(rule.params.get("tolerance", 0.0))
    out: dict[str, np.ndarray] = {}
    for column, (low_name, high_name) in rule.params["pairs"].items():
        v, low, high = frame.value(column), frame.value(low_name), frame.value(high_name)
        fired = (v < low - tolerance) | (v > high + tolerance) | (low > high + tolerance)
        for name in (column, low_name, high_name):
            out[name] = out[name] | fired if name in out else fired.copy()
    return out


def extraterrestrial_kj_m2(
    micros: np.ndarray, latitude: np.ndarray, longitude: np.ndarray, hours: float = 1.0
) -> np.ndarray:
    """Extraterrestrial (top-of-atmosphere) radiation on a horizontal surface, kJ/m², over the
    ``hours`` that start at ``micros`` (UTC microseconds), at ``latitude``/``longitude`` (degrees).

    Solar geometry after Spencer (1971) for the declination, the eccentricity correction and the
    equation of time, integrated over the interval's hour angles (Duffie & Beckman, *Solar
    Engineering of Thermal Processes*, eq. 1.10.4) with the sunrise/sunset hour angle as bounds.
    """
    # The Sun's position by day: computed once per distinct day (a year has 366), not per row.
    days, which = np.unique(micros // _DAY_MICROS, return_inverse=True)
    dates = days.astype("datetime64[D]")
    doy = (dates - dates.astype("datetime64[Y]")).astype(np.int64)  # 0-based day of the year
    gamma = 2.0 * np.pi * doy / 365.0
    declination = (
        0.006918
        - 0.399912 * np.cos(gamma)
        + 0.070257 * np.sin(gamma)
        - 0.006758 * np.cos(2 * gamma)
        + 0.000907 * np.sin(2 * gamma)
        - 0.002697 * np.cos(3 * gamma)
        + 0.00148 * np.sin(3 * gamma)
    )[which]
    eccentricity = (
        1.000110
        + 0.034221 * np.cos(gamma)
        + 0.001280 * np.sin(gamma)
        + 0.000719 * np.cos(2 * gamma)
        + 0.000077 * np.sin(2 * gamma)
    )[which]
    equation_of_time_h = (
        229.18
        * (
            0.000075
            + 0.001868 * np.cos(gamma)
            - 0.032077 * np.sin(gamma)
            - 0.014615 * np.cos(2 * gamma)
            - 0.040849 * np.sin(2 * gamma)
        )
        / 60.0
    )[which]
    utc_hours = (micros % _DAY_MICROS) / _HOUR_MICROS
    solar_start = np.mod(utc_hours + longitude / 15.0 + equation_of_time_h, 24.0)
    omega1 = np.radians((solar_start - 12.0) * 15.0)
    omega2 = omega1 + np.radians(15.0 * hours)
    phi = np.radians(latitude)
    sunset = np.arccos(np.clip(-np.tan(phi) * np.tan(declination), -1.0, 1.0))
    # The part of the interval between sunrise and sunset; an interval that wraps past solar
    # midnight also meets the next morning.
    total = np.zeros(len(micros))
    for shift in (0.0, -2 * np.pi):
        a = np.clip(omega1 + shift, -sunset, sunset)
        b = np.clip(omega2 + shift, -sunset, sunset)
        total += np.maximum(
            0.0,
            (b - a) * np.sin(phi) * np.sin(declination)
            + np.cos(phi) * np.cos(declination) * (np.sin(b) - np.sin(a)),
        ) * (b > a)
    seconds_per_radian = 12.0 * 3600.0 / np.pi
    return seconds_per_radian * SOLAR_CONSTANT * eccentricity * total / 1000.0


def _toa_radiation(rule: Rule, frame: _Frame) -> dict[str, np.ndarray]:
    """``toa_radiation``: the hour's global radiation above ``factor`` × the top-of-atmosphere
    radiation + ``margin`` kJ/m². INMET labels an hour by its UTC hour, and whether the sum is of
    the hour that starts or ends there is not stated in the files: the larger of the two bounds is
    used, so the check never fires on a labelling convention."""
    column, p = rule.params["column"], rule.params
    factor, margin = float(p.get("factor", 1.0)), float(p.get("margin", 0.0))
    value = frame.value(column)
    # Only a value above the margin can break the bound (the solar geometry is the costly part):
    # night hours, missing values and weak light are never computed.
    rows = np.flatnonzero(value > margin)
    lat = frame.value(p.get("latitude", "latitude"))[rows]
    lon = frame.value(p.get("longitude", "longitude"))[rows]
    micros = frame.micros[rows]
    toa = np.fmax(
        extraterrestrial_kj_m2(micros, lat, lon), extraterrestrial_kj_m2(micros - _HOUR_MICROS, lat, lon)
    )
    fired = np.zeros(frame.n, dtype=bool)
    fired[rows] = value[rows] > factor * toa + margin  # unknown coordinates (NaN): never fires
    return {column: fired}


def expected_station_pressure(altitude_m: np.ndarray) -> np.ndarray:
    """Station pressure (hPa) of the ICAO standard atmosphere at ``altitude_m``."""
    return _P0_HPA * np.power(1.0 - _LAPSE_FACTOR * altitude_m, _EXPONENT)


def _pressure_altitude(rule: Rule, frame: _Frame) -> dict[str, np.ndarray]:
    """``pressure_altitude``: station pressure more than ``tolerance`` hPa from the standard
    atmosphere's pressure at the station's altitude (a sensor fault, or a wrong altitude)."""
    column = rule.params["column"]
    expected = expected_station_pressure(frame.value(rule.params.get("altitude", "altitude")))
    return {column: np.abs(frame.value(column) - expected) > float(rule.params["tolerance"])}


def _step(rule: Rule, frame: _Frame) -> dict[str, np.ndarray]:
    """``step``: a change between consecutive hours of a station larger than ``limits.<col>``. A
    spike (a jump out and straight back, beyond the limit both ways) flags its middle hour only;
    any other jump flags both of its hours (which one is wrong needs a human or a neighbour)."""
    follows = frame.follows()
    out = {}
    for column, limit in rule.params["limits"].items():
        v = frame.value(column)
        change = np.zeros(frame.n)
        change[1:] = v[1:] - v[:-1]
        jump = follows & (np.abs(change) > float(limit))  # jump[i]: between hours i - 1 and i
        back = np.zeros(frame.n, dtype=bool)  # back[i]: the jump after hour i returns the other way
        back[:-1] = jump[1:] & (np.sign(change[1:]) != np.sign(change[:-1]))
        spike = jump & back
        returning = np.zeros(frame.n, dtype=bool)
        returning[1:] = spike[:-1]  # the jump back from a spike: already accounted for
        lone = jump & ~spike & ~returning
        fired = spike | lone
        fired[:-1] |= lone[1:]
        out[column] = fired
    return out


def _persistence(rule: Rule, frame: _Frame) -> dict[str, np.ndarray]:
    """``persistence``: the same value for ``hours.<col>`` or more consecutive hours of a station (a
    stuck sensor), except the values in ``exclude.<col>`` that legitimately last (no rain, no sun at
    night, calm)."""
    follows = frame.follows()
    exclude = rule.params.get("exclude") or {}
    out = {}
    for column, hours in rule.params["hours"].items():
        v = frame.value(column)
        same = np.zeros(frame.n, dtype=bool)
        if frame.n > 1:
            same[1:] = follows[1:] & (v[1:] == v[:-1])
        run = np.cumsum(~same)  # run id: a new run wherever a row does not repeat the one before
        lengths = np.bincount(run)[run]
        fired = (lengths >= int(hours)) & ~np.isnan(v)
        for value in exclude.get(column) or ():
            fired &= v != float(value)
        out[column] = fired
    return out


def _named(*keys: str) -> Callable[[Mapping[str, Any]], set[str]]:
    return lambda p: {str(p[k]) for k in keys if k in p}


def _pairs_columns(params: Mapping[str, Any]) -> set[str]:
    pairs = _mapping(params["pairs"], "pairs")
    out = set()
    for column, extremes in pairs.items():
        if not isinstance(extremes, list) or len(extremes) != 2:
            raise ValueError(f"pairs.{column}: expected [min column, max column], got {extremes!r}")
        out |= {str(column), *map(str, extremes)}
    return out


def _hours_columns(params: Mapping[str, Any]) -> set[str]:
    hours = _mapping(params["hours"], "hours")
    for column, n in hours.items():
        if isinstance(n, bool) or not isinstance(n, int) or n < 2:
            raise ValueError(f"hours.{column}: expected a whole number of hours >= 2, got {n!r}")
    exclude = params.get("exclude") or {}
    for column, values in _mapping(exclude, "exclude").items() if exclude else ():
        if not isinstance(values, list):
            raise ValueError(f"exclude.{column}: expected a list of values, got {values!r}")
    return set(hours) | set(exclude)


_COMPARED = _named("column", "reference")
_KINDS: dict[str, _Kind] = {
    "range": _Kind(STAGING, frozenset({"limits"}), frozenset(), _range, _columns_of_limits),
    "not_above": _Kind(
        STAGING, frozenset({"column", "reference"}), frozenset({"tolerance"}), _not_above, _COMPARED
    ),
    "not_below": _Kind(
        STAGING, frozenset({"column", "reference"}), frozenset({"tolerance"}), _not_below, _COMPARED
    ),
    "within_extremes": _Kind(
        STAGING, frozenset({"pairs"}), frozenset({"tolerance"}), _within_extremes, _pairs_columns
    ),
    "toa_radiation": _Kind(
        STAGING,
        frozenset({"column"}),
        frozenset({"factor", "margin", "latitude", "longitude"}),
        _toa_radiation,
        _named("column", "latitude", "longitude"),
    ),
    "pressure_altitude": _Kind(
        STAGING,
        frozenset({"column", "tolerance"}),
        frozenset({"altitude"}),
        _pressure_altitude,
        _named("column", "altitude"),
    ),
    "step": _Kind(CURATED, frozenset({"limits"}), frozenset(), _step, _columns_of_limits),
    "persistence": _Kind(CURATED, frozenset({"hours"}), frozenset({"exclude"}), _persistence, _hours_columns),
}
#: The rule kinds a contract may use.
KINDS: tuple[str, ...] = tuple(_KINDS)
