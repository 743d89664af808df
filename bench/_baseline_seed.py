"""The seed-style baseline for ``bench/ingest.py``: what the original notebooks did, by hand.

Plain boto3 + psycopg2 on purpose (that is the point of a baseline), one object and one commit at a
time, in its own schema ``bench_seed`` so that it never touches Trilha's tables:

* ingestion (the notebooks' ``ingest_raw.py`` + ``reception_audit``): every landing file is sent
  with ``put_object`` (what ``mc cp`` of the folder does), then, for every object listed in the
  reception bucket, the object is downloaded to a temporary file, hashed (sha256), and recorded with
  an ``INSERT ... ON CONFLICT (checksum) DO NOTHING`` into ``data_files`` plus an ``INSERT`` into
  ``reception_audit``, and committed, per file;
* promotion (the notebooks' "verificação dupla"): select or create the project, then, for every object of
  the reception bucket: ``SELECT`` the ``storage_audit`` row for its destination path, ``HEAD`` the
  destination object, and when either is missing ``copy_object`` (``CopySource``) + ``INSERT`` into
  ``storage_audit`` + commit.

A no-change re-run repeats the same steps: ``mc cp`` re-sends the folder and the ingest script
downloads and hashes every object again (it has no way to know it saw them before without reading
them); the promotion re-run skips the copies through its double check.

Every ``cursor.execute`` and every ``commit`` counts as one SQL round trip, like Trilha's
``AuditHook.round_trips``.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

SCHEMA = "bench_seed"

DDL = f"""
DROP SCHEMA IF EXISTS {SCHEMA} CASCADE;
CREATE SCHEMA {SCHEMA};
CREATE TABLE {SCHEMA}.data_files (
    id               SERIAL PRIMARY KEY,
    file_name        TEXT,
    checksum         TEXT UNIQUE,
    ingest_timestamp TIMESTAMP DEFAULT now(),
    object_path      TEXT
);
CREATE TABLE {SCHEMA}.reception_audit (
    id          SERIAL PRIMARY KEY,
    bucket      TEXT,
    file_name   TEXT,
    object_path TEXT,
    uploaded_at TIMESTAMPTZ,
    size_bytes  BIGINT,
    recorded_at TIMESTAMPTZ DEFAULT now()
);
CREATE TABLE {SCHEMA}.projects_registry (
    id         SERIAL PRIMARY KEY,
    name       TEXT UNIQUE,
    prefix     TEXT UNIQUE,
    created_at TIMESTAMPTZ DEFAULT now()
);
CREATE TABLE {SCHEMA}.storage_audit (
    id             SERIAL PRIMARY KEY,
    project_prefix TEXT,
    project_name   TEXT,
    dest_path      TEXT,
    size_bytes     BIGINT,
    moved_at       TIMESTAMPTZ DEFAULT now(),
    source_bucket  TEXT
);
"""


class CountingDb:
    """A psycopg2 connection whose ``execute`` and ``commit`` calls are counted as round trips."""

    def __init__(self, dsn: str) -> None:
        import psycopg2

        self.conn = psycopg2.connect(dsn)
        self.cur = self.conn.cursor()
        self.round_trips = 0

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        self.cur.execute(sql, params)
        self.round_trips += 1
        return self.cur.fetchall() if self.cur.description else []

    def commit(self) -> None:
        self.conn.commit()
        self.round_trips += 1

    def close(self) -> None:
        self.cur.close()
        self.conn.close()


def setup_schema(dsn: str) -> None:
    """(Re)create the baseline's own tables in schema ``bench_seed``."""
    import psycopg2

    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute(DDL)
        conn.commit()
    finally:
        conn.close()


def _list_keys(client: Any, bucket: str, prefix: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        out.extend(page.get("Contents", []))
    return out


def ingest(client: Any, dsn: str, landing_dir: Path, bucket: str, prefix: str) -> dict[str, Any]:
    """``mc cp`` of the landing folder, then the notebooks' ingest script (above) over the bucket."""
    db = CountingDb(dsn)
    uploaded = downloaded = 0
    try:
        for path in sorted(landing_dir.iterdir()):
            if path.is_file():
                with open(path, "rb") as fh:
                    client.put_object(Bucket=bucket, Key=f"{prefix}/{path.name}", Body=fh)
                uploaded += 1
        tmpdir = tempfile.mkdtemp(prefix="seed-ingest-")
        for obj in _list_keys(client, bucket, f"{prefix}/"):
            key = obj["Key"]
            local = os.path.join(tmpdir, os.path.basename(key))
            client.download_file(bucket, key, local)
            sha = hashlib.sha256()
            with open(local, "rb") as fh:
                for chunk in iter(lambda fh=fh: fh.read(1024 * 1024), b""):
                    sha.update(chunk)
            os.remove(local)
            downloaded += 1
            db.execute(
                f"INSERT INTO {SCHEMA}.data_files (file_name, checksum, object_path) VALUES (%s, %s, %s) "
                "ON CONFLICT (checksum) DO NOTHING",
                (os.path.basename(key), sha.hexdigest(), f"{bucket}/{key}"),
            )
            db.execute(
                f"INSERT INTO {SCHEMA}.reception_audit (bucket, file_name, object_path, uploaded_at, "
                "size_bytes) VALUES (%s, %s, %s, %s, %s)",
                (bucket, os.path.basename(key), key, obj["LastModified"], int(obj["Size"])),
            )
            db.commit()
        os.rmdir(tmpdir)
    finally:
        db.close()
    return {"uploaded": uploaded, "hashed": downloaded, "round_trips": db.round_trips}


def promote(
    client: Any, dsn: str, src_bucket: str, dst_bucket: str, project: str, prefix: str
) -> dict[str, Any]:
    """The promotion cell: select or create the project, then the per-object double check and copy."""
    from botocore.exceptions import ClientError

    db = CountingDb(dsn)
    copied = skipped = 0
    try:
        rows = db.execute(f"SELECT name, prefix FROM {SCHEMA}.projects_registry WHERE name = %s", (project,))
        if not rows:
            db.execute(
                f"INSERT INTO {SCHEMA}.projects_registry (name, prefix) VALUES (%s, %s)", (project, prefix)
            )
            db.commit()
        for obj in _list_keys(client, src_bucket, f"{prefix}/"):
            key = obj["Key"]
            dest = f"{prefix}/{os.path.basename(key)}"
            in_audit = bool(db.execute(f"SELECT 1 FROM {SCHEMA}.storage_audit WHERE dest_path = %s", (dest,)))
            try:
                client.head_object(Bucket=dst_bucket, Key=dest)
                present = True
            except ClientError:
                present = False
            if in_audit and present:
                skipped += 1
                continue
            client.copy_object(Bucket=dst_bucket, Key=dest, CopySource={"Bucket": src_bucket, "Key": key})
            db.execute(
                f"INSERT INTO {SCHEMA}.storage_audit (project_prefix, project_name, dest_path, size_bytes, "
                "source_bucket) VALUES (%s, %s, %s, %s, %s)",
                (prefix, project, dest, int(obj["Size"]), src_bucket),
            )
            db.commit()
            copied += 1
    finally:
        db.close()
    return {"copied": copied, "skipped": skipped, "round_trips": db.round_trips}
