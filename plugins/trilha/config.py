"""Names shared by every part of Trilha: connection ids, default buckets, repository paths.

Nothing here reads a connection or a Variable: values that a deployment changes come from Airflow
Variables at run time (templated into operators), with these as defaults.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

POSTGRES_CONN_ID = "trilha_postgres"
S3_CONN_ID = "trilha_minio"
MONGO_CONN_ID = "trilha_mongo"
GOOGLE_CONN_ID = "trilha_google"
SNOWFLAKE_CONN_ID = "trilha_snowflake"

#: The seeds' bucket names; each can be overridden by the Airflow Variable of the same key.
DEFAULT_BUCKETS = {
    "bucket_reception": "recepcao-raw",
    "bucket_storage": "storage-unique",
    "bucket_staging": "staging-data",
    "bucket_curated": "curated-data",
    "bucket_datasets": "datasets",
}

#: Airflow pool that bounds concurrent S3-heavy tasks.
S3_POOL = "trilha_s3"
MONGO_DATABASE = "trilha"
MONGO_RUN_COLLECTION = "run_log"


def default_buckets() -> dict[str, str]:
    """Bucket names, with ``TRILHA_BUCKET_<NAME>`` environment overrides (used by the local stack)."""
    return {key: os.environ.get("TRILHA_" + key.upper(), value) for key, value in DEFAULT_BUCKETS.items()}


def repo_root() -> Path:
    """The checkout (or image directory) that holds ``dags/``, ``plugins/`` and ``include/``."""
    env = os.environ.get("TRILHA_HOME")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2]


def include_dir() -> Path:
    """``include/`` (contracts, SQL, migrations, samples): the one place that locates it.

    Everything that reads a file under ``include/`` starts from here, so ``TRILHA_HOME`` moves all
    of it at once (the image's ``/opt/airflow``, a checkout elsewhere).
    """
    return repo_root() / "include"


def sql_dir() -> Path:
    """``include/sql``: the queries, the migrations and the Snowflake templates."""
    return include_dir() / "sql"


def s3_connection_extra(endpoint_url: str) -> dict[str, Any]:
    """The ``extra`` of an ``aws`` connection that talks to MinIO or another S3-compatible server.

    The Amazon provider ignores the connection's ``host``: the endpoint must be in
    ``extra.endpoint_url``. Checksums only when required, because S3-compatible servers reject the
    newer default trailers. Path-style addressing is :class:`~trilha.hooks.minio.MinioHook`'s default,
    not set here: Airflow masks every string of an extra, and warns in each task log about ``path``
    (shorter than it masks).
    """
    return {
        "endpoint_url": endpoint_url,
        "region_name": "us-east-1",
        "config_kwargs": {
            "request_checksum_calculation": "when_required",
            "response_checksum_validation": "when_required",
        },
    }
