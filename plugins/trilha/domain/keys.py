"""Validation of object keys, project names and prefixes, in one place.

Real INMET names carry spaces and accents (``INMET_SE_SP_A701_SAO PAULO - MIRANTE_...CSV``), so
Unicode and spaces are kept. What is refused is what could escape a prefix or confuse a reader:
``..`` and ``.`` segments, absolute paths, backslashes, control characters, empty names and keys
longer than S3 allows.
"""

from __future__ import annotations

import base64
import re
import unicodedata

from trilha.exceptions import InvalidKeyError, InvalidProjectError

#: S3's limit is 1024 bytes of UTF-8 for a whole key.
MAX_KEY_BYTES = 1024

_PREFIX_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def _has_control(text: str) -> bool:
    return any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in text)


def printable(text: str) -> str:
    """``text`` safe to store and show: bytes of a name that was not UTF-8 become ``\\xNN`` escapes.

    ``os.listdir`` hands such a name over with surrogate escapes (``'caf\\udce9.csv'``), which no UTF-8
    encoder (S3, PostgreSQL, MongoDB, a log) accepts.
    """
    if not any("\ud800" <= ch <= "\udfff" for ch in text):
        return text
    return "".join(_escape_surrogate(ch) if "\ud800" <= ch <= "\udfff" else ch for ch in text)


def _escape_surrogate(ch: str) -> str:
    # U+DC80..U+DCFF are the bytes 0x80..0xFF that did not decode (PEP 383); other lone surrogates
    # can only come from a broken producer and are shown by code point.
    code = ord(ch)
    return f"\\x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else f"\\u{code:04x}"


def validate_key(key: str, *, what: str = "object key") -> str:
    """Return ``key`` unchanged if it is a safe object key, else raise :class:`InvalidKeyError`.

    :param key: the key, relative to a bucket, with ``/`` separators.
    :param what: how to name the key in the error message (for example ``"reception key"``).
    """
    if not isinstance(key, str) or key == "":
        raise InvalidKeyError(f"{what}: expected a non-empty string, got {key!r}")
    if any("\ud800" <= ch <= "\udfff" for ch in key):
        raise InvalidKeyError(
            f"{what} '{printable(key)}': the name is not valid UTF-8 (its other bytes are shown as \\xNN); "
            "rename the file with a UTF-8 name (for example with convmv) and capture it again"
        )
    if _has_control(key):
        raise InvalidKeyError(f"{what} {key!r}: control characters are not allowed")
    if key.startswith("/"):
        raise InvalidKeyError(f"{what} {key!r}: expected a relative key, got an absolute path")
    if "\\" in key:
        raise InvalidKeyError(f"{what} {key!r}: backslashes are not allowed; use '/' separators")
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        raise InvalidKeyError(
            f"{what} {key[:60]!r}...: expected at most {MAX_KEY_BYTES} bytes of UTF-8, "
            f"got {len(key.encode('utf-8'))}"
        )
    segments = key.split("/")
    for segment in segments[:-1] if key.endswith("/") else segments:
        if segment in ("", ".", ".."):
            raise InvalidKeyError(f"{what} {key!r}: empty, '.' or '..' path segments are not allowed")
    return key


def validate_relative_name(name: str, *, what: str = "file name") -> str:
    """Validate a key that names a file (so it must not end with ``/``)."""
    validate_key(name, what=what)
    if name.endswith("/"):
        raise InvalidKeyError(f"{what} {name!r}: expected a file name, got a folder (ends with '/')")
    return name


def validate_key_prefix(prefix: str | None, *, what: str = "key prefix") -> str:
    """Validate an optional listing prefix; empty means 'everything'."""
    if not prefix:
        return ""
    validate_key(prefix, what=what)
    return prefix


def validate_project_prefix(prefix: str) -> str:
    """A project prefix becomes the first segment of every stored key, so it is kept plain ASCII."""
    if not isinstance(prefix, str) or not _PREFIX_RE.fullmatch(prefix):
        raise InvalidProjectError(
            f"project prefix {prefix!r}: expected 1-63 characters of lowercase a-z, 0-9, '_' or '-', "
            "starting with a letter or digit"
        )
    return prefix


def validate_project_name(name: str) -> str:
    """A project name is free text for people (stored literally via bind parameters), but bounded."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidProjectError(f"project name: expected a non-empty name, got {name!r}")
    if len(name) > 200:
        raise InvalidProjectError(f"project name {name[:40]!r}...: expected at most 200 characters")
    if _has_control(name):
        raise InvalidProjectError(f"project name {name!r}: control characters are not allowed")
    return name


def validate_bucket(bucket: str) -> str:
    """S3 bucket naming rules (3-63 lowercase letters, digits, dots and hyphens)."""
    if not isinstance(bucket, str) or not _BUCKET_RE.fullmatch(bucket) or ".." in bucket:
        raise InvalidKeyError(f"bucket name {bucket!r}: expected 3-63 characters of a-z, 0-9, '.' or '-'")
    return bucket


#: The longest file name (one key segment) that disk-backed S3 servers such as MinIO can store: they
#: keep each segment as a file or folder name, and Linux allows 255 bytes. S3 itself only bounds
#: the whole key, so a longer segment fails there as an opaque ``InternalError``.
MAX_SEGMENT_BYTES = 255


def fit_name(stem: str, tail: str, max_bytes: int = MAX_SEGMENT_BYTES) -> str:
    """``stem + tail`` as one key segment of at most ``max_bytes`` bytes of UTF-8.

    The stem is shortened (at a character boundary) and the tail kept whole: tails carry what makes
    a derived name unique (a version, a content digest) and its extension.
    """
    room = max_bytes - len(tail.encode("utf-8"))
    if room < 1:
        raise InvalidKeyError(f"name tail {tail!r}: expected fewer than {max_bytes} bytes")
    cut = stem.encode("utf-8")[:room].decode("utf-8", "ignore")
    return cut + tail


def join_key(*parts: str) -> str:
    """Join key parts with single slashes and validate the result."""
    key = "/".join(p.strip("/") for p in parts if p and p.strip("/"))
    return validate_key(key)


# S3 user metadata ---------------------------------------------------------------------------------
# S3 carries user metadata in HTTP headers, which are US-ASCII: botocore refuses anything else before
# sending ("Non ascii characters found in S3 metadata"), so one accented file name in a batch used to
# stop it. Values that are not plain printable ASCII travel as an RFC 2047 encoded word
# (``=?UTF-8?B?<base64>?=``, what S3 itself returns for non-ASCII metadata) and are decoded on read.
# Plain ASCII values are sent as they are, so metadata written before this stays readable.
_ENCODED_WORD_RE = re.compile(r"^=\?UTF-8\?B\?([A-Za-z0-9+/]*={0,2})\?=$", re.IGNORECASE)
#: A bound per value, well inside S3's 2 KB for all user metadata of an object.
MAX_METADATA_VALUE_BYTES = 1024


def _plain_ascii(value: str) -> bool:
    return value.isascii() and value.isprintable() and not value.startswith("=?")


def _encoded_word(value: str) -> str:
    raw = value.encode("utf-8", "surrogatepass")  # even a lone surrogate round-trips
    return "=?UTF-8?B?" + base64.b64encode(raw).decode("ascii") + "?="


def encode_metadata_value(value: str, max_bytes: int = MAX_METADATA_VALUE_BYTES) -> str:
    """``value`` as an ASCII header value, cut (by characters, before encoding) to ``max_bytes``."""
    if _plain_ascii(value):
        return value[:max_bytes]
    encoded = _encoded_word(value)
    while len(encoded) > max_bytes:
        # base64 grows 4/3 and UTF-8 up to 4x: cut the text, never the encoding, so it still decodes.
        value = value[: max(0, len(value) * max_bytes // len(encoded) - 1)]
        encoded = _encoded_word(value)
    return encoded


def decode_metadata_value(value: str) -> str:
    """The inverse of :func:`encode_metadata_value` (plain values are returned unchanged)."""
    match = _ENCODED_WORD_RE.match(value)
    if not match:
        return value
    try:
        return base64.b64decode(match.group(1), validate=True).decode("utf-8", "surrogatepass")
    except ValueError:
        return value  # not ours: keep what the server has


def encode_metadata(metadata: dict[str, str]) -> dict[str, str]:
    return {name: encode_metadata_value(str(value)) for name, value in metadata.items()}


def decode_metadata(metadata: dict[str, str]) -> dict[str, str]:
    """Decoded values under lowercase names (S3 stores names lowercase; some servers echo them cased)."""
    return {name.lower(): decode_metadata_value(value) for name, value in metadata.items()}
