"""trilha.ops.migrate against the real PostgreSQL of the local stack.

Each test gets a fresh, randomly named DATABASE on the stack's server (dropped afterwards), so the
session's migrated schema is never touched and every test starts from nothing.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg2
import pytest

from trilha.exceptions import MigrationError
from trilha.hooks.migrations import LOCK_KEY, discover, migrate, migrations_dir

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def _dsn_for(dsn: str, database: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path=f"/{database}"))


@pytest.fixture
def fresh_dsn(stack: Any) -> Iterator[str]:
    """The DSN of a new, empty database on the stack's server; dropped (forcibly) at the end."""
    name = f"trilha_mig_{uuid.uuid4().hex[:12]}"
    admin = psycopg2.connect(_dsn_for(stack.postgres_dsn(), "postgres"))
    admin.autocommit = True
    try:
        with admin.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')  # a generated identifier, not user input
        yield _dsn_for(stack.postgres_dsn(), name)
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture
def conn(fresh_dsn: str) -> Iterator[Any]:
    connection = psycopg2.connect(fresh_dsn)
    try:
        yield connection
    finally:
        connection.close()


def rows(conn: Any, sql: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
    with conn.cursor() as cur:
        cur.execute(sql, params)
        result = cur.fetchall()
    conn.rollback()
    return result


def recorded(conn: Any) -> list[tuple[Any, ...]]:
    return rows(
        conn, "SELECT version, name, checksum, applied_at FROM meta.schema_migrations ORDER BY version"
    )


def table_exists(conn: Any, name: str) -> bool:
    return bool(rows(conn, "SELECT to_regclass(%(n)s) IS NOT NULL", {"n": name})[0][0])


def write_migrations(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, sql in files.items():
        (directory / name).write_text(sql, encoding="utf-8")
    return directory


def lock_is_free(dsn: str) -> bool:
    """True if another session can take the migrators' advisory lock (then releases it)."""
    other = psycopg2.connect(dsn)
    try:
        with other.cursor() as cur:
            cur.execute("SELECT pg_try_advisory_lock(%(k)s)", {"k": LOCK_KEY})
            got = bool(cur.fetchone()[0])
            if got:
                cur.execute("SELECT pg_advisory_unlock(%(k)s)", {"k": LOCK_KEY})
        return got
    finally:
        other.close()


# --------------------------------------------------------------------------------------------------


def test_fresh_database_is_brought_to_the_current_schema(conn: Any) -> None:
    files = [m.path.name for m in discover()]
    assert files, "no migrations found in include/sql/migrations"
    assert migrate(conn) == files
    recs = recorded(conn)
    assert [(v, n) for v, n, _, _ in recs] == [(m.version, m.name) for m in discover()]
    assert [c for _, _, c, _ in recs] == [m.checksum for m in discover()]
    # The seeds' tables exist (a sample of what 001 creates).
    for table in (
        "raw.data_files",
        "meta.audit_log",
        "projects_registry",
        "reception_audit",
        "storage_audit",
    ):
        assert table_exists(conn, table), table
    # The connection is left usable and not inside a transaction holding the lock.
    assert conn.status == psycopg2.extensions.STATUS_READY
    assert rows(conn, "SELECT 1") == [(1,)]


def test_applied_twice_changes_nothing_the_second_time(conn: Any) -> None:
    first = migrate(conn)
    assert first == [m.path.name for m in discover()]
    before = recorded(conn)
    assert migrate(conn) == []
    assert recorded(conn) == before  # same rows, same applied_at: nothing re-applied


def test_two_processes_at_once_apply_each_migration_exactly_once(fresh_dsn: str, tmp_path: Path) -> None:
    """Two real ``python -m trilha.ops.migrate`` processes on a fresh database at the same moment.

    001 sleeps inside its transaction, so the second process certainly arrives while the first holds
    the lock. Without the lock the second would run 001's CREATE TABLE too and fail on it (or on the
    schema_migrations primary key), and exit 1.
    """
    directory = write_migrations(
        tmp_path / "migrations",
        {
            "001_slow_start.sql": "CREATE TABLE race_a (id int PRIMARY KEY); SELECT pg_sleep(1.5);",
            "002_second.sql": "CREATE TABLE race_b (id int PRIMARY KEY); INSERT INTO race_b VALUES (1);",
            "003_third.sql": "ALTER TABLE race_b ADD COLUMN note text;",
        },
    )
    cmd = [sys.executable, "-m", "trilha.ops.migrate", "--dsn", fresh_dsn, "--dir", str(directory)]
    procs = [
        subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
        for _ in range(2)
    ]
    outs = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        outs.append((proc.returncode, out, err))
    for code, out, err in outs:
        assert code == 0, f"exit {code}: {out}\n{err}"
    applied = [out.strip() for _, out, _ in outs]
    # Exactly one process applied the three; the other found the schema current once it got the lock.
    assert sorted(applied) == [
        "applied: 001_slow_start.sql, 002_second.sql, 003_third.sql",
        "applied: nothing (schema is current)",
    ]
    check = psycopg2.connect(fresh_dsn)
    try:
        assert [(v, n) for v, n, _, _ in recorded(check)] == [(1, "slow_start"), (2, "second"), (3, "third")]
        assert rows(check, "SELECT id, note FROM race_b") == [(1, None)]  # 002's insert ran once
    finally:
        check.close()
    assert lock_is_free(fresh_dsn)


def test_real_migrations_from_two_processes(fresh_dsn: str) -> None:
    cmd = [sys.executable, "-m", "trilha.ops.migrate", "--dsn", fresh_dsn]
    procs = [
        subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
        for _ in range(2)
    ]
    results = [(p.wait(timeout=120), p.communicate()) for p in procs]
    assert [code for code, _ in results] == [0, 0], results
    names = [m.path.name for m in discover()]
    outputs = sorted(out.strip() for _, (out, _) in results)
    assert outputs == sorted([f"applied: {', '.join(names)}", "applied: nothing (schema is current)"])
    check = psycopg2.connect(fresh_dsn)
    try:
        versions = [v for v, _, _, _ in recorded(check)]
        assert versions == [m.version for m in discover()]
    finally:
        check.close()


def test_failing_migration_rolls_back_and_names_the_file(conn: Any, fresh_dsn: str, tmp_path: Path) -> None:
    directory = write_migrations(
        tmp_path / "migrations",
        {
            "001_ok.sql": "CREATE SCHEMA mig; CREATE TABLE mig.ok_table (id int);",
            "002_broken.sql": (
                "CREATE TABLE mig.half_done (id int);\n"
                "INSERT INTO mig.half_done VALUES (1);\n"
                "SELEC broken syntax;\n"
            ),
        },
    )
    with pytest.raises(MigrationError, match=r"^002_broken\.sql: SyntaxError: .*SELEC"):
        migrate(conn, directory)
    assert table_exists(conn, "mig.ok_table")
    assert not table_exists(conn, "mig.half_done")  # 002's DDL rolled back with it
    assert [(v, n) for v, n, _, _ in recorded(conn)] == [(1, "ok")]
    # The advisory lock was released although the migration failed.
    assert lock_is_free(fresh_dsn)
    assert rows(conn, "SELECT 1") == [(1,)]

    # Fix the file: the next run applies only what is missing.
    (directory / "002_broken.sql").write_text("CREATE TABLE mig.half_done (id int);")
    assert migrate(conn, directory) == ["002_broken.sql"]
    assert table_exists(conn, "mig.half_done")
    assert [v for v, _, _, _ in recorded(conn)] == [1, 2]


def test_changed_checksum_of_an_applied_migration_is_refused(conn: Any, tmp_path: Path) -> None:
    directory = write_migrations(tmp_path / "migrations", {"001_base.sql": "CREATE TABLE base_t (id int);"})
    assert migrate(conn, directory) == ["001_base.sql"]
    before = recorded(conn)
    (directory / "001_base.sql").write_text("CREATE TABLE base_t (id bigint);")
    with pytest.raises(
        MigrationError, match=r"^001_base\.sql: already applied with checksum .*must not change"
    ):
        migrate(conn, directory)
    # Also when a new migration is waiting: nothing after the edited file is applied.
    (directory / "002_next.sql").write_text("CREATE TABLE next_t (id int);")
    with pytest.raises(MigrationError, match=r"^001_base\.sql: already applied"):
        migrate(conn, directory)
    assert not table_exists(conn, "next_t")
    assert recorded(conn) == before


@pytest.mark.parametrize(
    ("files", "match"),
    [
        ({"001_ok.sql": "SELECT 1;", "2_short.sql": "SELECT 1;"}, r"2_short\.sql: expected a name like 001_"),
        ({"001_ok.sql": "SELECT 1;", "002-Dash.sql": "SELECT 1;"}, r"002-Dash\.sql: expected a name like"),
        ({"001_ok.sql": "SELECT 1;", "002_Upper.sql": "SELECT 1;"}, r"002_Upper\.sql: expected a name like"),
        (
            {"001_a.sql": "SELECT 1;", "001_b.sql": "SELECT 1;"},
            r"001_b\.sql: version 001 is also used by 001_a\.sql",
        ),
    ],
)
def test_misnamed_or_duplicate_files_are_errors_before_touching_the_database(
    conn: Any, tmp_path: Path, files: dict[str, str], match: str
) -> None:
    directory = write_migrations(tmp_path / "migrations", files)
    with pytest.raises(MigrationError, match=match):
        migrate(conn, directory)
    assert not table_exists(conn, "meta.schema_migrations")


def test_cli_reports_failure_with_exit_code(fresh_dsn: str, tmp_path: Path) -> None:
    directory = write_migrations(tmp_path / "migrations", {"001_bad.sql": "CREATE TABLE x (;"})
    res = subprocess.run(
        [sys.executable, "-m", "trilha.ops.migrate", "--dsn", fresh_dsn, "--dir", str(directory)],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
        timeout=120,
    )
    assert res.returncode == 1
    assert res.stderr.startswith("migration failed: 001_bad.sql: SyntaxError")


def test_default_directory_is_the_repository_migrations() -> None:
    assert migrations_dir() == REPO / "include" / "sql" / "migrations"
    assert [m.path.parent for m in discover()] == [migrations_dir()] * len(discover())


def test_comments_of_an_applied_migration_may_change_its_statements_may_not(
    conn: Any, tmp_path: Path
) -> None:
    directory = write_migrations(
        tmp_path / "migrations",
        {"001_base.sql": "-- 001: the base table (see the design notes).\nCREATE TABLE cmt_t (id int);\n"},
    )
    assert migrate(conn, directory) == ["001_base.sql"]
    (directory / "001_base.sql").write_text(
        "-- 001: the base table (docs/data-model.md).\n\n   -- indented, too\n"
        "CREATE TABLE cmt_t (id int);  \n"
    )
    assert migrate(conn, directory) == []
    # A comment on a statement's own line is part of the statement.
    (directory / "001_base.sql").write_text("CREATE TABLE cmt_t (id int); -- now bigint?\n")
    with pytest.raises(MigrationError, match=r"^001_base\.sql: already applied"):
        migrate(conn, directory)


def test_a_database_migrated_when_whole_files_were_checksummed_keeps_working(
    conn: Any, tmp_path: Path
) -> None:
    """Before comments stopped counting, meta.schema_migrations held the sha256 of the whole file: an
    unchanged file, or 001 as it was before its comment changed, is recognised and re-checksummed."""
    import hashlib

    from trilha.hooks import migrations as mig

    text = "-- 001: the audit data model (an outside document).\nCREATE TABLE old_t (id int);\n"
    directory = write_migrations(tmp_path / "migrations", {"001_base.sql": text})
    assert migrate(conn, directory) == ["001_base.sql"]
    whole_file = hashlib.sha256(text.encode()).hexdigest()
    with conn.cursor() as cur:
        cur.execute("UPDATE meta.schema_migrations SET checksum = %(c)s WHERE version = 1", {"c": whole_file})
    conn.commit()
    assert migrate(conn, directory) == []  # the whole-file checksum of the unchanged file
    [(_, _, stored, _)] = recorded(conn)
    assert stored == discover(directory)[0].checksum != whole_file

    # The same, after the comment changed: accepted only through the recorded earlier checksums.
    with conn.cursor() as cur:
        cur.execute("UPDATE meta.schema_migrations SET checksum = %(c)s WHERE version = 1", {"c": whole_file})
    conn.commit()
    (directory / "001_base.sql").write_text("-- 001: docs/data-model.md\nCREATE TABLE old_t (id int);\n")
    with pytest.raises(MigrationError, match="must not change"):
        migrate(conn, directory)
    earlier = dict(mig.EARLIER_FILE_CHECKSUMS)
    try:
        mig.EARLIER_FILE_CHECKSUMS[1] = frozenset({whole_file})
        assert migrate(conn, directory) == []
    finally:
        mig.EARLIER_FILE_CHECKSUMS.clear()
        mig.EARLIER_FILE_CHECKSUMS.update(earlier)
    assert recorded(conn)[0][2] == discover(directory)[0].checksum


def test_the_recorded_earlier_checksum_of_001_is_its_old_text() -> None:
    """001 changed only in its first comment line; the old text's checksum is what databases hold."""
    import hashlib

    from trilha.hooks import migrations as mig

    [first] = [m for m in discover() if m.version == 1]
    old = first.sql.replace(
        "-- 001: the audit data model (docs/data-model.md).\n",
        '-- 001: the audit data model (PRODUCT.md "Audit data model").\n',
    )
    assert old != first.sql
    assert hashlib.sha256(old.encode()).hexdigest() in mig.EARLIER_FILE_CHECKSUMS[1]
    assert mig.statements(old) == mig.statements(first.sql)  # the statements are the same
