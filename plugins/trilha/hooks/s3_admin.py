"""The one factory of plain boto3 S3 clients, and what S3's error answers mean.

The client is for the shell tools that run without Airflow.

``python -m trilha.ops.devstack`` and ``python -m trilha.ops.bootstrap`` create buckets and check
the S3 server before any Airflow connection exists, so they cannot use
:class:`~trilha.hooks.minio.MinioHook` (importing it imports Airflow: seconds, and a ``logs/`` folder
under ``AIRFLOW_HOME``). This module imports boto3 only, and only when a client is made.

The client is configured like Trilha's ``aws`` connections (:func:`trilha.config.s3_connection_extra`:
region, checksums only when required, which S3-compatible servers need) and addressed path-style,
as ``MinioHook.config`` addresses it.
"""

from __future__ import annotations

from typing import Any

from trilha import config


def s3_client(endpoint_url: str, access_key: str, secret_key: str, *, max_attempts: int = 5) -> Any:
    """A boto3 S3 client for ``endpoint_url`` with these keys, set up like Trilha's connections.

    :param max_attempts: attempts per request (botocore's ``standard`` retry mode).
    """
    import boto3
    from botocore.config import Config

    extra = config.s3_connection_extra(endpoint_url)
    checksums = extra["config_kwargs"]
    return boto3.client(
        "s3",
        endpoint_url=extra["endpoint_url"],
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        region_name=extra["region_name"],
        config=Config(
            s3={"addressing_style": "path"},  # as MinioHook sets it
            request_checksum_calculation=checksums["request_checksum_calculation"],
            response_checksum_validation=checksums["response_checksum_validation"],
            retries={"max_attempts": max_attempts, "mode": "standard"},
        ),
    )


# What S3 answers mean, decided in this one place (MinioHook and bootstrap use it). A HEAD answer has
# no body, so its code is the bare HTTP status ("404"); a GET or a copy names the error ("NoSuchKey").
#: The object is not there.
MISSING_CODES = frozenset({"404", "NoSuchKey", "NotFound"})
#: A conditional request (``CopySourceIfMatch``) on an object that changed since it was recorded: for
#: the caller, the object it recorded is gone as surely as a deleted one.
CHANGED_CODES = frozenset({"PreconditionFailed", "412"})
#: The bucket is not there (HEAD bucket: "404"; a listing: "NoSuchBucket").
NO_BUCKET_CODES = frozenset({"NoSuchBucket", "404", "NotFound"})
#: Answers that concern the service or the credentials, not one object: a task must fail on these
#: (and retry later), not record a failed item and go on to the next object.
SERVICE_ERROR_CODES = frozenset(
    {
        "AccessDenied",
        "AccountProblem",
        "ExpiredToken",
        "InvalidAccessKeyId",
        "InvalidToken",
        "NoSuchBucket",
        "RequestTimeTooSkewed",
        "ServiceUnavailable",
        "SignatureDoesNotMatch",
        "SlowDown",
        "403",
        "503",
    }
)


def error_code(err: BaseException) -> str | None:
    """The S3 error code of a botocore ``ClientError``; ``None`` for any other exception."""
    from botocore.exceptions import ClientError

    if not isinstance(err, ClientError):
        return None
    return str(err.response.get("Error", {}).get("Code", ""))


def is_missing(err: BaseException) -> bool:
    """A 404 (or failed precondition) from S3: the object vanished or changed, a per-item problem,
    unlike an unreachable endpoint or refused credentials."""
    return error_code(err) in MISSING_CODES | CHANGED_CODES


def is_service_error(err: BaseException) -> bool:
    """An S3 ``ClientError`` about the service or the credentials (see ``SERVICE_ERROR_CODES``)."""
    return error_code(err) in SERVICE_ERROR_CODES
