"""Optional load of curated versions into Snowflake: stage, then MERGE.

The load runs only when the ``trilha_snowflake`` connection names an account
(:func:`snowflake_configured`); the placeholder in ``airflow_settings.yaml`` (no account) keeps it off.
:class:`TrilhaSnowflakeHook` subclasses the Snowflake provider's ``SnowflakeHook``, so connection
parameters, key-pair and OAuth authentication are the provider's. For each table of a curated version:

1. stream the Parquet object from MinIO to a temporary file, checking its sha256 and size against the
   curated inventory: a file that is not the audited content never reaches the warehouse;
2. ``PUT`` it to the named internal stage (``@TRILHA_CURATED/<project>/<dataset>/<version>/``). The
   connector uploads it over the Snowflake connection, so Snowflake needs no credentials for the lake;
3. ``CREATE TABLE IF NOT EXISTS`` the target, then ``ADD COLUMN`` any column that a newer version
   brought (names and types come from the Parquet schema);
4. ``COPY INTO`` a temporary staging table, matching columns by name, and compare the rows loaded
   with the inventory's row count;
5. in one transaction, ``MERGE`` the staging rows into the target on the table's natural key, or, for a
   table without one (the generic ``data`` table), replace the project's rows (``DELETE`` + ``INSERT``).
   Then compare the rows written with the row count again, and drop the staging table.

Snowflake commits every DDL statement implicitly, so only the DML of step 5 can share a transaction.
It is also the only step that changes what readers see. Steps 1-4 are idempotent, so a killed run
converges when it is re-run.

The SQL is in ``include/sql/snowflake/``. What each statement says is planned by
:mod:`trilha.domain.snowflake` (pure: names, types, MERGE key, rendering); this module reads the
template files (:func:`render_sql`) and hands their text to it, so the planning stays testable and
free of I/O, and every file read is here with the other I/O. Jinja renders only identifiers (table
names, column lists, types, the stage location), and only as :class:`~trilha.domain.snowflake.Sql`
fragments that were validated when they were built. Any other value handed to a template is
refused. Values (project, version, sha256, file names) are always bind parameters in the connector's
default ``pyformat`` style.

Target tables are ``<PROJECT>__<DATASET>__<TABLE>`` (``-`` in a project prefix becomes ``_``), in the
connection's database and schema. Each row carries ``_TRILHA_PROJECT``, ``_TRILHA_VERSION``,
``_TRILHA_SOURCE_SHA256`` and ``_TRILHA_LOADED_AT``. The project is part of every MERGE key and of the
replace predicate, so two prefixes that map to one table name (``a-b`` and ``a_b``) still cannot
touch each other's rows. A row that a newer version no longer contains stays in a keyed table, and its
``_TRILHA_VERSION`` shows which version last wrote it: Snowflake's MERGE has no "not matched by
source" clause.
"""

from __future__ import annotations

import json
import re
import tempfile
import time
from collections.abc import Mapping
from contextlib import closing
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from airflow.providers.snowflake.hooks.snowflake import SnowflakeHook

from trilha import config
from trilha.domain.keys import validate_bucket, validate_key, validate_project_prefix
from trilha.domain.snowflake import (
    SnowflakeLoadError,
    Sql,
    ident,
    path_segment,
    plan_table,
    render,
    stage_location,
    stage_name,
)
from trilha.exceptions import ConnectionSetupError, IntegrityError

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Connection

    from trilha.hooks.minio import MinioHook

__all__ = [
    "DEFAULT_STAGE",
    "SnowflakeLoadError",
    "TrilhaSnowflakeHook",
    "load_curated_version",
    "render_sql",
    "snowflake_configured",
]

#: The named internal stage that receives the Parquet files (created if missing).
DEFAULT_STAGE = "TRILHA_CURATED"

_SNOWFLAKE_DOMAIN_RE = re.compile(r"\.snowflakecomputing\.[a-z.]+$")


class _Log(Protocol):
    def info(self, msg: str, /, *args: Any) -> Any: ...


@cache
def _template(name: str) -> str:
    """The text of ``include/sql/snowflake/<name>.sql`` (read once per process)."""
    return (config.sql_dir() / "snowflake" / f"{name}.sql").read_text(encoding="utf-8")


def render_sql(name: str, **identifiers: Any) -> str:
    """Render ``include/sql/snowflake/<name>.sql`` with validated identifiers
    (:func:`trilha.domain.snowflake.render`).

    :param identifiers: :class:`~trilha.domain.snowflake.Sql` fragments,
        :class:`~trilha.domain.snowflake.Column` objects, or lists of them.
    """
    return render(_template(name), **identifiers)


# --------------------------------------------------------------------------------------------------
# Connection
# --------------------------------------------------------------------------------------------------


def _bare_host(host: str) -> str:
    """``https://acct.snowflakecomputing.com:443/x`` -> ``acct.snowflakecomputing.com``."""
    return host.strip().split("://")[-1].split("/")[0].split(":")[0].lower()


def account_from_host(host: str) -> str:
    """The account part of a Snowflake host name (``xy12345.eu-central-1``, ``myorg-myacct``)."""
    return _SNOWFLAKE_DOMAIN_RE.sub("", _bare_host(host))


def connection_account(conn: Connection) -> str:
    """The account a connection names: ``extra.account``, else derived from a host; ``""`` if none."""
    extra = conn.extra_dejson or {}
    account = extra.get("account") or extra.get("extra__snowflake__account")
    if account and str(account).strip():
        return str(account).strip()
    host = extra.get("host") or conn.host
    return account_from_host(str(host)) if host and str(host).strip() else ""


class TrilhaSnowflakeHook(SnowflakeHook):
    """SnowflakeHook that loads curated versions: stage, then MERGE.

    :param snowflake_conn_id: the Snowflake connection (account in ``extra.account``, or a
        ``<account>.snowflakecomputing.com`` host; database and warehouse in extra, schema in ``schema``).
    :param stage: the named internal stage to create and use.
    """

    conn_name_attr = "snowflake_conn_id"
    default_conn_name = config.SNOWFLAKE_CONN_ID
    conn_type = "snowflake"
    hook_name = "Trilha Snowflake (optional load of curated versions)"

    def __init__(
        self, snowflake_conn_id: str = config.SNOWFLAKE_CONN_ID, stage: str = DEFAULT_STAGE, **kwargs: Any
    ) -> None:
        super().__init__(snowflake_conn_id=snowflake_conn_id, **kwargs)
        self.snowflake_conn_id = snowflake_conn_id
        self.stage = stage

    def _build_base_conn_config(self, conn: Connection, extra_dict: dict[str, Any]) -> dict[str, Any]:
        # The provider reads the account from extra only, and the connector cannot work without one.
        # A connection that names its account through a host gets the account derived from it.
        params = super()._build_base_conn_config(conn, extra_dict)
        if not params.get("account"):
            host = extra_dict.get("host") or conn.host
            if host and str(host).strip():
                params["account"] = account_from_host(str(host))
                if _SNOWFLAKE_DOMAIN_RE.search(_bare_host(str(host))):
                    params["host"] = _bare_host(str(host))
        return params

    def _connect(self) -> Any:
        from airflow.sdk.exceptions import AirflowNotFoundException
        from snowflake.connector.errors import Error as SnowflakeError

        conn_id = self.snowflake_conn_id
        try:
            return self.get_conn()
        except AirflowNotFoundException:
            raise ConnectionSetupError(
                f"connection {conn_id!r} is not defined: add it to airflow_settings.yaml or set "
                f"AIRFLOW_CONN_{conn_id.upper()}"
            ) from None
        except SnowflakeError as err:
            raise ConnectionSetupError(
                f"connection {conn_id!r}: cannot connect to Snowflake ({err.msg}); check account, login, "
                "password or key, warehouse, database and schema of the connection"
            ) from err

    def _run(
        self, cur: Any, name: str, params: Mapping[str, Any] | None = None, **identifiers: Any
    ) -> list[dict[str, Any]]:
        """Render and execute one statement; its rows as dicts with lower-case column names."""
        from snowflake.connector.errors import Error as SnowflakeError

        sql = render_sql(name, **identifiers)
        try:
            if params:
                cur.execute(sql, dict(params))
            else:
                cur.execute(sql)
        except SnowflakeError as err:
            raise SnowflakeLoadError(
                f"connection {self.snowflake_conn_id!r}: {name}.sql failed (query id {err.sfqid}): {err.msg}"
            ) from err
        if getattr(cur, "sfqid", None):
            self.query_ids.append(cur.sfqid)
        if cur.description is None:
            return []
        names = [str(d[0]).lower() for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def load_curated_version(
        self,
        minio: MinioHook,
        bucket: str,
        target: Mapping[str, Any],
        version: str,
        files: Mapping[str, Mapping[str, Any]],
        log: _Log | None = None,
    ) -> dict[str, int]:
        """Load every table of one curated version; return ``{table: rows merged}``.

        :param minio: reads the curated Parquet objects.
        :param bucket: the curated bucket.
        :param target: the curated target row: ``project_prefix``, ``project_name``, ``dataset``.
        :param version: the curated version (``v0003``).
        :param files: table name -> ``{"key", "sha256", "rows", "bytes"}`` of the version's Parquet files.
        :param log: where progress lines go (the operator's log); the hook's own log by default.
        """
        out = log or self.log
        prefix = validate_project_prefix(str(target["project_prefix"]))
        dataset = path_segment(str(target["dataset"]), "dataset")
        version = path_segment(version, "version")
        validate_bucket(bucket)
        for name, meta in files.items():
            ident(name)  # refuse a bad table name before anything moves
            validate_key(str(meta["key"]), what=f"curated {name} key")
        location = stage_location(self.stage, prefix, dataset, version)
        tag = json.dumps(
            {"app": "trilha", "project": prefix, "dataset": dataset, "version": version}, sort_keys=True
        )
        summary: dict[str, int] = {}
        with (
            tempfile.TemporaryDirectory(prefix="trilha-snowflake-") as tmp,
            closing(self._connect()) as conn,
        ):
            # Autocommit on: each DDL commits by itself anyway, and the DML that must be atomic runs
            # inside an explicit BEGIN ... COMMIT, whatever AUTOCOMMIT the account defaults to.
            self.set_autocommit(conn, True)
            with closing(conn.cursor()) as cur:
                self._run(cur, "session_timezone")
                self._run(cur, "session_query_tag", {"query_tag": tag})
                self._run(
                    cur,
                    "create_stage",
                    {"comment": "Trilha: curated Parquet files on their way into tables"},
                    stage=stage_name(self.stage),
                )
                job = _Job(minio, bucket, prefix, dataset, version, location, Path(tmp), out)
                for name in sorted(files):
                    summary[name] = self._load_table(cur, job, name, files[name])
        out.info("snowflake: %s/%s %s loaded: %s", prefix, dataset, version, summary)
        return summary

    def _load_table(self, cur: Any, job: _Job, name: str, meta: Mapping[str, Any]) -> int:
        import pyarrow.parquet as pq

        started = time.monotonic()
        log, bucket, location = job.log, job.bucket, job.location
        expected = int(meta["rows"])
        local = job.workdir / f"{name}.parquet"
        _download_verified(job.minio, bucket, meta, local)
        plan = plan_table(job.prefix, job.dataset, name, pq.read_schema(local))
        if expected == 0:
            # An empty table changes nothing in a MERGE; a replace with nothing is left to a human.
            log.info("snowflake: %s has no rows; %s left as it is", name, plan.target.text)
            local.unlink()
            return 0
        values = {"project": job.prefix, "version": job.version, "sha256": str(meta["sha256"])}
        self._run(cur, "put", {"local_file": local.as_uri()}, location=location)
        local.unlink()  # the stage holds the bytes now
        self._run(
            cur,
            "create_table",
            {"comment": f"Trilha curated table {name!r} of dataset {job.dataset!r}, project {job.prefix!r}"},
            target=plan.target,
            columns=plan.columns,
        )
        existing = {str(r["name"]).upper() for r in self._run(cur, "describe_table", target=plan.target)}
        for column in plan.columns:
            if column.upper not in existing:
                self._run(cur, "add_column", target=plan.target, column=column)
                log.info(
                    "snowflake: %s: added column %s %s", plan.target.text, column.upper, column.type.text
                )
        self._run(cur, "create_staging", staging=plan.staging, columns=plan.columns)
        copied = self._run(
            cur, "copy_into_staging", {"file": local.name}, staging=plan.staging, location=location
        )
        loaded = sum(int(r.get("rows_loaded") or 0) for r in copied)
        if loaded != expected:
            raise SnowflakeLoadError(
                f"{plan.target.text}: expected {expected} rows from s3://{bucket}/{meta['key']}, COPY loaded "
                f"{loaded} ({copied}); nothing was merged"
            )
        self._run(cur, "begin")
        try:
            if plan.keys is not None:
                result = self._run(
                    cur,
                    "merge",
                    values,
                    target=plan.target,
                    staging=plan.staging,
                    keys=list(plan.keys),
                    updates=plan.updates,
                    columns=plan.column_names,
                )
                inserted = _count(result, "number of rows inserted")
                updated = _count(result, "number of rows updated")
            else:
                self._run(cur, "delete_project_rows", {"project": job.prefix}, target=plan.target)
                result = self._run(
                    cur,
                    "insert_from_staging",
                    values,
                    target=plan.target,
                    staging=plan.staging,
                    columns=plan.column_names,
                )
                inserted, updated = _count(result, "number of rows inserted"), 0
            if inserted + updated != expected:
                raise SnowflakeLoadError(
                    f"{plan.target.text}: expected {expected} rows written, got {inserted} inserted + "
                    f"{updated} updated; rolled back"
                )
            self._run(cur, "commit")
        except BaseException:
            # The transaction is the unit readers see: undo it, then let the error go on.
            self._run(cur, "rollback")
            raise
        self._run(cur, "drop_staging", staging=plan.staging)
        log.info(
            "snowflake: %s -> %s: %s inserted, %s updated (%s) in %.1fs",
            name,
            plan.target.text,
            inserted,
            updated,
            "merge" if plan.keys is not None else "replace",
            time.monotonic() - started,
        )
        return inserted + updated


@dataclass(frozen=True)
class _Job:
    """What every table of one version's load shares."""

    minio: MinioHook
    bucket: str
    prefix: str
    dataset: str
    version: str
    location: Sql
    workdir: Path
    log: _Log


def _count(rows: list[dict[str, Any]], column: str) -> int:
    return sum(int(r.get(column) or 0) for r in rows)


def _download_verified(minio: MinioHook, bucket: str, meta: Mapping[str, Any], path: Path) -> None:
    """Stream one curated object to ``path`` (bounded memory, hashed in the same pass:
    :meth:`MinioHook.download_verified`) and check it is the audited content, size included."""
    key = str(meta["key"])
    try:
        got = minio.download_verified(bucket, key, path, str(meta["sha256"]))
    except IntegrityError as err:
        raise IntegrityError(
            f"{err} (the sha256 of the curated inventory); not loaded into Snowflake"
        ) from None
    expected_size = meta.get("bytes")
    if expected_size is not None and got.size != int(expected_size):
        path.unlink()
        raise IntegrityError(
            f"s3://{bucket}/{key}: expected {expected_size} bytes from the curated inventory, read "
            f"{got.size}; not loaded into Snowflake"
        )


# --------------------------------------------------------------------------------------------------
# The API the curated operator calls
# --------------------------------------------------------------------------------------------------


def snowflake_configured(conn_id: str) -> bool:
    """True when connection ``conn_id`` exists and names an account (``extra.account`` or a host).

    A missing connection, or the placeholder of ``airflow_settings.yaml`` (empty extra), is False:
    the load is optional and off until someone fills the connection in.
    """
    from airflow.sdk.exceptions import AirflowNotFoundException

    if not conn_id:
        return False
    try:
        conn = TrilhaSnowflakeHook.get_connection(conn_id)
    except AirflowNotFoundException:
        return False
    return bool(connection_account(conn))


def load_curated_version(
    conn_id: str,
    minio: MinioHook,
    bucket: str,
    target: dict[str, Any],
    version: str,
    files: dict[str, dict[str, Any]],
    log: _Log,
) -> dict[str, int]:
    """Load one curated version into Snowflake through ``conn_id``; ``{table: rows merged}``.

    See :meth:`TrilhaSnowflakeHook.load_curated_version`.
    """
    hook = TrilhaSnowflakeHook(snowflake_conn_id=conn_id)
    return hook.load_curated_version(minio, bucket, target, version, files, log=log)
