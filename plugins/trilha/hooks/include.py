"""The files of ``include/`` that decide what staging produces: the schema contracts, and the code
version that fingerprints them with the parsers.

``include/`` is located one way, :func:`trilha.config.include_dir` (which honours ``TRILHA_HOME``);
the contracts directory can be overridden with ``$TRILHA_CONTRACTS_DIR``. The parsing and hashing
themselves are pure (:func:`trilha.domain.contracts.parse_contract`,
:func:`trilha.domain.lineage.code_fingerprint`): this module only reads the files.
Light on purpose: operator modules import it at DAG parse time, so pyarrow is imported only when a
contract is loaded.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from trilha import config
from trilha.domain.lineage import code_fingerprint

if TYPE_CHECKING:
    from trilha.domain.contracts import Contract

#: Where validation reads its contracts from, instead of ``include/contracts`` (tests, a deployment
#: that keeps contracts elsewhere).
CONTRACTS_ENV = "TRILHA_CONTRACTS_DIR"


def contracts_dir(directory: Path | str | None = None) -> Path:
    """The directory holding the contract files: the argument, else ``$TRILHA_CONTRACTS_DIR``,
    else ``include/contracts``."""
    if directory is not None:
        return Path(directory)
    override = os.environ.get(CONTRACTS_ENV)
    return Path(override) if override else config.include_dir() / "contracts"


def load_contract(dataset: str, directory: Path | str | None = None) -> Contract:
    """Read and parse ``<directory>/<dataset>.yaml``.

    :param dataset: the dataset name, e.g. ``inmet_hourly``; plain ``[a-z0-9_]`` only.
    :param directory: where the contract files live (see :func:`contracts_dir`).
    :raises trilha.domain.contracts.ContractError: a bad name, no such file, or a malformed contract.
    """
    from trilha.domain.contracts import ContractError, check_dataset_name, parse_contract

    path = contracts_dir(directory) / f"{check_dataset_name(dataset)}.yaml"
    if not path.is_file():
        raise ContractError(f"{path}: expected a contract file for dataset {dataset!r}, got no such file")
    return parse_contract(path.read_text(encoding="utf-8"), str(path), dataset)


def code_version() -> str:
    """A fingerprint of the code and contracts that decide staged output.

    A stored file is staged once per code version: change a parser or a contract and the next
    staging run re-stages everything, without anyone tracking versions by hand. It covers the
    parsers (``trilha/domain/formats/*.py``), the staging decisions (``trilha/domain/contracts.py``,
    ``staging.py``, ``quarantine.py``, ``qc.py``) and the contracts validation reads (:func:`contracts_dir`).
    Computed once per process and contracts directory.
    """
    return _code_version(contracts_dir())


@cache
def _code_version(directory: Path) -> str:
    domain = Path(__file__).resolve().parents[1] / "domain"
    files = sorted((domain / "formats").glob("*.py"))
    files += [domain / name for name in ("contracts.py", "staging.py", "quarantine.py", "qc.py")]
    files += sorted(directory.glob("*.yaml"))
    return code_fingerprint((path.name, path.read_bytes()) for path in files if path.exists())
