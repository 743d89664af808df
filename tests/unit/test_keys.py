"""trilha.domain.keys: what may and may not become an object key, a project prefix or a project name.

The accepted cases are as important as the refused ones: real INMET file names carry spaces, dashes
and (in older packages) accents, and a validator that refused them would lose real data.
"""

from __future__ import annotations

import os

import pytest

from trilha.domain.keys import (
    MAX_KEY_BYTES,
    decode_metadata,
    decode_metadata_value,
    encode_metadata,
    encode_metadata_value,
    join_key,
    printable,
    validate_bucket,
    validate_key,
    validate_key_prefix,
    validate_project_name,
    validate_project_prefix,
    validate_relative_name,
)
from trilha.exceptions import InvalidKeyError, InvalidProjectError

INMET_NAME = "INMET_SE_SP_A701_SAO PAULO - MIRANTE_01-01-2024_A_31-12-2024.CSV"

ACCEPTED_KEYS = [
    INMET_NAME,
    f"inmet/2024/{INMET_NAME}",
    "inmet/INMET_NE_BA_A401_SALVADOR (ONDINA)_01-01-2019_A_31-12-2019.CSV",
    # Accented names, as older INMET packages and people's uploads have them (NFC and NFD forms).
    "inmet/INMET_S_SC_A806_FLORIANÓPOLIS_01-01-2010_A_31-12-2010.CSV",
    "projeto/relatório de estações/São Luís.csv",
    "projeto/Sa\u0303o Lui\u0301s.csv",
    "dados_A701_H_2024-01-01_2024-12-31.csv",
    "a",
    "inmet/folder/",  # a folder marker is a valid key (validate_relative_name refuses it)
    "name.with.dots..csv",  # '..' inside a segment is not a parent reference
    "...",  # nor is a segment of three dots
    "inmet/ leading and trailing space .csv",
    "ünïcödé/日本語/файл.csv",
]


@pytest.mark.parametrize("key", ACCEPTED_KEYS)
def test_real_names_are_accepted_unchanged(key: str) -> None:
    assert validate_key(key) == key


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("", "non-empty"),
        ("..", "'..'"),
        ("../etc/passwd", "'..'"),
        ("inmet/../other/x.csv", "'..'"),
        ("inmet/..", "'..'"),
        (".", "'.'"),
        ("./x.csv", "'.'"),
        ("inmet/./x.csv", "'.'"),
        ("inmet//x.csv", "empty"),
        ("inmet/x//", "empty"),
        ("/inmet/x.csv", "absolute"),
        ("/", "absolute"),
        ("inmet\\x.csv", "backslash"),
        ("..\\..\\windows", "backslash"),
        ("inmet/x\x00.csv", "control"),
        ("inmet/x\n.csv", "control"),
        ("inmet/x\r.csv", "control"),
        ("inmet/x\t.csv", "control"),
        ("inmet/x\x1b[31m.csv", "control"),
        ("inmet/x\x7f.csv", "control"),
        ("inmet/x\x85.csv", "control"),  # C1 control (NEL)
        # Invisible format characters: a name that looks identical to another must not be a second key.
        ("inmet/x\u200b.csv", "control"),  # zero-width space
        ("inmet/x\u202e.csv", "control"),  # right-to-left override
        ("inmet/x\ufeff.csv", "control"),  # byte-order mark
        ("inmet/x\u2028.csv", "control"),  # line separator
    ],
)
def test_unsafe_keys_are_refused_with_the_reason(key: str, reason: str) -> None:
    with pytest.raises(InvalidKeyError, match="object key") as exc:
        validate_key(key)
    assert reason in str(exc.value)
    if key:
        # The message shows the offending key (repr, so control characters are visible).
        assert repr(key)[:40] in str(exc.value)


def test_non_string_key_is_refused() -> None:
    with pytest.raises(InvalidKeyError, match="non-empty string, got None"):
        validate_key(None)  # type: ignore[arg-type]


def test_key_length_is_counted_in_utf8_bytes_not_characters() -> None:
    assert validate_key("k" * MAX_KEY_BYTES) == "k" * MAX_KEY_BYTES
    with pytest.raises(
        InvalidKeyError, match=f"at most {MAX_KEY_BYTES} bytes of UTF-8, got {MAX_KEY_BYTES + 1}"
    ):
        validate_key("k" * (MAX_KEY_BYTES + 1))
    # 'é' is two bytes: 512 of them is exactly the limit, 513 (far fewer than 1024 characters) is over.
    assert validate_key("é" * 512) == "é" * 512
    with pytest.raises(InvalidKeyError, match="got 1026"):
        validate_key("é" * 513)


def test_error_names_what_was_validated() -> None:
    with pytest.raises(InvalidKeyError, match="^reception key '../x': "):
        validate_key("../x", what="reception key")
    assert issubclass(InvalidKeyError, ValueError)


def test_relative_name_refuses_a_folder() -> None:
    assert validate_relative_name(INMET_NAME) == INMET_NAME
    with pytest.raises(InvalidKeyError, match="expected a file name, got a folder"):
        validate_relative_name("inmet/2024/")
    with pytest.raises(InvalidKeyError, match="'..'"):
        validate_relative_name("inmet/../x.csv")


def test_key_prefix_empty_means_everything_but_is_still_validated() -> None:
    assert validate_key_prefix(None) == ""
    assert validate_key_prefix("") == ""
    assert validate_key_prefix("inmet/2024/") == "inmet/2024/"
    assert validate_key_prefix("inmet/INMET_SE") == "inmet/INMET_SE"
    with pytest.raises(InvalidKeyError, match="key prefix '../'"):
        validate_key_prefix("../")
    with pytest.raises(InvalidKeyError, match="absolute"):
        validate_key_prefix("/inmet")


def test_join_key_normalises_slashes_and_validates_the_result() -> None:
    assert join_key("inmet/", "/2024/", INMET_NAME) == f"inmet/2024/{INMET_NAME}"
    assert join_key("inmet", "", "x.csv") == "inmet/x.csv"
    with pytest.raises(InvalidKeyError, match="'..'"):
        join_key("inmet", "..", "other.csv")
    with pytest.raises(InvalidKeyError, match="control"):
        join_key("inmet", "x\x00.csv")
    with pytest.raises(InvalidKeyError, match="non-empty"):
        join_key("/", "")


@pytest.mark.parametrize("prefix", ["inmet", "a", "0", "inmet_2024", "proj-x", "a" * 63, "9lives"])
def test_project_prefix_accepts_plain_ascii(prefix: str) -> None:
    assert validate_project_prefix(prefix) == prefix


@pytest.mark.parametrize(
    "prefix",
    [
        "",
        "Inmet",
        "INMET",
        "-inmet",
        "_inmet",
        "a" * 64,
        "in met",
        "in/met",
        "..",
        "inmét",
        "in.met",
        "x\n",
        None,
    ],
)
def test_project_prefix_refuses_anything_else(prefix: str) -> None:
    with pytest.raises(InvalidProjectError, match=r"project prefix .*expected 1-63 characters"):
        validate_project_prefix(prefix)


@pytest.mark.parametrize(
    "name", ["INMET", "Estações meteorológicas do INMET", "x", "n" * 200, "a/b (c) - d; 'e'"]
)
def test_project_name_is_free_text(name: str) -> None:
    assert validate_project_name(name) == name


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("", "non-empty"),
        ("   ", "non-empty"),
        (None, "non-empty"),
        ("n" * 201, "at most 200"),
        ("INMET\n", "control"),
        ("INMET\x00", "control"),
        ("IN\u200bMET", "control"),
    ],
)
def test_project_name_refusals(name: str, reason: str) -> None:
    with pytest.raises(InvalidProjectError, match="project name") as exc:
        validate_project_name(name)
    assert reason in str(exc.value)


@pytest.mark.parametrize("bucket", ["recepcao-raw", "storage-unique", "datasets", "abc", "a.b-c", "a" * 63])
def test_bucket_names_accepted(bucket: str) -> None:
    assert validate_bucket(bucket) == bucket


@pytest.mark.parametrize(
    "bucket", ["ab", "a" * 64, "Recepcao", "recepcao_raw", "-abc", "abc-", "a..b", "recepção", ""]
)
def test_bucket_names_refused(bucket: str) -> None:
    with pytest.raises(InvalidKeyError, match="bucket name"):
        validate_bucket(bucket)


# S3 user metadata ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "São Paulo ü✓.csv",
        "INMET_SE_SP_A701_SAO PAULO - MIRANTE_01-01-2024_A_31-12-2024.CSV",
        "",
        "=?UTF-8?B?looks-encoded?=",  # an ASCII value that could be mistaken for ours is encoded too
        "tab\there",
        "nome-\udce9-latin1.csv",  # a non-UTF-8 name as os.listdir gives it (surrogateescape)
        "日本語/データ.csv",
    ],
)
def test_metadata_values_round_trip_as_ascii(value: str) -> None:
    encoded = encode_metadata_value(value)
    assert encoded.isascii()
    assert encoded.isprintable()
    assert decode_metadata_value(encoded) == value


def test_plain_ascii_metadata_is_sent_unchanged_and_old_values_read_as_they_are() -> None:
    plain = "inmet/2019/INMET_S_PR_A807_CURITIBA_01-01-2019_A_31-12-2019.CSV"
    assert encode_metadata_value(plain) == plain
    assert decode_metadata_value("100%25 plain") == "100%25 plain"
    assert decode_metadata_value("=?UTF-8?B?not base64!?=") == "=?UTF-8?B?not base64!?="
    assert encode_metadata_value("São") == "=?UTF-8?B?U8Ojbw==?="


def test_long_metadata_values_are_cut_before_encoding_so_they_still_decode() -> None:
    value = "ç✓" * 2000
    encoded = encode_metadata_value(value, max_bytes=300)
    assert len(encoded) <= 300
    decoded = decode_metadata_value(encoded)
    assert value.startswith(decoded)
    assert len(decoded) > 50
    assert encode_metadata_value("a" * 2000, max_bytes=300) == "a" * 300


def test_metadata_names_are_read_lowercase() -> None:
    assert decode_metadata({"Source-Key": encode_metadata_value("ã"), "SHA256": "ab"}) == {
        "source-key": "ã",
        "sha256": "ab",
    }
    assert encode_metadata({"source-key": "ã", "sha256": "ab"}) == {
        "source-key": "=?UTF-8?B?w6M=?=",
        "sha256": "ab",
    }


def test_a_name_that_is_not_utf8_is_refused_with_its_bytes_escaped() -> None:
    name = os.fsdecode(b"inmet/caf\xe9 \xff.csv")  # what os.listdir returns for latin-1 bytes
    with pytest.raises(InvalidKeyError) as err:
        validate_key(name, what="source path")
    assert str(err.value).startswith("source path 'inmet/caf\\xe9 \\xff.csv': the name is not valid UTF-8")
    str(err.value).encode("utf-8")  # the message itself can be stored anywhere
    assert printable(name) == "inmet/caf\\xe9 \\xff.csv"
    assert printable("São Paulo ✓") == "São Paulo ✓"


def test_derived_names_fit_in_one_file_name() -> None:
    """A 255-byte source name plus a version or digest tag would exceed what a disk-backed S3 server
    can store as one file name; the stem gives way, the tag and extension stay."""
    from trilha.domain.keys import MAX_SEGMENT_BYTES, fit_name

    assert fit_name("dados", "__v2.csv") == "dados__v2.csv"
    long = fit_name("n" * 251, "__v2.csv")
    assert (len(long.encode()), long.endswith("n__v2.csv")) == (MAX_SEGMENT_BYTES, True)
    accented = fit_name("ç" * 200, "__abc.parquet")
    assert len(accented.encode()) <= MAX_SEGMENT_BYTES
    assert accented.endswith("ç__abc.parquet")  # cut at a character boundary
    with pytest.raises(InvalidKeyError, match="expected fewer than 255 bytes"):
        fit_name("x", "t" * 255)
