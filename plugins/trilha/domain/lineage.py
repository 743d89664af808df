"""Pure naming, fingerprinting and manifests of the processing half (staging, curated, datasets).

Every output is named from what produced it, so a re-run over the same inputs lands on the same keys
and a changed input or parameter on new ones.
"""

from __future__ import annotations

import hashlib
import json
import os
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any

from trilha.domain.keys import fit_name, join_key

MANIFEST = "manifest.json"
#: The files of a dataset version, in the order they are written (the manifest comes after them).
SPLITS: tuple[str, str, str] = ("train", "validation", "test")
#: Same variable as ``trilha.domain.contracts.CONTRACTS_ENV`` (not imported: that module loads pyarrow).
CONTRACTS_ENV = "TRILHA_CONTRACTS_DIR"


def code_version() -> str:
    """A fingerprint of the code and contracts that decide staged output.

    A stored file is staged once per code version: change a parser or a contract and the next
    staging run re-stages everything, without anyone tracking versions by hand. The contracts are
    the ones validation reads: ``$TRILHA_CONTRACTS_DIR`` when set (see :mod:`trilha.domain.contracts`).
    """
    root = Path(__file__).resolve().parent
    override = os.environ.get(CONTRACTS_ENV)
    return _code_version(Path(override) if override else root.parents[2] / "include" / "contracts")


@cache
def _code_version(contracts_dir: Path) -> str:
    root = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    files = sorted((root / "formats").glob("*.py")) + [root / "contracts.py"]
    files += sorted(contracts_dir.glob("*.yaml"))
    for path in files:
        if path.exists():
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
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


def curated_prefix(project_prefix: str, dataset: str, version: str) -> str:
    return join_key(project_prefix, dataset, version)


def dataset_version(curated_version: str, strategy: str, params_fp: str) -> str:
    """``<curated version>-<strategy>-<params fp8>``: the same cut of the same data has one name."""
    return f"{curated_version}-{strategy}-{params_fp[:8]}"


def manifest_bytes(manifest: dict[str, Any]) -> bytes:
    """Stable, readable JSON (sorted keys), so identical manifests are identical bytes."""
    return (json.dumps(manifest, indent=2, sort_keys=True, default=str) + "\n").encode()
