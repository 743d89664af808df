"""``python -m trilha.ops.migrate --dsn postgresql://... [--dir DIR]``: apply the audit schema's migrations.

The runner is :mod:`trilha.hooks.migrations`; this is its command line, used by ``make up``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from trilha.exceptions import MigrationError
from trilha.hooks.migrations import migrate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m trilha.ops.migrate", description="Apply schema migrations."
    )
    parser.add_argument("--dsn", required=True, help="postgresql://user:password@host:port/db")
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args(argv)
    import psycopg2

    conn = psycopg2.connect(args.dsn)
    try:
        applied = migrate(conn, args.dir)
    except MigrationError as err:
        print(f"migration failed: {err}", file=sys.stderr)
        return 1
    finally:
        conn.close()
    print("applied: " + (", ".join(applied) if applied else "nothing (schema is current)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
