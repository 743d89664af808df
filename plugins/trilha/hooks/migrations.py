"""Versioned schema migrations for the audit database.

Migrations are the files ``include/sql/migrations/NNN_<name>.sql``. Each is applied once, in order,
inside its own transaction, and recorded in ``meta.schema_migrations`` with its checksum. The checksum
covers the statements, not the comments: a file's full-line ``--`` comments and blank lines may be
edited after it was applied (see :func:`statements`). A session-level advisory lock serialises
concurrent migrators, so two DAG runs starting on a fresh database at the same moment apply each
migration exactly once. A failing migration rolls back
entirely (its DDL too, since PostgreSQL DDL is transactional) and the error names the file.

Nobody runs SQL by hand: :func:`migrate` runs explicitly, at the start of every task
(:meth:`trilha.hooks.audit.AuditHook.ensure_schema`), from ``python -m trilha.ops.migrate`` (the local
stack's ``make up``) and from the compose init step. When the schema is current it costs one query.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trilha import config
from trilha.exceptions import MigrationError

log = logging.getLogger(__name__)

MIGRATION_RE = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")
#: Arbitrary, fixed: the advisory lock every Trilha migrator takes.
LOCK_KEY = 0x7472_696C_6861  # "trilha"

_CREATE_TABLE = """
CREATE SCHEMA IF NOT EXISTS meta;
CREATE TABLE IF NOT EXISTS meta.schema_migrations (
    version     INTEGER     PRIMARY KEY,
    name        TEXT        NOT NULL,
    checksum    CHAR(64)    NOT NULL,
    applied_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
"""
_APPLIED = "SELECT version, checksum FROM meta.schema_migrations ORDER BY version"
_RECORD = (
    "INSERT INTO meta.schema_migrations (version, name, checksum) "
    "VALUES (%(version)s, %(name)s, %(checksum)s)"
)
_EXISTS = "SELECT to_regclass('meta.schema_migrations') IS NOT NULL"
_RECHECKSUM = "UPDATE meta.schema_migrations SET checksum = %(checksum)s WHERE version = %(version)s"

#: Checksums a database may hold for a migration whose comments changed since it was applied: those of
#: the whole file, as Trilha recorded them before comments stopped counting. A stored checksum found
#: here (or equal to the current file's) is rewritten to the statements' checksum under the lock.
EARLIER_FILE_CHECKSUMS: dict[int, frozenset[str]] = {
    # 001's first line named a document outside the repository.
    1: frozenset({"cbc69488ded798370544f814acbe874ff3676dd03a76304f1f02051560204c4a"}),
}


def statements(sql: str) -> str:
    """``sql`` without its full-line ``--`` comments, blank lines and trailing spaces: what a
    migration's checksum covers. A comment at the end of a statement's line stays part of it."""
    lines = (line.rstrip() for line in sql.splitlines())
    return "\n".join(line for line in lines if line and not line.lstrip().startswith("--"))


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path
    sql: str
    #: sha256 of :func:`statements`: what ``meta.schema_migrations`` records.
    checksum: str

    def recorded_before(self, stored: str) -> bool:
        """Whether ``stored`` is a whole-file checksum that an earlier Trilha recorded for this very
        migration (the current file, or an earlier text that differs only in comments)."""
        return stored == _sha256(self.sql) or stored in EARLIER_FILE_CHECKSUMS.get(self.version, ())


def migrations_dir() -> Path:
    return config.sql_dir() / "migrations"


def discover(directory: Path | None = None) -> list[Migration]:
    """The migrations in ``directory``, in version order; misnamed or duplicate files are errors."""
    directory = directory or migrations_dir()
    found: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = MIGRATION_RE.match(path.name)
        if not match:
            raise MigrationError(f"{path}: expected a name like 001_create_tables.sql")
        version = int(match.group(1))
        if version in found:
            raise MigrationError(f"{path}: version {version:03d} is also used by {found[version].path.name}")
        sql = path.read_text(encoding="utf-8")
        found[version] = Migration(version, match.group(2), path, sql, _sha256(statements(sql)))
    return [found[v] for v in sorted(found)]


def _is_current(conn: Any, migrations: list[Migration]) -> bool:
    """True when every migration file is applied with its checksum (the fast path, no lock).

    Comparing checksums here, not only the latest version, is what catches an edited migration when
    nothing new is pending: the locked path then raises :class:`MigrationError` for it.
    """
    with conn.cursor() as cur:
        cur.execute(_EXISTS)
        exists = bool(cur.fetchone()[0])
        applied: dict[int, str] = {}
        if exists:
            cur.execute(_APPLIED)
            applied = {int(v): c for v, c in cur.fetchall()}
    conn.rollback()
    return exists and all(applied.get(m.version) == m.checksum for m in migrations)


def migrate(conn: Any, directory: Path | None = None) -> list[str]:
    """Bring the database behind the DB-API connection ``conn`` to the latest schema.

    :param conn: a psycopg2 connection (not in autocommit). It is left usable afterwards.
    :param directory: where the migration files are; default ``include/sql/migrations``.
    :return: the file names applied by this call (empty when the schema was already current).
    """
    migrations = discover(directory)
    if not migrations:
        return []
    if _is_current(conn, migrations):
        return []
    applied_now: list[str] = []
    with conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_lock(%(key)s)", {"key": LOCK_KEY})
        conn.commit()
        try:
            cur.execute(_CREATE_TABLE)
            conn.commit()
            cur.execute(_APPLIED)
            applied = {int(v): c for v, c in cur.fetchall()}
            conn.commit()
            for mig in migrations:
                if mig.version in applied:
                    if applied[mig.version] != mig.checksum and mig.recorded_before(applied[mig.version]):
                        cur.execute(_RECHECKSUM, {"version": mig.version, "checksum": mig.checksum})
                        conn.commit()
                        log.info("migration %s: checksum now covers its statements only", mig.path.name)
                    elif applied[mig.version] != mig.checksum:
                        raise MigrationError(
                            f"{mig.path.name}: already applied with checksum {applied[mig.version][:12]}, "
                            f"but the file now has {mig.checksum[:12]}; applied migrations must not change, "
                            "add a new one instead"
                        )
                    continue
                try:
                    cur.execute(mig.sql)
                    cur.execute(_RECORD, {"version": mig.version, "name": mig.name, "checksum": mig.checksum})
                    conn.commit()
                except Exception as err:
                    conn.rollback()
                    raise MigrationError(f"{mig.path.name}: {type(err).__name__}: {err}".strip()) from err
                log.info("applied migration %s", mig.path.name)
                applied_now.append(mig.path.name)
        finally:
            # The lock is session-level: release it whatever happened, in a clean transaction.
            conn.rollback()
            cur.execute("SELECT pg_advisory_unlock(%(key)s)", {"key": LOCK_KEY})
            conn.commit()
    return applied_now
