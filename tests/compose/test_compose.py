"""docker-compose.yaml: the production stack, checked statically and by a real compose parser.

The static checks read the file with PyYAML (anchors and merge keys resolved). The parser checks run
Debian's ``docker-compose`` (v1.29), which validates and interpolates the file offline, with no
Docker engine. In CI (``CI=true`` or ``TRILHA_REQUIRE_SERVICES=1``) a missing binary is a failure.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from trilha import config
from trilha.hooks import migrations
from trilha.ops import bootstrap
from trilha.ops import settings as airflow_settings

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.yaml"
ENV_EXAMPLE = REPO / ".env.example"
DOCKERFILE = REPO / "docker" / "airflow" / "Dockerfile"

SECTION_START = "# ==== docker-compose deployment"
SECTION_END = "# ==== end of the docker-compose section"

#: A whole value that is one compose interpolation: ${VAR}, ${VAR:-default}, ${VAR:?message}.
INTERPOLATION = re.compile(r"^\$\{[A-Z_][A-Z0-9_]*(?::?[-?][^}]*)?\}$")
#: A compose variable reference; ``$${X}`` is an escaped dollar for the container's shell, not one.
VARIABLE = re.compile(r"(?<!\$)\$\{([A-Z_][A-Z0-9_]*)(?::?([-?])([^}]*))?\}")
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|CREDENTIAL|_KEY$", re.IGNORECASE)
URL_PASSWORD = re.compile(r"://[^:/@\s]*:([^@\s]*)@")

AIRFLOW_LONG_RUNNING = (
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
)


# --------------------------------------------------------------------------------------------------
# helpers


def load() -> dict[str, Any]:
    return dict(yaml.safe_load(COMPOSE.read_text()))


def services() -> dict[str, dict[str, Any]]:
    return dict(load()["services"])


def env_of(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def depends_on(service: dict[str, Any]) -> dict[str, str | None]:
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return dict.fromkeys(deps)
    return {name: (spec or {}).get("condition") for name, spec in deps.items()}


def one_shots(svcs: dict[str, dict[str, Any]]) -> set[str]:
    """Run-to-completion services: ``restart: "no"`` or awaited with service_completed_successfully."""
    shots = {name for name, s in svcs.items() if s.get("restart") == "no"}
    for s in svcs.values():
        shots |= {t for t, cond in depends_on(s).items() if cond == "service_completed_successfully"}
    return shots


def airflow_services(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    image = doc["x-airflow-common"]["image"]
    return {name: s for name, s in doc["services"].items() if s.get("image") == image}


def resolve_defaults(value: str) -> str:
    """Interpolate as compose would with an empty environment: defaults in, required ones marked."""
    return VARIABLE.sub(lambda m: m.group(3) if m.group(2) == "-" else f"<{m.group(1)}>", value)


def literal_secrets(node: Any, path: str = "") -> list[str]:
    """Every secret-looking value that is not an interpolation, as ``path: value``."""
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            where = f"{path}.{key}" if path else str(key)
            if isinstance(value, str | int) and SECRET_NAME.search(str(key)):
                text = str(value)
                if text and not INTERPOLATION.match(text):
                    found.append(f"{where}: {text}")
            found += literal_secrets(value, where)
    elif isinstance(node, list):
        for i, item in enumerate(node):
            if isinstance(item, str) and "=" in item:
                key, value = item.split("=", 1)
                found += literal_secrets({key: value}, f"{path}[{i}]")
            else:
                found += literal_secrets(item, f"{path}[{i}]")
    elif isinstance(node, str):
        for match in URL_PASSWORD.finditer(node):
            if match.group(1) and not INTERPOLATION.match(match.group(1)):
                found.append(f"{path}: URL password {match.group(1)!r}")
    return found


def env_example_section() -> list[str]:
    text = ENV_EXAMPLE.read_text()
    assert SECTION_START in text, "the compose section of .env.example is missing"
    assert SECTION_END in text, "the compose section of .env.example is not closed"
    return text.split(SECTION_START, 1)[1].split(SECTION_END, 1)[0].splitlines()[1:]


def section_variables() -> dict[str, str]:
    out: dict[str, str] = {}
    for line in env_example_section():
        if line and not line.startswith("#"):
            name, value = line.split("=", 1)
            out[name.strip()] = value
    return out


def compose_text_without_comments() -> str:
    return "\n".join(line for line in COMPOSE.read_text().splitlines() if not line.lstrip().startswith("#"))


def compose_variables() -> dict[str, set[str]]:
    """Every variable the compose file reads, with the operators it is read with (``-``, ``?``, '')."""
    found: dict[str, set[str]] = {}
    for m in VARIABLE.finditer(compose_text_without_comments()):
        found.setdefault(m.group(1), set()).add(m.group(2) or "")
    return found


# --------------------------------------------------------------------------------------------------
# the checks' own checks: a scanner that cannot fail is not a test


def test_secret_scanner_flags_literals() -> None:
    doc = {
        "services": {
            "x": {
                "environment": {
                    "DB_PASSWORD": "hunter2",
                    "API_KEY": "${API_KEY:?set it}",
                    "URL": "postgres://u:hunter2@h/db",
                    "OK_URL": "postgres://u:${P:?}@h/db",
                    "BROKER": "redis://:@redis:6379/0",
                },
            },
            "y": {"environment": ["MINIO_ROOT_PASSWORD=minio123", "TOKEN=${T}"]},
        }
    }
    assert literal_secrets(doc) == [
        "services.x.environment.DB_PASSWORD: hunter2",
        "services.x.environment.URL: URL password 'hunter2'",
        "services.y.environment[0].MINIO_ROOT_PASSWORD: minio123",
    ]


def test_one_shot_detection() -> None:
    svcs = {
        "a": {"restart": "no"},
        "b": {"depends_on": {"c": {"condition": "service_completed_successfully"}}},
        "c": {},
        "d": {"restart": "always"},
    }
    assert one_shots(svcs) == {"a", "c"}


# --------------------------------------------------------------------------------------------------
# structure


def test_compose_spec_without_version_key() -> None:
    doc = load()
    assert "version" not in doc
    assert set(doc) == {"x-airflow-common", "services", "volumes"}


def test_official_airflow_layout_is_present() -> None:
    svcs = services()
    for name in (
        *AIRFLOW_LONG_RUNNING,
        "airflow-init",
        "redis",
        "postgres",
        "trilha-postgres",
        "minio",
        "mongo",
        "trilha-init",
    ):
        assert name in svcs, f"service {name} is missing"
    assert env_of(svcs["airflow-apiserver"])["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert svcs["airflow-worker"]["command"] == "celery worker"


def test_every_dependency_exists_and_waits_for_a_condition() -> None:
    svcs = services()
    for name, service in svcs.items():
        for target, condition in depends_on(service).items():
            assert target in svcs, f"{name} depends on {target}, which is not a service"
            assert target != name
            assert condition in ("service_healthy", "service_completed_successfully"), (
                f"{name} -> {target}: expected a health or completion condition, got {condition!r}"
            )


def test_conditions_match_the_kind_of_service() -> None:
    svcs = services()
    shots = one_shots(svcs)
    for name, service in svcs.items():
        for target, condition in depends_on(service).items():
            expected = "service_completed_successfully" if target in shots else "service_healthy"
            assert condition == expected, f"{name} -> {target}: expected {expected}, got {condition}"


def test_long_running_services_have_health_checks_and_one_shots_do_not_restart() -> None:
    svcs = services()
    shots = one_shots(svcs)
    assert shots == {"airflow-init", "trilha-init", "airflow-cli"}
    for name, service in svcs.items():
        if name in shots:
            assert service.get("restart") == "no", f"{name}: a one-shot must not be restarted"
            continue
        check = service.get("healthcheck") or {}
        assert check.get("test"), f"{name}: a long-running service needs a healthcheck"
        assert not check.get("disable")
        assert service.get("restart") == "always", f"{name}: expected restart: always"


def test_health_checks_are_the_official_ones() -> None:
    svcs = services()

    def check(name: str) -> str:
        test = svcs[name]["healthcheck"]["test"]
        return " ".join(test) if isinstance(test, list) else str(test)

    assert check("airflow-apiserver") == "CMD curl --fail http://localhost:8080/api/v2/version"
    assert check("airflow-scheduler") == "CMD curl --fail http://localhost:8974/health"
    assert check("airflow-dag-processor") == (
        'CMD-SHELL airflow jobs check --job-type DagProcessorJob --hostname "$${HOSTNAME}"'
    )
    assert check("airflow-triggerer") == (
        'CMD-SHELL airflow jobs check --job-type TriggererJob --hostname "$${HOSTNAME}"'
    )
    assert check("airflow-worker") == (
        "CMD-SHELL celery --app airflow.providers.celery.executors.celery_executor.app inspect ping "
        '-d "celery@$${HOSTNAME}"'
    )
    assert check("redis") == "CMD redis-cli ping"
    assert check("postgres") == "CMD pg_isready -U airflow"
    assert check("trilha-postgres").startswith("CMD pg_isready")
    assert "-U trilha" in check("trilha-postgres")
    assert check("minio") == "CMD mc ready local"
    assert "ping" in check("mongo")


def test_start_order_init_then_trilha_init_then_airflow() -> None:
    svcs = services()
    init = depends_on(svcs["trilha-init"])
    assert init["airflow-init"] == "service_completed_successfully"
    for dep in ("trilha-postgres", "minio", "mongo", "postgres", "redis"):
        assert init[dep] == "service_healthy"
    for name in AIRFLOW_LONG_RUNNING:
        deps = depends_on(svcs[name])
        assert deps.get("trilha-init") == "service_completed_successfully", name
        assert deps.get("airflow-init") == "service_completed_successfully", name
    assert depends_on(svcs["airflow-worker"])["airflow-apiserver"] == "service_healthy"


def test_airflow_init_migrates_and_creates_the_admin() -> None:
    service = services()["airflow-init"]
    env = env_of(service)
    assert env["_AIRFLOW_DB_MIGRATE"] == "true"
    assert env["_AIRFLOW_WWW_USER_CREATE"] == "true"
    assert env["_AIRFLOW_WWW_USER_USERNAME"].startswith("${AIRFLOW_ADMIN_USERNAME:?")
    assert env["_AIRFLOW_WWW_USER_PASSWORD"].startswith("${AIRFLOW_ADMIN_PASSWORD:?")
    assert "/entrypoint airflow version" in service["command"][-1]


def test_trilha_init_runs_the_bootstrap_with_what_it_needs() -> None:
    svcs = services()
    service = svcs["trilha-init"]
    assert service["command"] == ["python", "-m", "trilha.ops.bootstrap"]
    env = env_of(service)
    for name in (*bootstrap.APP_ENV, *bootstrap.ROOT_ENV):
        assert env.get(name, "").startswith(f"${{{name}:?"), f"trilha-init: {name} must come from .env"
    # With those variables (and nothing else) the bootstrap builds every connection, aimed at the
    # services of this file.
    values = {name: f"value-of-{name.lower()}" for name in env}
    conns = {k: json.loads(v) for k, v in bootstrap.connections_from_env(values).items()}
    assert conns["AIRFLOW_CONN_TRILHA_POSTGRES"]["host"] in svcs
    assert conns["AIRFLOW_CONN_TRILHA_MONGO"]["host"] in svcs
    endpoint = urlsplit(conns["AIRFLOW_CONN_TRILHA_MINIO"]["extra"]["endpoint_url"])
    assert endpoint.hostname in svcs
    # MinIO's S3 API listens on 9000 in its container (the port its service publishes as target).
    assert endpoint.port == 9000
    assert [p.rsplit(":", 1)[1] for p in svcs["minio"]["ports"]] == ["9000", "9001"]
    assert conns["AIRFLOW_CONN_TRILHA_POSTGRES"]["host"] == "trilha-postgres"
    assert conns["AIRFLOW_CONN_TRILHA_MINIO"]["extra"]["endpoint_url"] == "http://minio:9000"


def test_connection_hosts_are_the_right_servers() -> None:
    """The audit connection goes to trilha-postgres, Airflow's metadata to postgres: never crossed."""
    svcs = services()
    airflow_env = env_of(svcs["airflow-scheduler"])
    assert (
        urlsplit(resolve_defaults(airflow_env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])).hostname == "postgres"
    )
    assert urlsplit(resolve_defaults(airflow_env["AIRFLOW__CELERY__RESULT_BACKEND"])).hostname == "postgres"
    assert env_of(svcs["trilha-postgres"])["POSTGRES_DB"] == "trilha"
    assert env_of(svcs["postgres"])["POSTGRES_DB"] == "airflow"
    assert env_of(svcs["trilha-postgres"])["POSTGRES_PASSWORD"].startswith("${TRILHA_DB_PASSWORD:?")
    assert env_of(svcs["postgres"])["POSTGRES_PASSWORD"].startswith("${AIRFLOW_DB_PASSWORD:?")
    assert svcs["minio"]["command"][:2] == ["server", "/data"]
    assert "9000:9000" in resolve_defaults(" ".join(svcs["minio"]["ports"]))
    assert "9001:9001" in resolve_defaults(" ".join(svcs["minio"]["ports"]))


# --------------------------------------------------------------------------------------------------
# environment


def test_every_airflow_service_shares_jwt_secret_and_execution_api() -> None:
    doc = load()
    af = airflow_services(doc)
    assert set(af) >= {*AIRFLOW_LONG_RUNNING, "airflow-init", "trilha-init"}
    secrets = set()
    for name, service in af.items():
        env = env_of(service)
        assert (
            env.get("AIRFLOW__CORE__EXECUTION_API_SERVER_URL") == "http://airflow-apiserver:8080/execution/"
        ), name
        assert env.get("AIRFLOW__API_AUTH__JWT_SECRET", "").startswith("${AIRFLOW_JWT_SECRET:?"), name
        assert env.get("AIRFLOW__API__SECRET_KEY", "").startswith("${AIRFLOW_API_SECRET_KEY:?"), name
        assert env.get("AIRFLOW__CORE__FERNET_KEY", "").startswith("${AIRFLOW_FERNET_KEY:?"), name
        assert env.get("TRILHA_HOME") == "/opt/airflow", name
        assert "/opt/airflow/plugins" in env.get("PYTHONPATH", "").split(":"), name
        assert "_PIP_ADDITIONAL_REQUIREMENTS" not in env, name
        secrets.add(env["AIRFLOW__API_AUTH__JWT_SECRET"])
    assert len(secrets) == 1
    # The execution API URL points at the api-server service, on the port it listens on.
    ports = [resolve_defaults(p) for p in doc["services"]["airflow-apiserver"]["ports"]]
    assert [p.rsplit(":", 1)[1] for p in ports] == ["8080"]


def test_airflow_services_mount_dags_plugins_include_and_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    doc = load()
    for name, service in airflow_services(doc).items():
        mounts = {}
        for volume in service["volumes"]:
            source, target = volume.split(":")[:2]
            mounts[target] = source
        assert mounts.get("/opt/airflow/dags") == "./dags", name
        assert mounts.get("/opt/airflow/plugins") == "./plugins", name
        assert mounts.get("/opt/airflow/include") == "./include", name
        assert mounts.get("/opt/airflow/airflow_settings.yaml") == "./airflow_settings.yaml", name
        # And trilha.config, given the TRILHA_HOME of the container, finds exactly those mounts.
        monkeypatch.setenv("TRILHA_HOME", env_of(service)["TRILHA_HOME"])
        assert str(config.include_dir()) in mounts
        assert str(airflow_settings.default_path()) in mounts
        assert str(migrations.migrations_dir()).startswith(str(config.include_dir()) + "/")


def test_root_credentials_stay_in_the_init_and_their_servers() -> None:
    """Least privilege: Airflow's long-running containers never see a root or application secret."""
    svcs = services()
    allowed = {
        "MINIO_ROOT_USER": {"minio", "trilha-init"},
        "MINIO_ROOT_PASSWORD": {"minio", "trilha-init"},
        "MONGO_ROOT_USER": {"mongo", "trilha-init"},
        "MONGO_ROOT_PASSWORD": {"mongo", "trilha-init"},
        "TRILHA_MINIO_ACCESS_KEY": {"trilha-init"},
        "TRILHA_MINIO_SECRET_KEY": {"trilha-init"},
        "TRILHA_MONGO_PASSWORD": {"trilha-init"},
        "TRILHA_DB_PASSWORD": {"trilha-postgres", "trilha-init"},
    }
    for name, service in svcs.items():
        used = {m.group(1) for value in env_of(service).values() for m in VARIABLE.finditer(value)}
        for variable, services_allowed in allowed.items():
            if variable in used:
                assert name in services_allowed, f"{name} must not receive {variable}"
    for name in AIRFLOW_LONG_RUNNING:
        env = env_of(svcs[name])
        assert not [k for k in env if k.startswith("AIRFLOW_CONN_")], (
            f"{name}: connections come from Airflow's database, loaded by trilha-init"
        )


def test_no_literal_secrets_anywhere() -> None:
    assert literal_secrets(load()) == []
    text = compose_text_without_comments()
    # Nothing resembling the seeds' hard-coded credentials or compose's tutorial defaults.
    for literal in ("senhasegura", "minioadmin", "airflow:airflow@", "changeme"):
        assert literal not in text


def test_images_are_pinned() -> None:
    for name, service in services().items():
        image = resolve_defaults(service.get("image", ""))
        assert image, f"{name}: no image"
        repository, _, tag = image.rpartition(":")
        assert repository, f"{name}: expected an image tag, got {image!r}"
        assert "/" not in tag, f"{name}: expected an image tag, got {image!r}"
        assert tag not in ("latest", "edge", "main"), f"{name}: {image!r} is not pinned"
    svcs = services()
    assert svcs["minio"]["image"] == "minio/minio:RELEASE.2025-04-22T22-12-26Z"
    assert svcs["redis"]["image"] == "redis:7.2-bookworm"
    assert svcs["postgres"]["image"] == svcs["trilha-postgres"]["image"] == "postgres:16"
    assert svcs["mongo"]["image"] == "mongo:7.0"


def test_stateful_services_keep_data_in_named_volumes() -> None:
    doc = load()
    declared = set(doc["volumes"])
    expected = {
        "postgres": "/var/lib/postgresql/data",
        "trilha-postgres": "/var/lib/postgresql/data",
        "minio": "/data",
        "mongo": "/data/db",
    }
    sources = {}
    for name, target in expected.items():
        mounts = {v.split(":")[1]: v.split(":")[0] for v in doc["services"][name]["volumes"]}
        assert mounts.get(target) in declared, f"{name}: {target} must be a named volume"
        sources[name] = mounts[target]
    assert len(set(sources.values())) == len(sources), "each server needs its own volume"
    assert "airflow-logs" in declared


def test_workers_can_be_scaled() -> None:
    worker = services()["airflow-worker"]
    assert "container_name" not in worker
    assert "ports" not in worker
    assert env_of(worker)["DUMB_INIT_SETSID"] == "0"


# --------------------------------------------------------------------------------------------------
# image


def test_dockerfile_extends_the_pinned_official_image_with_requirements() -> None:
    text = DOCKERFILE.read_text()
    args = dict(re.findall(r"^ARG (\w+)=(\S+)$", text, re.MULTILINE))
    assert args["AIRFLOW_IMAGE"] == "apache/airflow:3.3.2"
    assert args["MC_IMAGE"] == "minio/mc:RELEASE.2025-04-16T18-13-26Z"
    froms = re.findall(r"^FROM (\S+)", text, re.MULTILINE)
    assert froms == ["${MC_IMAGE}", "${AIRFLOW_IMAGE}"]
    assert "COPY requirements.txt /requirements.txt" in text
    assert 'pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" -r /requirements.txt' in text
    assert "COPY --from=mc /usr/bin/mc /usr/local/bin/mc" in text
    build = load()["x-airflow-common"]["build"]
    assert (build["context"], build["dockerfile"]) == (".", "docker/airflow/Dockerfile")
    ignore = [line for line in (REPO / ".dockerignore").read_text().splitlines() if not line.startswith("#")]
    assert ignore == ["*", "!requirements.txt"]
    assert "_PIP_ADDITIONAL_REQUIREMENTS" not in compose_text_without_comments()


def test_airflow_version_agrees_between_dockerfile_requirements_and_image_tag() -> None:
    """Upgrading Airflow means changing three places together; this catches the one forgotten."""
    pins = dict(
        line.split("==", 1) for line in (REPO / "requirements.txt").read_text().splitlines() if "==" in line
    )
    base = dict(re.findall(r"^ARG (\w+)=(\S+)$", DOCKERFILE.read_text(), re.MULTILINE))["AIRFLOW_IMAGE"]
    image = resolve_defaults(load()["x-airflow-common"]["image"])
    version = pins["apache-airflow"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", version)
    assert base == f"apache/airflow:{version}"
    assert image.endswith(f":{version}")


# --------------------------------------------------------------------------------------------------
# .env.example


def test_env_example_documents_every_compose_variable_without_values() -> None:
    documented = section_variables()
    used = compose_variables()
    assert set(used) == set(documented), (
        f"undocumented: {sorted(set(used) - set(documented))}, unused: {sorted(set(documented) - set(used))}"
    )
    assert {k: v for k, v in documented.items() if v.strip()} == {}, ".env.example must hold no values"
    # Every variable line is explained by a comment above it (directly or in its group).
    explained = False
    for line in env_example_section():
        if line.startswith("#"):
            explained = True
        elif not line.strip():
            explained = False
        else:
            assert explained, f".env.example: {line} has no comment"


def test_required_variables_cover_every_secret() -> None:
    used = compose_variables()
    required = {name for name, ops in used.items() if "?" in ops}
    assert required == {
        "AIRFLOW_ADMIN_USERNAME",
        "AIRFLOW_ADMIN_PASSWORD",
        "AIRFLOW_JWT_SECRET",
        "AIRFLOW_API_SECRET_KEY",
        "AIRFLOW_FERNET_KEY",
        "AIRFLOW_DB_PASSWORD",
        "TRILHA_DB_PASSWORD",
        "MINIO_ROOT_USER",
        "MINIO_ROOT_PASSWORD",
        "TRILHA_MINIO_ACCESS_KEY",
        "TRILHA_MINIO_SECRET_KEY",
        "MONGO_ROOT_USER",
        "MONGO_ROOT_PASSWORD",
        "TRILHA_MONGO_PASSWORD",
    }
    # Optional ones always have a default, so an empty line in .env is harmless.
    for name, ops in used.items():
        assert ops <= ({"?"} if name in required else {"-"}), f"{name} is read as {ops}"


# --------------------------------------------------------------------------------------------------
# a real compose parser (offline)


@pytest.fixture
def docker_compose() -> str:
    binary = shutil.which("docker-compose")
    if binary is None:
        reason = "docker-compose (Debian package docker-compose, v1.29) is not installed"
        if os.environ.get("CI") == "true" or os.environ.get("TRILHA_REQUIRE_SERVICES") == "1":
            pytest.fail(f"{reason}; CI needs it: apt-get install -y docker-compose")
        pytest.skip(f"{reason}; install it to validate docker-compose.yaml offline")
    return binary


@pytest.fixture
def dummy_env(tmp_path: Path) -> Path:
    """The .env.example compose section with placeholder, non-secret values for required variables."""
    required = {name for name, ops in compose_variables().items() if "?" in ops}
    lines = [f"{name}=dummy-{name.lower().replace('_', '-')}" for name in sorted(required)]
    lines.append("AIRFLOW_UID=50000")
    path = tmp_path / "compose.env"
    path.write_text("\n".join(lines) + "\n")
    return path


def run_compose(binary: str, env_file: Path, *args: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    # A clean environment: variables of the caller's shell would override the env file.
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path)}
    return subprocess.run(
        [binary, "-f", str(COMPOSE), "--env-file", str(env_file), *args],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        cwd=REPO,
        timeout=120,
    )


def test_compose_parser_accepts_the_file(docker_compose: str, dummy_env: Path, tmp_path: Path) -> None:
    res = run_compose(docker_compose, dummy_env, "config", "-q", tmp_path=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "WARNING" not in res.stderr, res.stderr


def test_compose_resolves_to_the_intended_stack(docker_compose: str, dummy_env: Path, tmp_path: Path) -> None:
    res = run_compose(docker_compose, dummy_env, "config", tmp_path=tmp_path)
    assert res.returncode == 0, res.stderr
    resolved = yaml.safe_load(res.stdout)
    assert set(resolved["services"]) == set(services())
    for name, service in resolved["services"].items():
        assert depends_on(service) == depends_on(services()[name]), name
    scheduler = resolved["services"]["airflow-scheduler"]["environment"]
    assert scheduler["AIRFLOW__API_AUTH__JWT_SECRET"] == "dummy-airflow-jwt-secret"
    assert scheduler["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == (
        "postgresql+psycopg2://airflow:dummy-airflow-db-password@postgres/airflow"
    )
    ports = resolved["services"]["trilha-postgres"]["ports"]
    assert ports == ["127.0.0.1:5433:5432/tcp"]
    assert resolved["services"]["airflow-worker"]["user"] == "50000:0"
    assert set(resolved["volumes"]) == set(load()["volumes"])


def test_compose_refuses_to_start_without_the_secrets(docker_compose: str, tmp_path: Path) -> None:
    """.env.example as shipped has no values: compose must stop and name what is missing."""
    res = run_compose(docker_compose, ENV_EXAMPLE, "config", "-q", tmp_path=tmp_path)
    assert res.returncode != 0
    assert re.search(r"set [A-Z_]+ in \.env", res.stderr), res.stderr
