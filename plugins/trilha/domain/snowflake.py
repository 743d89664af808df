"""Planning the Snowflake load of a curated table: pure, no Airflow, no I/O.

What :mod:`trilha.hooks.snowflake` sends to Snowflake is decided here: the target and staging
table names, the columns and their Snowflake types (from the Parquet schema), the MERGE key, and the
SQL text rendered from a template. The hook reads the templates (``include/sql/snowflake/*.sql``)
and hands their text to :func:`render`; it connects, executes and moves the files.

Rendering is safe by construction: Jinja prints only :class:`Sql` fragments, which exist only once
validated (:func:`ident`, :func:`stage_name`, :func:`stage_location`, :func:`table_name`,
:func:`snowflake_type`). Any other value handed to a template is refused; values (project,
version, sha256, file names) always travel as bind parameters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

import jinja2

from trilha.domain.keys import validate_project_prefix
from trilha.exceptions import TrilhaError

if TYPE_CHECKING:
    import pyarrow as pa

#: Natural key of each curated table, as :mod:`trilha.domain.curate` builds them: ``hourly`` is one row per
#: station and UTC hour, ``daily`` one per station and local date and ``daily_utc`` one per station
#: and UTC date (column ``date``), ``stations`` one per WMO code and position (``valid_from``). Any
#: other table (the generic ``data``) has no natural key: it is replaced as a whole.
KEY_COLUMNS: dict[str, tuple[str, ...]] = {
    "hourly": ("wmo_code", "observed_at"),
    "daily": ("wmo_code", "date"),
    "daily_utc": ("wmo_code", "date"),
    "stations": ("wmo_code", "valid_from"),
}

#: Lineage columns that the loader adds to every target table (written by the templates).
LINEAGE_COLUMNS: tuple[str, ...] = (
    "_TRILHA_PROJECT",
    "_TRILHA_VERSION",
    "_TRILHA_SOURCE_SHA256",
    "_TRILHA_LOADED_AT",
)

# Every identifier is rendered double-quoted and upper-cased: quoting makes reserved words that a
# generic CSV may use as a column name ("order", "date") safe, and upper case keeps the names usable
# unquoted. The regex is what makes the quoting safe: no quote, space, dot, semicolon or other
# character that could end the identifier.
_IDENTIFIER_RE = re.compile(r"[A-Za-z0-9_]{1,255}")
# Stage names are rendered unquoted inside a location (@STAGE/path/), so they must be plain
# identifiers, optionally qualified by database and schema.
_STAGE_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,254}(?:\.[A-Za-z_][A-Za-z0-9_]{0,254}){0,2}")
# One segment of a stage path: a project prefix, a dataset or a version.
_SEGMENT_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
_TYPE_RE = re.compile(r"[A-Z_]+(?:\(\d{1,2}(?:, \d{1,2})?\))?")


class SnowflakeLoadError(TrilhaError):
    """A curated version could not be loaded into Snowflake; the message names table and statement."""


class InvalidIdentifierError(TrilhaError, ValueError):
    """A name that cannot be rendered into Snowflake SQL as an identifier."""


# --------------------------------------------------------------------------------------------------
# Validated SQL fragments and rendering
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sql:
    """SQL text that was validated when it was built: the only thing a template may print."""

    text: str


@dataclass(frozen=True)
class Column:
    """A column of a curated table: its rendered name and Snowflake type, and its name in Snowflake."""

    name: Sql
    type: Sql
    upper: str


def ident(name: str) -> Sql:
    """A quoted, upper-cased Snowflake identifier, or :class:`InvalidIdentifierError`."""
    if not isinstance(name, str) or not _IDENTIFIER_RE.fullmatch(name):
        raise InvalidIdentifierError(
            f"Snowflake identifier: expected 1-255 characters of A-Z, a-z, 0-9 or '_', got {name!r}"
        )
    return Sql(f'"{name.upper()}"')


def stage_name(name: str) -> Sql:
    """A stage name (``STAGE`` or ``DB.SCHEMA.STAGE``), upper-cased, unquoted."""
    if not isinstance(name, str) or not _STAGE_RE.fullmatch(name):
        raise InvalidIdentifierError(
            f"Snowflake stage: expected an unquoted name such as TRILHA_CURATED or DB.SCHEMA.STAGE, "
            f"got {name!r}"
        )
    return Sql(name.upper())


def path_segment(value: str, what: str) -> str:
    """A project prefix, dataset or version that becomes part of a stage path."""
    if not isinstance(value, str) or not _SEGMENT_RE.fullmatch(value):
        raise InvalidIdentifierError(
            f"{what}: expected 1-128 characters of A-Z, a-z, 0-9, '_' or '-' (starting with a letter or "
            f"digit), got {value!r}"
        )
    return value


def stage_location(stage: str, *segments: str) -> Sql:
    """``@STAGE/seg/seg/.../``: the folder of one curated version in the stage.

    Rendered, not bound: ``PUT`` and ``COPY ... FROM`` take a stage reference, not a string
    expression. Every part is validated first.
    """
    parts = [path_segment(s, "stage path segment") for s in segments]
    return Sql(f"@{stage_name(stage).text}/{'/'.join(parts)}/")


def table_name(project_prefix: str, dataset: str, table: str) -> Sql:
    """``"<PROJECT>__<DATASET>__<TABLE>"``; ``-`` (allowed in project prefixes) becomes ``_``."""
    validate_project_prefix(project_prefix)
    return ident(f"{project_prefix.replace('-', '_')}__{dataset}__{table}")


def _sql_type(text: str) -> Sql:
    if not _TYPE_RE.fullmatch(text):  # the mapping below is the only source: guard it anyway
        raise InvalidIdentifierError(f"Snowflake type: expected a plain type name, got {text!r}")
    return Sql(text)


_TIME_PRECISION = {"s": 0, "ms": 3, "us": 6, "ns": 9}


def snowflake_type(arrow_type: pa.DataType) -> Sql:
    """The Snowflake column type that a ``COPY`` of a Parquet column of ``arrow_type`` loads into.

    Timezone-aware timestamps (the lake's UTC timestamps) become ``TIMESTAMP_TZ``, which keeps the
    instant whatever the session time zone, and compares by instant in MERGE keys. Nested types
    become ``VARIANT``.
    """
    import pyarrow as pa

    t = arrow_type.value_type if pa.types.is_dictionary(arrow_type) else arrow_type
    if pa.types.is_boolean(t):
        name = "BOOLEAN"
    elif pa.types.is_integer(t):
        name = "NUMBER(38, 0)"
    elif pa.types.is_floating(t):
        name = "FLOAT"
    elif pa.types.is_decimal(t):
        if t.precision > 38:
            raise SnowflakeLoadError(f"Snowflake type: expected a decimal of at most 38 digits, got {t}")
        name = f"NUMBER({t.precision}, {t.scale})"
    elif pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        name = "VARCHAR"
    elif pa.types.is_null(t):
        name = "VARCHAR"  # an all-null column of a generic file: text is the least surprising home
    elif (
        pa.types.is_binary(t)
        or pa.types.is_large_binary(t)
        or pa.types.is_fixed_size_binary(t)
        or pa.types.is_binary_view(t)
    ):
        name = "BINARY"
    elif pa.types.is_date(t):
        name = "DATE"
    elif pa.types.is_timestamp(t):
        precision = _TIME_PRECISION[t.unit]
        name = f"TIMESTAMP_TZ({precision})" if t.tz else f"TIMESTAMP_NTZ({precision})"
    elif pa.types.is_time(t):
        name = f"TIME({_TIME_PRECISION[t.unit]})"
    elif pa.types.is_nested(t):
        name = "VARIANT"
    else:
        raise SnowflakeLoadError(f"Snowflake type: expected a Parquet-loadable Arrow type, got {t}")
    return _sql_type(name)


def _finalize(value: Any) -> str:
    # Jinja calls this on every {{ expression }}: only validated fragments get into the SQL text.
    if isinstance(value, Sql):
        return value.text
    raise InvalidIdentifierError(
        f"refusing to render {type(value).__name__} {value!r} into SQL: identifiers must be built with "
        "ident()/table_name()/stage_location(), and values go as bind parameters"
    )


@cache
def _environment() -> jinja2.Environment:
    # Autoescape off (bandit B701): these templates render SQL, not HTML, which escaping would corrupt;
    # identifiers pass _finalize's quoting and every value travels as a bind parameter. No loader:
    # the templates' text comes from the caller (reading files is the hook's part).
    return jinja2.Environment(  # nosec B701
        undefined=jinja2.StrictUndefined,
        finalize=_finalize,
        autoescape=False,  # SQL, not HTML; safety comes from _finalize
        trim_blocks=True,
        lstrip_blocks=True,
    )


@cache
def _compiled(template: str) -> jinja2.Template:
    return _environment().from_string(template)


def render(template: str, **identifiers: Any) -> str:
    """Render the SQL template text ``template`` with validated identifiers.

    :param identifiers: :class:`Sql` fragments, :class:`Column` objects, or lists of them.
    :raises InvalidIdentifierError: a value that is not a validated fragment reached the output.
    """
    return _compiled(template).render(**identifiers).strip()


# --------------------------------------------------------------------------------------------------
# Planning a table (pure)
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TablePlan:
    """What the load of one curated table renders: target, staging table, columns and key."""

    table: str
    target: Sql
    staging: Sql
    columns: tuple[Column, ...]
    #: MERGE key; ``None``: no natural key, the project's rows are replaced as a whole.
    keys: tuple[Sql, ...] | None

    @property
    def updates(self) -> list[Sql]:
        keys = set(self.keys or ())
        return [c.name for c in self.columns if c.name not in keys]

    @property
    def column_names(self) -> list[Sql]:
        return [c.name for c in self.columns]


def plan_table(project_prefix: str, dataset: str, table: str, schema: pa.Schema) -> TablePlan:
    """Plan the load of curated ``table`` from its Parquet ``schema``.

    :raises InvalidIdentifierError: a table or column name that cannot be an identifier.
    :raises SnowflakeLoadError: two columns that differ only by case, a column that clashes with the
        lineage columns, or a key column missing from the file.
    """
    target = table_name(project_prefix, dataset, table)
    columns: list[Column] = []
    seen: dict[str, str] = {}
    for field in schema:
        column = Column(ident(field.name), snowflake_type(field.type), field.name.upper())
        if column.upper in LINEAGE_COLUMNS:
            raise SnowflakeLoadError(
                f"{target.text}: column {field.name!r} would overwrite the lineage column {column.upper}"
            )
        if column.upper in seen:
            raise SnowflakeLoadError(
                f"{target.text}: columns {seen[column.upper]!r} and {field.name!r} both become "
                f"{column.upper} in Snowflake; expected names that differ by more than case"
            )
        seen[column.upper] = field.name
        columns.append(column)
    if not columns:
        raise SnowflakeLoadError(f"{target.text}: expected at least one column, got an empty schema")
    keys: tuple[Sql, ...] | None = None
    key_names = KEY_COLUMNS.get(table)
    if key_names is not None:
        missing = [k for k in key_names if k not in schema.names]
        if missing:
            raise SnowflakeLoadError(
                f"{target.text}: expected key columns {list(key_names)} in curated table {table!r}, "
                f"missing {missing}; got {schema.names}"
            )
        keys = tuple(ident(k) for k in key_names)
    staging = ident(f"{target.text[1:-1]}__STAGE")
    return TablePlan(table, target, staging, tuple(columns), keys)
