"""Schema contracts: parsing the YAML (domain), loading the files and the code version (hooks.include),
and splitting tables into ok and quarantine."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest

from trilha.domain.contracts import Contract, ContractError, parse_contract, validate
from trilha.domain.formats import HOURLY_MEASUREMENTS, parse_file
from trilha.domain.lineage import code_fingerprint
from trilha.exceptions import ParseError
from trilha.hooks import include
from trilha.hooks.include import load_contract

REPO = Path(__file__).parents[2]
SAMPLES = REPO / "include" / "sample" / "inmet"
NEW = "INMET_SE_SP_A701_SAO PAULO - MIRANTE_01-01-2024_A_31-12-2024.CSV"


@pytest.fixture(scope="module")
def hourly() -> Contract:
    """inmet_hourly with row-level bounds on its measurements (inmet_bdmep_hourly's, the bounds
    inmet_hourly v1 had) and no qc: the generic range validation these tests exercise. The bundled
    inmet_hourly judges its measurements field by field instead (tests/unit/test_qc.py)."""
    base = load_contract("inmet_hourly")
    bounds = {c.name: c for c in load_contract("inmet_bdmep_hourly").columns}
    columns = tuple(
        replace(c, min=bounds[c.name].min, max=bounds[c.name].max) if c.name in HOURLY_MEASUREMENTS else c
        for c in base.columns
    )
    return replace(base, columns=columns, qc=None)


def hourly_rows(n: int = 3, **overrides: list[object]) -> pa.Table:
    """A small inmet_hourly table (plain string columns) with plausible values."""
    columns: dict[str, list[object]] = {
        "observed_at": [datetime(2024, 1, 1, h, tzinfo=UTC) for h in range(n)],
        "wmo_code": ["A701"] * n,
        "station": ["SAO PAULO"] * n,
        "uf": ["SP"] * n,
        "region": ["SE"] * n,
        "latitude": [-23.5] * n,
        "longitude": [-46.6] * n,
        "altitude": [785.6] * n,
        **{m: [1.0] * n for m in HOURLY_MEASUREMENTS},
        "_line_number": list(range(10, 10 + n)),
    }
    columns["pressure_station_hpa"] = [925.0] * n
    columns["pressure_max_hpa"] = [926.0] * n
    columns["pressure_min_hpa"] = [924.0] * n
    columns.update(overrides)
    table = pa.table(columns)
    return table.set_column(0, "observed_at", table.column("observed_at").cast(pa.timestamp("us", tz="UTC")))


# --------------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------------


def test_bundled_contracts_load() -> None:
    contract = load_contract("inmet_hourly")
    # v2: measurements are judged field by field (qc), no longer by row-rejecting column bounds.
    assert (contract.dataset, contract.version) == ("inmet_hourly", 2)
    assert contract.key_columns == ("wmo_code", "observed_at")
    humidity = contract.column("rel_humidity_pct")
    assert (humidity.type, humidity.unit, humidity.min, humidity.max) == ("float64", "%", None, None)
    assert contract.qc is not None
    gross = next(r for r in contract.qc.rules if r.name == "gross_limits")
    limits = gross.params["limits"]["rel_humidity_pct"]
    assert (gross.kind, gross.severity, limits) == ("range", "bad", [0, 100])
    assert "rel_humidity_pct" in contract.qc.columns
    assert contract.column("wmo_code").nullable is False
    assert contract.column("observed_at").nullable is False
    assert contract.schema.field("observed_at").type == pa.timestamp("us", tz="UTC")
    assert [c.name for c in contract.columns][:2] == ["observed_at", "wmo_code"]
    assert load_contract("inmet_bdmep_daily").key_columns == ("wmo_code", "observed_on")
    assert load_contract("inmet_bdmep_hourly").column("air_temp_c").required is False
    generic = load_contract("generic")
    assert (generic.columns, generic.extra_columns) == ((), "allow")


def test_contract_directory_argument_and_environment_override(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "mine.yaml").write_text(
        "dataset: mine\nversion: 3\nkey: [id]\ncolumns:\n  - {name: id, type: int64, nullable: false}\n"
    )
    assert load_contract("mine", tmp_path).version == 3
    monkeypatch.setenv("TRILHA_CONTRACTS_DIR", str(tmp_path))
    assert load_contract("mine").key_columns == ("id",)
    with pytest.raises(ContractError, match="inmet_hourly.yaml: expected a contract file"):
        load_contract("inmet_hourly")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("dataset: bad\nversion: 1\ncolumns:\n  - {name: x, type: decimal}\n", "expected a type among"),
        (
            "dataset: bad\nversion: 1\ncolumns:\n  - {name: x, type: int64, maximum: 3}\n",
            "got \\['maximum'\\]",
        ),
        (
            "dataset: bad\nversion: 1\nkey: [y]\ncolumns:\n  - {name: x, type: int64}\n",
            "key columns \\['y'\\]",
        ),
        (
            "dataset: bad\nversion: 1\ncolumns:\n  - {name: x, type: int64}\n  - {name: x, type: int64}\n",
            "dup",
        ),
        ("dataset: other\nversion: 1\ncolumns: []\n", "expected dataset 'bad', got 'other'"),
        ("dataset: bad\ncolumns: []\n", "expected a 'version' entry"),
        ("dataset: bad\nversion: 1\ncolumns: [\n", "expected valid YAML"),
        ("dataset: bad\nversion: 1\nextra_columns: maybe\ncolumns: []\n", "'allow' or 'forbid'"),
    ],
)
def test_malformed_contracts_name_the_file_and_entry(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "bad.yaml").write_text(text)
    with pytest.raises(ContractError, match=message) as error:
        load_contract("bad", tmp_path)
    assert "bad.yaml" in str(error.value)


def test_dataset_names_cannot_escape_the_directory() -> None:
    with pytest.raises(ContractError, match=r"expected \[a-z0-9_\]\+"):
        load_contract("../secrets")


def test_parse_contract_reads_text_only_and_names_its_source() -> None:
    """The domain half: YAML text in, contract out; no file is opened (the source is only a label)."""
    text = "dataset: mine\nversion: 2\nkey: [id]\ncolumns:\n  - {name: id, type: int64, nullable: false}\n"
    contract = parse_contract(text, "/nowhere/mine.yaml", "mine")
    assert (contract.dataset, contract.version, contract.key_columns) == ("mine", 2, ("id",))
    assert contract.source == "/nowhere/mine.yaml"
    assert parse_contract(text, "label").dataset == "mine"  # no expected dataset: any is fine
    with pytest.raises(ContractError, match="^label: expected dataset 'other', got 'mine'$"):
        parse_contract(text, "label", "other")


def test_contracts_are_found_under_trilha_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """include/ is located by trilha.config (TRILHA_HOME), like the SQL and the migrations."""
    contracts = tmp_path / "include" / "contracts"
    contracts.mkdir(parents=True)
    (contracts / "homed.yaml").write_text("dataset: homed\nversion: 7\ncolumns: []\n")
    monkeypatch.delenv(include.CONTRACTS_ENV, raising=False)
    monkeypatch.setenv("TRILHA_HOME", str(tmp_path))
    assert include.contracts_dir() == contracts
    assert load_contract("homed").version == 7
    assert load_contract("homed").source == str(contracts / "homed.yaml")


def test_code_version_fingerprints_parsers_staging_decisions_and_contracts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for path in (REPO / "include" / "contracts").glob("*.yaml"):
        (tmp_path / path.name).write_bytes(path.read_bytes())
    monkeypatch.setenv(include.CONTRACTS_ENV, str(tmp_path))
    domain = REPO / "plugins" / "trilha" / "domain"
    files = [
        *sorted((domain / "formats").glob("*.py")),
        domain / "contracts.py",
        domain / "staging.py",
        domain / "quarantine.py",
        domain / "qc.py",
        *sorted(tmp_path.glob("*.yaml")),
    ]
    before = include.code_version()
    assert before == code_fingerprint((p.name, p.read_bytes()) for p in files)
    assert len(before) == 12
    # Another contracts directory with one contract changed is another code version.
    changed = tmp_path / "changed"
    changed.mkdir()
    for path in tmp_path.glob("*.yaml"):
        (changed / path.name).write_bytes(path.read_bytes())
    (changed / "generic.yaml").write_bytes((tmp_path / "generic.yaml").read_bytes() + b"\n# edited\n")
    monkeypatch.setenv(include.CONTRACTS_ENV, str(changed))
    assert include.code_version() != before


def test_code_fingerprint_depends_on_names_content_and_order() -> None:
    base = code_fingerprint([("a.py", b"x"), ("b.yaml", b"y")])
    assert base == hashlib.sha256(b"a.pyxb.yamly").hexdigest()[:12]
    assert code_fingerprint([("b.yaml", b"y"), ("a.py", b"x")]) != base
    assert code_fingerprint([("a.py", b"x"), ("b.yaml", b"z")]) != base
    assert code_fingerprint([("c.py", b"x"), ("b.yaml", b"y")]) != base


# --------------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------------


def test_clean_rows_pass_untouched(hourly: Contract) -> None:
    table = hourly_rows()
    ok, quarantine = validate(table, hourly, "f.csv")
    assert ok.equals(table)
    assert quarantine.num_rows == 0
    assert quarantine.column_names[-3:] == ["_source_file", "_line_number", "_reason"]


def test_out_of_range_values_are_quarantined_with_every_reason(hourly: Contract) -> None:
    table = hourly_rows(
        4,
        rel_humidity_pct=[50.0, 101.0, 100.0, 150.0],
        air_temp_c=[20.0, 20.0, 75.5, -41.0],
        precipitation_mm=[0.0, None, 0.0, 0.0],
    )
    ok, quarantine = validate(table, hourly, "f.csv")
    assert ok.column("_line_number").to_pylist() == [10]
    assert quarantine.num_rows == 3
    assert ok.num_rows + quarantine.num_rows == 4
    assert quarantine.column("_line_number").to_pylist() == [11, 12, 13]
    assert quarantine.column("_source_file").to_pylist() == ["f.csv"] * 3
    assert quarantine.column("_reason").to_pylist() == [
        "rel_humidity_pct: expected 0..100 %, got 101",
        "air_temp_c: expected -40..60 °C, got 75.5",
        "air_temp_c: expected -40..60 °C, got -41; rel_humidity_pct: expected 0..100 %, got 150",
    ]
    # The quarantined rows keep their values, so the evidence is in the file.
    assert quarantine.column("rel_humidity_pct").to_pylist() == [101.0, 100.0, 150.0]


def test_nulls_in_key_columns_and_nan_are_quarantined(hourly: Contract) -> None:
    table = hourly_rows(3, wmo_code=["A701", None, "A701"], wind_speed_ms=[1.0, 2.0, float("nan")])
    ok, quarantine = validate(table, hourly, "f.csv")
    assert ok.num_rows == 1
    assert quarantine.column("_reason").to_pylist() == [
        "wmo_code: expected a value, got null",
        "wind_speed_ms: expected a number, got NaN",
    ]


def test_float_columns_checked_together_keep_their_own_nulls_nan_and_bounds(hourly: Contract) -> None:
    """The float range checks of all columns share one numpy pass: each column's nulls, NaN and
    bounds must still be its own (a mix-up between rows of the stack would move these reasons)."""
    table = hourly_rows(
        5,
        air_temp_c=[None, 20.0, 61.0, None, 25.0],  # 61 is over the 60 °C bound
        rel_humidity_pct=[50.0, None, None, float("nan"), 101.0],  # NaN; 101 over 100
        precipitation_mm=[None] * 5,  # all null: no bound to break
        wind_gust_ms=[-1.0, 3.0, 4.0, 5.0, None],  # -1 under the 0 bound
        radiation_kj_m2=[float("nan")] * 5,  # NaN in every row
    )
    ok, quarantine = validate(table, hourly, "f.csv")
    assert ok.num_rows == 0
    assert quarantine.column("_line_number").to_pylist() == [10, 11, 12, 13, 14]
    nan_radiation = "radiation_kj_m2: expected a number, got NaN"
    assert quarantine.column("_reason").to_pylist() == [
        f"{nan_radiation}; wind_gust_ms: expected 0..100 m/s, got -1",
        nan_radiation,
        f"{nan_radiation}; air_temp_c: expected -40..60 °C, got 61",
        f"{nan_radiation}; rel_humidity_pct: expected a number, got NaN",
        f"{nan_radiation}; rel_humidity_pct: expected 0..100 %, got 101",
    ]
    empty_ok, empty_quarantine = validate(table.slice(0, 0), hourly, "f.csv")
    assert (empty_ok.num_rows, empty_quarantine.num_rows) == (0, 0)
    assert empty_ok.schema == ok.schema


def test_allowed_values_and_patterns(hourly: Contract) -> None:
    table = hourly_rows(3, uf=["SP", "XX", "SP"], wmo_code=["A701", "A701", "701"])
    _, quarantine = validate(table, hourly, "f.csv")
    reasons = quarantine.column("_reason").to_pylist()
    assert reasons[0].startswith("uf: expected one of [AC, AL, AM")
    assert reasons[0].endswith("got 'XX'")
    assert reasons[1] == "wmo_code: expected a value matching '^[A-Z][0-9]{3}$', got '701'"


def test_dictionary_encoded_strings_satisfy_string_columns(hourly: Contract) -> None:
    table = hourly_rows(3)
    encoded = table.set_column(3, "uf", table.column("uf").dictionary_encode())
    ok, quarantine = validate(encoded, hourly, "f.csv")
    assert quarantine.num_rows == 0
    assert ok.schema.field("uf").type == pa.dictionary(pa.int32(), pa.string())
    bad = hourly_rows(3, uf=["SP", "ZZ", "SP"])
    bad = bad.set_column(3, "uf", bad.column("uf").dictionary_encode())
    ok, quarantine = validate(bad, hourly, "f.csv")
    assert quarantine.column("_line_number").to_pylist() == [11]
    assert quarantine.column("_reason")[0].as_py().endswith("got 'ZZ'")


def test_timestamp_bounds(hourly: Contract) -> None:
    table = hourly_rows(2)
    early = pa.array([datetime(1999, 12, 31, 23, tzinfo=UTC), datetime(2000, 1, 1, tzinfo=UTC)])
    table = table.set_column(0, "observed_at", early.cast(pa.timestamp("us", tz="UTC")))
    ok, quarantine = validate(table, hourly, "f.csv")
    assert ok.num_rows == 1
    assert quarantine.column("_reason")[0].as_py().startswith("observed_at: expected 2000-01-01T00:00:00Z..")


def test_missing_required_column_and_forbidden_extra_column(hourly: Contract, tmp_path: Path) -> None:
    with pytest.raises(ParseError, match=r"f\.csv: expected columns \['wmo_code'\] required by contract"):
        validate(hourly_rows().drop_columns(["wmo_code"]), hourly, "f.csv")
    (tmp_path / "strict.yaml").write_text(
        "dataset: strict\nversion: 1\nextra_columns: forbid\ncolumns:\n  - {name: a, type: int64}\n"
    )
    strict = load_contract("strict", tmp_path)
    ok, _ = validate(pa.table({"a": [1], "_line_number": [2]}), strict, "s.csv")  # "_" columns are fine
    assert ok.num_rows == 1
    with pytest.raises(ParseError, match=r"got extra columns \['b'\]"):
        validate(pa.table({"a": [1], "b": [2]}), strict, "s.csv")


def test_cells_that_do_not_fit_the_type_are_quarantined(tmp_path: Path) -> None:
    (tmp_path / "typed.yaml").write_text(
        "dataset: typed\nversion: 1\ncolumns:\n"
        "  - {name: value, type: float64, min: 0}\n"
        "  - {name: count, type: int64}\n"
    )
    contract = load_contract("typed", tmp_path)
    table = pa.table({"value": ["1,5", "abc", "-2", None], "count": ["1", "2", "x", "4"]})
    ok, quarantine = validate(table, contract, "t.csv", line_numbers=pa.array([2, 3, 4, 5]))
    assert ok.column("value").to_pylist() == [1.5, None]
    assert ok.column("count").to_pylist() == [1, 4]
    assert ok.schema.field("value").type == pa.float64()
    assert quarantine.column("_line_number").to_pylist() == [3, 4]
    assert quarantine.column("_reason").to_pylist() == [
        "value: expected float64, got 'abc'",
        "value: expected >= 0, got -2; count: expected int64, got 'x'",
    ]
    assert quarantine.column("value").to_pylist() == ["abc", "-2"]  # original text kept as evidence


def test_generic_contract_accepts_anything() -> None:
    table = pa.table({"anything": [1, None], "else": ["x", None]})
    ok, quarantine = validate(table, load_contract("generic"), "g.csv")
    assert ok.equals(table)
    assert quarantine.num_rows == 0


def test_real_file_with_an_implausible_reading_points_at_its_line(hourly: Contract) -> None:
    data = (SAMPLES / NEW).read_bytes()
    lines = data.split(b"\n")
    fields = lines[499].split(b";")  # line 500
    fields[15] = b"150"  # UMIDADE RELATIVA DO AR, HORARIA (%)
    lines[499] = b";".join(fields)
    parsed = parse_file(b"\n".join(lines), NEW)
    ok, quarantine = validate(parsed.table, hourly, NEW)
    assert (ok.num_rows, quarantine.num_rows, parsed.rejected.num_rows) == (8783, 1, 0)
    row = quarantine.to_pylist()[0]
    assert (row["_line_number"], row["_source_file"], row["wmo_code"]) == (500, NEW, "A701")
    assert row["_reason"] == "rel_humidity_pct: expected 0..100 %, got 150"


def test_float_extremes_ignore_nulls_whatever_the_array_layout() -> None:
    """Range checks read float values straight from Arrow's buffers and apply the validity bitmaps
    in one pass. Whatever sits in a null slot (here -1e9, a value that breaks every range), and
    for slices starting inside and on a bitmap byte, other float types and all-null columns, the
    extremes are those of the valid values, and NaN is counted apart from nulls."""
    from trilha.domain.contracts import _float_extremes

    values = [float(v) for v in range(40)]
    values[3] = float("nan")
    mask = [i % 5 == 0 for i in range(40)]  # nulls at 0, 5, 10, ...
    raw = pa.array(values, pa.float64(), mask=pa.array(mask))
    # A null slot holding -1e9: Arrow keeps whatever the buffer has under a null.
    garbage = pa.Array.from_buffers(
        pa.float64(),
        40,
        [
            raw.buffers()[0],
            pa.array([-1e9 if m else v for v, m in zip(values, mask, strict=True)]).buffers()[1],
        ],
    )

    def expected(column: pa.Array) -> tuple[float | None, float | None, int]:
        valid = [v for v in column.to_pylist() if v is not None]
        numbers = [v for v in valid if v == v]
        return (min(numbers), max(numbers), len(valid) - len(numbers)) if numbers else (None, None, 0)

    for column in (
        raw,
        garbage,
        garbage.slice(8, 24),  # starts on a bitmap byte: the fast path
        garbage.slice(3, 30),  # starts inside one: the fallback
        raw.cast(pa.float32()).slice(1, 30),
        pa.nulls(40, pa.float64()),
        pa.array(values[4:], pa.float64()).slice(0, 36),  # no nulls, a NaN
    ):
        columns = [column, pa.array(range(len(column)), pa.float64())]
        got = _float_extremes(columns)
        assert got[0] == expected(column), column
        assert got[1] == (0.0, float(len(column) - 1), 0)
    assert _float_extremes([garbage])[0] == (1.0, 39.0, 1)
