"""MinioHook against the real rclone S3 server of the session stack, plus the run log against real mongod.

Small thresholds (5 MiB, S3's minimum part size) make the multipart paths run on small objects.

rclone's S3 server does not implement ``UploadPartCopy``, so the >5 GiB multipart *copy* path is tested
against a moto server started as a real process for this module (``python -m moto.server`` from the
virtualenv on a free port, stopped at the end), with ``max_single_copy`` and ``copy_part_size`` lowered
to 5 MiB so that a 12 MiB object is copied in three ranged parts.
"""

from __future__ import annotations

import hashlib
import inspect
import io
import json
import logging
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from trilha import config
from trilha.domain.digest import Digest, digest_bytes
from trilha.exceptions import ConnectionSetupError, IntegrityError, InvalidKeyError, ObjectMissingError
from trilha.hooks.minio import SHA256_META, MinioHook
from trilha.hooks.runlog import RunLogHook
from trilha.ops.devstack import free_port, port_open

pytestmark = pytest.mark.integration

MIB = 1024 * 1024


def data_of(size: int, seed: int) -> bytes:
    """Deterministic bytes that differ per seed (and within themselves)."""
    block = b"".join(hashlib.sha256(f"{seed}:{i}".encode()).digest() for i in range(2048))  # 64 KiB
    return (block * (size // len(block) + 1))[:size]


@pytest.fixture
def bucket(stack: Any) -> Iterator[str]:
    """A bucket of its own per test on the session's rclone server, emptied and removed after."""
    name = f"trilha-test-{uuid.uuid4().hex[:12]}"
    client = stack.s3_client()
    client.create_bucket(Bucket=name)
    yield name
    for upload in in_progress_uploads(client, name):
        client.abort_multipart_upload(Bucket=name, Key=upload["Key"], UploadId=upload["UploadId"])
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=name):
        for item in page.get("Contents", []):
            client.delete_object(Bucket=name, Key=item["Key"])
    try:
        client.delete_bucket(Bucket=name)
    except ClientError as err:
        # rclone keeps the empty directory an aborted multipart upload created, invisible to listings
        # but enough to refuse DeleteBucket. Only empty directories may remain: check, then remove.
        if err.response.get("Error", {}).get("Code") != "BucketNotEmpty":
            raise
        root = Path(stack.state["s3"]["data_dir"]) / name
        leftovers = [p for p in root.rglob("*") if not p.is_dir()]
        assert leftovers == [], f"files left in {root} after the test: {leftovers}"
        shutil.rmtree(root)


@pytest.fixture
def hook(stack: Any) -> MinioHook:
    return MinioHook(multipart_threshold=5 * MIB, part_size=5 * MIB)


def all_keys(hook: MinioHook, bucket: str) -> list[str]:
    return sorted(o.key for o in hook.iter_objects(bucket))


def in_progress_uploads(client: Any, bucket: str) -> list[dict[str, Any]]:
    """Multipart uploads in progress in ``bucket``.

    rclone's S3 server answers ``NoSuchUpload`` to the listing of a bucket that never had an upload
    in progress; that answer means "none".
    """
    try:
        return list(client.list_multipart_uploads(Bucket=bucket).get("Uploads", []))
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") == "NoSuchUpload":
            return []
        raise


def count_calls(hook: MinioHook, operation: str) -> list[dict[str, Any]]:
    """Record the API parameters of every ``operation`` call the hook's client makes."""
    calls: list[dict[str, Any]] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        calls.append(dict(params))

    hook.get_conn().meta.events.register(f"provide-client-params.s3.{operation}", record)
    return calls


class FailingStream:
    """Yields ``good`` bytes, then fails like a dropped network source."""

    def __init__(self, good: bytes) -> None:
        self._inner = io.BytesIO(good)

    def read(self, n: int = -1) -> bytes:
        data = self._inner.read(n)
        if not data:
            raise OSError("source connection reset")
        return data


# --------------------------------------------------------------------------------------------------
# uploads


@pytest.mark.parametrize("with_expected", [False, True], ids=["unannounced", "expected"])
def test_small_upload_is_hashed_and_carries_its_sha256(
    hook: MinioHook, bucket: str, with_expected: bool
) -> None:
    data = data_of(100_000, seed=1)
    want = digest_bytes(data)
    result = hook.upload_stream(
        bucket,
        "inmet/a b/São Paulo.csv",
        io.BytesIO(data),
        expected=want if with_expected else None,
        metadata={"source": "test"},
        content_type="text/csv",
    )
    assert result.digest == want
    assert result.etag == want.md5  # a single PUT: the server's ETag is the md5 of what it stored
    info = hook.stat(bucket, "inmet/a b/São Paulo.csv")
    assert info is not None
    assert (info.size, info.sha256, info.md5_etag) == (len(data), want.sha256, want.md5)
    assert info.metadata is not None
    assert info.metadata.get("source", info.metadata.get("Source")) == "test"
    assert hook.get_verified(bucket, "inmet/a b/São Paulo.csv", want.sha256) == data
    assert hook.digest_object(bucket, "inmet/a b/São Paulo.csv") == want


def test_get_verified_returns_the_recorded_content_and_names_what_differs(
    hook: MinioHook, bucket: str
) -> None:
    """A read checked against a recorded sha256: the bytes when they match (also across chunks),
    an IntegrityError naming both digests when the object was changed, and an ObjectMissingError
    (not a botocore traceback) when it is gone."""
    data = data_of(9 * MIB + 7, seed=9)  # more than one 8 MiB download chunk
    hook.upload_stream(bucket, "parts/a.parquet", io.BytesIO(data))
    assert hook.get_verified(bucket, "parts/a.parquet", digest_bytes(data).sha256) == data

    recorded = digest_bytes(b"what the audit saw").sha256
    with pytest.raises(IntegrityError) as changed:
        hook.get_verified(bucket, "parts/a.parquet", recorded)
    assert str(changed.value) == (
        f"s3://{bucket}/parts/a.parquet: expected sha256 {recorded}, got {digest_bytes(data).sha256}"
    )
    with pytest.raises(ObjectMissingError) as missing:
        hook.get_verified(bucket, "parts/gone.parquet", recorded)
    assert str(missing.value) == f"s3://{bucket}/parts/gone.parquet: no such object"


@pytest.mark.parametrize("with_expected", [False, True], ids=["unannounced", "expected"])
def test_multipart_upload_is_complete_verified_and_leaves_no_partial(
    hook: MinioHook, bucket: str, with_expected: bool
) -> None:
    data = data_of(12 * MIB + 3, seed=2)
    want = digest_bytes(data)
    parts = count_calls(hook, "UploadPart")
    result = hook.upload_stream(
        bucket, "big/object.bin", io.BytesIO(data), expected=want if with_expected else None
    )
    assert result.digest == want
    assert [p["PartNumber"] for p in parts] == [1, 2, 3]
    assert [len(p["Body"]) for p in parts] == [5 * MIB, 5 * MIB, 2 * MIB + 3]
    info = hook.stat(bucket, "big/object.bin")
    assert info is not None
    assert (info.size, info.sha256) == (len(data), want.sha256)
    assert hook.digest_object(bucket, "big/object.bin") == want
    assert all_keys(hook, bucket) == ["big/object.bin"]  # no '.trilha-partial-' key left
    assert in_progress_uploads(hook.get_conn(), bucket) == []


def test_exact_threshold_goes_multipart_and_empty_goes_single(hook: MinioHook, bucket: str) -> None:
    parts = count_calls(hook, "UploadPart")
    exact = data_of(5 * MIB, seed=3)
    assert hook.upload_stream(bucket, "exact", io.BytesIO(exact)).digest == digest_bytes(exact)
    assert len(parts) == 1
    empty = hook.upload_stream(bucket, "empty", io.BytesIO(b""))
    assert empty.digest == digest_bytes(b"")
    assert len(parts) == 1
    info = hook.stat(bucket, "empty")
    assert info is not None
    assert info.size == 0
    assert info.sha256 == digest_bytes(b"").sha256


@pytest.mark.parametrize("size", [1000, 12 * MIB + 3], ids=["small", "multipart"])
def test_mismatching_expected_digest_raises_and_keeps_nothing(
    hook: MinioHook, bucket: str, size: int
) -> None:
    data = data_of(size, seed=4)
    announced = digest_bytes(data_of(size, seed=5))  # same size, other content: the source changed
    with pytest.raises(IntegrityError) as exc:
        hook.upload_stream(bucket, "changed/source.csv", io.BytesIO(data), expected=announced)
    message = str(exc.value)
    assert f"s3://{bucket}/changed/source.csv" in message
    assert announced.sha256 in message
    assert digest_bytes(data).sha256 in message
    assert "nothing was kept" in message
    assert hook.stat(bucket, "changed/source.csv") is None
    assert all_keys(hook, bucket) == []
    assert in_progress_uploads(hook.get_conn(), bucket) == []


def test_mismatching_expected_size_alone_is_refused(hook: MinioHook, bucket: str) -> None:
    data = data_of(1000, seed=6)
    real = digest_bytes(data)
    with pytest.raises(IntegrityError, match="1001 bytes"):
        hook.upload_stream(bucket, "k", io.BytesIO(data), expected=Digest(real.sha256, real.md5, 1001))
    assert all_keys(hook, bucket) == []


@pytest.mark.parametrize("with_expected", [False, True], ids=["unannounced", "expected"])
def test_stream_failing_midway_leaves_no_object_and_no_upload(
    hook: MinioHook, bucket: str, with_expected: bool
) -> None:
    good = data_of(7 * MIB, seed=7)
    parts = count_calls(hook, "UploadPart")
    aborted = count_calls(hook, "AbortMultipartUpload")
    expected = digest_bytes(data_of(20 * MIB, seed=7)) if with_expected else None
    with pytest.raises(OSError, match="source connection reset"):
        hook.upload_stream(bucket, "broken/stream.bin", FailingStream(good), expected=expected)
    assert len(parts) == 1  # the first part did go up before the source failed
    assert len(aborted) == 1
    assert hook.stat(bucket, "broken/stream.bin") is None
    assert all_keys(hook, bucket) == []
    assert in_progress_uploads(hook.get_conn(), bucket) == []


def test_upload_validates_bucket_and_key(hook: MinioHook, bucket: str) -> None:
    with pytest.raises(InvalidKeyError, match="'..'"):
        hook.upload_stream(bucket, "../escape", io.BytesIO(b"x"))
    with pytest.raises(InvalidKeyError, match="bucket name"):
        hook.upload_stream("Bad_Bucket", "k", io.BytesIO(b"x"))
    assert all_keys(hook, bucket) == []


# --------------------------------------------------------------------------------------------------
# copies and verification


def test_copy_object_verified(hook: MinioHook, bucket: str) -> None:
    data = data_of(300_000, seed=8)
    digest = hook.put_bytes(bucket, "src/file.csv", data)
    copies = count_calls(hook, "CopyObject")
    info = hook.copy_object_verified(
        bucket, "src/file.csv", bucket, "dst/inmet/file.csv", digest, metadata={"project": "inmet"}
    )
    assert len(copies) == 1  # server-side: one request, no byte through the worker
    assert (info.key, info.size, info.sha256, info.md5_etag) == (
        "dst/inmet/file.csv",
        len(data),
        digest.sha256,
        digest.md5,
    )
    assert hook.get_verified(bucket, "dst/inmet/file.csv", digest.sha256) == data
    # rehash streams the destination and compares the content too.
    assert hook.copy_object_verified(
        bucket, "src/file.csv", bucket, "dst/again.csv", digest, rehash=True
    ).size == (len(data))


def test_copy_with_wrong_expected_content_is_refused_and_removed(hook: MinioHook, bucket: str) -> None:
    data = data_of(4096, seed=9)
    hook.put_bytes(bucket, "src", data)
    wrong = digest_bytes(data_of(4096, seed=10))  # the audit says other content of the same size
    with pytest.raises(IntegrityError, match=f"s3://{bucket}/dst: verification failed: expected md5"):
        hook.copy_object_verified(bucket, "src", bucket, "dst", wrong)
    assert hook.stat(bucket, "dst") is None
    assert hook.stat(bucket, "src") is not None  # the source is never touched


def test_copy_whose_server_md5_differs_is_deleted_and_refused(hook: MinioHook, bucket: str) -> None:
    """The copy is verified from the md5 the server reports for it: a wrong one (here the response
    is altered at the client boundary) deletes the destination and raises."""
    data = data_of(20_000, seed=13)
    digest = hook.put_bytes(bucket, "src-md5", data)
    client = hook.get_conn()
    real = client.copy_object

    def lying_copy(**kwargs: Any) -> Any:
        resp = real(**kwargs)
        resp["CopyObjectResult"]["ETag"] = '"' + "0" * 32 + '"'
        return resp

    client.copy_object = lying_copy
    try:
        with pytest.raises(IntegrityError, match=f"expected md5 {digest.md5}, the server reports 0{{32}}"):
            hook.copy_object_verified(bucket, "src-md5", bucket, "dst-md5", digest)
    finally:
        client.copy_object = real
    assert hook.stat(bucket, "dst-md5") is None
    info = hook.copy_object_verified(bucket, "src-md5", bucket, "dst-md5", digest)
    assert (info.md5_etag, info.sha256) == (digest.md5, digest.sha256)
    head = hook.stat(bucket, "dst-md5")
    assert head is not None
    assert (head.size, head.sha256, head.md5_etag) == (len(data), digest.sha256, digest.md5)


def test_copy_is_read_back_and_refused_when_the_server_did_not_keep_its_sha256(
    hook: MinioHook, bucket: str
) -> None:
    """After the copy, a HEAD reads what the server stored under the key: a copy that lost its
    sha256 metadata (here the HEAD answer is altered at the client boundary, as a server that drops
    user metadata would answer) is deleted and refused, though its response's md5 was right."""
    data = data_of(20_000, seed=14)
    digest = hook.put_bytes(bucket, "src-meta", data)
    client = hook.get_conn()
    real = client.head_object
    heads: list[str] = []

    def forgetful_head(**kwargs: Any) -> Any:
        resp = real(**kwargs)
        heads.append(kwargs["Key"])
        if kwargs["Key"] == "dst-meta":
            resp["Metadata"] = {}
        return resp

    client.head_object = forgetful_head
    try:
        with pytest.raises(IntegrityError, match=f"expected sha256 metadata {digest.sha256}, found None"):
            hook.copy_object_verified(bucket, "src-meta", bucket, "dst-meta", digest)
    finally:
        client.head_object = real
    assert heads == ["dst-meta"]
    assert hook.stat(bucket, "dst-meta") is None


def test_bodies_are_not_signed_but_carry_content_md5(hook: MinioHook, bucket: str) -> None:
    """Payload signing is off (no sha256 pass over the body on either side); Content-MD5 is sent."""
    assert hook.config.s3["payload_signing_enabled"] is False
    assert hook.config.s3["addressing_style"] == "path"  # the hook's default: the extra has none
    sent: list[Any] = []
    client = hook.get_conn()
    client.meta.events.register("before-send.s3.PutObject", lambda request, **_: sent.append(request.headers))
    hook.put_bytes(bucket, "unsigned", b"x" * 1000)
    (headers,) = sent
    assert headers["X-Amz-Content-SHA256"] == b"UNSIGNED-PAYLOAD"
    assert headers["Content-MD5"]


def test_verification_catches_a_corrupted_destination(hook: MinioHook, bucket: str, stack: Any) -> None:
    data = data_of(50_000, seed=11)
    digest = hook.put_bytes(bucket, "src", data)
    hook.copy_object_verified(bucket, "src", bucket, "dst", digest)
    # Corrupt it: different bytes of the same size that still claim the right sha256 in metadata.
    corrupt = bytearray(data)
    corrupt[25_000] ^= 0xFF
    stack.s3_client().put_object(
        Bucket=bucket, Key="dst", Body=bytes(corrupt), Metadata={SHA256_META: digest.sha256}
    )
    stat = hook.stat(bucket, "dst")
    assert stat is not None
    assert (stat.size, stat.sha256) == (len(data), digest.sha256)

    with pytest.raises(IntegrityError, match=f"expected md5 {digest.md5}, the server reports"):
        hook.verify_object(bucket, "dst", digest)
    with pytest.raises(IntegrityError, match=f"expected content sha256 {digest.sha256}, read "):
        hook.verify_object(bucket, "dst", digest, rehash=True)
    assert hook.stat(bucket, "dst") is not None  # verification alone deletes nothing
    with pytest.raises(IntegrityError):
        hook.verify_object(bucket, "dst", digest, delete_on_mismatch=True)
    assert hook.stat(bucket, "dst") is None
    # And the intact copy verifies.
    assert hook.verify_object(bucket, "src", digest, rehash=True).sha256 == digest.sha256


def rot_on_disk(stack: Any, bucket: str, key: str, offset: int) -> bytes:
    """Flip one byte of the object's file on the server's disk, keeping its size and modification
    time: bit rot, which no S3 request made. Returns the rotten bytes."""
    path = Path(stack.state["s3"]["data_dir"]) / bucket / key
    before = path.stat()
    rotten = bytearray(path.read_bytes())
    rotten[offset] ^= 0xFF
    path.write_bytes(bytes(rotten))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    return bytes(rotten)


def test_bit_rot_on_disk_keeps_the_write_time_etag_and_only_content_reads_catch_it(
    hook: MinioHook, bucket: str, stack: Any
) -> None:
    """The server keeps each object's md5 from write time, as MinIO keeps its ETag: bytes that
    rot on disk behind its back (same size) still answer the md5 they were written with, so the
    cheap checks (listing, HEAD, ``verify_object``'s ETag comparison) cannot see it. The reads
    that must be certain hash the content: ``verify_object(rehash=True)``, ``get_verified``,
    ``digest_object`` name the rotten object."""
    data = data_of(300_000, seed=21)
    digest = hook.put_bytes(bucket, "stored/rot.csv", data)
    hook.copy_object_verified(bucket, "stored/rot.csv", bucket, "stored/copy.csv", digest)
    # A copy's md5 is recorded again at the first look after the copy (devstack._hasher_remote).
    assert hook.verify_object(bucket, "stored/copy.csv", digest).md5_etag == digest.md5
    rotten = {key: rot_on_disk(stack, bucket, key, 150_000) for key in ("stored/rot.csv", "stored/copy.csv")}

    for key, bytes_now in rotten.items():
        assert digest_bytes(bytes_now).md5 != digest.md5
        listed = {o.key: o for o in hook.iter_objects(bucket, "stored/")}[key]
        assert (listed.size, listed.md5_etag) == (len(data), digest.md5), key
        assert hook.verify_object(bucket, key, digest).md5_etag == digest.md5  # the ETag: blind to it
        with pytest.raises(IntegrityError, match=f"expected content sha256 {digest.sha256}, read "):
            hook.verify_object(bucket, key, digest, rehash=True)
        with pytest.raises(IntegrityError, match=f"expected sha256 {digest.sha256}, got "):
            hook.get_verified(bucket, key, digest.sha256)
        assert hook.digest_object(bucket, key) == digest_bytes(bytes_now)


def test_verification_reports_missing_and_wrong_size_and_wrong_metadata(
    hook: MinioHook, bucket: str, stack: Any
) -> None:
    data = data_of(1000, seed=12)
    digest = digest_bytes(data)
    with pytest.raises(IntegrityError, match="it does not exist"):
        hook.verify_object(bucket, "nothing", digest)
    stack.s3_client().put_object(
        Bucket=bucket, Key="short", Body=data[:-1], Metadata={SHA256_META: digest.sha256}
    )
    with pytest.raises(IntegrityError, match="expected 1000 bytes, found 999"):
        hook.verify_object(bucket, "short", digest)
    stack.s3_client().put_object(Bucket=bucket, Key="nometa", Body=data)
    with pytest.raises(IntegrityError, match="expected sha256 metadata .*, found None"):
        hook.verify_object(bucket, "nometa", digest)


# --------------------------------------------------------------------------------------------------
# listing and HEAD


def test_iter_objects_is_a_lazy_paginated_generator(hook: MinioHook, bucket: str) -> None:
    for i in range(5):
        hook.put_bytes(bucket, f"p/{i:02d}.csv", data_of(10 + i, seed=i))
    hook.put_bytes(bucket, "other/x.csv", b"x")
    lists = count_calls(hook, "ListObjectsV2")
    objects = hook.iter_objects(bucket, "p/", page_size=2)
    assert inspect.isgenerator(objects)
    assert lists == []  # nothing requested before the first item is asked for
    first = next(objects)
    assert first.key == "p/00.csv"
    assert first.size == 10
    assert len(lists) == 1
    rest = list(objects)
    assert [o.key for o in [first, *rest]] == [f"p/{i:02d}.csv" for i in range(5)]
    assert [o.size for o in [first, *rest]] == [10, 11, 12, 13, 14]
    assert len(lists) == 3  # 2 + 2 + 1
    assert [c.get("MaxKeys") for c in lists] == [2, 2, 2]
    assert all(o.metadata is None for o in rest)
    with_meta = list(hook.iter_objects(bucket, "p/", with_metadata=True))
    assert [o.sha256 for o in with_meta] == [digest_bytes(data_of(10 + i, seed=i)).sha256 for i in range(5)]


def test_stat_is_none_for_a_missing_object(hook: MinioHook, bucket: str) -> None:
    assert hook.stat(bucket, "no/such/key.csv") is None
    hook.put_bytes(bucket, "there", b"abc")
    info = hook.stat(bucket, "there")
    assert info is not None
    assert info.size == 3
    assert info.last_modified is not None


def test_every_read_of_a_missing_object_raises_object_missing_naming_it(
    hook: MinioHook, bucket: str, tmp_path: Path
) -> None:
    """The hook owns "is it there": reads, digests, downloads and verifications of an absent object
    raise ObjectMissingError naming s3://bucket/key (not a botocore error), and no file is left."""
    where = f"s3://{bucket}/gone/file.csv"
    recorded = digest_bytes(b"what the audit saw")
    with pytest.raises(ObjectMissingError, match=f"^{where}: no such object$"):
        list(hook.iter_chunks(bucket, "gone/file.csv"))
    with pytest.raises(ObjectMissingError, match=f"^{where}: no such object$"):
        hook.digest_object(bucket, "gone/file.csv")
    with pytest.raises(ObjectMissingError, match=f"^{where}: no such object$"):
        hook.download_verified(bucket, "gone/file.csv", tmp_path / "out", recorded.sha256)
    assert not (tmp_path / "out").exists()
    with pytest.raises(ObjectMissingError, match=f"^{where}: verification failed: it does not exist$"):
        hook.verify_object(bucket, "gone/file.csv", recorded)
    with pytest.raises(IntegrityError):  # and, for the copy or upload it verifies, a failed check
        hook.verify_object(bucket, "gone/file.csv", recorded)


def test_copy_of_a_missing_or_changed_source_raises_object_missing(
    hook: MinioHook, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A copy whose source is gone, or no longer has the ETag it was recorded with, raises
    ObjectMissingError naming the source; nothing is written."""
    data = data_of(2000, seed=14)
    digest = digest_bytes(data)
    with pytest.raises(ObjectMissingError, match=f"^s3://{bucket}/src/gone.csv: no such object$"):
        hook.copy_object_verified(bucket, "src/gone.csv", bucket, "dst/a.csv", digest)
    hook.put_bytes(bucket, "src/there.csv", data)

    # rclone's server ignores CopySourceIfMatch: S3's answer to a changed source is given at the
    # client boundary instead.
    def precondition_failed(**kwargs: Any) -> Any:
        assert kwargs["CopySourceIfMatch"] == "0" * 32
        raise ClientError(
            {"Error": {"Code": "PreconditionFailed", "Message": "At least one precondition failed"}},
            "CopyObject",
        )

    monkeypatch.setattr(hook.get_conn(), "copy_object", precondition_failed)
    with pytest.raises(ObjectMissingError, match=f"^s3://{bucket}/src/there.csv: the object changed since"):
        hook.copy_object_verified(bucket, "src/there.csv", bucket, "dst/b.csv", digest, source_etag="0" * 32)
    assert all_keys(hook, bucket) == ["src/there.csv"]


def test_delete_keys_in_batches_returns_the_keys_gone(
    hook: MinioHook, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the provider's delete_objects, 1000 keys a request; when the server reports an
    error for a request, the keys still there are not in the answer."""
    keys = [f"d/{i:04d}" for i in range(1003)]
    client = hook.get_conn()
    for key in keys:
        client.put_object(Bucket=bucket, Key=key, Body=b"x")
    requests = count_calls(hook, "DeleteObjects")
    assert hook.delete_keys(bucket, keys[:1002]) == keys[:1002]
    assert [len(r["Delete"]["Objects"]) for r in requests] == [1000, 2]
    assert all_keys(hook, bucket) == [keys[1002]]

    real = client.delete_objects

    def one_refused(**kwargs: Any) -> Any:  # the server refuses one key: it stays, the answer says so
        return {"Errors": [{"Key": keys[1002], "Code": "AccessDenied", "Message": "no"}], "Deleted": []}

    monkeypatch.setattr(client, "delete_objects", one_refused)
    assert hook.delete_keys(bucket, [keys[1002], "d/never-there"]) == ["d/never-there"]
    monkeypatch.setattr(client, "delete_objects", real)
    assert all_keys(hook, bucket) == [keys[1002]]


def test_bucket_exists(hook: MinioHook, bucket: str) -> None:
    assert hook.bucket_exists(bucket) is True
    assert hook.bucket_exists("no-such-bucket-here") is False


# --------------------------------------------------------------------------------------------------
# connection problems say what to fix


def test_check_buckets_ok_and_missing_bucket(hook: MinioHook, bucket: str) -> None:
    hook.check_buckets([bucket, *config.default_buckets().values()])
    with pytest.raises(ConnectionSetupError) as exc:
        hook.check_buckets([bucket, "no-such-bucket-here"])
    assert str(exc.value) == (
        "connection 'trilha_minio': bucket 'no-such-bucket-here' does not exist; create it or fix the "
        "bucket Variable"
    )


def test_wrong_keys_name_the_connection_and_what_to_check(
    stack: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = json.loads(os.environ["AIRFLOW_CONN_TRILHA_MINIO"])
    conn["password"] = "not-the-secret-key"
    monkeypatch.setenv("AIRFLOW_CONN_TRILHA_BAD_KEYS", json.dumps(conn))
    bad = MinioHook(aws_conn_id="trilha_bad_keys")
    with pytest.raises(ConnectionSetupError) as exc:
        bad.check_buckets(["recepcao-raw"])
    message = str(exc.value)
    assert message.startswith("connection 'trilha_bad_keys': the server refused the keys")
    assert "check login/password" in message
    assert "not-the-secret-key" not in message
    ok, why = bad.test_connection()
    assert ok is False
    assert "trilha_bad_keys" in why
    assert "login/password" in why


def test_unreachable_endpoint_names_the_connection_and_endpoint(
    stack: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    assert not port_open(port)
    conn = json.loads(os.environ["AIRFLOW_CONN_TRILHA_MINIO"])
    conn["extra"]["endpoint_url"] = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("AIRFLOW_CONN_TRILHA_NOWHERE", json.dumps(conn))
    started = time.monotonic()
    with pytest.raises(ConnectionSetupError) as exc:
        MinioHook(aws_conn_id="trilha_nowhere").check_buckets(["recepcao-raw"])
    assert time.monotonic() - started < 30
    message = str(exc.value)
    assert message.startswith("connection 'trilha_nowhere': cannot reach the S3 endpoint")
    assert f"http://127.0.0.1:{port}" in message
    assert "check extra.endpoint_url" in message


def test_undefined_connection_is_named(stack: Any) -> None:
    with pytest.raises(ConnectionSetupError, match="connection 'trilha_not_defined' is not defined"):
        MinioHook(aws_conn_id="trilha_not_defined").check_buckets(["recepcao-raw"])


def test_test_connection_lists_buckets(hook: MinioHook, bucket: str) -> None:
    ok, message = hook.test_connection()
    assert ok is True
    assert bucket in message
    assert "'trilha_minio'" in message


# --------------------------------------------------------------------------------------------------
# multipart server-side copy (UploadPartCopy), against a real moto server process


@pytest.fixture(scope="module")
def moto_conn_id() -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    conn_id = "trilha_test_moto"
    env_key = f"AIRFLOW_CONN_{conn_id.upper()}"
    try:
        deadline = time.monotonic() + 30
        while not port_open(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"moto server did not start on port {port} (exit code {proc.poll()})")
            time.sleep(0.1)
        os.environ[env_key] = json.dumps(
            {
                "conn_type": "aws",
                "login": "moto-access-key",
                "password": "moto-secret-key",
                "extra": config.s3_connection_extra(f"http://127.0.0.1:{port}"),
            }
        )
        yield conn_id
    finally:
        os.environ.pop(env_key, None)
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def moto_hook(moto_conn_id: str) -> tuple[MinioHook, str]:
    hook = MinioHook(
        aws_conn_id=moto_conn_id,
        multipart_threshold=5 * MIB,
        part_size=5 * MIB,
        max_single_copy=5 * MIB,
        copy_part_size=5 * MIB,
    )
    name = f"trilha-moto-{uuid.uuid4().hex[:12]}"
    hook.get_conn().create_bucket(Bucket=name)
    return hook, name


def test_multipart_copy_above_the_single_copy_limit(moto_hook: tuple[MinioHook, str]) -> None:
    hook, bucket = moto_hook
    data = data_of(12 * MIB + 5, seed=13)
    digest = digest_bytes(data)
    hook.upload_stream(bucket, "src/big.bin", io.BytesIO(data), expected=digest)
    part_copies = count_calls(hook, "UploadPartCopy")
    single_copies = count_calls(hook, "CopyObject")
    info = hook.copy_object_verified(
        bucket, "src/big.bin", bucket, "dst/big.bin", digest, metadata={"k": "v"}
    )
    assert single_copies == []
    assert [c["CopySourceRange"] for c in part_copies] == [
        f"bytes=0-{5 * MIB - 1}",
        f"bytes={5 * MIB}-{10 * MIB - 1}",
        f"bytes={10 * MIB}-{12 * MIB + 4}",
    ]
    assert [c["PartNumber"] for c in part_copies] == [1, 2, 3]
    assert (info.size, info.sha256) == (len(data), digest.sha256)
    assert info.md5_etag is None  # a multipart ETag: verification had to re-read the content
    assert hook.digest_object(bucket, "dst/big.bin") == digest
    assert hook.get_conn().list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_multipart_copy_of_wrong_content_is_removed(moto_hook: tuple[MinioHook, str]) -> None:
    hook, bucket = moto_hook
    data = data_of(11 * MIB, seed=14)
    real = hook.upload_stream(bucket, "src", io.BytesIO(data)).digest
    wrong = digest_bytes(data_of(11 * MIB, seed=15))
    # The metadata written is the expected sha256 and the ETag is a multipart one, so only re-reading
    # the copied bytes can tell.
    with pytest.raises(IntegrityError, match=f"expected content sha256 {wrong.sha256}, read {real.sha256}"):
        hook.copy_object_verified(bucket, "src", bucket, "dst", wrong)
    assert hook.stat(bucket, "dst") is None


def test_unannounced_multipart_upload_uses_the_multipart_copy_into_place(
    moto_hook: tuple[MinioHook, str],
) -> None:
    hook, bucket = moto_hook
    data = data_of(6 * MIB, seed=16)
    part_copies = count_calls(hook, "UploadPartCopy")
    result = hook.upload_stream(bucket, "k", io.BytesIO(data))
    assert result.digest == digest_bytes(data)
    assert len(part_copies) == 2
    assert [o.key for o in hook.iter_objects(bucket)] == ["k"]
    assert hook.stat(bucket, "k").sha256 == result.digest.sha256  # type: ignore[union-attr]


def test_failed_multipart_upload_is_aborted_on_moto(moto_hook: tuple[MinioHook, str]) -> None:
    hook, bucket = moto_hook
    with pytest.raises(OSError, match="source connection reset"):
        hook.upload_stream(bucket, "broken", FailingStream(data_of(6 * MIB, seed=17)))
    assert hook.get_conn().list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    assert list(hook.iter_objects(bucket)) == []


# --------------------------------------------------------------------------------------------------
# run log (MongoDB)


def test_run_log_writes_and_reads_a_document(stack: Any) -> None:
    runlog = RunLogHook()
    doc_id = f"test_dag/run_{uuid.uuid4().hex}/t/-1/1"
    logger = logging.getLogger("test.runlog")
    doc = {"_id": doc_id, "dag_id": "test_dag", "status": "running", "counters": {"seen": 1}, "started_at": 1}
    assert runlog.write(doc, logger) == doc_id
    assert runlog.write({**doc, "status": "success", "counters": {"seen": 2}}, logger) == doc_id  # upsert
    found = runlog.find({"_id": doc_id})
    assert found == [{**doc, "status": "success", "counters": {"seen": 2}}]
    assert runlog.last_error is None
    # It really is in the stack's mongod, in <schema>.run_log.
    from pymongo import MongoClient

    client = MongoClient(stack.mongo_uri(), serverSelectionTimeoutMS=5000)
    try:
        assert (
            client.get_database(config.MONGO_DATABASE)[config.MONGO_RUN_COLLECTION].count_documents(
                {"_id": doc_id}
            )
            == 1
        )
    finally:
        client.close()


def test_run_log_with_mongo_down_warns_and_returns_none(
    stack: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()
    monkeypatch.setenv(
        "AIRFLOW_CONN_TRILHA_MONGO_DEAD",
        json.dumps(
            {
                "conn_type": "mongo",
                "host": "127.0.0.1",
                "port": port,
                "schema": "trilha",
                "extra": {"srv": False},
            }
        ),
    )
    runlog = RunLogHook(mongo_conn_id="trilha_mongo_dead")
    logger = logging.getLogger("test.runlog.dead")
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="test.runlog.dead"):
        assert runlog.write({"_id": "x", "status": "success"}, logger) is None
    assert time.monotonic() - started < 10
    warnings = [r for r in caplog.records if r.name == "test.runlog.dead" and r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "'trilha_mongo_dead'" in warnings[0].getMessage()
    assert "the Postgres audit row is the record" in warnings[0].getMessage()
    assert runlog.last_error is not None
    assert "ServerSelectionTimeoutError" in runlog.last_error
