"""Pure naming, fingerprinting and manifests of the processing half (staging, curated, datasets).

Every output is named from what produced it, so a re-run over the same inputs lands on the same keys
and a changed input or parameter on new ones.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any

from trilha.keys import join_key

MANIFEST = "manifest.json"


@cache
def code_version() -> str:
    """A fingerprint of the code and contracts that decide staged output.

    A stored file is staged once per code version: change a parser or a contract and the next
    staging run re-stages everything, without anyone tracking versions by hand.
    """
    root = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    files = sorted((root / "formats").glob("*.py")) + [root / "contracts.py"]
    files += sorted((root.parents[1] / "include" / "contracts").glob("*.yaml"))
    for path in files:
        if path.exists():
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def staged_key(
    project_prefix: str, dataset: str, logical_name: str, sha256: str, quarantine: bool = False
) -> str:
    """``<prefix>/<dataset>/[_quarantine/]<stem>__<sha12>.parquet``: one output per source content."""
    stem = PurePosixPath(logical_name).stem
    parent = str(PurePosixPath(logical_name).parent).strip(".")
    name = f"{stem}__{sha256[:12]}.parquet"
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


def curated_prefix(project_prefix: str, dataset: str, version: str) -> str:
    return join_key(project_prefix, dataset, version)


def dataset_version(curated_version: str, strategy: str, params_fp: str) -> str:
    """``<curated version>-<strategy>-<params fp8>``: the same cut of the same data has one name."""
    return f"{curated_version}-{strategy}-{params_fp[:8]}"


def manifest_bytes(manifest: dict[str, Any]) -> bytes:
    """Stable, readable JSON (sorted keys), so identical manifests are identical bytes."""
    return (json.dumps(manifest, indent=2, sort_keys=True, default=str) + "\n").encode()
