"""Which S3 answers fail a task (the service or the credentials) and which concern one object
(trilha.hooks.s3_admin, the one place that decides it)."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from trilha.hooks.s3_admin import is_missing, is_service_error


def client_error(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "m"}}, "PutObject")


@pytest.mark.parametrize(
    "code", ["InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "NoSuchBucket", "503"]
)
def test_service_and_credential_answers_fail_the_task(code: str) -> None:
    assert is_service_error(client_error(code))
    assert not is_missing(client_error(code))


@pytest.mark.parametrize("code", ["InternalError", "EntityTooLarge", "InvalidArgument", "KeyTooLongError"])
def test_answers_about_one_object_are_per_item(code: str) -> None:
    assert not is_service_error(client_error(code))


def test_only_client_errors_are_classified() -> None:
    assert not is_service_error(ValueError("AccessDenied"))


@pytest.mark.parametrize("code", ["404", "NoSuchKey", "NotFound", "PreconditionFailed"])
def test_a_vanished_or_changed_object_is_missing_and_not_a_service_error(code: str) -> None:
    assert is_missing(client_error(code))
    assert not is_service_error(client_error(code))
