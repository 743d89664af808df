"""The audit store: PostgreSQL, through the Postgres provider's ``PostgresHook``.

Every statement is a file in ``include/sql/queries/`` with bind parameters only (``%(name)s``);
no value is ever formatted into SQL. Batches travel as arrays (``unnest``), so registering a
thousand objects is one round trip, not a thousand. The hook counts its round trips
(:attr:`AuditHook.round_trips`) so tests and benchmarks can hold that promise.

The first use of the hook in a process brings the database to the current schema
(:func:`trilha.ops.migrate.migrate`), so no one ever runs SQL by hand.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cache, cached_property
from typing import Any

from airflow.providers.postgres.hooks.postgres import PostgresHook

from trilha import config
from trilha.exceptions import ConnectionSetupError
from trilha.ops.migrate import migrate

_MIGRATED: set[str] = set()
_MIGRATE_LOCK = threading.Lock()


@cache
def load_query(name: str) -> str:
    """The text of ``include/sql/queries/<name>.sql`` (read once per process)."""
    return (config.sql_dir() / "queries" / f"{name}.sql").read_text(encoding="utf-8")


class AuditHook(PostgresHook):
    """Batched, transactional writes and reads of the audit tables.

    :param postgres_conn_id: the Postgres connection of the audit store.
    """

    conn_name_attr = "postgres_conn_id"
    default_conn_name = config.POSTGRES_CONN_ID
    conn_type = "postgres"
    hook_name = "Trilha audit store (PostgreSQL)"

    def __init__(self, postgres_conn_id: str = config.POSTGRES_CONN_ID, **kwargs: Any) -> None:
        super().__init__(postgres_conn_id=postgres_conn_id, **kwargs)
        self.round_trips = 0

    @cached_property
    def db(self) -> Any:
        """One DB-API connection per hook, migrated to the current schema on first use."""
        from airflow.sdk.exceptions import AirflowNotFoundException

        conn_id = str(getattr(self, self.conn_name_attr))
        try:
            conn = self.get_conn()
        except AirflowNotFoundException:
            raise ConnectionSetupError(
                f"connection {conn_id!r} is not defined: add it to airflow_settings.yaml or set "
                f"AIRFLOW_CONN_{conn_id.upper()}"
            ) from None
        except Exception as err:
            raise ConnectionSetupError(
                f"connection {conn_id!r}: cannot connect to PostgreSQL ({type(err).__name__}: "
                f"{str(err).strip()[:300]}); check host, port, login and password of the connection"
            ) from err
        conn.autocommit = False  # type: ignore[attr-defined]  # both psycopg2 and psycopg 3 have it
        with _MIGRATE_LOCK:
            if conn_id not in _MIGRATED:
                applied = migrate(conn)
                if applied:
                    self.log.info("audit store migrated: %s", ", ".join(applied))
                _MIGRATED.add(conn_id)
        return conn

    def close(self) -> None:
        if "db" in self.__dict__:
            self.__dict__.pop("db").close()

    # primitives ----------------------------------------------------------------------------------
    def _execute(self, cur: Any, name: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        cur.execute(load_query(name), params)
        self.round_trips += 1
        if cur.description is None:
            return []
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]

    def query(self, name: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Run one named statement in its own transaction and return its rows as dicts."""
        with self.transaction() as tx:
            return tx.run(name, params or {})

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """A transaction: committed when the block ends normally, rolled back on any error."""
        conn = self.db
        cur = conn.cursor()
        try:
            yield Transaction(self, cur)
            conn.commit()
            self.round_trips += 1
        except BaseException:
            conn.rollback()
            raise
        finally:
            cur.close()

    # domain reads --------------------------------------------------------------------------------
    def known_reception(
        self, bucket: str, keys: Sequence[str], etags: Sequence[str]
    ) -> dict[tuple[str, str], dict]:
        rows = self.query("reception_known", {"bucket": bucket, "keys": list(keys), "etags": list(etags)})
        return {(r["object_key"], r["etag"]): r for r in rows}

    def known_source_revisions(
        self, kind: str, refs: Sequence[str], revisions: Sequence[str]
    ) -> set[tuple[str, str]]:
        """Which (source id, revision) pairs were captured before: how exported Google documents,
        which carry no checksum and export to different bytes each time, are recognised."""
        rows = self.query(
            "reception_by_source", {"kind": kind, "refs": list(refs), "revisions": list(revisions)}
        )
        return {(r["source_ref"], r["source_revision"]) for r in rows}

    def known_checksums(self, sha256: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Which of N checksums are already in ``raw.data_files``: one query for the whole batch."""
        rows = self.query("checksums_known", {"sha256": list(sha256)})
        return {r["sha256"]: r for r in rows}

    def get_or_create_project(self, name: str, prefix: str | None, run_id: str | None) -> dict[str, Any]:
        """The project ``name``; created with ``prefix`` if new (``None`` prefix: must exist)."""
        with self.transaction() as tx:
            if prefix is not None:
                tx.run("project_lock", {})
            rows = tx.run("project_get_or_create", {"name": name, "prefix": prefix, "run_id": run_id})
        return rows[0] if rows else {}

    def project_by_prefix(self, prefix: str) -> dict[str, Any] | None:
        rows = self.query("project_by_prefix", {"prefix": prefix})
        return rows[0] if rows else None

    # run log -------------------------------------------------------------------------------------
    def write_audit_log(self, row: dict[str, Any]) -> int:
        params = dict(row)
        params["counters"] = json.dumps(params.get("counters") or {}, default=str)
        params["problems"] = json.dumps(params.get("problems") or [], default=str)
        rows = self.query("audit_log_upsert", params)
        return int(rows[0]["id"])


class Transaction:
    """A cursor inside :meth:`AuditHook.transaction` that runs named statements."""

    def __init__(self, hook: AuditHook, cursor: Any) -> None:
        self.hook = hook
        self.cursor = cursor

    def run(self, name: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        return self.hook._execute(self.cursor, name, params)
