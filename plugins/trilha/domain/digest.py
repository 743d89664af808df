"""One-pass content digests.

Every byte that enters the lake is hashed exactly once: sha256 (the identity used by every audit
table) and md5 (what Drive and S3 ETags speak) are updated from the same chunk, so a file is read a
single time whatever the number of digests. Memory stays bounded by the chunk size. Pure: the
bytes come from the caller (a local file is hashed by :func:`trilha.hooks.sources.digest_file`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol


class Readable(Protocol):
    """Anything with ``read(n) -> bytes``: files, HTTP bodies, :class:`ChunkStream`."""

    def read(self, n: int = -1, /) -> bytes: ...


#: 8 MiB: large enough that the per-call overhead of hashlib disappears, small enough to bound memory.
CHUNK_SIZE = 8 * 1024 * 1024

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
EMPTY_MD5 = hashlib.md5(b"", usedforsecurity=False).hexdigest()


@dataclass(frozen=True)
class Digest:
    """The checksums and size of one byte stream."""

    sha256: str
    md5: str
    size: int


class DigestingReader:
    """Wrap a binary stream so that every byte read through it also updates sha256 and md5.

    This is how one pass both feeds an upload and hashes it: boto3 reads from this object, and the
    digests are complete when the upload has consumed the stream.
    """

    def __init__(self, raw: Readable) -> None:
        self._raw = raw
        self._sha256 = hashlib.sha256()
        self._md5 = hashlib.md5(usedforsecurity=False)
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        chunk = self._raw.read(n)
        if chunk:
            self._sha256.update(chunk)
            self._md5.update(chunk)
            self.size += len(chunk)
        return chunk

    def digest(self) -> Digest:
        return Digest(self._sha256.hexdigest(), self._md5.hexdigest(), self.size)


def digest_chunks(chunks: Iterable[bytes]) -> Digest:
    """Hash an iterable of byte chunks in one pass."""
    sha256 = hashlib.sha256()
    md5 = hashlib.md5(usedforsecurity=False)
    size = 0
    for chunk in chunks:
        sha256.update(chunk)
        md5.update(chunk)
        size += len(chunk)
    return Digest(sha256.hexdigest(), md5.hexdigest(), size)


def iter_stream(stream: Readable, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
    """Yield fixed-size chunks from a binary stream until it is exhausted."""
    while chunk := stream.read(chunk_size):
        yield chunk


def digest_stream(stream: Readable, chunk_size: int = CHUNK_SIZE) -> Digest:
    """Hash a binary stream in fixed-size chunks (bounded memory)."""
    return digest_chunks(iter_stream(stream, chunk_size))


def digest_bytes(data: bytes) -> Digest:
    """Hash bytes already in memory (small payloads such as manifests and Parquet outputs)."""
    return digest_chunks([data])


class ChunkStream:
    """A read-only binary stream over an iterator of chunks (Drive downloads, local files...).

    It lets a chunked source feed :meth:`MinioHook.upload_stream`, which reads ``read(n)`` slices.
    """

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._buffer = b""

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            data = self._buffer + b"".join(self._chunks)
            self._buffer = b""
            return data
        while len(self._buffer) < n:
            try:
                self._buffer += next(self._chunks)
            except StopIteration:
                break
        data, self._buffer = self._buffer[:n], self._buffer[n:]
        return data
