"""Schema contracts as data (``include/contracts/<dataset>.yaml``) and their vectorized validation.

Pure: :func:`parse_contract` turns a contract's YAML text into a :class:`Contract`; reading the file
is :func:`trilha.hooks.include.load_contract`'s job.

A contract says, per dataset, which columns exist, their Arrow type, unit, whether they may be null,
their plausible range or allowed values, and the key that identifies a row. :func:`validate` splits
a staged table into the rows that honour the contract and a quarantine table of the rows that do
not, each with every reason it failed ("air_temp_c: expected -40..60 °C, got 75.3"). Nothing is
dropped silently: ``ok.num_rows + quarantine.num_rows == table.num_rows``.

YAML format::

    dataset: inmet_hourly
    version: 1
    description: free text
    key: [wmo_code, observed_at]
    extra_columns: allow          # or "forbid": a column the contract does not list fails the file
    columns:
      - name: air_temp_c
        type: float64             # string, float64, int64, int32, bool, date32, timestamp[us, tz=UTC]...
        unit: °C
        nullable: true            # default true
        required: true            # default true: the column must be present
        min: -40                  # inclusive bounds, optional
        max: 60
        allowed: [N, NE, CO, SE, S]   # optional, strings
        pattern: "^[A-Z][0-9]{3}$"    # optional regular expression (RE2), strings
    qc:                           # optional: per-field quality flags, see trilha.domain.qc
      columns: [air_temp_c]
      rules: [...]

Column bounds reject whole rows (a row whose key or station is out of range cannot be placed);
measurements are better judged by ``qc`` rules, which flag and null one field and keep the hour.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import yaml

from trilha.domain.formats.parsed import LINE_NUMBER_COLUMN
from trilha.domain.qc import QcError, QcSpec, parse_qc
from trilha.exceptions import ParseError, TrilhaError

#: Columns whose name starts with this prefix are bookkeeping (``_line_number``), not data.
INTERNAL_PREFIX = "_"

_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "large_string": pa.large_string(),
    "float64": pa.float64(),
    "float32": pa.float32(),
    "int64": pa.int64(),
    "int32": pa.int32(),
    "int16": pa.int16(),
    "bool": pa.bool_(),
    "date32": pa.date32(),
}
_TIMESTAMP_RE = re.compile(r"^timestamp\[(s|ms|us|ns)(?:,\s*tz=([^\]]+))?\]$")
_COLUMN_KEYS = {
    "name",
    "type",
    "unit",
    "nullable",
    "required",
    "min",
    "max",
    "allowed",
    "pattern",
    "description",
}
_CONTRACT_KEYS = {"dataset", "version", "description", "key", "extra_columns", "columns", "qc"}
_NUMBER_RE = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"


class ContractError(TrilhaError, ValueError):
    """A contract file is missing or malformed; the message names the file and the entry."""


def arrow_type(name: str) -> pa.DataType:
    """The Arrow type for a contract type name (``float64``, ``timestamp[us, tz=UTC]``...)."""
    if name in _TYPES:
        return _TYPES[name]
    match = _TIMESTAMP_RE.match(name.strip())
    if match:
        return pa.timestamp(match.group(1), tz=match.group(2).strip() if match.group(2) else None)
    raise ValueError(f"expected a type among {sorted(_TYPES)} or timestamp[unit, tz=...], got {name!r}")


@dataclass(frozen=True)
class ColumnSpec:
    """One column of a contract."""

    name: str
    type: str
    unit: str | None = None
    nullable: bool = True
    required: bool = True
    min: float | str | None = None
    max: float | str | None = None
    allowed: tuple[str, ...] | None = None
    pattern: str | None = None
    description: str | None = None

    @property
    def arrow_type(self) -> pa.DataType:
        return arrow_type(self.type)

    def range_text(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        if self.min is not None and self.max is not None:
            return f"{_fmt(self.min)}..{_fmt(self.max)}{unit}"
        if self.min is not None:
            return f">= {_fmt(self.min)}{unit}"
        return f"<= {_fmt(self.max)}{unit}"


@dataclass(frozen=True)
class Contract:
    """The declared schema of a dataset (see the module docstring for the YAML format)."""

    dataset: str
    version: int
    columns: tuple[ColumnSpec, ...]
    key_columns: tuple[str, ...]
    extra_columns: str = "allow"
    description: str = ""
    source: str = ""
    #: Field-level quality control (:mod:`trilha.domain.qc`); ``None``: the dataset has none.
    qc: QcSpec | None = None

    def column(self, name: str) -> ColumnSpec:
        for spec in self.columns:
            if spec.name == name:
                return spec
        raise KeyError(f"contract {self.dataset} v{self.version}: expected a column {name!r}, got none")

    @property
    def schema(self) -> pa.Schema:
        """The Arrow schema of the contract's columns, in contract order."""
        return pa.schema([pa.field(c.name, c.arrow_type, nullable=c.nullable) for c in self.columns])

    @functools.cached_property
    def rules(self) -> tuple[_Compiled, ...]:
        """The column specs with Arrow types and bounds converted, once per contract object
        (``validate`` runs per staged file; an ``lru_cache`` keyed by the contract hashed every
        column spec on each call)."""
        return _compile(self)


def _fmt(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _contract_from_mapping(raw: Any, source: str) -> Contract:
    if not isinstance(raw, dict):
        raise ContractError(f"{source}: expected a mapping at the top level, got {type(raw).__name__}")
    unknown = set(raw) - _CONTRACT_KEYS
    if unknown:
        raise ContractError(f"{source}: expected keys among {sorted(_CONTRACT_KEYS)}, got {sorted(unknown)}")
    for required in ("dataset", "version", "columns"):
        if required not in raw:
            raise ContractError(f"{source}: expected a '{required}' entry, got none")
    extra = raw.get("extra_columns", "allow")
    if extra not in ("allow", "forbid"):
        raise ContractError(f"{source}: extra_columns: expected 'allow' or 'forbid', got {extra!r}")
    columns: list[ColumnSpec] = []
    for index, entry in enumerate(raw["columns"] or []):
        where = f"{source}: columns[{index}]"
        if not isinstance(entry, dict) or "name" not in entry or "type" not in entry:
            raise ContractError(f"{where}: expected a mapping with 'name' and 'type', got {entry!r}")
        unknown = set(entry) - _COLUMN_KEYS
        if unknown:
            raise ContractError(
                f"{where} ({entry['name']}): expected keys among {sorted(_COLUMN_KEYS)}, "
                f"got {sorted(unknown)}"
            )
        try:
            arrow_type(str(entry["type"]))
        except ValueError as exc:
            raise ContractError(f"{where} ({entry['name']}): {exc}") from None
        allowed = entry.get("allowed")
        spec = ColumnSpec(
            name=str(entry["name"]),
            type=str(entry["type"]),
            unit=entry.get("unit"),
            nullable=bool(entry.get("nullable", True)),
            required=bool(entry.get("required", True)),
            min=entry.get("min"),
            max=entry.get("max"),
            allowed=tuple(str(v) for v in allowed) if allowed is not None else None,
            pattern=entry.get("pattern"),
            description=entry.get("description"),
        )
        if spec.pattern is not None:
            try:
                re.compile(spec.pattern)
            except re.error as exc:
                raise ContractError(
                    f"{where} ({spec.name}): pattern {spec.pattern!r} is invalid: {exc}"
                ) from None
        columns.append(spec)
    names = [c.name for c in columns]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ContractError(f"{source}: expected unique column names, got duplicates {duplicates}")
    key = tuple(str(k) for k in raw.get("key") or ())
    missing_key = [k for k in key if k not in names]
    if missing_key:
        raise ContractError(f"{source}: key columns {missing_key} are not declared under 'columns'")
    qc = None
    if raw.get("qc") is not None:
        try:
            qc = parse_qc(raw["qc"], source, set(names))
        except QcError as exc:
            raise ContractError(str(exc)) from None
    return Contract(
        dataset=str(raw["dataset"]),
        version=int(raw["version"]),
        columns=tuple(columns),
        key_columns=key,
        extra_columns=str(extra),
        description=str(raw.get("description") or ""),
        source=source,
        qc=qc,
    )


def check_dataset_name(dataset: str) -> str:
    """``dataset`` when it is a plain ``[a-z0-9_]+`` name (it names a contract file), else
    :class:`ContractError`."""
    if not re.fullmatch(r"[a-z0-9_]+", dataset or ""):
        raise ContractError(f"dataset name: expected [a-z0-9_]+, got {dataset!r}")
    return dataset


def parse_contract(text: str, source: str, dataset: str | None = None) -> Contract:
    """The contract a YAML text declares.

    :param text: the contract file's content (see the module docstring for the format).
    :param source: where the text came from (the file path), named in every error.
    :param dataset: the dataset the contract must declare, when the caller expects one.
    :raises ContractError: the text is not valid YAML, not a valid contract, or for another dataset.
    """
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ContractError(f"{source}: expected valid YAML, got {exc}") from None
    contract = _contract_from_mapping(raw, source)
    if dataset is not None and contract.dataset != dataset:
        raise ContractError(f"{source}: expected dataset {dataset!r}, got {contract.dataset!r}")
    return contract


# --------------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------------


@dataclass
class _Check:
    """One failed check over the whole table: a boolean mask and how to word its reason."""

    mask: pa.Array
    prefix: str  # reason text before the offending value
    values: pa.Array | None  # the offending values (None: the reason has no value)
    suffix: str = ""


def _bound(value: float | str, type_: pa.DataType) -> pa.Scalar:
    """A contract bound as an Arrow scalar comparable with a column of ``type_``."""
    if pa.types.is_timestamp(type_) or pa.types.is_date(type_):
        parsed: object = value
        if isinstance(value, str):
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if pa.types.is_date(type_) and isinstance(parsed, datetime):
            parsed = parsed.date()
        if pa.types.is_timestamp(type_) and isinstance(parsed, date) and not isinstance(parsed, datetime):
            parsed = datetime(parsed.year, parsed.month, parsed.day, tzinfo=UTC)
        if pa.types.is_timestamp(type_) and isinstance(parsed, datetime) and parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return pa.scalar(parsed, type_)
    # Numbers compare as float64 whatever the column's width; Arrow casts the column side as needed.
    return pa.scalar(float(value), pa.float64())


@dataclass(frozen=True)
class _Compiled:
    """A column spec with its Arrow type and bounds converted once per contract, not per file."""

    spec: ColumnSpec
    type: pa.DataType
    low: pa.Scalar | None
    high: pa.Scalar | None
    low_value: Any
    high_value: Any


def _compile(contract: Contract) -> tuple[_Compiled, ...]:
    compiled = []
    for spec in contract.columns:
        type_ = spec.arrow_type
        low = _bound(spec.min, type_) if spec.min is not None else None
        high = _bound(spec.max, type_) if spec.max is not None else None
        compiled.append(
            _Compiled(
                spec,
                type_,
                low,
                high,
                low.as_py() if low is not None else None,
                high.as_py() if high is not None else None,
            )
        )
    return tuple(compiled)


def _is_encoded(column: pa.Array, target: pa.DataType) -> bool:
    """A dictionary-encoded column whose values have the contract's type (e.g. a station name
    repeated on every row): it *is* of that type, and is checked through its few distinct values."""
    return pa.types.is_dictionary(column.type) and column.type.value_type == target


def _coerce(column: pa.Array, target: pa.DataType) -> tuple[pa.Array, pa.Array | None]:
    """Cast a column to the contract type; return the cast column and a mask of cells that failed."""
    if column.type == target or _is_encoded(column, target):
        return column, None
    try:
        return pc.cast(column, target), None
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        pass
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    if pa.types.is_string(column.type) and (pa.types.is_floating(target) or pa.types.is_integer(target)):
        normalized = pc.replace_substring(column, ",", ".") if pa.types.is_floating(target) else column
        pattern = _NUMBER_RE if pa.types.is_floating(target) else r"^[+-]?\d+$"
        bad = pc.fill_null(pc.invert(pc.match_substring_regex(normalized, pattern)), False)
        cleaned = pc.if_else(bad, pa.scalar(None, column.type), normalized)
        try:
            return pc.cast(cleaned, target), bad
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass  # e.g. an integer beyond the target's range: fall back to value by value
    # Value by value over the distinct values: only reached for a column that does not fit its type.
    encoded = pc.dictionary_encode(column)
    converted: list[object] = []
    failed: list[bool] = []
    for value in encoded.dictionary.to_pylist():
        try:
            converted.append(pc.cast(pa.array([value], encoded.dictionary.type), target)[0].as_py())
            failed.append(False)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            converted.append(None)
            failed.append(True)
    cast = pc.take(pa.array(converted, target), encoded.indices)
    bad = pc.fill_null(pc.take(pa.array(failed, pa.bool_()), encoded.indices), False)
    return cast, bad


Extremes = tuple[Any, Any, int]


def _extremes(column: pa.Array) -> Extremes:
    """``(min, max, nan_count)`` of a column, ignoring nulls (and NaN for min/max)."""
    if pa.types.is_floating(column.type):
        return _float_extremes([column])[0]
    extremes = pc.min_max(column)
    return extremes["min"].as_py(), extremes["max"].as_py(), 0


def _float_extremes(columns: Sequence[pa.Array]) -> list[Extremes]:
    """``(min, max, nan_count)`` of float columns of equal length, all in one numpy pass.

    Arrow's float ``min_max`` is NaN-aware and about twice as slow as numpy's ``fmin``/``fmax``.
    Stacking the columns makes it three numpy calls for all of them instead of three per column:
    staging validates a file per core, and every small call is a GIL hand-off between threads.
    """
    length = len(columns[0]) if columns else 0
    if length == 0:
        return [(None, None, 0)] * len(columns)
    stack = np.empty((len(columns), length), dtype=np.float64)
    # Nulls must become NaN. Arrow's to_numpy does it value by value (about half of validation's
    # cost); here the raw values are copied and the validity bitmaps of all the columns are
    # unpacked and applied in one numpy call each.
    validity = np.full((len(columns), (length + 7) // 8), 0xFF, dtype=np.uint8)
    for row, bits, column in zip(stack, validity, columns, strict=True):
        if not _copy_raw(column, row, bits):
            row[:] = column.to_numpy(zero_copy_only=False)  # nulls become NaN
    valid = np.unpackbits(validity, axis=1, count=length, bitorder="little").view(bool)
    np.copyto(stack, np.nan, where=~valid)
    nulls = np.array([column.null_count for column in columns], dtype=np.int64)
    nan_counts = np.count_nonzero(np.isnan(stack), axis=1) - nulls
    lows, highs = np.fmin.reduce(stack, axis=1), np.fmax.reduce(stack, axis=1)
    return [
        (None, None, int(nans)) if np.isnan(low) else (float(low), float(high), int(nans))
        for low, high, nans in zip(lows.tolist(), highs.tolist(), nan_counts.tolist(), strict=True)
    ]


def _copy_raw(column: pa.Array, row: np.ndarray, bits: np.ndarray) -> bool:
    """Copy a float64 column's raw values into ``row`` and its validity bitmap into ``bits``
    (left all-valid when it has no nulls); ``False`` when its layout does not allow it (another
    float type, or a slice that starts inside a bitmap byte)."""
    if column.type != pa.float64() or column.offset % 8:
        return False
    bitmap, values = column.buffers()
    row[:] = np.frombuffer(values, dtype=np.float64, count=len(row), offset=column.offset * 8)
    if column.null_count:
        if bitmap is None:
            return False
        bits[:] = np.frombuffer(bitmap, dtype=np.uint8, count=len(bits), offset=column.offset // 8)
    return True


def _value_problems(values: pa.Array, rule: _Compiled, extremes: Extremes | None = None) -> bool:
    """Whether any (non-null) value breaks the range, NaN, allowed or pattern rule.

    :param extremes: ``values``' extremes when already computed (see :func:`_float_extremes`).
    """
    spec = rule.spec
    if len(values) == values.null_count:
        return False
    if rule.low is not None or rule.high is not None:
        low, high, nan_count = extremes if extremes is not None else _extremes(values)
        if nan_count:
            return True
        if rule.low is not None and low is not None and low < rule.low_value:
            return True
        if rule.high is not None and high is not None and high > rule.high_value:
            return True
    elif pa.types.is_floating(values.type) and pc.any(pc.is_nan(values)).as_py():
        return True
    if spec.allowed is not None or spec.pattern is not None:
        text = pc.cast(pc.unique(values).drop_null(), pa.string())
        if spec.allowed is not None and not pc.all(pc.is_in(text, value_set=pa.array(spec.allowed))).as_py():
            return True
        if spec.pattern is not None and not pc.all(pc.match_substring_regex(text, spec.pattern)).as_py():
            return True
    return False


def _checks_for(column: pa.Array, rule: _Compiled, extremes: Extremes | None = None) -> list[_Check]:
    """The failed checks of one (already typed) column. A first pass over cheap aggregates (null
    count, min/max, distinct values) decides; masks are only built for a column that fails."""
    spec = rule.spec
    checks: list[_Check] = []
    if not spec.nullable and column.null_count:
        checks.append(_Check(column.is_null(), f"{spec.name}: expected a value, got null", None))
    if pa.types.is_dictionary(column.type):
        if not _value_problems(column.dictionary, rule):
            return checks
        column = column.cast(column.type.value_type)  # rare: decode to locate the bad rows
    elif not _value_problems(column, rule, extremes):
        return checks

    type_ = column.type
    if pa.types.is_floating(type_):
        nan = pc.fill_null(pc.is_nan(column), False)
        if pc.any(nan).as_py():
            checks.append(_Check(nan, f"{spec.name}: expected a number, got NaN", None))
    if rule.low is not None or rule.high is not None:
        out = None
        if rule.low is not None:
            out = pc.less(column, rule.low)
        if rule.high is not None:
            over = pc.greater(column, rule.high)
            out = over if out is None else pc.or_kleene(out, over)
        mask = pc.fill_null(out, False)
        if pc.any(mask).as_py():
            checks.append(_Check(mask, f"{spec.name}: expected {spec.range_text()}, got ", column))
    if spec.allowed is not None or spec.pattern is not None:
        distinct = pc.unique(column).drop_null()
        text = pc.cast(distinct, pa.string())
        if spec.allowed is not None:
            ok = pc.is_in(text, value_set=pa.array(spec.allowed, pa.string()))
            if not pc.all(ok).as_py():
                mask = pc.fill_null(pc.is_in(column, value_set=pc.filter(distinct, pc.invert(ok))), False)
                shown = ", ".join(spec.allowed[:30])
                checks.append(_Check(mask, f"{spec.name}: expected one of [{shown}], got ", column))
        if spec.pattern is not None:
            ok = pc.match_substring_regex(text, spec.pattern)
            if not pc.all(ok).as_py():
                mask = pc.fill_null(pc.is_in(column, value_set=pc.filter(distinct, pc.invert(ok))), False)
                checks.append(
                    _Check(mask, f"{spec.name}: expected a value matching {spec.pattern!r}, got ", column)
                )
    return checks


def _reason_texts(checks: list[_Check], rows: pa.Array) -> pa.Array:
    """Per offending row, its reasons joined with ``"; "``, built with string kernels only."""
    parts: list[pa.Array] = []
    for check in checks:
        mask = pc.take(check.mask, rows)
        if check.values is None:
            text = pc.if_else(mask, pa.scalar(check.prefix), pa.scalar(None, pa.string()))
        else:
            values = pc.cast(pc.take(check.values, rows), pa.string())
            if pa.types.is_string(check.values.type) or pa.types.is_large_string(check.values.type):
                values = pc.binary_join_element_wise("'", values, "'", "")
            values = pc.fill_null(values, "null")
            text = pc.if_else(
                mask,
                pc.binary_join_element_wise(check.prefix, values, check.suffix, ""),
                pa.scalar(None, pa.string()),
            )
        parts.append(text)
    return pc.binary_join_element_wise(*parts, "; ", null_handling="skip")


def validate(
    table: pa.Table,
    contract: Contract,
    source_file: str,
    line_numbers: pa.Array | None = None,
) -> tuple[pa.Table, pa.Table]:
    """Split ``table`` into the rows that honour ``contract`` and the quarantined rest.

    :param table: a parsed table (``ParsedFile.table``), usually with a ``_line_number`` column.
    :param contract: the dataset's contract (:func:`trilha.hooks.include.load_contract`).
    :param source_file: the file the rows came from, copied into the quarantine rows.
    :param line_numbers: source line of each row when ``table`` has no ``_line_number`` column.
    :returns: ``(ok, quarantine)``. ``ok`` has the contract's types. ``quarantine`` holds the offending
        rows as they were, plus ``_source_file``, ``_line_number`` and ``_reason`` (every failed check
        of the row, naming column, value and expectation, joined with ``"; "``).

    A required column that is missing, or an extra column under ``extra_columns: forbid``, rejects
    the whole file with :class:`ParseError`.
    """
    names = table.column_names
    missing = [c.name for c in contract.columns if c.required and c.name not in names]
    if missing:
        raise ParseError(
            f"{source_file}: expected columns {missing} required by contract {contract.dataset} "
            f"v{contract.version}, got columns {names}"
        )
    if contract.extra_columns == "forbid":
        declared = {c.name for c in contract.columns}
        extra = [n for n in names if n not in declared and not n.startswith(INTERNAL_PREFIX)]
        if extra:
            raise ParseError(
                f"{source_file}: expected only the columns of contract {contract.dataset} "
                f"v{contract.version}, got extra columns {extra}"
            )
    if line_numbers is not None and len(line_numbers) != table.num_rows:
        raise ValueError(f"line_numbers: expected {table.num_rows} values, got {len(line_numbers)}")

    changed: dict[str, pa.Array] = {}
    checks: list[_Check] = []
    present = set(names)
    columns: list[tuple[_Compiled, pa.Array, list[_Check]]] = []
    for rule in contract.rules:
        spec = rule.spec
        if spec.name not in present:
            continue
        chunked = table.column(spec.name)
        original = chunked.chunk(0) if chunked.num_chunks == 1 else chunked.combine_chunks()
        typed, bad = _coerce(original, rule.type)
        failed_type = []
        if bad is not None and pc.any(bad).as_py():
            failed_type.append(_Check(bad, f"{spec.name}: expected {spec.type}, got ", original))
        if typed is not original:
            changed[spec.name] = typed
        columns.append((rule, typed, failed_type))
    # The range checks of all float columns share one pass (most of an INMET file's columns).
    ranged = [
        (rule.spec.name, typed)
        for rule, typed, _ in columns
        if pa.types.is_floating(typed.type) and (rule.low is not None or rule.high is not None)
    ]
    extremes = dict(zip([n for n, _ in ranged], _float_extremes([c for _, c in ranged]), strict=True))
    for rule, typed, failed_type in columns:  # reasons in contract order, a column's type first
        checks.extend(failed_type)
        checks.extend(_checks_for(typed, rule, extremes.get(rule.spec.name)))

    ok = table
    for name, typed in changed.items():
        ok = ok.set_column(ok.schema.get_field_index(name), name, typed)
    if not checks:
        return ok, _empty_quarantine(table.schema)
    failed = checks[0].mask
    for check in checks[1:]:
        failed = pc.or_(failed, check.mask)
    rows = pa.array(np.flatnonzero(np.asarray(failed.to_numpy(zero_copy_only=False), dtype=bool)), pa.int64())
    reasons = _reason_texts(checks, rows)
    quarantine = _quarantine(table.take(rows), source_file, line_numbers, rows, reasons)
    return ok.filter(pc.invert(failed)), quarantine


@functools.lru_cache(maxsize=64)
def _empty_quarantine(schema: pa.Schema) -> pa.Table:
    """The quarantine of a clean file: no rows, the same columns as a non-empty one. Cached (Arrow
    tables are immutable) rather than building ~30 empty columns for every clean file."""
    fields = [f for f in schema if f.name != LINE_NUMBER_COLUMN]
    return pa.schema(
        [
            *fields,
            pa.field("_source_file", pa.string()),
            pa.field(LINE_NUMBER_COLUMN, pa.int64()),
            pa.field("_reason", pa.string()),
        ]
    ).empty_table()


def _quarantine(
    rows_table: pa.Table,
    source_file: str,
    line_numbers: pa.Array | None,
    rows: pa.Array,
    reasons: pa.Array,
) -> pa.Table:
    if LINE_NUMBER_COLUMN in rows_table.column_names:
        lines = rows_table.column(LINE_NUMBER_COLUMN).combine_chunks()
        rows_table = rows_table.drop_columns([LINE_NUMBER_COLUMN])
    elif line_numbers is not None:
        lines = pc.take(line_numbers, rows)
    else:
        lines = pa.nulls(len(rows), pa.int64())
    n = rows_table.num_rows
    return (
        rows_table.append_column("_source_file", pa.array([source_file] * n, pa.string()))
        .append_column(LINE_NUMBER_COLUMN, pc.cast(lines, pa.int64()))
        .append_column("_reason", pc.cast(reasons, pa.string()))
    )
