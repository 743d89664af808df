"""One-shot bootstrap of the docker-compose deployment: ``python -m trilha.ops.bootstrap``.

The ``trilha-init`` service runs this once the services are healthy and Airflow's own database is
migrated, and the scheduler, dag-processor, triggerer and workers start only after it has exited 0.
Every step is idempotent, so ``docker compose up`` after an upgrade or a password change simply runs
it again. The steps, in order:

1. **buckets**: create Trilha's buckets in MinIO (as MinIO's root user, which only this container
   holds);
2. **minio-user**: create or update the *least-privilege* MinIO user Airflow works as, with a policy
   that grants the object actions Trilha needs on Trilha's buckets and nothing else (``mc admin``);
3. **migrate**: bring the audit database to the current schema (:func:`trilha.hooks.migrations.migrate`);
4. **mongo-user**: create or update the MongoDB user of the run log, ``readWrite`` on its database;
5. **settings**: load ``airflow_settings.yaml`` into Airflow with the same loader as local runs, the
   placeholder connections replaced by the real ones built from ``.env`` by :func:`connections_from_env`.
   Those three are always rewritten (``.env`` is their truth); any other connection, variable or pool
   is loaded only if Airflow does not have it yet, so what the deployer set in the UI stays.

The connections it stores name the compose services (``trilha-postgres``, ``minio``, ``mongo``); the
``TRILHA_DB_HOST``-style variables below exist so the tests can aim the same code at the local stack.
Whatever the init verified is what it stores: both read the same variables.

``python -m trilha.ops.bootstrap [--steps buckets,minio-user,migrate,mongo-user,settings]``
``[--settings-file F]``
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

from trilha import config
from trilha.exceptions import MigrationError, SettingsError, TrilhaError
from trilha.ops.settings import Settings, apply_settings, load_settings, with_environment_overrides

log = logging.getLogger(__name__)

T = TypeVar("T")

STEPS = ("buckets", "minio-user", "migrate", "mongo-user", "settings")

#: Compose service names: the hosts the stored connections point at.
POSTGRES_SERVICE = "trilha-postgres"
MINIO_ENDPOINT = "http://minio:9000"
MONGO_SERVICE = "mongo"

#: The variables trilha-init needs from ``.env``: the application's credentials (which make up
#: Airflow's connections) and the root ones, which only trilha-init sees.
APP_ENV = (
    "TRILHA_DB_PASSWORD",
    "TRILHA_MINIO_ACCESS_KEY",
    "TRILHA_MINIO_SECRET_KEY",
    "TRILHA_MONGO_PASSWORD",
)
ROOT_ENV = ("MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD", "MONGO_ROOT_USER", "MONGO_ROOT_PASSWORD")

#: The policy and the ``mc`` alias this bootstrap manages in MinIO.
POLICY_NAME = "trilha-airflow"
MC_ALIAS = "trilha"

# What the Airflow user may do, and nothing more. Bucket-level: find and list the buckets (HeadBucket
# is authorised as ListBucket) and clean up multipart uploads that a killed task left behind.
# Object-level: streamed reads, multipart writes, server-side copies (GetObject on the source plus
# PutObject on the target) and the verified deletes of reception_cleanup. No bucket creation or
# deletion, no bucket policy, no versioning or lifecycle changes: those stay with the root user.
# A hook that starts using another action (tagging, say) must add it here.
BUCKET_ACTIONS = ("s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads")
OBJECT_ACTIONS = (
    "s3:GetObject",
    "s3:PutObject",
    "s3:DeleteObject",
    "s3:AbortMultipartUpload",
    "s3:ListMultipartUploadParts",
)

# S3 bucket naming rules (the subset MinIO enforces): 3-63 of [a-z0-9.-], alphanumeric at both ends.
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


class BootstrapError(TrilhaError):
    """A bootstrap step cannot proceed; the message names the step, the variable or the command."""


# --------------------------------------------------------------------------------------------------
# environment


@dataclass(frozen=True)
class ComposeEnv:
    """The deployment's endpoints and credentials, read from the environment (``.env``)."""

    db_host: str
    db_port: int
    db_name: str
    db_user: str
    db_password: str
    s3_endpoint: str
    minio_access_key: str
    minio_secret_key: str
    mongo_host: str
    mongo_port: int
    mongo_database: str
    mongo_user: str
    mongo_password: str


def _require(environ: Mapping[str, str], names: Iterable[str]) -> dict[str, str]:
    """The values of ``names``; every missing or empty one is reported at once."""
    values = {name: environ.get(name, "") for name in names}
    missing = [name for name, value in values.items() if not value]
    if missing:
        raise BootstrapError(
            f"expected {', '.join(missing)} to be set (see the compose section of .env.example), got nothing"
        )
    return values


def _port(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = environ.get(name) or str(default)
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise BootstrapError(f"{name}: expected a TCP port number, got {raw!r}")
    return int(raw)


def read_env(environ: Mapping[str, str]) -> ComposeEnv:
    """The application side of the deployment: what Airflow's connections are made of."""
    required = _require(environ, APP_ENV)
    endpoint = environ.get("TRILHA_S3_ENDPOINT") or MINIO_ENDPOINT
    if urlsplit(endpoint).scheme not in ("http", "https") or not urlsplit(endpoint).hostname:
        raise BootstrapError(f"TRILHA_S3_ENDPOINT: expected http(s)://host:port, got {endpoint!r}")
    return ComposeEnv(
        db_host=environ.get("TRILHA_DB_HOST") or POSTGRES_SERVICE,
        db_port=_port(environ, "TRILHA_DB_PORT", 5432),
        db_name=environ.get("TRILHA_DB_NAME") or "trilha",
        db_user=environ.get("TRILHA_DB_USER") or "trilha",
        db_password=required["TRILHA_DB_PASSWORD"],
        s3_endpoint=endpoint,
        minio_access_key=required["TRILHA_MINIO_ACCESS_KEY"],
        minio_secret_key=required["TRILHA_MINIO_SECRET_KEY"],
        mongo_host=environ.get("TRILHA_MONGO_HOST") or MONGO_SERVICE,
        mongo_port=_port(environ, "TRILHA_MONGO_PORT", 27017),
        mongo_database=environ.get("TRILHA_MONGO_DATABASE") or config.MONGO_DATABASE,
        mongo_user=environ.get("TRILHA_MONGO_USER") or "trilha",
        mongo_password=required["TRILHA_MONGO_PASSWORD"],
    )


def connections_from_env(environ: Mapping[str, str]) -> dict[str, str]:
    """``AIRFLOW_CONN_<ID>`` JSON for Trilha's Postgres, MinIO and MongoDB connections.

    Hosts are the compose service names unless overridden; credentials are the least-privilege
    ones (never MinIO's or MongoDB's root). The S3 extra is the one every Trilha S3 connection uses.
    """
    env = read_env(environ)
    conns: dict[str, dict[str, Any]] = {
        config.POSTGRES_CONN_ID: {
            "conn_type": "postgres",
            "host": env.db_host,
            "port": env.db_port,
            "login": env.db_user,
            "password": env.db_password,
            "schema": env.db_name,
        },
        config.S3_CONN_ID: {
            "conn_type": "aws",
            "login": env.minio_access_key,
            "password": env.minio_secret_key,
            "extra": config.s3_connection_extra(env.s3_endpoint),
        },
        config.MONGO_CONN_ID: {
            "conn_type": "mongo",
            "host": env.mongo_host,
            "port": env.mongo_port,
            "login": env.mongo_user,
            "password": env.mongo_password,
            "schema": env.mongo_database,
            # The user lives in the run-log database itself, so that is where it authenticates.
            "extra": {"srv": False, "authSource": env.mongo_database},
        },
    }
    return {f"AIRFLOW_CONN_{conn_id.upper()}": json.dumps(conn) for conn_id, conn in conns.items()}


# --------------------------------------------------------------------------------------------------
# buckets


def validate_buckets(buckets: Iterable[str]) -> list[str]:
    """The bucket names, de-duplicated in order; a name S3 would refuse is an error here."""
    out: list[str] = []
    for name in buckets:
        if not _BUCKET_RE.match(name) or ".." in name:
            raise BootstrapError(f"bucket {name!r}: expected 3-63 characters of a-z, 0-9, '.', '-'")
        if name not in out:
            out.append(name)
    if not out:
        raise BootstrapError("expected at least one bucket, got none")
    return out


def buckets_from_settings(settings: Settings) -> list[str]:
    """Trilha's buckets: the ``trilha_bucket_*`` Variables of the settings file, else the defaults."""
    defaults = config.default_buckets()
    return validate_buckets(
        settings.variables.get(f"trilha_{key}") or default for key, default in defaults.items()
    )


def ensure_buckets(s3_client: Any, buckets: Iterable[str]) -> list[str]:
    """Create the buckets that do not exist yet; return the names created by this call."""
    from trilha.hooks.s3_admin import NO_BUCKET_CODES, error_code

    created: list[str] = []
    for bucket in validate_buckets(buckets):
        try:
            s3_client.head_bucket(Bucket=bucket)
            continue
        except Exception as err:
            code = error_code(err)
            if code is None:
                raise
            if code not in NO_BUCKET_CODES:
                raise BootstrapError(f"bucket {bucket!r}: HeadBucket failed with {code}: {err}") from err
        try:
            s3_client.create_bucket(Bucket=bucket)
        except Exception as err:
            # Another bootstrap created it between our HEAD and CREATE: that is the goal reached.
            if error_code(err) != "BucketAlreadyOwnedByYou":
                if error_code(err) is None:
                    raise
                raise BootstrapError(f"bucket {bucket!r}: CreateBucket failed: {err}") from err
            continue
        log.info("created bucket %s", bucket)
        created.append(bucket)
    return created


def s3_admin_client(endpoint: str, access_key: str, secret_key: str) -> Any:
    """A boto3 S3 client configured like Trilha's connections (:func:`trilha.hooks.s3_admin.s3_client`)."""
    from trilha.hooks.s3_admin import s3_client

    return s3_client(endpoint, access_key, secret_key, max_attempts=5)


# --------------------------------------------------------------------------------------------------
# the least-privilege MinIO user


def minio_policy(buckets: Iterable[str]) -> dict[str, Any]:
    """The IAM policy document of the Airflow user: Trilha's buckets only, the needed actions only."""
    names = validate_buckets(buckets)
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "TrilhaBuckets",
                "Effect": "Allow",
                "Action": list(BUCKET_ACTIONS),
                "Resource": [f"arn:aws:s3:::{b}" for b in names],
            },
            {
                "Sid": "TrilhaObjects",
                "Effect": "Allow",
                "Action": list(OBJECT_ACTIONS),
                "Resource": [f"arn:aws:s3:::{b}/*" for b in names],
            },
        ],
    }


@dataclass(frozen=True)
class McStep:
    """One ``mc`` invocation. ``stdin`` carries secrets, so they never appear in a process list."""

    what: str
    argv: tuple[str, ...]
    stdin: str | None = None


def mc_env(endpoint: str, root_user: str, root_password: str, alias: str = MC_ALIAS) -> dict[str, str]:
    """``MC_HOST_<alias>``: mc's way to take an alias's credentials from the environment.

    It keeps the root credentials out of argv and out of any mc config file on disk.
    """
    parts = urlsplit(endpoint)
    userinfo = f"{quote(root_user, safe='')}:{quote(root_password, safe='')}"
    return {f"MC_HOST_{alias}": f"{parts.scheme}://{userinfo}@{parts.netloc}"}


def mc_user_steps(
    access_key: str, secret_key: str, policy_path: str, alias: str = MC_ALIAS, policy_name: str = POLICY_NAME
) -> list[McStep]:
    """Create (or replace) the policy, create the user (or reset its secret), then read what it has."""
    return [
        McStep("create policy", ("mc", "admin", "policy", "create", alias, policy_name, policy_path)),
        # With only the alias, mc reads the access key then the secret key from stdin.
        McStep("add user", ("mc", "admin", "user", "add", alias), stdin=f"{access_key}\n{secret_key}\n"),
        McStep("user info", ("mc", "--json", "admin", "user", "info", alias, access_key)),
    ]


def mc_policy_steps(
    access_key: str, attached: Iterable[str], alias: str = MC_ALIAS, policy_name: str = POLICY_NAME
) -> list[McStep]:
    """Make Trilha's policy the user's only one.

    ``mc admin policy attach`` fails when the policy is already attached, so it is issued only when
    needed; any other policy someone attached by hand is detached, or the user would not be
    least-privilege any more.
    """
    attached = set(attached)
    steps: list[McStep] = []
    if policy_name not in attached:
        steps.append(
            McStep(
                "attach policy", ("mc", "admin", "policy", "attach", alias, policy_name, "--user", access_key)
            )
        )
    others = sorted(attached - {policy_name})
    if others:
        steps.append(
            McStep(
                "detach other policies",
                ("mc", "admin", "policy", "detach", alias, *others, "--user", access_key),
            )
        )
    return steps


def attached_policies(user_info_json: str) -> set[str]:
    """The policies in ``mc --json admin user info`` output (``policyName`` is comma-separated)."""
    try:
        info = json.loads(user_info_json)
    except json.JSONDecodeError:
        raise BootstrapError(f"mc admin user info: expected JSON, got {user_info_json[:200]!r}") from None
    if not isinstance(info, dict) or info.get("status") != "success":
        raise BootstrapError(f"mc admin user info: expected status success, got {info!r}"[:300])
    return {p.strip() for p in str(info.get("policyName") or "").split(",") if p.strip()}


McRunner = Callable[[McStep], str]


def subprocess_mc_runner(env: Mapping[str, str]) -> McRunner:
    """Run steps with the ``mc`` binary; output is returned, never logged (``user add`` echoes keys)."""

    def run(step: McStep) -> str:
        # No input means an empty stdin, never the parent's: mc must not wait on a prompt.
        feed: dict[str, Any] = (
            {"input": step.stdin} if step.stdin is not None else {"stdin": subprocess.DEVNULL}
        )
        res = subprocess.run(  # noqa: S603  # nosec B603 - fixed argv built by mc_*_steps
            list(step.argv),
            **feed,
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, **env},
            timeout=120,
        )
        if res.returncode != 0:
            # mc's error names the problem (with --json it is on stdout). A step fed a secret may
            # echo it on stdout, so that step reports stderr only.
            said = res.stderr if step.stdin is not None else f"{res.stderr}\n{res.stdout}"
            raise BootstrapError(f"mc {step.what} failed (exit {res.returncode}): {said.strip()[-500:]}")
        return res.stdout

    return run


def ensure_minio_user(
    run: McRunner, buckets: Iterable[str], access_key: str, secret_key: str, root_user: str, workdir: Path
) -> set[str]:
    """Create or update Airflow's MinIO user and its policy; return the policies it had before.

    :param run: executes one :class:`McStep` and returns its stdout (see :func:`subprocess_mc_runner`).
    :param workdir: a private directory for the policy file.
    """
    if access_key == root_user:
        raise BootstrapError(
            "TRILHA_MINIO_ACCESS_KEY: expected a user other than MINIO_ROOT_USER, got the root user; "
            "Airflow must not work as MinIO's root"
        )
    # MinIO's own limits, checked here so the error names the variable instead of an mc message.
    if len(access_key) < 3 or len(secret_key) < 8:
        raise BootstrapError(
            "TRILHA_MINIO_ACCESS_KEY/TRILHA_MINIO_SECRET_KEY: expected at least 3 and 8 characters, got "
            f"{len(access_key)} and {len(secret_key)}"
        )
    policy_path = workdir / f"{POLICY_NAME}.json"
    policy_path.write_text(json.dumps(minio_policy(buckets), indent=2))
    before: set[str] = set()
    for step in mc_user_steps(access_key, secret_key, str(policy_path)):
        out = run(step)
        if step.what == "user info":
            before = attached_policies(out)
    for step in mc_policy_steps(access_key, before):
        run(step)
        log.info("minio user %s: %s", access_key, step.what)
    log.info(
        "minio user %s has policy %s on %s", access_key, POLICY_NAME, ", ".join(validate_buckets(buckets))
    )
    return before


# --------------------------------------------------------------------------------------------------
# MongoDB run-log user


def ensure_mongo_user(client: Any, database: str, user: str, password: str) -> str:
    """Create the run-log user (``readWrite`` on ``database`` only), or reset its password and roles.

    :param client: a ``pymongo.MongoClient`` authenticated as a user administrator.
    :return: ``"created"`` or ``"updated"``.
    """
    db = client[database]
    roles = [{"role": "readWrite", "db": database}]
    found = db.command("usersInfo", user).get("users", [])
    if found:
        db.command("updateUser", user, pwd=password, roles=roles)
        return "updated"
    db.command("createUser", user, pwd=password, roles=roles)
    return "created"


# --------------------------------------------------------------------------------------------------
# steps and main


def _retry(action: Callable[[], T], what: str, timeout: float, errors: tuple[type[BaseException], ...]) -> T:
    """Retry ``action`` until it succeeds or ``timeout`` passes.

    The database images answer their in-container health check while their first-start init server
    runs, then restart; a connection from another container can land in that gap.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            return action()
        except errors as err:
            if time.monotonic() >= deadline:
                raise BootstrapError(f"{what}: not reachable after {timeout:.0f}s: {err}") from err
            log.info("%s not ready yet (%s); retrying", what, type(err).__name__)
            time.sleep(2)


def step_buckets(environ: Mapping[str, str], buckets: Sequence[str]) -> list[str]:
    env = read_env(environ)
    root = _require(environ, ("MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD"))
    client = s3_admin_client(env.s3_endpoint, root["MINIO_ROOT_USER"], root["MINIO_ROOT_PASSWORD"])
    from botocore.exceptions import BotoCoreError

    return _retry(lambda: ensure_buckets(client, buckets), f"S3 at {env.s3_endpoint}", 60, (BotoCoreError,))


def step_minio_user(environ: Mapping[str, str], buckets: Sequence[str]) -> None:
    env = read_env(environ)
    root = _require(environ, ("MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD"))
    with tempfile.TemporaryDirectory(prefix="trilha-mc-") as tmp:
        # A private mc config directory: nothing of this run is left in the image's home.
        run = subprocess_mc_runner(
            {
                **mc_env(env.s3_endpoint, root["MINIO_ROOT_USER"], root["MINIO_ROOT_PASSWORD"]),
                "MC_CONFIG_DIR": str(Path(tmp) / "mc"),
            }
        )
        ensure_minio_user(
            run, buckets, env.minio_access_key, env.minio_secret_key, root["MINIO_ROOT_USER"], Path(tmp)
        )


def step_migrate(environ: Mapping[str, str]) -> list[str]:
    import psycopg2

    from trilha.hooks.migrations import migrate

    env = read_env(environ)
    conn = _retry(
        lambda: psycopg2.connect(
            host=env.db_host,
            port=env.db_port,
            dbname=env.db_name,
            user=env.db_user,
            password=env.db_password,
            connect_timeout=5,
        ),
        f"PostgreSQL at {env.db_host}:{env.db_port}",
        90,
        (psycopg2.OperationalError,),
    )
    try:
        applied = migrate(conn)
    finally:
        conn.close()
    log.info("audit schema: %s", ", ".join(applied) if applied else "already current")
    return applied


def step_mongo_user(environ: Mapping[str, str]) -> str:
    import pymongo
    from pymongo.errors import ConnectionFailure

    env = read_env(environ)
    root = _require(environ, ("MONGO_ROOT_USER", "MONGO_ROOT_PASSWORD"))
    client: Any = pymongo.MongoClient(
        host=env.mongo_host,
        port=env.mongo_port,
        username=root["MONGO_ROOT_USER"],
        password=root["MONGO_ROOT_PASSWORD"],
        authSource="admin",
        serverSelectionTimeoutMS=5000,
    )
    try:
        _retry(
            lambda: client.admin.command("ping"),
            f"MongoDB at {env.mongo_host}:{env.mongo_port}",
            90,
            (ConnectionFailure,),
        )
        outcome = ensure_mongo_user(client, env.mongo_database, env.mongo_user, env.mongo_password)
    finally:
        client.close()
    log.info("mongo user %s on %s: %s", env.mongo_user, env.mongo_database, outcome)
    return outcome


MANAGED_CONNECTIONS = (config.POSTGRES_CONN_ID, config.S3_CONN_ID, config.MONGO_CONN_ID)


@dataclass(frozen=True)
class AirflowState:
    """What Airflow's database already holds: connection ids, variables (with values), pool names."""

    connections: frozenset[str]
    variables: dict[str, str]
    pools: frozenset[str]


def settings_to_apply(settings: Settings, state: AirflowState) -> Settings:
    """The part of the settings file to load into an Airflow that already holds ``state``.

    The file holds defaults; once a deployment runs, Airflow is the truth. So only what Airflow does
    not have yet is loaded, and a Google connection, a variable or a pool size set in the UI
    survives every ``docker compose up``. The connections built from ``.env``
    (:data:`MANAGED_CONNECTIONS`) are the exception: ``.env`` is their truth, so they are always
    overwritten, and a password changed there reaches Airflow on the next start.
    """
    return Settings(
        connections={
            cid: conn
            for cid, conn in settings.connections.items()
            if cid in MANAGED_CONNECTIONS or cid not in state.connections
        },
        variables={k: v for k, v in settings.variables.items() if k not in state.variables},
        pools={k: v for k, v in settings.pools.items() if k not in state.pools},
    )


def effective_settings(settings: Settings, state: AirflowState | None) -> Settings:
    """The settings as Airflow will see them: its own variable values win over the file's."""
    if state is None:
        return settings
    return Settings(settings.connections, {**settings.variables, **state.variables}, settings.pools)


def _airflow_bin() -> str:
    # The CLI next to this interpreter (a venv), else the one on PATH (the image's ~/.local/bin).
    beside = Path(sys.executable).parent / "airflow"
    return str(beside) if beside.exists() else "airflow"


def _airflow_json(args: list[str]) -> Any:
    res = subprocess.run(  # noqa: S603  # nosec B603 - fixed arguments
        [_airflow_bin(), *args], capture_output=True, text=True, check=False, timeout=300
    )
    if res.returncode != 0:
        raise BootstrapError(f"airflow {' '.join(args[:2])} failed: {res.stderr.strip()[-800:]}")
    # Airflow may log before the JSON (unit-test mode does); the JSON is the line that opens with [.
    for line in res.stdout.splitlines():
        if line.startswith("["):
            return json.loads(line)
    raise BootstrapError(f"airflow {' '.join(args[:2])}: expected JSON, got {res.stdout[-300:]!r}")


def read_airflow_state() -> AirflowState:
    """Read, through Airflow's CLI, what the Airflow configured in the environment already holds."""
    connections = frozenset(str(c["conn_id"]) for c in _airflow_json(["connections", "list", "-o", "json"]))
    pools = frozenset(str(p["pool"]) for p in _airflow_json(["pools", "list", "-o", "json"]))
    with tempfile.TemporaryDirectory(prefix="trilha-vars-") as tmp:
        path = Path(tmp) / "variables.json"
        res = subprocess.run(  # noqa: S603  # nosec B603 - fixed arguments
            [_airflow_bin(), "variables", "export", str(path)],
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
        if res.returncode != 0:
            raise BootstrapError(f"airflow variables export failed: {res.stderr.strip()[-800:]}")
        raw = json.loads(path.read_text()) if path.exists() else {}
    variables = {k: v if isinstance(v, str) else json.dumps(v) for k, v in raw.items()}
    return AirflowState(connections, variables, pools)


def step_settings(environ: Mapping[str, str], settings: Settings, state: AirflowState) -> dict[str, int]:
    conns = connections_from_env(environ)
    missing = [cid for cid in MANAGED_CONNECTIONS if cid not in settings.connections]
    if missing:
        # with_environment_overrides only replaces connections the file declares.
        raise BootstrapError(f"airflow_settings.yaml: expected connections {missing}, got none")
    todo = settings_to_apply(with_environment_overrides(settings, {**environ, **conns}), state)
    counts = apply_settings(todo)
    kept = sorted(
        (set(settings.connections) - set(todo.connections)) | (set(settings.variables) - set(todo.variables))
    )
    log.info(
        "airflow settings: loaded %s; kept as set in Airflow: %s",
        ", ".join(f"{n} {k}" for k, n in counts.items()),
        ", ".join(kept) or "nothing",
    )
    return counts


def run_steps(steps: Sequence[str], environ: Mapping[str, str], settings: Settings) -> None:
    """Run the named steps in the fixed order of :data:`STEPS`."""
    unknown = sorted(set(steps) - set(STEPS))
    if unknown:
        raise BootstrapError(f"--steps: unknown step {unknown[0]!r}; expected some of {', '.join(STEPS)}")
    # Fail on a bad .env before touching anything, whichever steps were asked for.
    read_env(environ)
    # Buckets and policy follow the bucket Variables Airflow will use: a name changed in the UI is
    # created, and granted, on the next start.
    state = read_airflow_state() if "settings" in steps else None
    buckets = buckets_from_settings(effective_settings(settings, state))
    for step in STEPS:
        if step not in steps:
            continue
        log.info("bootstrap step: %s", step)
        if step == "buckets":
            step_buckets(environ, buckets)
        elif step == "minio-user":
            step_minio_user(environ, buckets)
        elif step == "migrate":
            step_migrate(environ)
        elif step == "mongo-user":
            step_mongo_user(environ)
        elif state is not None:
            step_settings(environ, settings, state)


def main(argv: list[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m trilha.ops.bootstrap", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--steps", default=",".join(STEPS), help=f"comma-separated; default {','.join(STEPS)}"
    )
    parser.add_argument("--settings-file", type=Path, default=None, help="default: airflow_settings.yaml")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s trilha-init %(levelname)s %(message)s")
    environ = os.environ if environ is None else environ
    steps = [s.strip() for s in args.steps.split(",") if s.strip()]
    try:
        settings = load_settings(args.settings_file)
        run_steps(steps, environ, settings)
    except (BootstrapError, SettingsError, MigrationError) as err:
        log.error("bootstrap failed: %s", err)
        return 1
    log.info("bootstrap done: %s", ", ".join(steps))
    return 0


if __name__ == "__main__":
    sys.exit(main())
