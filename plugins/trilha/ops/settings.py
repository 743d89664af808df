"""Load ``airflow_settings.yaml`` (Astro CLI format) into an Airflow installation.

The file holds the local defaults: connections, variables and pools. :func:`parse_settings` validates
it strictly (every error names the entry and the field); :func:`apply_settings` applies it through
Airflow's own CLI (``airflow connections|variables|pools import``), so it works the same against the
local SQLite metadata database and against the compose deployment's Postgres.

Placeholders in the file give way to real values: when ``AIRFLOW_CONN_<CONN_ID>`` is set in the
environment (the local stack writes them; compose passes them from ``.env``), its fields take
precedence over the file's for that connection. Secrets therefore never need to be in the file.

``python -m trilha.ops.settings [--file airflow_settings.yaml] [--check]``
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from trilha import config
from trilha.exceptions import SettingsError

CONN_FIELDS = {
    "conn_id",
    "conn_type",
    "conn_host",
    "conn_schema",
    "conn_login",
    "conn_password",
    "conn_port",
    "conn_extra",
    "conn_description",
    "conn_uri",
}
POOL_FIELDS = {"pool_name", "pool_slot", "pool_description", "include_deferred"}
VARIABLE_FIELDS = {"variable_name", "variable_value"}
TOP_FIELDS = {"connections", "pools", "variables"}


@dataclass
class Settings:
    connections: dict[str, dict[str, Any]] = field(default_factory=dict)
    variables: dict[str, str] = field(default_factory=dict)
    pools: dict[str, dict[str, Any]] = field(default_factory=dict)


def default_path() -> Path:
    return config.repo_root() / "airflow_settings.yaml"


def _entries(section: Any, name: str, source: str) -> list[dict[str, Any]]:
    if section is None:
        return []
    if not isinstance(section, list):
        raise SettingsError(f"{source}: airflow.{name}: expected a list, got {type(section).__name__}")
    for i, entry in enumerate(section):
        if not isinstance(entry, dict):
            raise SettingsError(f"{source}: airflow.{name}[{i}]: expected a mapping, got {entry!r}")
    return section


def _check_fields(entry: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(entry) - allowed)
    if unknown:
        raise SettingsError(f"{where}: unknown field {unknown[0]!r}; expected one of {sorted(allowed)}")


def _int(value: Any, where: str, field_name: str) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise SettingsError(f"{where}: {field_name}: expected an integer, got {value!r}")
    try:
        return int(value)
    except ValueError:
        raise SettingsError(f"{where}: {field_name}: expected an integer, got {value!r}") from None


def parse_settings(text: str, source: str = "airflow_settings.yaml") -> Settings:
    """Validate the YAML text and return the settings, or raise :class:`SettingsError`."""
    try:
        doc = yaml.safe_load(text) or {}
    except yaml.YAMLError as err:
        raise SettingsError(f"{source}: not valid YAML: {err}") from None
    # An empty ``airflow:`` section (YAML null) is an empty mapping, as in Astro's own template.
    if not isinstance(doc, dict) or not isinstance(doc.get("airflow") or {}, dict):
        raise SettingsError(f"{source}: expected a top-level 'airflow:' mapping")
    airflow = doc.get("airflow") or {}
    _check_fields(airflow, TOP_FIELDS, f"{source}: airflow")
    settings = Settings()

    for i, entry in enumerate(_entries(airflow.get("connections"), "connections", source)):
        where = f"{source}: airflow.connections[{i}]"
        conn_id = entry.get("conn_id")
        if not conn_id or not isinstance(conn_id, str):
            raise SettingsError(f"{where}: conn_id: expected a non-empty string, got {conn_id!r}")
        where += f" (conn_id {conn_id!r})"
        _check_fields(entry, CONN_FIELDS, where)
        if not entry.get("conn_type") and not entry.get("conn_uri"):
            raise SettingsError(f"{where}: conn_type: expected a connection type such as 'postgres'")
        extra = entry.get("conn_extra") or {}
        if isinstance(extra, str):
            try:
                extra = json.loads(extra) if extra.strip() else {}
            except json.JSONDecodeError:
                raise SettingsError(f"{where}: conn_extra: expected a mapping or JSON object") from None
        if not isinstance(extra, dict):
            raise SettingsError(f"{where}: conn_extra: expected a mapping, got {extra!r}")
        if conn_id in settings.connections:
            raise SettingsError(f"{where}: conn_id: {conn_id!r} is defined twice")
        settings.connections[conn_id] = {
            k: v
            for k, v in {
                "conn_type": entry.get("conn_type"),
                "host": entry.get("conn_host") or None,
                "schema": entry.get("conn_schema") or None,
                "login": entry.get("conn_login") or None,
                "password": entry.get("conn_password") or None,
                "port": _int(entry.get("conn_port"), where, "conn_port"),
                "description": entry.get("conn_description") or None,
                "extra": extra,
            }.items()
            if v is not None
        }

    for i, entry in enumerate(_entries(airflow.get("variables"), "variables", source)):
        where = f"{source}: airflow.variables[{i}]"
        name = entry.get("variable_name")
        if not name or not isinstance(name, str):
            raise SettingsError(f"{where}: variable_name: expected a non-empty string, got {name!r}")
        _check_fields(entry, VARIABLE_FIELDS, f"{where} ({name!r})")
        value = entry.get("variable_value")
        settings.variables[name] = value if isinstance(value, str) else json.dumps(value)

    for i, entry in enumerate(_entries(airflow.get("pools"), "pools", source)):
        where = f"{source}: airflow.pools[{i}]"
        name = entry.get("pool_name")
        if not name or not isinstance(name, str):
            raise SettingsError(f"{where}: pool_name: expected a non-empty string, got {name!r}")
        where += f" ({name!r})"
        _check_fields(entry, POOL_FIELDS, where)
        slots = _int(entry.get("pool_slot"), where, "pool_slot")
        if slots is None or slots < 0:
            raise SettingsError(f"{where}: pool_slot: expected a non-negative integer, got {slots!r}")
        settings.pools[name] = {
            "slots": slots,
            "description": str(entry.get("pool_description") or ""),
            "include_deferred": bool(entry.get("include_deferred", False)),
        }
    return settings


def load_settings(path: Path | None = None) -> Settings:
    path = path or default_path()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise SettingsError(f"{path}: cannot read: {err.strerror}") from None
    return parse_settings(text, str(path.name))


def with_environment_overrides(settings: Settings, environ: dict[str, str] | None = None) -> Settings:
    """Real values win over placeholders: ``AIRFLOW_CONN_<ID>`` JSON fields replace the file's."""
    environ = dict(os.environ if environ is None else environ)
    merged = Settings(dict(settings.connections), dict(settings.variables), dict(settings.pools))
    for conn_id, conn in settings.connections.items():
        raw = environ.get(f"AIRFLOW_CONN_{conn_id.upper()}")
        if not raw or not raw.lstrip().startswith("{"):
            continue
        try:
            override = json.loads(raw)
        except json.JSONDecodeError:
            raise SettingsError(f"AIRFLOW_CONN_{conn_id.upper()}: expected connection JSON") from None
        new = dict(conn)
        new.update({k: v for k, v in override.items() if v is not None})
        merged.connections[conn_id] = new
    return merged


def _airflow_cli(args: list[str]) -> None:
    local = Path(sys.executable).parent / "airflow"
    airflow = str(local) if local.exists() else (shutil.which("airflow") or "airflow")
    res = subprocess.run([airflow, *args], capture_output=True, text=True, check=False)  # noqa: S603  # nosec B603 - fixed argv, no shell
    if res.returncode != 0:
        # Airflow's CLI prints the failing entry; pass its last lines on, never the file itself.
        raise SettingsError(f"airflow {' '.join(args[:2])} failed: {res.stderr.strip()[-800:]}")


def apply_settings(settings: Settings) -> dict[str, int]:
    """Apply to the Airflow installation configured in the environment (``AIRFLOW_HOME`` etc.)."""
    with tempfile.TemporaryDirectory(prefix="trilha-settings-") as tmp:
        conns = {
            cid: {**c, "extra": json.dumps(c.get("extra") or {})} for cid, c in settings.connections.items()
        }
        files = {
            "connections": (Path(tmp) / "connections.json", conns),
            "variables": (Path(tmp) / "variables.json", settings.variables),
            "pools": (Path(tmp) / "pools.json", settings.pools),
        }
        for path, payload in files.values():
            path.write_text(json.dumps(payload))
            os.chmod(path, 0o600)
        if conns:
            _airflow_cli(["connections", "import", "--overwrite", str(files["connections"][0])])
        if settings.variables:
            _airflow_cli(
                ["variables", "import", "--action-on-existing-key", "overwrite", str(files["variables"][0])]
            )
        if settings.pools:
            _airflow_cli(["pools", "import", str(files["pools"][0])])
    return {
        "connections": len(settings.connections),
        "variables": len(settings.variables),
        "pools": len(settings.pools),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trilha.ops.settings", description=__doc__.split("\n")[0])
    parser.add_argument("--file", type=Path, default=None)
    parser.add_argument("--check", action="store_true", help="validate only; apply nothing")
    args = parser.parse_args(argv)
    try:
        settings = with_environment_overrides(load_settings(args.file))
        if args.check:
            print(
                f"ok: {len(settings.connections)} connections, {len(settings.variables)} variables, "
                f"{len(settings.pools)} pools"
            )
            return 0
        counts = apply_settings(settings)
    except SettingsError as err:
        print(f"settings error: {err}", file=sys.stderr)
        return 2
    print("loaded " + ", ".join(f"{n} {k}" for k, n in counts.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
