"""The optional Snowflake load (``trilha.hooks.snowflake``, planned by ``trilha.domain.snowflake``),
with Snowflake faked at the client boundary.

There is no Snowflake account here, so nothing in this file talks to Snowflake. What is real: the
templates in ``include/sql/snowflake/`` and their Jinja rendering, the Parquet files (written by the
lake's own writer), the provider's ``SnowflakeHook`` building the connector's parameters from an
``AIRFLOW_CONN_TRILHA_SNOWFLAKE`` JSON connection, the connector's own client-side ``pyformat``
quoting of bind parameters, and ``MinioHook``'s verified download (on a fake S3 client that serves
real Parquet bytes).

What is fake is the client boundary: ``snowflake.connector.connect``, which returns
:class:`FakeConnection`. Its cursor records every ``(sql, params)`` it is given and answers like
Snowflake does, on rows it really holds: it reads the file a ``PUT`` names, loads the Parquet rows a
``COPY`` names into the staging table, and executes the ``MERGE`` it receives: it parses the
statement (``sqlglot``), matches staging rows to target rows on the ``ON`` clause's conditions (the
project and the key columns, SQL ``NULL`` never equal), updates the matched rows, inserts the others,
and refuses a target row matched by two staging rows (Snowflake's nondeterministic-merge error). A
wrong MERGE key therefore duplicates or loses rows, or fails, and the tests that look at the rows
see it. ``DELETE``, ``INSERT ... SELECT``, ``BEGIN``/``COMMIT``/``ROLLBACK`` act on those rows too.

So the tests prove the SQL we send parses as Snowflake SQL (``sqlglot``, dialect ``snowflake``, on
the exact text the connector would put on the wire), the order of statements, that values travel as
bind parameters, what the MERGE and the replace do to the rows, and how failures roll back. They
cannot prove how a real Snowflake account executes that SQL (types, time zones, performance).
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlglot
from botocore.exceptions import ClientError
from snowflake.connector.converter import SnowflakeConverter
from snowflake.connector.errors import DatabaseError, ProgrammingError
from sqlglot import exp

from trilha import config
from trilha.domain import snowflake as sfd
from trilha.domain.parquet import table_to_parquet_bytes
from trilha.domain.snowflake import (
    InvalidIdentifierError,
    SnowflakeLoadError,
    ident,
    path_segment,
    plan_table,
    stage_location,
    stage_name,
    table_name,
)
from trilha.exceptions import (
    ConnectionSetupError,
    IntegrityError,
    InvalidProjectError,
    ObjectMissingError,
)
from trilha.hooks import snowflake as sf
from trilha.hooks.minio import MinioHook
from trilha.hooks.snowflake import (
    TrilhaSnowflakeHook,
    load_curated_version,
    render_sql,
    snowflake_configured,
)

CONN_ENV = "AIRFLOW_CONN_TRILHA_SNOWFLAKE"
BUCKET = "curated-data"
PREFIX = "inmet-sp"
VERSION = "v0003"
TARGET = {
    "project_id": 7,
    "project_name": "Estações de São Paulo",
    "project_prefix": PREFIX,
    "dataset": "inmet_hourly",
}
UTC_US = pa.timestamp("us", tz="UTC")
_CONVERTER = SnowflakeConverter()


# --------------------------------------------------------------------------------------------------
# Realistic curated tables (the shapes trilha.domain.curate writes) and the fakes
# --------------------------------------------------------------------------------------------------


def hourly_table() -> pa.Table:
    hours = [1704067200_000000 + h * 3_600_000_000 for h in range(3)]  # 2024-01-01T00..02Z
    return pa.table(
        {
            "observed_at": pa.array(hours * 2, pa.int64()).cast(UTC_US),
            "wmo_code": ["A701"] * 3 + ["A807"] * 3,
            "precipitation_mm": [0.0, 0.2, None, 1.4, 0.0, 0.0],
            "air_temp_c": [21.3, 20.9, 20.4, 17.0, 16.8, None],
        }
    )


def daily_table() -> pa.Table:
    return pa.table(
        {
            "wmo_code": ["A701", "A807"],
            "date": pa.array([19723, 19723], pa.int32()).cast(pa.date32()),
            "hours_total": pa.array([3, 3], pa.int32()),
            "precipitation_sum_mm": [0.2, 1.4],
            "air_temp_mean_c": [20.866667, 16.9],
        }
    )


def stations_table() -> pa.Table:
    return pa.table(
        {
            "wmo_code": ["A701", "A807"],
            "station": ["SAO PAULO - MIRANTE", "CURITIBA"],
            "uf": ["SP", "PR"],
            "region": ["SE", "S"],
            "latitude": [-23.496294, -25.448611],
            "longitude": [-46.620088, -49.230556],
            "altitude": [785.64, 923.5],
            "first_observed_at": pa.array([1704067200_000000] * 2, pa.int64()).cast(UTC_US),
            "last_observed_at": pa.array([1704074400_000000] * 2, pa.int64()).cast(UTC_US),
            "hours": pa.array([3, 3], pa.int64()),
            "valid_from": pa.array([1704067200_000000] * 2, pa.int64()).cast(UTC_US),
            "valid_to": pa.nulls(2, UTC_US),
            "utc_offset_hours": pa.array([-3, -3], pa.int32()),
        }
    )


def generic_table() -> pa.Table:
    # "order" and "date" are reserved words in Snowflake: quoting must make them work as columns.
    return pa.table(
        {"order": [1, 2, 3], "date": ["2024-01-01", "2024-01-02", None], "value": [1.5, 2.5, 3.5]}
    )


class FakeS3Client:
    """The S3 client boundary: ``GetObject`` of the objects it holds, ``NoSuchKey`` otherwise."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], bytes] = {}

    def get_object(self, *, Bucket: str, Key: str) -> dict[str, Any]:  # noqa: N803 (boto3's names)
        if (Bucket, Key) not in self.objects:
            error = {"Error": {"Code": "NoSuchKey", "Message": "The specified key does not exist."}}
            raise ClientError(error, "GetObject")  # type: ignore[arg-type]
        return {"Body": io.BytesIO(self.objects[(Bucket, Key)])}


class FakeMinio(MinioHook):
    """The real MinioHook (its verified download is what the loader uses) on a fake S3 client."""

    def __init__(self) -> None:
        super().__init__()
        self.client = FakeS3Client()

    def get_conn(self) -> Any:
        return self.client

    def put(self, bucket: str, key: str, data: bytes) -> None:
        self.client.objects[(bucket, key)] = data


def curated_version(
    minio: FakeMinio, tables: dict[str, pa.Table], dataset: str = "inmet_hourly", version: str = VERSION
) -> dict[str, dict[str, Any]]:
    """Write ``tables`` into the fake curated bucket; the ``files`` map CuratedOperator builds."""
    files = {}
    for name, table in tables.items():
        key = f"{PREFIX}/{dataset}/{version}/{name}.parquet"
        data = table_to_parquet_bytes(table)
        minio.put(BUCKET, key, data)
        files[name] = {
            "key": key,
            "sha256": hashlib.sha256(data).hexdigest(),
            "rows": table.num_rows,
            "bytes": len(data),
        }
    return files


def interpolate(sql: str, params: dict[str, Any] | None) -> str:
    """What the connector sends for ``cursor.execute(sql, params)`` in its default pyformat style."""
    if not params:
        return sql
    c = _CONVERTER
    return sql % {k: c.quote(c.escape(c.to_snowflake(v))) for k, v in params.items()}


def kind(sql: str) -> str:
    """A short name for a statement: PUT, CREATE TABLE, COPY, MERGE, ..."""
    for prefix, name in (
        ("ALTER SESSION", "SESSION"),
        ("CREATE STAGE", "CREATE STAGE"),
        ("CREATE TABLE", "CREATE TABLE"),
        ("CREATE OR REPLACE TEMPORARY TABLE", "CREATE TEMP"),
        ("ALTER TABLE", "ADD COLUMN"),
        ("DESCRIBE", "DESCRIBE"),
        ("BEGIN", "BEGIN"),
    ):
        if sql.startswith(prefix):
            return name
    return sql.split()[0]


class FakeSnowflake:
    """The state behind the fake connections: statements received, tables, staged files."""

    def __init__(
        self,
        tables: dict[str, list[str]] | None = None,
        fail_on: str | None = None,
        copy_shortfall: int = 0,
    ) -> None:
        self.calls: list[tuple[str, dict[str, Any] | None]] = []
        self.connect_kwargs: list[dict[str, Any]] = []
        self.connections: list[FakeConnection] = []
        self.tables: dict[str, list[str]] = {k: list(v) for k, v in (tables or {}).items()}
        #: table -> its rows (column name -> value), target and staging tables alike
        self.rows: dict[str, list[dict[str, Any]]] = {}
        self.staged: dict[str, bytes] = {}
        self._snapshot: dict[str, list[dict[str, Any]]] | None = None
        self.fail_on = fail_on
        self.copy_shortfall = copy_shortfall

    def connect(self, **kwargs: Any) -> FakeConnection:
        self.connect_kwargs.append(kwargs)
        conn = FakeConnection(self)
        self.connections.append(conn)
        return conn

    @property
    def kinds(self) -> list[str]:
        return [kind(sql) for sql, _ in self.calls]

    @property
    def wire(self) -> list[str]:
        return [interpolate(sql, params) for sql, params in self.calls]


class FakeConnection:
    def __init__(self, db: FakeSnowflake) -> None:
        self.db = db
        self.autocommit_calls: list[bool] = []
        self.closed = False
        self.cursors: list[FakeCursor] = []

    def autocommit(self, mode: bool) -> None:
        self.autocommit_calls.append(mode)

    def cursor(self) -> FakeCursor:
        cur = FakeCursor(self.db)
        self.cursors.append(cur)
        return cur

    def close(self) -> None:
        self.closed = True


def _quoted(sql: str) -> list[str]:
    return re.findall(r'"([A-Z0-9_]+)"', sql)


LOADED_AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _value(node: exp.Expression, rows: dict[str, dict[str, Any]]) -> Any:
    """Evaluate what the templates put in a MERGE, INSERT or DELETE, on ``rows`` (alias -> row;
    ``""`` is the row of an unqualified column). Anything else is refused, never guessed."""
    if isinstance(node, exp.Column):
        return rows[node.table][node.name]
    if isinstance(node, exp.Literal):
        return node.this if node.is_string else float(node.this)
    if isinstance(node, exp.Null):
        return None
    if isinstance(node, exp.CurrentTimestamp):
        return LOADED_AT
    raise AssertionError(f"the fake Snowflake does not evaluate {node.sql('snowflake')}")


def _holds(condition: exp.Expression, rows: dict[str, dict[str, Any]]) -> bool:
    """A condition of ``=`` joined by ``AND``, with SQL's NULL: ``NULL = x`` is never true."""
    if isinstance(condition, exp.Paren):
        return _holds(condition.this, rows)
    if isinstance(condition, exp.And):
        return _holds(condition.left, rows) and _holds(condition.right, rows)
    if isinstance(condition, exp.EQ):
        left, right = _value(condition.left, rows), _value(condition.right, rows)
        return left is not None and right is not None and left == right
    raise AssertionError(f"the fake Snowflake does not evaluate {condition.sql('snowflake')}")


class FakeCursor:
    """Records ``(sql, params)`` and answers with the result sets Snowflake gives these statements."""

    def __init__(self, db: FakeSnowflake) -> None:
        self.db = db
        self.description: list[tuple[str]] | None = None
        self._rows: list[tuple[Any, ...]] = []
        self.sfqid: str | None = None
        self.closed = False

    def _result(self, names: list[str], rows: list[tuple[Any, ...]]) -> None:
        self.description = [(n,) for n in names]
        self._rows = rows

    def execute(self, sql: str, params: dict[str, Any] | None = None) -> FakeCursor:
        db = self.db
        db.calls.append((sql, params))
        self.sfqid = f"01b3-{len(db.calls):04d}"
        interpolate(sql, params)  # raises like the connector would on a stray '%' in the SQL
        k = kind(sql)
        if db.fail_on and k == db.fail_on:
            raise ProgrammingError(msg=f"simulated failure of {k}", errno=100183, sfqid=self.sfqid)
        status = (["status"], [("Statement executed successfully.",)])
        if k == "PUT":
            assert params is not None
            path = Path(unquote(urlsplit(params["local_file"]).path))
            location = sql.split()[2]
            db.staged[location + path.name] = path.read_bytes()  # the file must exist at PUT time
            size = path.stat().st_size
            self._result(
                ["source", "target", "source_size", "target_size", "source_compression", "status"],
                [(path.name, path.name, size, size, "NONE", "UPLOADED")],
            )
        elif k == "CREATE TABLE":
            table, *columns = _quoted(sql)
            db.tables.setdefault(table, columns)
            self._result(*status)
        elif k == "DESCRIBE":
            table = _quoted(sql)[0]
            if table not in db.tables:
                raise ProgrammingError(msg=f"Table '{table}' does not exist", errno=2003, sfqid=self.sfqid)
            self._result(["name", "type", "kind"], [(c, "VARCHAR", "COLUMN") for c in db.tables[table]])
        elif k == "ADD COLUMN":
            table, column = _quoted(sql)[:2]
            db.tables[table].append(column)
            self._result(*status)
        elif k == "COPY":
            assert params is not None
            staging, location = _quoted(sql)[0], sql.split()[4]
            data = db.staged.pop(location + params["file"])  # PURGE
            table = pq.read_table(pa.BufferReader(data))  # MATCH_BY_COLUMN_NAME: upper-case names
            loaded = [{name.upper(): v for name, v in row.items()} for row in table.to_pylist()]
            loaded = loaded[: len(loaded) - db.copy_shortfall]
            db.rows[staging] = loaded
            rows = len(loaded)
            self._result(
                ["file", "status", "rows_parsed", "rows_loaded"], [(params["file"], "LOADED", rows, rows)]
            )
        elif k == "MERGE":
            self._result(["number of rows inserted", "number of rows updated"], [self._merge(sql, params)])
        elif k == "INSERT":
            self._result(["number of rows inserted"], [(self._insert(sql, params),)])
        elif k == "DELETE":
            self._result(["number of rows deleted"], [(self._delete(sql, params),)])
        elif k == "BEGIN":
            db._snapshot = copy.deepcopy(db.rows)
            self._result(*status)
        elif k == "COMMIT":
            db._snapshot = None
            self._result(*status)
        elif k == "ROLLBACK":
            if db._snapshot is not None:
                db.rows, db._snapshot = db._snapshot, None
            self._result(*status)
        else:
            self._result(*status)
        return self

    def _merge(self, sql: str, params: dict[str, Any] | None) -> tuple[int, int]:
        """Execute the MERGE on the rows held: match on the ON clause, update or insert."""
        merge = parse_one_snowflake(interpolate(sql, params))
        assert isinstance(merge, exp.Merge)
        target, using = merge.this, merge.args["using"]
        t, s = target.alias, using.alias
        on = merge.args["on"]
        matched = not_matched = None
        for when in merge.args["whens"].expressions:
            if when.args.get("matched"):
                matched = when.args["then"]
            else:
                not_matched = when.args["then"]
        assert isinstance(matched, exp.Update)
        assert isinstance(not_matched, exp.Insert)
        rows = self.db.rows.setdefault(target.name, [])
        before = list(rows)  # rows this MERGE inserts are not matched by later source rows
        hit: set[int] = set()
        inserted = updated = 0
        for source in self.db.rows[using.name]:
            hits = [row for row in before if _holds(on, {t: row, s: source})]
            for row in hits:
                if id(row) in hit:
                    raise ProgrammingError(
                        msg="Duplicate row detected during DML action", errno=100090, sfqid=self.sfqid
                    )
                hit.add(id(row))
                changes = {
                    eq.this.name: _value(eq.expression, {t: row, s: source}) for eq in matched.expressions
                }
                row.update(changes)
                updated += 1
            if not hits:
                names = [c.name for c in not_matched.this.expressions]
                values = [_value(v, {s: source}) for v in not_matched.expression.expressions]
                rows.append(dict(zip(names, values, strict=True)))
                inserted += 1
        return inserted, updated

    def _insert(self, sql: str, params: dict[str, Any] | None) -> int:
        """``INSERT INTO target (columns) SELECT ... FROM staging AS s``, on the rows held."""
        insert = parse_one_snowflake(interpolate(sql, params))
        assert isinstance(insert, exp.Insert)
        names = [c.name for c in insert.this.expressions]
        select = insert.expression
        source = select.args["from_"].this
        new = [
            dict(zip(names, [_value(e, {source.alias: row}) for e in select.expressions], strict=True))
            for row in self.db.rows[source.name]
        ]
        self.db.rows.setdefault(insert.this.this.name, []).extend(new)
        return len(new)

    def _delete(self, sql: str, params: dict[str, Any] | None) -> int:
        delete = parse_one_snowflake(interpolate(sql, params))
        assert isinstance(delete, exp.Delete)
        rows = self.db.rows.setdefault(delete.this.name, [])
        kept = [row for row in rows if not _holds(delete.args["where"].this, {"": row})]
        self.db.rows[delete.this.name] = kept
        return len(rows) - len(kept)

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self._rows

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def snowflake_conn(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A configured ``trilha_snowflake`` connection, as an ``AIRFLOW_CONN_`` JSON variable."""
    conn = {
        "conn_type": "snowflake",
        "login": "TRILHA_LOADER",
        "password": "not-a-real-secret",
        "schema": "CURATED",
        "extra": {"account": "xy12345", "warehouse": "LOAD_WH", "database": "LAKE", "role": "LOADER"},
    }
    monkeypatch.setenv(CONN_ENV, json.dumps(conn))
    return conn


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeSnowflake:
    """Replace the connector's ``connect`` (the provider imports it at call time) by the fake."""
    db = FakeSnowflake()
    monkeypatch.setattr("snowflake.connector.connect", db.connect)
    return db


class ListLog:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, msg: str, *args: Any) -> None:
        self.lines.append(msg % args)


def run_load(files: dict[str, dict[str, Any]], minio: FakeMinio, target: dict[str, Any] = TARGET) -> Any:
    return load_curated_version(config.SNOWFLAKE_CONN_ID, minio, BUCKET, target, VERSION, files, ListLog())


# --------------------------------------------------------------------------------------------------
# Templates: rendered for realistic inputs, parsed as Snowflake SQL
# --------------------------------------------------------------------------------------------------

HOURLY_PLAN = plan_table(PREFIX, "inmet_hourly", "hourly", hourly_table().schema)
GENERIC_PLAN = plan_table(PREFIX, "generic", "data", generic_table().schema)
LOCATION = stage_location("TRILHA_CURATED", PREFIX, "inmet_hourly", VERSION)
VALUES = {"project": PREFIX, "version": VERSION, "sha256": "ab" * 32}

#: template -> (identifiers, bind parameters, expected sqlglot statement type)
TEMPLATE_CASES: dict[str, tuple[dict[str, Any], dict[str, Any] | None, type[exp.Expression]]] = {
    "session_timezone": ({}, None, exp.Alter),
    "session_query_tag": ({}, {"query_tag": json.dumps({"app": "trilha", "project": PREFIX})}, exp.Alter),
    "create_stage": ({"stage": stage_name("TRILHA_CURATED")}, {"comment": "Trilha's stage"}, exp.Create),
    "put": ({"location": LOCATION}, {"local_file": "file:///tmp/trilha-snowflake-x/hourly.parquet"}, exp.Put),
    "create_table": (
        {"target": HOURLY_PLAN.target, "columns": HOURLY_PLAN.columns},
        {"comment": "Trilha curated table 'hourly'"},
        exp.Create,
    ),
    "describe_table": ({"target": HOURLY_PLAN.target}, None, exp.Describe),
    "add_column": ({"target": HOURLY_PLAN.target, "column": HOURLY_PLAN.columns[-1]}, None, exp.Alter),
    "create_staging": ({"staging": HOURLY_PLAN.staging, "columns": HOURLY_PLAN.columns}, None, exp.Create),
    "copy_into_staging": (
        {"staging": HOURLY_PLAN.staging, "location": LOCATION},
        {"file": "hourly.parquet"},
        exp.Copy,
    ),
    "begin": ({}, None, exp.Transaction),
    "merge": (
        {
            "target": HOURLY_PLAN.target,
            "staging": HOURLY_PLAN.staging,
            "keys": list(HOURLY_PLAN.keys or ()),
            "updates": HOURLY_PLAN.updates,
            "columns": HOURLY_PLAN.column_names,
        },
        VALUES,
        exp.Merge,
    ),
    "delete_project_rows": ({"target": GENERIC_PLAN.target}, {"project": PREFIX}, exp.Delete),
    "insert_from_staging": (
        {
            "target": GENERIC_PLAN.target,
            "staging": GENERIC_PLAN.staging,
            "columns": GENERIC_PLAN.column_names,
        },
        VALUES,
        exp.Insert,
    ),
    "commit": ({}, None, exp.Commit),
    "rollback": ({}, None, exp.Rollback),
    "drop_staging": ({"staging": HOURLY_PLAN.staging}, None, exp.Drop),
}


def parse_one_snowflake(sql: str) -> exp.Expression:
    statements = sqlglot.parse(sql, read="snowflake", error_level=sqlglot.ErrorLevel.RAISE)
    assert len(statements) == 1, sql
    assert statements[0] is not None
    return statements[0]


def test_every_template_is_covered() -> None:
    on_disk = {p.stem for p in (config.sql_dir() / "snowflake").glob("*.sql")}
    assert on_disk == set(TEMPLATE_CASES)


@pytest.mark.parametrize("name", sorted(TEMPLATE_CASES))
def test_template_parses_as_snowflake_sql(name: str) -> None:
    identifiers, params, expected = TEMPLATE_CASES[name]
    sql = render_sql(name, **identifiers)
    assert not re.search(r"[{}]", sql)  # nothing left unrendered
    placeholders = set(re.findall(r"%\((\w+)\)s", sql))
    assert placeholders == set(params or {}), "every value is a bind parameter, every parameter is used"
    statement = parse_one_snowflake(interpolate(sql, params))
    # a fallback to exp.Command would mean sqlglot did not understand the statement
    assert type(statement) is expected, (name, type(statement).__name__)


def test_merge_matches_on_project_and_key_and_updates_only_non_key_columns() -> None:
    identifiers, params, _ = TEMPLATE_CASES["merge"]
    merge = parse_one_snowflake(interpolate(render_sql("merge", **identifiers), params))
    on = merge.args["on"]
    assert {c.name for c in on.find_all(exp.Column)} == {"_TRILHA_PROJECT", "WMO_CODE", "OBSERVED_AT"}
    assert f"'{PREFIX}'" in on.sql("snowflake")
    when_matched, when_not_matched = merge.args["whens"].expressions
    updated = {eq.this.name for eq in when_matched.args["then"].expressions}
    assert updated == {"PRECIPITATION_MM", "AIR_TEMP_C", *sfd.LINEAGE_COLUMNS[1:]}
    inserted = [c.name for c in when_not_matched.args["then"].this.expressions]
    assert inserted == ["OBSERVED_AT", "WMO_CODE", "PRECIPITATION_MM", "AIR_TEMP_C", *sfd.LINEAGE_COLUMNS]


def test_create_table_types_follow_the_parquet_schema() -> None:
    plan = plan_table(PREFIX, "inmet_hourly", "stations", stations_table().schema)
    sql = render_sql("create_table", target=plan.target, columns=plan.columns)
    for line in (
        '"WMO_CODE" VARCHAR,',
        '"LATITUDE" FLOAT,',
        '"FIRST_OBSERVED_AT" TIMESTAMP_TZ(6),',
        '"HOURS" NUMBER(38, 0),',
        '"_TRILHA_SOURCE_SHA256" VARCHAR(64) NOT NULL,',
    ):
        assert line in sql


@pytest.mark.parametrize(
    ("arrow_type", "expected"),
    [
        (pa.string(), "VARCHAR"),
        (pa.large_string(), "VARCHAR"),
        (pa.dictionary(pa.int32(), pa.string()), "VARCHAR"),
        (pa.int32(), "NUMBER(38, 0)"),
        (pa.float64(), "FLOAT"),
        (pa.bool_(), "BOOLEAN"),
        (pa.decimal128(12, 3), "NUMBER(12, 3)"),
        (pa.date32(), "DATE"),
        (pa.timestamp("us", tz="UTC"), "TIMESTAMP_TZ(6)"),
        (pa.timestamp("ms"), "TIMESTAMP_NTZ(3)"),
        (pa.time64("us"), "TIME(6)"),
        (pa.binary(), "BINARY"),
        (pa.null(), "VARCHAR"),
        (pa.list_(pa.int64()), "VARIANT"),
    ],
)
def test_snowflake_type(arrow_type: pa.DataType, expected: str) -> None:
    assert sfd.snowflake_type(arrow_type).text == expected


def test_key_columns_are_the_curated_tables_keys() -> None:
    """The MERGE keys must be columns that trilha.domain.curate really writes."""
    from trilha.domain import curate

    assert set(sfd.KEY_COLUMNS["hourly"]) <= set(curate.CURATED_HOURLY_COLUMNS)
    assert set(sfd.KEY_COLUMNS["daily"]) <= set(curate.DAILY_COLUMNS)
    assert set(sfd.KEY_COLUMNS["daily_utc"]) <= set(curate.DAILY_COLUMNS)
    assert set(sfd.KEY_COLUMNS["stations"]) <= set(curate.STATIONS_COLUMNS)
    assert "data" not in sfd.KEY_COLUMNS


# --------------------------------------------------------------------------------------------------
# Identifier validation
# --------------------------------------------------------------------------------------------------

INJECTIONS = [
    "x; DROP TABLE y",
    'a"b',
    '"quoted"',
    "a'b",
    "a b",
    "schema.table",
    "",
    "estação",
    "a\nb",
    "a--b",
    "x" * 256,
]


@pytest.mark.parametrize("name", INJECTIONS)
def test_ident_rejects_injection(name: str) -> None:
    with pytest.raises(InvalidIdentifierError):
        ident(name)


def test_ident_quotes_and_upper_cases() -> None:
    assert ident("observed_at").text == '"OBSERVED_AT"'
    assert ident("order").text == '"ORDER"'  # a reserved word, safe because it is quoted
    assert ident("col_2024").text == '"COL_2024"'


@pytest.mark.parametrize(
    "name", ["X; DROP STAGE Y", '"S"', "a..b", "db.schema.stage.extra", "1stage", "st@ge"]
)
def test_stage_name_rejects(name: str) -> None:
    with pytest.raises(InvalidIdentifierError):
        stage_name(name)


def test_stage_location() -> None:
    assert stage_name("lake.curated.trilha_curated").text == "LAKE.CURATED.TRILHA_CURATED"
    assert LOCATION.text == "@TRILHA_CURATED/inmet-sp/inmet_hourly/v0003/"


@pytest.mark.parametrize("segment", ["..", "../x", "a/b", "a'b", "a b", "", "-x", "v1;"])
def test_path_segment_rejects(segment: str) -> None:
    with pytest.raises(InvalidIdentifierError):
        path_segment(segment, "version")


def test_render_refuses_anything_but_validated_fragments() -> None:
    with pytest.raises(InvalidIdentifierError, match="refusing to render str"):
        render_sql("drop_staging", staging="x; DROP TABLE y")
    with pytest.raises(InvalidIdentifierError, match="refusing to render str"):
        render_sql("drop_staging", staging="HARMLESS")  # even a harmless plain string
    assert render_sql("drop_staging", staging=ident("t")) == 'DROP TABLE IF EXISTS "T"'


def test_table_name() -> None:
    assert table_name("inmet-sp", "inmet_hourly", "daily").text == '"INMET_SP__INMET_HOURLY__DAILY"'
    with pytest.raises(InvalidProjectError):
        table_name("../etc", "inmet_hourly", "daily")


def test_plan_rejects_bad_columns() -> None:
    with pytest.raises(InvalidIdentifierError):
        plan_table(PREFIX, "generic", "data", pa.schema([("x; DROP TABLE y", pa.int64())]))
    with pytest.raises(SnowflakeLoadError, match="both become VALUE"):
        plan_table(PREFIX, "generic", "data", pa.schema([("value", pa.int64()), ("VALUE", pa.int64())]))
    with pytest.raises(SnowflakeLoadError, match="lineage column"):
        plan_table(PREFIX, "generic", "data", pa.schema([("_trilha_version", pa.string())]))
    with pytest.raises(SnowflakeLoadError, match=r"missing \['observed_at'\]"):
        plan_table(PREFIX, "inmet_hourly", "hourly", pa.schema([("wmo_code", pa.string())]))


# --------------------------------------------------------------------------------------------------
# snowflake_configured
# --------------------------------------------------------------------------------------------------


def test_not_configured_without_connection() -> None:
    assert snowflake_configured(config.SNOWFLAKE_CONN_ID) is False
    assert snowflake_configured("") is False


def test_not_configured_for_the_settings_placeholder(monkeypatch: pytest.MonkeyPatch) -> None:
    """The entry shipped in airflow_settings.yaml (conn_type snowflake, empty extra) means off."""
    from trilha.ops.settings import load_settings

    placeholder = load_settings().connections[config.SNOWFLAKE_CONN_ID]
    assert placeholder["extra"] == {}
    monkeypatch.setenv(CONN_ENV, json.dumps(placeholder))
    assert snowflake_configured(config.SNOWFLAKE_CONN_ID) is False


@pytest.mark.parametrize(
    ("conn", "expected"),
    [
        ({"conn_type": "snowflake", "extra": {"account": "xy12345"}}, True),
        ({"conn_type": "snowflake", "extra": {"account": "   "}}, False),
        ({"conn_type": "snowflake", "extra": {"host": "myorg-myacct.snowflakecomputing.com"}}, True),
        ({"conn_type": "snowflake", "host": "xy12345.eu-central-1.snowflakecomputing.com"}, True),
        ({"conn_type": "snowflake", "login": "someone", "password": "x"}, False),
    ],
)
def test_configured_when_an_account_is_named(
    monkeypatch: pytest.MonkeyPatch, conn: dict[str, Any], expected: bool
) -> None:
    monkeypatch.setenv(CONN_ENV, json.dumps(conn))
    assert snowflake_configured(config.SNOWFLAKE_CONN_ID) is expected


@pytest.mark.parametrize(
    ("host", "account"),
    [
        ("xy12345.eu-central-1.snowflakecomputing.com", "xy12345.eu-central-1"),
        ("https://MyOrg-MyAcct.snowflakecomputing.com:443/", "myorg-myacct"),
        ("xy12345", "xy12345"),
    ],
)
def test_account_from_host(host: str, account: str) -> None:
    assert sf.account_from_host(host) == account


def test_host_only_connection_reaches_the_connector_with_an_account(
    monkeypatch: pytest.MonkeyPatch, fake: FakeSnowflake
) -> None:
    conn = {
        "conn_type": "snowflake",
        "login": "u",
        "password": "p",
        "host": "xy12345.eu-central-1.snowflakecomputing.com",
    }
    monkeypatch.setenv(CONN_ENV, json.dumps(conn))
    TrilhaSnowflakeHook().get_conn()
    kwargs = fake.connect_kwargs[0]
    assert kwargs["account"] == "xy12345.eu-central-1"
    assert kwargs["host"] == "xy12345.eu-central-1.snowflakecomputing.com"


# --------------------------------------------------------------------------------------------------
# The load, against the fake connector
# --------------------------------------------------------------------------------------------------

PER_TABLE_MERGE = [
    "PUT",
    "CREATE TABLE",
    "DESCRIBE",
    "CREATE TEMP",
    "COPY",
    "BEGIN",
    "MERGE",
    "COMMIT",
    "DROP",
]
SESSION = ["SESSION", "SESSION", "CREATE STAGE"]


def test_load_inmet_version_call_sequence(snowflake_conn: dict[str, Any], fake: FakeSnowflake) -> None:
    minio = FakeMinio()
    tables = {"hourly": hourly_table(), "daily": daily_table(), "stations": stations_table()}
    files = curated_version(minio, tables)

    summary = run_load(files, minio)

    assert summary == {"daily": 2, "hourly": 6, "stations": 2}
    # per table, in sorted order: PUT -> CREATE -> COPY -> MERGE -> COMMIT -> DROP
    assert fake.kinds == SESSION + PER_TABLE_MERGE * 3
    puts = [params for sql, params in fake.calls if kind(sql) == "PUT"]
    assert [Path(urlsplit(p["local_file"]).path).name for p in puts if p] == [
        "daily.parquet",
        "hourly.parquet",
        "stations.parquet",
    ]
    merges = [sql for sql, _ in fake.calls if kind(sql) == "MERGE"]
    assert [_quoted(m)[0] for m in merges] == [
        "INMET_SP__INMET_HOURLY__DAILY",
        "INMET_SP__INMET_HOURLY__HOURLY",
        "INMET_SP__INMET_HOURLY__STATIONS",
    ]
    # the provider built the connector's parameters from the Airflow connection
    kwargs = fake.connect_kwargs[0]
    assert (kwargs["account"], kwargs["user"], kwargs["database"], kwargs["schema"]) == (
        "xy12345",
        "TRILHA_LOADER",
        "LAKE",
        "CURATED",
    )
    assert (kwargs["warehouse"], kwargs["role"]) == ("LOAD_WH", "LOADER")
    # one connection, autocommit on (explicit transactions), closed at the end with its cursor
    (conn,) = fake.connections
    assert conn.autocommit_calls == [True]
    assert conn.closed
    assert all(c.closed for c in conn.cursors)
    # the stage received the curated bytes and the COPY purged them
    assert fake.staged == {}
    # what goes on the wire parses as Snowflake SQL, statement by statement
    for sql in fake.wire:
        parse_one_snowflake(sql)


def test_values_are_bound_not_formatted(snowflake_conn: dict[str, Any], fake: FakeSnowflake) -> None:
    minio = FakeMinio()
    files = curated_version(minio, {"hourly": hourly_table()})
    run_load(files, minio)

    sha = files["hourly"]["sha256"]
    (merge_sql, merge_params) = next((s, p) for s, p in fake.calls if kind(s) == "MERGE")
    assert merge_params == {"project": PREFIX, "version": VERSION, "sha256": sha}
    assert "%(project)s" in merge_sql
    assert "%(version)s" in merge_sql
    assert "%(sha256)s" in merge_sql
    for sql, params in fake.calls:
        for value in (sha, f"'{PREFIX}'", f"'{VERSION}'", TARGET["project_name"], "hourly.parquet"):
            assert value not in sql, (value, sql)
        if params:
            assert set(re.findall(r"%\((\w+)\)s", sql)) == set(params)
    copy_sql, copy_params = next((s, p) for s, p in fake.calls if kind(s) == "COPY")
    assert copy_params == {"file": "hourly.parquet"}
    assert "FILES = (%(file)s)" in copy_sql


def test_put_uploads_the_audited_bytes(
    snowflake_conn: dict[str, Any], fake: FakeSnowflake, monkeypatch: pytest.MonkeyPatch
) -> None:
    minio = FakeMinio()
    files = curated_version(minio, {"stations": stations_table()})
    uploaded: list[bytes] = []
    original = FakeCursor.execute

    def spy(self: FakeCursor, sql: str, params: dict[str, Any] | None = None) -> FakeCursor:
        if kind(sql) == "PUT" and params:
            uploaded.append(Path(unquote(urlsplit(params["local_file"]).path)).read_bytes())
        return original(self, sql, params)

    monkeypatch.setattr(FakeCursor, "execute", spy)
    run_load(files, minio)
    assert [hashlib.sha256(b).hexdigest() for b in uploaded] == [files["stations"]["sha256"]]


def hourly_keys(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return sorted((r["_TRILHA_PROJECT"], r["WMO_CODE"], r["OBSERVED_AT"]) for r in rows)


def test_rerun_of_a_version_converges(snowflake_conn: dict[str, Any], fake: FakeSnowflake) -> None:
    """The fake executes the MERGE on its rows: a key that is not (project, wmo_code, observed_at)
    duplicates rows, loses updates or fails here."""
    minio = FakeMinio()
    files = curated_version(minio, {"hourly": hourly_table()})
    assert run_load(files, minio) == {"hourly": 6}
    assert run_load(files, minio) == {"hourly": 6}  # second time: 6 updated, 0 inserted
    # the table exists the second time: CREATE IF NOT EXISTS is a no-op and no column is added
    assert "ADD COLUMN" not in fake.kinds
    assert fake.kinds.count("MERGE") == 2
    assert fake.kinds.count("COMMIT") == 2
    rows = fake.rows["INMET_SP__INMET_HOURLY__HOURLY"]
    source = hourly_table().to_pylist()
    assert hourly_keys(rows) == sorted((PREFIX, r["wmo_code"], r["observed_at"]) for r in source)
    by_key = {(r["WMO_CODE"], r["OBSERVED_AT"]): r for r in rows}
    for r in source:  # every value is the version's, including the nulls
        assert by_key[(r["wmo_code"], r["observed_at"])]["AIR_TEMP_C"] == r["air_temp_c"]
        assert by_key[(r["wmo_code"], r["observed_at"])]["PRECIPITATION_MM"] == r["precipitation_mm"]
    assert {r["_TRILHA_VERSION"] for r in rows} == {VERSION}


def test_a_newer_version_updates_its_keys_and_keeps_the_rows_it_no_longer_has(
    snowflake_conn: dict[str, Any], fake: FakeSnowflake
) -> None:
    """MERGE semantics (no "not matched by source"): rows the newer version still has are updated in
    place, new keys are inserted, and a row it no longer has stays with the version that wrote it."""
    minio = FakeMinio()
    first = hourly_table()
    run_load(curated_version(minio, {"hourly": first}), minio)
    newer = pa.concat_tables([first.slice(1, 5), first.slice(0, 1)]).to_pylist()
    newer[0]["air_temp_c"] = 99.0  # a corrected value for a key that exists
    newer[-1]["observed_at"] = datetime(2024, 1, 1, 3, tzinfo=UTC)  # a new hour instead of the first
    table = pa.Table.from_pylist(newer, schema=first.schema)
    files = curated_version(minio, {"hourly": table}, version="v0004")
    load_curated_version(config.SNOWFLAKE_CONN_ID, minio, BUCKET, TARGET, "v0004", files, ListLog())

    rows = fake.rows["INMET_SP__INMET_HOURLY__HOURLY"]
    assert len(rows) == 7  # 6 from the first version, 1 new hour
    by_key = {(r["WMO_CODE"], r["OBSERVED_AT"]): r for r in rows}
    first_rows = first.to_pylist()
    kept = by_key[(first_rows[0]["wmo_code"], first_rows[0]["observed_at"])]
    assert kept["_TRILHA_VERSION"] == VERSION
    corrected = by_key[(newer[0]["wmo_code"], newer[0]["observed_at"])]
    assert (corrected["AIR_TEMP_C"], corrected["_TRILHA_VERSION"]) == (99.0, "v0004")
    assert by_key[("A701", datetime(2024, 1, 1, 3, tzinfo=UTC))]["_TRILHA_VERSION"] == "v0004"


def test_two_prefixes_that_share_a_table_keep_their_own_rows(
    snowflake_conn: dict[str, Any], fake: FakeSnowflake
) -> None:
    """``a-b`` and ``a_b`` load into one table name; the project in the MERGE key keeps them apart."""
    minio = FakeMinio()
    for prefix in ("a-b", "a_b"):
        files = curated_version(minio, {"hourly": hourly_table()})
        target = {**TARGET, "project_prefix": prefix}
        assert load_curated_version(
            config.SNOWFLAKE_CONN_ID, minio, BUCKET, target, VERSION, files, ListLog()
        ) == {"hourly": 6}
    rows = fake.rows["A_B__INMET_HOURLY__HOURLY"]
    assert sorted({r["_TRILHA_PROJECT"] for r in rows}) == ["a-b", "a_b"]
    assert len(rows) == 12


def test_generic_data_is_replaced_in_one_transaction(
    snowflake_conn: dict[str, Any], fake: FakeSnowflake
) -> None:
    minio = FakeMinio()
    files = curated_version(minio, {"data": generic_table()}, dataset="generic")
    target = {**TARGET, "dataset": "generic"}

    assert run_load(files, minio, target) == {"data": 3}
    per_table = fake.kinds[len(SESSION) :]
    assert per_table == [
        "PUT",
        "CREATE TABLE",
        "DESCRIBE",
        "CREATE TEMP",
        "COPY",
        "BEGIN",
        "DELETE",
        "INSERT",
        "COMMIT",
        "DROP",
    ]
    delete_sql, delete_params = next((s, p) for s, p in fake.calls if kind(s) == "DELETE")
    assert delete_sql == 'DELETE FROM "INMET_SP__GENERIC__DATA" WHERE "_TRILHA_PROJECT" = %(project)s'
    assert delete_params is not None
    assert delete_params["project"] == PREFIX
    insert_sql = next(s for s, _ in fake.calls if kind(s) == "INSERT")
    assert 's."ORDER"' in insert_sql
    assert 's."DATE"' in insert_sql


def test_generic_data_of_a_project_is_replaced_not_appended(
    snowflake_conn: dict[str, Any], fake: FakeSnowflake
) -> None:
    """A re-run replaces the project's rows; another project whose prefix maps to the same table
    (``a-b`` and ``a_b``) keeps its own."""
    minio = FakeMinio()
    mine = {**TARGET, "project_prefix": "a-b", "dataset": "generic"}
    other = {**mine, "project_prefix": "a_b"}
    other_files = curated_version(minio, {"data": generic_table().slice(0, 2)}, dataset="generic")
    assert run_load(other_files, minio, other) == {"data": 2}
    files = curated_version(minio, {"data": generic_table()}, dataset="generic")
    assert run_load(files, minio, mine) == {"data": 3}
    assert run_load(files, minio, mine) == {"data": 3}
    rows = fake.rows["A_B__GENERIC__DATA"]
    assert sorted(r["ORDER"] for r in rows if r["_TRILHA_PROJECT"] == "a-b") == [1, 2, 3]
    assert sorted(r["ORDER"] for r in rows if r["_TRILHA_PROJECT"] == "a_b") == [1, 2]  # untouched


def test_new_columns_are_added_to_an_existing_table(
    monkeypatch: pytest.MonkeyPatch, snowflake_conn: dict[str, Any]
) -> None:
    existing = ["OBSERVED_AT", "WMO_CODE", "PRECIPITATION_MM", *sfd.LINEAGE_COLUMNS]
    db = FakeSnowflake(tables={"INMET_SP__INMET_HOURLY__HOURLY": existing})
    monkeypatch.setattr("snowflake.connector.connect", db.connect)
    minio = FakeMinio()
    files = curated_version(minio, {"hourly": hourly_table()})

    run_load(files, minio)

    added = [sql for sql, _ in db.calls if kind(sql) == "ADD COLUMN"]
    assert added == [
        'ALTER TABLE "INMET_SP__INMET_HOURLY__HOURLY" ADD COLUMN IF NOT EXISTS "AIR_TEMP_C" FLOAT'
    ]
    assert db.kinds.index("ADD COLUMN") < db.kinds.index("COPY")


@pytest.mark.parametrize("failing", ["MERGE", "COMMIT"])
def test_failure_inside_the_transaction_rolls_back(
    monkeypatch: pytest.MonkeyPatch, snowflake_conn: dict[str, Any], failing: str
) -> None:
    db = FakeSnowflake(fail_on=failing)
    monkeypatch.setattr("snowflake.connector.connect", db.connect)
    minio = FakeMinio()
    files = curated_version(minio, {"hourly": hourly_table(), "stations": stations_table()})

    with pytest.raises(SnowflakeLoadError, match=rf"{failing.lower()}.sql failed \(query id 01b3-\d+\)"):
        run_load(files, minio)

    kinds = db.kinds
    assert kinds[-1] == "ROLLBACK"
    assert db.rows.get("INMET_SP__INMET_HOURLY__HOURLY", []) == []  # the merge was rolled back
    assert kinds.count("BEGIN") == 1  # the next table was never started
    assert "DROP" not in kinds  # the temporary staging table goes with the session
    assert db.connections[0].closed


def test_copy_row_count_mismatch_stops_before_merge(
    monkeypatch: pytest.MonkeyPatch, snowflake_conn: dict[str, Any]
) -> None:
    db = FakeSnowflake(copy_shortfall=1)
    monkeypatch.setattr("snowflake.connector.connect", db.connect)
    minio = FakeMinio()
    files = curated_version(minio, {"hourly": hourly_table()})

    with pytest.raises(SnowflakeLoadError, match="expected 6 rows .* COPY loaded 5"):
        run_load(files, minio)
    assert "BEGIN" not in db.kinds
    assert "MERGE" not in db.kinds


def test_a_file_that_is_not_the_audited_content_is_not_uploaded(
    snowflake_conn: dict[str, Any], fake: FakeSnowflake, monkeypatch: pytest.MonkeyPatch
) -> None:
    minio = FakeMinio()
    files = curated_version(minio, {"hourly": hourly_table()})
    minio.put(
        BUCKET, files["hourly"]["key"], table_to_parquet_bytes(daily_table())
    )  # changed behind our back
    workdirs: list[str] = []
    real_tempdir = sf.tempfile.TemporaryDirectory

    def tracking_tempdir(*args: Any, **kwargs: Any) -> Any:
        tmp = real_tempdir(*args, **kwargs)
        workdirs.append(tmp.name)
        return tmp

    monkeypatch.setattr(sf.tempfile, "TemporaryDirectory", tracking_tempdir)

    with pytest.raises(IntegrityError, match="expected sha256"):
        run_load(files, minio)
    assert "PUT" not in fake.kinds
    assert not Path(workdirs[0]).exists()


def test_a_curated_object_that_is_gone_is_named_and_nothing_is_uploaded(
    snowflake_conn: dict[str, Any], fake: FakeSnowflake
) -> None:
    minio = FakeMinio()
    files = curated_version(minio, {"hourly": hourly_table()})
    del minio.client.objects[(BUCKET, files["hourly"]["key"])]
    with pytest.raises(ObjectMissingError, match=f"s3://{BUCKET}/{files['hourly']['key']}: no such object"):
        run_load(files, minio)
    assert "PUT" not in fake.kinds


def test_bad_table_name_is_refused_before_connecting(
    snowflake_conn: dict[str, Any], fake: FakeSnowflake
) -> None:
    minio = FakeMinio()
    files = curated_version(minio, {"hourly": hourly_table()})
    files = {"x; DROP TABLE y": files["hourly"]}
    with pytest.raises(InvalidIdentifierError):
        run_load(files, minio)
    assert fake.connect_kwargs == []


def test_empty_table_is_not_loaded(snowflake_conn: dict[str, Any], fake: FakeSnowflake) -> None:
    minio = FakeMinio()
    files = curated_version(minio, {"hourly": hourly_table().slice(0, 0), "stations": stations_table()})
    assert run_load(files, minio) == {"hourly": 0, "stations": 2}
    assert fake.kinds == SESSION + PER_TABLE_MERGE


def test_missing_connection_is_a_setup_error(fake: FakeSnowflake) -> None:
    minio = FakeMinio()
    files = curated_version(minio, {"stations": stations_table()})
    with pytest.raises(ConnectionSetupError, match="AIRFLOW_CONN_TRILHA_SNOWFLAKE"):
        run_load(files, minio)
    assert fake.connect_kwargs == []


def test_refused_login_names_the_connection_not_the_secret(
    snowflake_conn: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(**kwargs: Any) -> Any:
        raise DatabaseError(msg="Incorrect username or password was specified.", errno=250001)

    monkeypatch.setattr("snowflake.connector.connect", refuse)
    minio = FakeMinio()
    files = curated_version(minio, {"stations": stations_table()})
    with pytest.raises(ConnectionSetupError, match="connection 'trilha_snowflake': cannot connect") as caught:
        run_load(files, minio)
    assert snowflake_conn["password"] not in str(caught.value)
