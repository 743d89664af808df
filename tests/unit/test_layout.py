"""The package layout, enforced over imports and calls (AST only: nothing is imported or run).

* ``trilha.domain`` is pure: the standard library minus its I/O modules, numpy, pyarrow (in-memory:
  not its file systems or path readers), yaml (``safe_load`` of given text), jinja2 (rendering given
  template text, no loaders), ``trilha.domain.*`` and ``trilha.exceptions``. No ``open()``, no
  ``read_text``/``read_bytes``/``write_text``/``write_bytes``, no ``os.environ``; ``pathlib`` only for
  ``PurePosixPath``.
* ``trilha.hooks`` never imports operators or shell tools; ``trilha.operators`` never imports the shell
  tools (except ``trilha.ops.reconcile``, the reconcile engine the operator wraps).
* DAG files import only ``airflow.sdk``, ``trilha.{assets,params,config}`` and ``trilha.operators.*``.

Every violation is reported as ``<file>:<line>: <what>``.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

#: Standard-library modules that reach files, processes, the network or the environment.
IO_STDLIB = frozenset(
    {
        "os",
        "io",
        "socket",
        "ssl",
        "select",
        "selectors",
        "subprocess",
        "shutil",
        "tempfile",
        "urllib",
        "http",
        "ftplib",
        "smtplib",
        "poplib",
        "imaplib",
        "telnetlib",
        "socketserver",
        "xmlrpc",
        "sqlite3",
        "dbm",
        "shelve",
        "glob",
        "fnmatch",
        "fileinput",
        "filecmp",
        "mmap",
        "asyncio",
        "multiprocessing",
        "concurrent",
        "threading",
        "signal",
        "pty",
        "tty",
        "fcntl",
        "termios",
        "resource",
        "pwd",
        "grp",
        "platform",
        "sysconfig",
        "webbrowser",
        "zipfile",
        "tarfile",
        "gzip",
        "bz2",
        "lzma",
        "logging",
        "pickle",
        "importlib",
        "ctypes",
        "sys",
        "builtins",
    }
)
THIRD_PARTY_ALLOWED = frozenset({"numpy", "pyarrow", "yaml", "jinja2"})
#: jinja2 renders given template text; its loaders read files.
JINJA2_IO = frozenset({"FileSystemLoader", "PackageLoader", "ModuleLoader", "FileSystemBytecodeCache"})
#: pyarrow submodules that open files or file systems.
PYARROW_IO = frozenset({"fs", "dataset", "feather", "orc", "flight", "hdfs", "cuda", "plasma"})
#: Calls on pyarrow (``pa.``/``pq.``/``pv.``...) that take a path.
PYARROW_IO_CALLS = frozenset(
    {
        "OSFile",
        "memory_map",
        "create_memory_map",
        "input_stream",
        "output_stream",
        "read_table",
        "write_table",
        "read_metadata",
        "read_schema",
        "read_pandas",
        "write_to_dataset",
        "ParquetDataset",
        "open_csv",
        "write_csv",
    }
)
FILE_METHODS = frozenset({"read_text", "read_bytes", "write_text", "write_bytes", "open", "unlink", "mkdir"})
YAML_ALLOWED = frozenset({"safe_load", "YAMLError"})
TRILHA_ALLOWED_IN_DOMAIN = ("trilha.domain", "trilha.exceptions")
DAG_ALLOWED = ("airflow.sdk", "trilha.assets", "trilha.params", "trilha.config", "trilha.operators")


def _within(module: str, packages: tuple[str, ...] | frozenset[str]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def imports(tree: ast.AST) -> Iterator[tuple[int, str, list[str]]]:
    """``(line, module, imported names)`` of every import, nested ones included (a lazy import
    inside a function is still an import). Relative imports are not used in Trilha and are reported
    as their dotted text."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, []
        elif isinstance(node, ast.ImportFrom):
            module = "." * node.level + (node.module or "")
            if module == "__future__":
                continue
            yield node.lineno, module, [alias.name for alias in node.names]


def _where(path: Path, root: Path, line: int) -> str:
    return f"{path.relative_to(root)}:{line}"


def domain_problems(path: Path, root: Path) -> list[str]:
    """Why a module under ``trilha/domain`` is not pure (empty when it is)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    problems: list[str] = []
    aliases: dict[str, str] = {}  # local name -> module, for the call checks
    for line, module, names in imports(tree):
        where = _where(path, root, line)
        top = module.split(".")[0]
        if module.startswith("."):
            problems.append(f"{where}: relative import {module!r}")
        elif top == "trilha":
            if not _within(module, TRILHA_ALLOWED_IN_DOMAIN):
                problems.append(
                    f"{where}: imports {module} (domain imports only trilha.domain.* and exceptions)"
                )
        elif top == "pathlib":
            if names != ["PurePosixPath"]:
                problems.append(f"{where}: imports pathlib {names or ''} (only PurePosixPath: no file paths)")
        elif top == "pyarrow":
            sub = module.split(".")[1] if "." in module else None
            bad = {sub} & PYARROW_IO if sub else set(names) & PYARROW_IO
            if bad:
                problems.append(f"{where}: imports pyarrow's {sorted(bad)[0]} (files and file systems)")
        elif top == "jinja2" and set(names) & JINJA2_IO:
            problems.append(f"{where}: imports jinja2's {sorted(set(names) & JINJA2_IO)[0]} (reads files)")
        elif top in THIRD_PARTY_ALLOWED:
            pass
        elif top in sys.stdlib_module_names:
            if top in IO_STDLIB:
                problems.append(f"{where}: imports {module} (an I/O module)")
        else:
            problems.append(f"{where}: imports {module} (not the standard library, numpy, pyarrow or yaml)")
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                aliases[alias.asname or alias.name.split(".")[0]] = alias.name
    for node in ast.walk(tree):
        where = _where(path, root, getattr(node, "lineno", 0))
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id == "open":
                problems.append(f"{where}: calls open()")
            elif isinstance(func, ast.Attribute):
                owner = func.value.id if isinstance(func.value, ast.Name) else None
                module = aliases.get(owner or "", "")
                if func.attr in FILE_METHODS and not module.startswith(("numpy", "pyarrow")):
                    problems.append(f"{where}: calls .{func.attr}() (file I/O)")
                elif module.startswith("pyarrow") and func.attr in PYARROW_IO_CALLS:
                    problems.append(f"{where}: calls {owner}.{func.attr}() (reads or writes a path)")
                elif module == "jinja2" and func.attr in JINJA2_IO:
                    problems.append(f"{where}: calls jinja2.{func.attr}() (reads template files)")
                elif module == "yaml" and func.attr not in YAML_ALLOWED:
                    problems.append(f"{where}: calls yaml.{func.attr}() (only yaml.safe_load of given text)")
        elif isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv", "environb"):
            problems.append(f"{where}: reads the environment (.{node.attr})")
        elif isinstance(node, ast.Name) and node.id in ("environ", "getenv"):
            problems.append(f"{where}: reads the environment ({node.id})")
    return problems


def import_problems(
    path: Path, root: Path, forbidden: tuple[str, ...], allowed: tuple[str, ...] = ()
) -> list[str]:
    """Imports of ``path`` that fall in ``forbidden`` packages (unless in ``allowed``).

    ``from package import name`` is checked as ``package.name`` (``from trilha.ops import reconcile``
    is an import of ``trilha.ops.reconcile``; ``from trilha.ops.migrate import migrate`` of
    ``trilha.ops.migrate.migrate``).
    """
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    problems = []
    for line, module, names in imports(tree):
        for target in [f"{module}.{n}" for n in names] or [module]:
            if _within(target, forbidden) and not _within(target, allowed):
                problems.append(f"{_where(path, root, line)}: imports {target}")
    return problems


def dag_problems(path: Path, root: Path) -> list[str]:
    """Imports of a DAG file outside ``airflow.sdk``, ``trilha.{assets,params,config}`` and operators."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    problems = []
    for line, module, names in imports(tree):
        targets = [f"{module}.{n}" for n in names] if module == "trilha" else [module]
        for target in targets:
            if not _within(target, DAG_ALLOWED):
                problems.append(f"{_where(path, root, line)}: imports {target}")
    return problems


def layout_problems(root: Path) -> list[str]:
    """Every layout violation of the tree at ``root`` (a checkout: ``plugins/trilha``, ``dags``)."""
    package = root / "plugins" / "trilha"
    problems: list[str] = []
    for path in sorted((package / "domain").rglob("*.py")):
        problems += domain_problems(path, root)
    for path in sorted((package / "hooks").rglob("*.py")):
        problems += import_problems(path, root, ("trilha.operators", "trilha.ops"))
    for path in sorted((package / "operators").rglob("*.py")):
        problems += import_problems(path, root, ("trilha.ops",), allowed=("trilha.ops.reconcile",))
    for path in sorted((root / "dags").glob("*.py")):
        problems += dag_problems(path, root)
    return problems


# --------------------------------------------------------------------------------------------------


def test_the_package_follows_its_layout() -> None:
    assert layout_problems(REPO) == []


def test_the_layout_check_finds_each_kind_of_violation(tmp_path: Path) -> None:
    """The check is not vacuous: a tree with one violation of each kind reports each, with its line."""
    files = {
        "plugins/trilha/domain/__init__.py": "",
        "plugins/trilha/domain/good.py": (
            "from __future__ import annotations\nimport hashlib\nimport re\n"
            "from pathlib import PurePosixPath\nimport numpy as np\nimport pyarrow as pa\n"
            "import pyarrow.compute as pc\nimport pyarrow.parquet as pq\n"
            "import yaml\nfrom trilha.domain.keys import join_key\nfrom trilha.exceptions import ParseError\n"
            "def f(text, data):\n    yaml.safe_load(text)\n"
            "    return pq.ParquetFile(pa.BufferReader(data)).read()\n"
        ),
        "plugins/trilha/domain/bad.py": (
            "import os\n"  # 1
            "from pathlib import Path\n"  # 2
            "from airflow.sdk import BaseHook\n"  # 3
            "import boto3\n"  # 4
            "from trilha.hooks.minio import MinioHook\n"  # 5
            "from trilha import config\n"  # 6
            "import pyarrow.fs\n"  # 7
            "def f(p, q):\n"  # 8
            "    open(p)\n"  # 9
            "    q.read_text()\n"  # 10
            "    return os.environ.get('X')\n"  # 11
            "def g():\n"  # 12
            "    import psycopg2\n"  # 13
            "    import yaml\n"  # 14
            "    return yaml.load('a')\n"  # 15
            "import jinja2\n"  # 16
            "E = jinja2.Environment(loader=jinja2.FileSystemLoader('x'))\n"  # 17
        ),
        "plugins/trilha/hooks/h.py": "from trilha.domain import keys\nfrom trilha.operators.base import X\n",
        "plugins/trilha/operators/o.py": (
            "from trilha.ops.reconcile import run\nfrom trilha.ops import reconcile\n"
            "from trilha.ops.devstack import Stack\nfrom trilha.ops import trace\n"
        ),
        "dags/d.py": (
            "from airflow.sdk import dag\nfrom trilha import params\nfrom trilha.assets import TAGS\n"
            "from trilha.operators.ingest import X\nfrom trilha import hooks\n"
            "from trilha.domain.keys import join_key\nimport pyarrow\n"
        ),
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    problems = layout_problems(tmp_path)
    where = sorted({p.split(": ", 1)[0] for p in problems})
    domain = [f"plugins/trilha/domain/bad.py:{n}" for n in (1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 13, 15, 17)]
    assert where == sorted(
        [
            "dags/d.py:5",
            "dags/d.py:6",
            "dags/d.py:7",
            *domain,
            "plugins/trilha/hooks/h.py:2",
            "plugins/trilha/operators/o.py:3",
            "plugins/trilha/operators/o.py:4",
        ]
    ), problems
    assert "plugins/trilha/domain/bad.py:11: reads the environment (.environ)" in problems
    assert "plugins/trilha/domain/bad.py:9: calls open()" in problems
    assert "dags/d.py:5: imports trilha.hooks" in problems
