"""MinIO (any S3-compatible server) with verified, streaming, checksummed transfers.

:class:`MinioHook` subclasses the Amazon provider's ``S3Hook`` on an ``aws`` connection whose extra
carries ``endpoint_url``. What it adds is the lake's guarantees:

* every byte uploaded is hashed (sha256 + md5) in the same pass that feeds the upload;
* an object under its final key always carries its sha256 in user metadata and is complete:
  large uploads are multipart (invisible until completed), and an upload whose content does not
  match what was announced is removed, never left behind claiming to be whole;
* copies inside the lake are server-side (multipart ``UploadPartCopy`` above the 5 GiB single-request
  limit), then verified by size, the server's md5 ETag and the sha256 metadata;
* listing is a lazy paginated iterator;
* it owns "is the object there": :meth:`MinioHook.stat` answers ``None`` for an absent object, and
  every read, download, digest, verification, or copy whose source is gone raises
  :class:`~trilha.exceptions.ObjectMissingError` naming ``s3://bucket/key``. Which S3 answers mean
  "absent" is decided here only (``MISSING_CODES``): no caller needs botocore to ask.

What the provider's ``S3Hook`` already does is used as it is: ``head_object`` (HEAD, ``None`` on a
404) for presence, ``iter_file_metadata`` for the listing, ``delete_objects`` (1000 keys a request)
for batch deletes. Reads, uploads and copies go to the boto3 client (``get_conn()``) because they
carry what the provider's ``read_key``/``load_bytes``/``copy_object`` do not: streamed bodies,
``Content-MD5``, the sha256 metadata, ``CopySourceIfMatch`` and multipart copies.
"""

from __future__ import annotations

import hashlib
import sys
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import Any

from airflow.providers.amazon.aws.hooks.s3 import S3Hook

from trilha import config
from trilha.domain.digest import CHUNK_SIZE, Digest, DigestingReader, Readable, iter_stream
from trilha.domain.keys import decode_metadata, encode_metadata, validate_bucket, validate_key
from trilha.exceptions import (
    ConnectionSetupError,
    IntegrityError,
    ObjectMissingError,
    ObjectWriteError,
)
from trilha.hooks.s3_admin import (
    CHANGED_CODES,
    MISSING_CODES,
    NO_BUCKET_CODES,
    error_code,
    is_missing,
    is_service_error,
)

SHA256_META = "sha256"
MIB = 1024 * 1024
GIB = 1024 * MIB
#: S3's single-request CopyObject limit.
MAX_SINGLE_COPY = 5 * GIB


@contextmanager
def _must_exist(bucket: str, key: str) -> Iterator[None]:
    """Raise S3's "no such object" (or "it changed", for a conditional copy) about ``bucket/key`` as
    :class:`ObjectMissingError`; every other answer goes on unchanged."""
    try:
        yield
    except Exception as err:
        code = error_code(err)
        if code in MISSING_CODES:
            raise ObjectMissingError(f"s3://{bucket}/{key}: no such object") from None
        if code in CHANGED_CODES:
            raise ObjectMissingError(
                f"s3://{bucket}/{key}: the object changed since it was recorded (S3 answered {code})"
            ) from None
        raise


class VerifiedObjectMissingError(ObjectMissingError, IntegrityError):
    """:meth:`MinioHook.verify_object` found no object: it is missing, and for the upload or copy
    that it verifies it is also a failed integrity check. Both kinds of caller see what they ask for:
    ``except ObjectMissingError`` and ``except IntegrityError`` (a copy recorded as a failed item)."""


@dataclass(frozen=True)
class UploadResult:
    """The digest of the bytes uploaded and the ETag the server gave the object."""

    digest: Digest
    etag: str


@dataclass(frozen=True)
class ObjectInfo:
    """What a listing or HEAD tells about an object, without reading it."""

    bucket: str
    key: str
    size: int
    etag: str
    last_modified: datetime | None
    metadata: dict[str, str] | None = None

    @property
    def sha256(self) -> str | None:
        """The sha256 user metadata, if the object carries it (keys are case-insensitive)."""
        if not self.metadata:
            return None
        for k, v in self.metadata.items():
            if k.lower() == SHA256_META:
                return v
        return None

    @property
    def md5_etag(self) -> str | None:
        """The ETag when it is a plain md5 of the content (single-part uploads and copies)."""
        etag = self.etag.strip('"')
        return etag if len(etag) == 32 and "-" not in etag else None


def _md5_b64(data: bytes) -> str:
    return _hex_b64(hashlib.md5(data, usedforsecurity=False).hexdigest())


def _hex_b64(hex_digest: str) -> str:
    """A hex md5 as the base64 that ``Content-MD5`` takes."""
    import base64

    return base64.b64encode(bytes.fromhex(hex_digest)).decode()


class MinioHook(S3Hook):
    """S3Hook for MinIO with one-pass digests, verified uploads and verified server-side copies.

    :param aws_conn_id: the ``aws`` connection; its extra must carry ``endpoint_url``.
    :param multipart_threshold: uploads at least this large go multipart.
    :param part_size: multipart part size for uploads (S3 minimum 5 MiB).
    :param copy_part_size: part size for multipart server-side copies.
    :param max_single_copy: above this size copies use ``UploadPartCopy`` (S3's limit is 5 GiB).
    """

    conn_name_attr = "aws_conn_id"
    default_conn_name = config.S3_CONN_ID
    conn_type = "aws"
    hook_name = "Trilha MinIO (S3-compatible)"

    def __init__(
        self,
        aws_conn_id: str = config.S3_CONN_ID,
        multipart_threshold: int = 64 * MIB,
        part_size: int = 64 * MIB,
        copy_part_size: int = 512 * MIB,
        max_single_copy: int = MAX_SINGLE_COPY,
        **kwargs: Any,
    ) -> None:
        super().__init__(aws_conn_id=aws_conn_id, **kwargs)
        self.multipart_threshold = multipart_threshold
        self.part_size = part_size
        self.copy_part_size = copy_part_size
        self.max_single_copy = max_single_copy

    @property
    def config(self) -> Any:
        """The connection's botocore config: path-style addressing, payload signing off.

        Path-style because bucket names are not DNS names on MinIO or a local server. It is set here
        rather than in the connection's extra, where Airflow would try to mask the short value
        ``path`` as a secret and warn in every task log that it is too short to mask.

        Over plain http botocore signs every body with sha256, and the server re-hashes it to check
        the signature: two extra passes over every byte, which on a small worker cost as much as the
        transfer. Every body this hook sends carries ``Content-MD5`` (checked by the server) and its
        content is verified against the audited digest anyway, so the signature need not cover it;
        the request itself stays signed. This is what botocore does by default over https.
        """
        from botocore.config import Config

        base = super().config
        s3 = dict(getattr(base, "s3", None) or {})
        s3.setdefault("addressing_style", "path")
        s3.setdefault("payload_signing_enabled", False)
        return base.merge(Config(s3=s3))

    def _get_caller(self, target_function_name: str = "execute") -> str:
        """The class of the operator whose ``execute`` made this hook, for the client's User-Agent.

        The provider finds it with ``inspect.stack()``, which reads the source file of every frame
        on the stack: about a quarter of a second per client in a task process, the largest part of
        the hook's set-up. The same answer (the first ``execute`` frame's ``self`` class, else
        ``"Unknown"``) comes from walking the frames themselves.
        """
        frame: FrameType | None = sys._getframe(1)
        while frame is not None:
            if frame.f_code.co_name == target_function_name and "self" in frame.f_locals:
                return type(frame.f_locals["self"]).__name__
            frame = frame.f_back
        return "Unknown"

    # connection checks ---------------------------------------------------------------------------
    def test_connection(self) -> tuple[bool, str]:
        """The provider's test calls STS, which MinIO does not serve: list buckets instead."""
        try:
            names = [b["Name"] for b in self.get_conn().list_buckets().get("Buckets", [])]
        except Exception as err:
            return False, self.explain_error(err)
        return True, f"connection {self.aws_conn_id!r} reached the S3 endpoint; buckets: {names}"

    def explain_error(self, err: BaseException, bucket: str | None = None) -> str:
        """Turn a client error into a message naming the connection and what to check."""
        from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

        conn = f"connection {self.aws_conn_id!r}"
        if isinstance(err, EndpointConnectionError):
            return (
                f"{conn}: cannot reach the S3 endpoint ({err}); check extra.endpoint_url and that the "
                "server runs"
            )
        if isinstance(err, NoCredentialsError):
            return f"{conn}: no access key; set login (access key) and password (secret key)"
        if isinstance(err, ClientError):
            code = err.response.get("Error", {}).get("Code", "")
            if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "403"):
                return f"{conn}: the server refused the keys ({code}); check login/password of the connection"
            if code in NO_BUCKET_CODES and bucket:
                return f"{conn}: bucket {bucket!r} does not exist; create it or fix the bucket Variable"
            return f"{conn}: S3 error {code}: {err}"
        return f"{conn}: {type(err).__name__}: {err}"

    def check_buckets(self, buckets: Iterable[str]) -> None:
        """Fail early, with a message that says what to fix, if a bucket cannot be used."""
        from airflow.sdk.exceptions import AirflowNotFoundException

        # The provider does not fail on an undefined conn id: it falls back to an empty connection
        # (boto's default credentials and AWS's own endpoint). Look the connection up first instead.
        try:
            self.get_connection(str(self.aws_conn_id))
        except AirflowNotFoundException:
            raise ConnectionSetupError(
                f"connection {self.aws_conn_id!r} is not defined: add it to airflow_settings.yaml or "
                f"set AIRFLOW_CONN_{str(self.aws_conn_id).upper()}"
            ) from None
        for bucket in buckets:
            validate_bucket(bucket)
            try:
                self.get_conn().head_bucket(Bucket=bucket)
            except Exception as err:
                raise ConnectionSetupError(self.explain_error(err, bucket)) from err

    def bucket_exists(self, bucket: str) -> bool:
        """Whether ``bucket`` exists: ``False`` only when S3 says there is no such bucket; refused
        keys or an unreachable endpoint raise (unlike the provider's ``check_for_bucket``, which
        answers ``False`` to a 403 too)."""
        try:
            self.get_conn().head_bucket(Bucket=bucket)
        except Exception as err:
            if error_code(err) in NO_BUCKET_CODES:
                return False
            raise
        return True

    @staticmethod
    def is_s3_error(err: BaseException) -> bool:
        """Whether ``err`` comes from the S3 client (an S3 answer, or botocore failing to get one):
        for callers that report such errors (:meth:`explain_error`) without importing botocore."""
        from botocore.exceptions import BotoCoreError, ClientError

        return isinstance(err, BotoCoreError | ClientError)

    # reading -------------------------------------------------------------------------------------
    def iter_objects(
        self, bucket: str, prefix: str = "", with_metadata: bool = False, page_size: int = 1000
    ) -> Iterator[ObjectInfo]:
        """Lazily list ``bucket`` under ``prefix``, one page at a time.

        :param with_metadata: also HEAD each object for its user metadata (one request per object,
            so only when asked).
        """
        for item in self.iter_file_metadata(prefix, bucket_name=bucket, page_size=page_size):
            info = ObjectInfo(
                bucket, item["Key"], int(item["Size"]), item["ETag"].strip('"'), item.get("LastModified")
            )
            if with_metadata:
                full = self.stat(bucket, info.key)
                if full is None:  # vanished between the listing and the HEAD
                    continue
                info = full
            yield info

    def stat(self, bucket: str, key: str) -> ObjectInfo | None:
        """HEAD one object (the provider's ``head_object``); ``None`` when it does not exist."""
        head = self.head_object(key, bucket_name=bucket)
        if head is None:
            return None
        return ObjectInfo(
            bucket,
            key,
            int(head["ContentLength"]),
            head["ETag"].strip('"'),
            head.get("LastModified"),
            decode_metadata(dict(head.get("Metadata") or {})),
        )

    def _body(self, bucket: str, key: str) -> Any:
        """The streaming body of a GET of ``bucket/key``.

        :raises ObjectMissingError: there is no such object.
        """
        with _must_exist(bucket, key):
            return self.get_conn().get_object(Bucket=bucket, Key=key)["Body"]

    def iter_chunks(self, bucket: str, key: str, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
        """Stream an object's bytes in fixed-size chunks (bounded memory).

        :raises ObjectMissingError: there is no such object (when the first chunk is asked for).
        """
        body = self._body(bucket, key)
        try:
            yield from iter_stream(body, chunk_size)
        finally:
            body.close()

    def digest_object(self, bucket: str, key: str) -> Digest:
        """sha256 and md5 of an object, from a single streamed read.

        :raises ObjectMissingError: there is no such object.
        """
        reader = DigestingReader(self._body(bucket, key))
        while reader.read(CHUNK_SIZE):
            pass
        return reader.digest()

    def download_verified(self, bucket: str, key: str, path: Path, sha256: str) -> Digest:
        """Stream an object into ``path``, hashing as it goes; the bytes must have ``sha256``.

        :raises IntegrityError: the object is not the content its record says (the file is removed).
        :raises ObjectMissingError: there is no such object (no file is written).
        """
        reader = DigestingReader(self._body(bucket, key))
        with open(path, "wb") as handle:
            while chunk := reader.read(CHUNK_SIZE):
                handle.write(chunk)
        got = reader.digest()
        if got.sha256 != sha256:
            path.unlink(missing_ok=True)
            raise _sha256_mismatch(bucket, key, sha256, got.sha256)
        return got

    def get_verified(self, bucket: str, key: str, sha256: str) -> bytes:
        """An object's bytes, hashed while they download; they must have ``sha256``.

        The in-memory counterpart of :meth:`download_verified`, for the Parquet parts and raw files
        the processing DAGs read: one pass and sha256 only, instead of a download followed by a
        second pass that also computes an md5 nobody reads.

        :raises IntegrityError: the object is not the content its record says.
        :raises ObjectMissingError: there is no such object (S3 answers 404).
        """
        digest = hashlib.sha256()
        chunks = []
        for chunk in self.iter_chunks(bucket, key):
            digest.update(chunk)
            chunks.append(chunk)
        got = digest.hexdigest()
        if got != sha256:
            raise _sha256_mismatch(bucket, key, sha256, got)
        return b"".join(chunks)  # a single chunk is returned as is, not copied

    # writing -------------------------------------------------------------------------------------
    def upload_stream(
        self,
        bucket: str,
        key: str,
        stream: Readable,
        expected: Digest | None = None,
        metadata: dict[str, str] | None = None,
        content_type: str = "application/octet-stream",
    ) -> UploadResult:
        """Upload ``stream`` to ``bucket/key``, hashing it in the same pass, and verify it.

        Small payloads (below ``multipart_threshold``) are read once into memory, hashed, and sent with
        their sha256 metadata and a Content-MD5 the server checks. Larger ones go multipart: when the
        caller knows the digest (``expected``, as the landing ingestion does) straight to the final key,
        otherwise to a hidden temporary key that is copied into place with its sha256 once known. A
        multipart upload is invisible until completed, and a completed one whose digest differs from
        ``expected`` is deleted, so no object under ``key`` ever claims content it does not hold.

        The server's refusal to store this one object is raised as :class:`ObjectWriteError`
        (see :meth:`_refusal_is_per_object`).

        :return: the digest of the bytes actually uploaded, and the object's ETag.
        """
        with self._refusal_is_per_object(bucket, key):
            validate_bucket(bucket)
            validate_key(key)
            client = self.get_conn()
            head = stream.read(self.multipart_threshold)
            if len(head) < self.multipart_threshold and expected is not None:
                return self._put_known(bucket, key, head, expected, metadata, content_type)
            if len(head) < self.multipart_threshold:
                digest = Digest(
                    hashlib.sha256(head).hexdigest(),
                    hashlib.md5(head, usedforsecurity=False).hexdigest(),
                    len(head),
                )
                self._check_expected(bucket, key, digest, expected, uploaded=False)
                resp = client.put_object(
                    Bucket=bucket,
                    Key=key,
                    Body=head,
                    ContentMD5=_md5_b64(head),
                    ContentType=content_type,
                    Metadata=encode_metadata({**(metadata or {}), SHA256_META: digest.sha256}),
                )
                return UploadResult(digest, str(resp["ETag"]).strip('"'))
            target = key if expected else f"{key}.trilha-partial-{uuid.uuid4().hex}"
            meta = {**(metadata or {})}
            if expected:
                meta[SHA256_META] = expected.sha256
            digest, etag = self._multipart_upload(bucket, target, head, stream, meta, content_type)
            if expected:
                self._check_expected(bucket, key, digest, expected, uploaded=True)
                return UploadResult(digest, etag)
            try:
                info = self.copy_object_verified(bucket, target, bucket, key, digest, metadata=metadata)
            finally:
                client.delete_object(Bucket=bucket, Key=target)
            return UploadResult(digest, info.etag)

    @contextmanager
    def _refusal_is_per_object(self, bucket: str, key: str) -> Iterator[None]:
        """Raise the server's refusal to store ``bucket/key`` (an answer other than a service or
        credentials error, or a missing source) as :class:`ObjectWriteError`, so that callers record
        a failed item for that object and go on with the others."""
        from botocore.exceptions import ClientError

        try:
            yield
        except ClientError as err:
            if is_service_error(err) or is_missing(err):
                raise
            raise ObjectWriteError(
                f"cannot write s3://{bucket}/{key}: {self.explain_error(err, bucket)}"
            ) from err

    def _put_known(
        self,
        bucket: str,
        key: str,
        body: bytes,
        expected: Digest,
        metadata: dict[str, str] | None,
        content_type: str,
    ) -> UploadResult:
        """Upload bytes whose digest the caller computed when it read them for the uniqueness check,
        without hashing them again: the server checks them against that md5 (``Content-MD5``) and
        reports the md5 of what it stored (the ETag). Bytes that are not the ones hashed (the source
        changed in between) are refused by the server, or deleted here, and nothing is kept."""
        from botocore.exceptions import ClientError

        changed = (
            f"s3://{bucket}/{key}: expected the {expected.size} bytes that were hashed (sha256 "
            f"{expected.sha256}, md5 {expected.md5}), {{got}}; the source changed while it was being "
            "uploaded, nothing was kept"
        )
        if len(body) != expected.size:
            raise IntegrityError(changed.format(got=f"read {len(body)} bytes"))
        try:
            resp = self.get_conn().put_object(
                Bucket=bucket,
                Key=key,
                Body=body,
                ContentMD5=_hex_b64(expected.md5),
                ContentType=content_type,
                Metadata=encode_metadata({**(metadata or {}), SHA256_META: expected.sha256}),
            )
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") in ("BadDigest", "InvalidDigest"):
                # Only on this error path are the bytes hashed again, to name what was really read.
                read = hashlib.sha256(body).hexdigest()
                raise IntegrityError(
                    changed.format(got=f"read sha256 {read}, which the server refused")
                ) from err
            raise
        etag = str(resp["ETag"]).strip('"')
        if etag != expected.md5:
            self.get_conn().delete_object(Bucket=bucket, Key=key)
            raise IntegrityError(changed.format(got=f"the server stored md5 {etag}"))
        return UploadResult(expected, etag)

    def _check_expected(
        self, bucket: str, key: str, digest: Digest, expected: Digest | None, uploaded: bool
    ) -> None:
        if expected is None or (digest.sha256 == expected.sha256 and digest.size == expected.size):
            return
        if uploaded:
            self.get_conn().delete_object(Bucket=bucket, Key=key)
        raise IntegrityError(
            f"s3://{bucket}/{key}: expected sha256 {expected.sha256} ({expected.size} bytes), read "
            f"{digest.sha256} ({digest.size} bytes) from the source; the source changed while it was "
            "being uploaded, nothing was kept"
        )

    def _multipart_upload(
        self,
        bucket: str,
        key: str,
        head: bytes,
        stream: Readable,
        metadata: dict[str, str],
        content_type: str,
    ) -> tuple[Digest, str]:
        client = self.get_conn()
        sha256 = hashlib.sha256()
        md5 = hashlib.md5(usedforsecurity=False)
        size = 0
        upload_id = client.create_multipart_upload(
            Bucket=bucket, Key=key, Metadata=encode_metadata(metadata), ContentType=content_type
        )["UploadId"]
        parts: list[dict[str, Any]] = []
        try:
            buffer = head
            while True:
                while len(buffer) < self.part_size:
                    more = stream.read(self.part_size - len(buffer))
                    if not more:
                        break
                    buffer += more
                if not buffer:
                    break
                sha256.update(buffer)
                md5.update(buffer)
                size += len(buffer)
                number = len(parts) + 1
                resp = client.upload_part(
                    Bucket=bucket,
                    Key=key,
                    UploadId=upload_id,
                    PartNumber=number,
                    Body=buffer,
                    ContentMD5=_md5_b64(buffer),
                )
                parts.append({"PartNumber": number, "ETag": resp["ETag"]})
                buffer = b""
            done = client.complete_multipart_upload(
                Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
        except BaseException:
            # Nothing half-written may remain: abort makes the parts disappear.
            client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
            raise
        return Digest(sha256.hexdigest(), md5.hexdigest(), size), str(done.get("ETag", "")).strip('"')

    def put_bytes(
        self, bucket: str, key: str, data: bytes, content_type: str = "application/octet-stream"
    ) -> Digest:
        """Write a small payload (manifests, Parquet outputs) with its sha256 metadata."""
        import io

        return self.upload_stream(bucket, key, io.BytesIO(data), content_type=content_type).digest

    # copying -------------------------------------------------------------------------------------
    def copy_object_verified(
        self,
        src_bucket: str,
        src_key: str,
        dst_bucket: str,
        dst_key: str,
        expected: Digest,
        metadata: dict[str, str] | None = None,
        source_etag: str | None = None,
        rehash: bool = False,
    ) -> ObjectInfo:
        """Server-side copy, then verify the destination; no byte passes through the worker.

        A single-request copy is checked against the md5 its response reports, then, like every copy,
        by a HEAD of the destination (size, sha256 metadata, ETag) as the server stored it.

        :param expected: the digest the content must have (from the audit trail).
        :param source_etag: when given, the copy only happens if the source still has this ETag.
        :param rehash: also stream the destination and compare its sha256 (reads the bytes once).
        :raises IntegrityError: the destination does not hold the expected content; it is deleted.
        :raises ObjectMissingError: the source does not exist, or no longer has ``source_etag``.
        """
        validate_key(dst_key)
        meta = {**(metadata or {}), SHA256_META: expected.sha256}
        if expected.size > self.max_single_copy:
            with self._refusal_is_per_object(dst_bucket, dst_key), _must_exist(src_bucket, src_key):
                self._multipart_copy(
                    src_bucket, src_key, dst_bucket, dst_key, expected.size, meta, source_etag
                )
        else:
            extra: dict[str, Any] = {"CopySourceIfMatch": source_etag} if source_etag else {}
            with self._refusal_is_per_object(dst_bucket, dst_key), _must_exist(src_bucket, src_key):
                resp = self.get_conn().copy_object(
                    Bucket=dst_bucket,
                    Key=dst_key,
                    CopySource={"Bucket": src_bucket, "Key": src_key},
                    MetadataDirective="REPLACE",
                    Metadata=encode_metadata(meta),
                    **extra,
                )
            result = resp.get("CopyObjectResult") or {}
            copied = ObjectInfo(
                dst_bucket,
                dst_key,
                expected.size,
                str(result.get("ETag", "")),
                result.get("LastModified"),
                meta,
            )
            if copied.md5_etag is not None:
                # The server answers a single-request copy with the md5 of the bytes it wrote: a
                # wrong one fails here, before any other request.
                self.verify_object(dst_bucket, dst_key, expected, delete_on_mismatch=True, reported=copied)
        # Then a HEAD reads back what the server stored under the key: its size, its sha256 metadata
        # (the response only echoes what was sent) and its ETag. On MinIO a HEAD reads metadata
        # only; the embedded rclone server computes a copy's md5 at its first HEAD and keeps it
        # (devstack._hasher_remote), so the next listing of the copies reads no object again.
        return self.verify_object(dst_bucket, dst_key, expected, rehash=rehash, delete_on_mismatch=True)

    def _multipart_copy(
        self,
        src_bucket: str,
        src_key: str,
        dst_bucket: str,
        dst_key: str,
        size: int,
        metadata: dict[str, str],
        source_etag: str | None,
    ) -> None:
        client = self.get_conn()
        upload_id = client.create_multipart_upload(
            Bucket=dst_bucket, Key=dst_key, Metadata=encode_metadata(metadata)
        )["UploadId"]
        parts: list[dict[str, Any]] = []
        try:
            for number, start in enumerate(range(0, size, self.copy_part_size), start=1):
                end = min(start + self.copy_part_size, size) - 1
                extra: dict[str, Any] = {"CopySourceIfMatch": source_etag} if source_etag else {}
                resp = client.upload_part_copy(
                    Bucket=dst_bucket,
                    Key=dst_key,
                    UploadId=upload_id,
                    PartNumber=number,
                    CopySource={"Bucket": src_bucket, "Key": src_key},
                    CopySourceRange=f"bytes={start}-{end}",
                    **extra,
                )
                etag = resp.get("CopyPartResult", {}).get("ETag")
                if not etag:
                    raise IntegrityError(
                        f"s3://{dst_bucket}/{dst_key}: the server returned no ETag for copied part {number}; "
                        "it does not support UploadPartCopy"
                    )
                parts.append({"PartNumber": number, "ETag": etag})
            client.complete_multipart_upload(
                Bucket=dst_bucket, Key=dst_key, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
        except BaseException:
            client.abort_multipart_upload(Bucket=dst_bucket, Key=dst_key, UploadId=upload_id)
            raise

    def verify_object(
        self,
        bucket: str,
        key: str,
        expected: Digest,
        rehash: bool = False,
        delete_on_mismatch: bool = False,
        reported: ObjectInfo | None = None,
    ) -> ObjectInfo:
        """Check that ``bucket/key`` holds ``expected``: size, sha256 metadata, and content.

        Content is checked against the server's md5 ETag when it is a plain md5 (computed by the server
        over the stored bytes, and compared to the md5 that was computed in the same pass as the
        sha256); multipart ETags, or ``rehash=True``, stream the object and compare its sha256.

        :param reported: what the server already answered about the object (a copy's response); it
            is checked instead of a HEAD.
        :raises IntegrityError: the object does not hold ``expected``.
        :raises VerifiedObjectMissingError: there is no such object (an ``ObjectMissingError`` and
            an ``IntegrityError``).
        """
        info = reported or self.stat(bucket, key)
        if info is None:
            raise VerifiedObjectMissingError(f"s3://{bucket}/{key}: verification failed: it does not exist")
        problem = None
        if info.size != expected.size:
            problem = f"expected {expected.size} bytes, found {info.size}"
        elif info.sha256 != expected.sha256:
            problem = f"expected sha256 metadata {expected.sha256}, found {info.sha256}"
        elif rehash or info.md5_etag is None:
            actual = self.digest_object(bucket, key)
            if actual.sha256 != expected.sha256:
                problem = f"expected content sha256 {expected.sha256}, read {actual.sha256}"
        elif info.md5_etag != expected.md5:
            problem = f"expected md5 {expected.md5}, the server reports {info.md5_etag}"
        if problem:
            if delete_on_mismatch:
                self.get_conn().delete_object(Bucket=bucket, Key=key)
            raise IntegrityError(f"s3://{bucket}/{key}: verification failed: {problem}")
        return info

    def delete_keys(self, bucket: str, keys: list[str]) -> list[str]:
        """Delete any number of keys; return the keys that are gone (the others are still there).

        Built on the provider's ``delete_objects``, one call per 1000 keys (one request each). It
        returns nothing, and when the server reports an error for any key of a request it raises
        ``AirflowException`` naming them in its message only. So a request without error confirms
        all its keys, and for one with errors presence is checked: a key that a HEAD no longer finds
        is gone, one still there was not deleted. (A failure unrelated to the keys, such as refused
        credentials, fails that HEAD too, and is raised.)
        """
        from airflow.providers.common.compat.sdk import AirflowException

        deleted: list[str] = []
        for start in range(0, len(keys), 1000):
            batch = keys[start : start + 1000]
            try:
                self.delete_objects(bucket, batch)
            except AirflowException:
                deleted.extend(k for k in batch if self.stat(bucket, k) is None)
            else:
                deleted.extend(batch)
        return deleted


def _sha256_mismatch(bucket: str, key: str, expected: str, got: str) -> IntegrityError:
    return IntegrityError(f"s3://{bucket}/{key}: expected sha256 {expected}, got {got}")
