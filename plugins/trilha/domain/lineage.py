"""Pure naming, fingerprinting and manifests of the processing half (staging, curated, datasets).

Every output is named from what produced it, so a re-run over the same inputs lands on the same keys
and a changed input or parameter on new ones.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import PurePosixPath
from typing import Any

from trilha.domain.keys import fit_name, join_key

MANIFEST = "manifest.json"
#: The files of a dataset version, in the order they are written (the manifest comes after them).
SPLITS: tuple[str, str, str] = ("train", "validation", "test")


def code_fingerprint(files: Iterable[tuple[str, bytes]]) -> str:
    """A fingerprint of the code and contracts that decide staged output: 12 hex digits of the
    sha256 over each file's name and bytes, in the given order.

    A stored file is staged once per code version: change a parser or a contract and the next
    staging run re-stages everything, without anyone tracking versions by hand. Which files count,
    and reading them, is :func:`trilha.hooks.include.code_version`'s job.
    """
    digest = hashlib.sha256()
    for name, content in files:
        digest.update(name.encode())
        digest.update(content)
    return digest.hexdigest()[:12]


def staged_key(
    project_prefix: str,
    dataset: str,
    logical_name: str,
    sha256: str,
    code_version: str,
    quarantine: bool = False,
) -> str:
    """``<prefix>/<dataset>/[_quarantine/]<stem>__<sha12>.<code version>.parquet``.

    One output per source content and code version: re-staging after a parser or contract change
    writes new objects beside the old ones, never over them, so every inventory row and curated
    manifest that names the old output keeps naming the bytes it recorded.
    """
    stem = PurePosixPath(logical_name).stem
    parent = str(PurePosixPath(logical_name).parent).strip(".")
    # A source name at the 255-byte limit gives up the end of its stem: the digest keeps it unique.
    name = fit_name(stem, f"__{sha256[:12]}.{code_version[:12]}.parquet")
    parts = [project_prefix, dataset]
    if quarantine:
        parts.append("_quarantine")
    if parent:
        parts.append(parent)
    return join_key(*parts, name)


def fingerprint(payload: Any) -> str:
    """sha256 of the canonical JSON of ``payload`` (sorted keys, no whitespace)."""
    return hashlib.sha256(
        json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str).encode()
    ).hexdigest()


def inputs_fingerprint(inputs: list[dict[str, Any]]) -> str:
    """Identity of a set of staged inputs: order does not matter, content does."""
    return fingerprint(sorted(f"{i['key']}\n{i['sha256']}" for i in inputs))


def curated_version(number: int) -> str:
    """``v0001``, ``v0002``...: the name of a dataset's ``number``-th curated version."""
    return f"v{int(number):04d}"


def curated_prefix(project_prefix: str, dataset: str, version: str) -> str:
    return join_key(project_prefix, dataset, version)


def manifest_bytes(manifest: dict[str, Any]) -> bytes:
    """Stable, readable JSON (sorted keys), so identical manifests are identical bytes."""
    return (json.dumps(manifest, indent=2, sort_keys=True, default=str) + "\n").encode()
