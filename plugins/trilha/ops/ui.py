"""The Airflow UI on the local stack, and ``airflow dags test`` runs whose task logs it can show.

``python -m trilha.ops.ui up`` (``make ui``) starts Airflow's four components as separate processes, with
the stack's settings (``<state>/env``) and a few of their own:

* ``airflow api-server --host 127.0.0.1 --port P`` (the UI and the REST API; loopback only, on a free
  port or ``TRILHA_UI_PORT``), ``airflow scheduler``, ``airflow dag-processor`` and
  ``airflow triggerer``. The scheduler and triggerer do not start their log servers (those listen on
  every interface): every component shares the state directory, so the api-server reads task logs
  from ``[logging] base_log_folder`` directly;
* one JWT secret for all of them (kept in the stack's secrets) and the execution API at
  ``http://127.0.0.1:P/execution/``, which the LocalExecutor's task processes call;
* ``[core] parallelism`` = the number of CPUs this process may use, not Airflow's default of 32;
* Airflow's SimpleAuthManager with one ``admin`` user, whose password is generated once, kept in
  the stack's secrets and written to the passwords file the auth manager reads.

It waits until ``GET /api/v2/monitor/health`` answers with every component healthy, then prints the
URL, the login and the Trilha page's URL (the plugin in ``plugins/trilha_plugin.py``, in the UI's
navigation at ``/plugin/trilha``). If a component exits first, it says which, shows the end of its
log and stops the others. ``down`` (also run by ``make down``) stops every process each component
started, task processes included: each component leads its own session, and every process of that
session is stopped, whatever process group it moved to.

:class:`TaskLogTee` writes each task's log of an in-process ``dag.test()`` where the api-server reads
it, so the runs of ``make demo`` (:mod:`trilha.ops.run`) have their logs in the UI.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from trilha import config
from trilha.ops.devstack import Stack, default_state_dir, free_port, port_open, spawn, tail

COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
#: The scheduler stops first, so it queues nothing new while the others stop (together).
STOP_ORDER = (("scheduler",), ("triggerer", "dag-processor", "api-server"))
USER = "admin"
ROLE = "admin"
HOST = "127.0.0.1"
#: From a cold start (the migrations already applied by ``make up``) it takes 15-40 s on 2 cores.
READY_TIMEOUT = 180.0
STOP_TIMEOUT = 20.0


class UIError(RuntimeError):
    """The UI could not start: which component, why, and the end of its log."""

    def __init__(self, component: str, why: str, log_path: Path | None = None) -> None:
        message = f"{component}: {why}"
        if log_path is not None:
            message += f"\n  last lines of {log_path}:\n    {tail(log_path, 15)}"
        super().__init__(message)
        self.component = component


def cpu_count() -> int:
    """The CPUs this process may run on (what ``nproc`` prints)."""
    return len(os.sched_getaffinity(0))


# --------------------------------------------------------------------------------------------------
# processes: a component is the leader of its own session (spawn() uses start_new_session), and
# every process it starts stays in that session, even the task processes that move to a process
# group of their own. A process is ours if it is in the session and was not created before it.


@dataclass(frozen=True)
class Proc:
    pid: int
    started: float

    @classmethod
    def of(cls, pid: int) -> Proc:
        import psutil

        return cls(pid, psutil.Process(pid).create_time())

    def alive(self) -> bool:
        """The recorded process itself still runs (same PID, same start time, not a zombie)."""
        import psutil

        try:
            proc = psutil.Process(self.pid)
            return proc.create_time() == self.started and proc.status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            return False

    def session(self) -> list[Any]:
        """Every live process of this component's session (the component included).

        Empty when the PID now belongs to another process: a session's ID is its leader's PID, and
        Linux does not give a PID to a new process while a session or group still goes by it.
        """
        import psutil

        with contextlib.suppress(psutil.Error):
            if psutil.Process(self.pid).create_time() != self.started:
                return []
        members = []
        for proc in psutil.process_iter(["create_time", "status"]):
            try:
                if (
                    os.getsid(proc.pid) == self.pid
                    and proc.info["create_time"] >= self.started - 1
                    and proc.info["status"] != psutil.STATUS_ZOMBIE
                ):
                    members.append(proc)
            except (OSError, psutil.Error):
                continue
        return members


def _signal(procs: list[Any], sig: int) -> None:
    import psutil

    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.send_signal(sig)


def stop_sessions(procs: list[Proc], timeout: float = STOP_TIMEOUT) -> list[Proc]:
    """Stop the components, then whatever is left of their sessions; those that were running."""
    import psutil

    running = [p for p in procs if p.session()]
    leaders = [psutil.Process(p.pid) for p in running if p.alive()]
    # The components first, so they can shut their own children down (the scheduler its executor).
    _signal(leaders, signal.SIGTERM)
    psutil.wait_procs(leaders, timeout=timeout)
    rest = [m for p in running for m in p.session()]
    _signal(rest, signal.SIGTERM)
    psutil.wait_procs(rest, timeout=5)
    _signal([m for p in running for m in p.session()], signal.SIGKILL)
    psutil.wait_procs([m for p in running for m in p.session()], timeout=5)
    return running


# --------------------------------------------------------------------------------------------------
# the UI


@dataclass
class UI:
    """The Airflow UI of ``stack``; its state is ``stack.state["ui"]``."""

    stack: Stack

    @property
    def info(self) -> dict[str, Any]:
        return dict(self.stack.state.get("ui") or {})

    @property
    def log_dir(self) -> Path:
        return self.stack.state_dir / "ui"

    @property
    def airflow_home(self) -> Path:
        return Path(self.stack.env_vars()["AIRFLOW_HOME"])

    @property
    def passwords_file(self) -> Path:
        return self.airflow_home / "simple_auth_manager_passwords.json"

    def url(self, port: int | None = None) -> str:
        return f"http://{HOST}:{port or self.info['port']}"

    def login(self) -> tuple[str, str]:
        return USER, self.stack.secret("ui_password")

    def env(self, port: int) -> dict[str, str]:
        """The environment of every component: the stack's settings plus the UI's own."""
        bin_dir = str(Path(sys.executable).parent)
        env = dict(os.environ)
        env.update(self.stack.env_vars())
        env.update(
            PATH=os.pathsep.join([bin_dir, env.get("PATH", "")]),
            AIRFLOW__API__HOST=HOST,
            AIRFLOW__API__PORT=str(port),
            AIRFLOW__API__BASE_URL=self.url(port),
            AIRFLOW__API__WORKERS="1",
            AIRFLOW__API__SECRET_KEY=self.stack.secret("airflow_api_secret_key", 32),
            AIRFLOW__API_AUTH__JWT_SECRET=self.stack.secret("airflow_jwt_secret", 32),
            AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"{self.url(port)}/execution/",
            AIRFLOW__CORE__PARALLELISM=str(cpu_count()),
            AIRFLOW__CORE__AUTH_MANAGER=(
                "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
            ),
            AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS=f"{USER}:{ROLE}",
            AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS="False",
            AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE=str(self.passwords_file),
        )
        return env

    def commands(self, port: int) -> dict[str, list[str]]:
        airflow = str(Path(sys.executable).parent / "airflow")
        return {
            "api-server": [airflow, "api-server", "--host", HOST, "--port", str(port)],
            "scheduler": [airflow, "scheduler", "--skip-serve-logs"],
            "dag-processor": [airflow, "dag-processor"],
            "triggerer": [airflow, "triggerer", "--skip-serve-logs"],
        }

    def procs(self) -> dict[str, Proc]:
        return {
            name: Proc(int(c["pid"]), float(c["started"]))
            for name, c in (self.info.get("components") or {}).items()
            if c.get("pid")
        }

    def running(self) -> bool:
        procs = self.procs()
        return set(procs) == set(COMPONENTS) and all(p.alive() for p in procs.values())

    # public ---------------------------------------------------------------------------------------
    def up(self, port: int | None = None, timeout: float = READY_TIMEOUT) -> dict[str, Any]:
        """Start the UI (or keep the one running); return :meth:`status` once it is ready."""
        stopped = [c for c, s in self.stack.status().items() if s["state"] not in ("running", "external")]
        if stopped:
            raise UIError("stack", f"{', '.join(stopped)} not running; run 'make up' first")
        if self.running() and self.health(int(self.info["port"])) is not None:
            return self.status()
        self.down()  # whatever is left of a UI that half-died
        port = port or self._port()
        if port_open(port):
            raise UIError("api-server", f"port {port} is already in use (set TRILHA_UI_PORT to another)")
        self._write_passwords_file()
        env = self.env(port)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        started: dict[str, subprocess.Popen[bytes]] = {}
        self.stack.state["ui"] = {"port": port, "components": {}}
        try:
            for name, cmd in self.commands(port).items():
                log_path = self.log_dir / f"{name}.log"
                with open(log_path, "a") as log:
                    log.write(f"---- {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(cmd)}\n")
                proc = spawn(cmd, log_path, env)
                started[name] = proc
                self.stack.state["ui"]["components"][name] = {
                    "pid": proc.pid,
                    "started": Proc.of(proc.pid).started,
                    "log": str(log_path),
                }
                self.stack.save()
            self._await_ready(port, started, timeout)
        except BaseException:
            self.down()
            raise
        return self.status()

    def down(self) -> list[str]:
        """Stop every process the UI started; the names of the components that were running."""
        procs = self.procs()
        stopped: list[Proc] = []
        for group in STOP_ORDER:
            stopped += stop_sessions([procs[name] for name in group if name in procs])
        if self.stack.state.get("ui"):
            self.stack.state["ui"]["components"] = {}
            self.stack.save()
        return [name for name in COMPONENTS if name in procs and procs[name] in stopped]

    def status(self) -> dict[str, Any]:
        procs = self.procs()
        port = self.info.get("port")
        return {
            "url": self.url() if port else None,
            "user": USER,
            "components": {
                name: {
                    "state": "running" if name in procs and procs[name].alive() else "stopped",
                    "pid": procs[name].pid if name in procs else None,
                    "log": (self.info.get("components") or {}).get(name, {}).get("log"),
                }
                for name in COMPONENTS
            },
        }

    def health(self, port: int) -> dict[str, Any] | None:
        """``GET /api/v2/monitor/health``, or None while the api-server does not answer."""
        try:
            url = f"{self.url(port)}/api/v2/monitor/health"
            # http://127.0.0.1:<port>, built here: no file:// or other scheme can get in.
            with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310  # nosec B310
                return dict(json.load(resp))
        except (OSError, ValueError):
            return None

    # internals ------------------------------------------------------------------------------------
    def _port(self) -> int:
        if os.environ.get("TRILHA_UI_PORT"):
            try:
                return int(os.environ["TRILHA_UI_PORT"])
            except ValueError:
                raise UIError(
                    "api-server", f"TRILHA_UI_PORT={os.environ['TRILHA_UI_PORT']!r} is not a port"
                ) from None
        prev = self.info.get("port")
        if prev and not port_open(int(prev)):
            return int(prev)
        return free_port()

    def _write_passwords_file(self) -> None:
        """The SimpleAuthManager's passwords file, written by us so we know the password to print."""
        user, password = self.login()
        self.stack.save()
        self.passwords_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.passwords_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({user: password}) + "\n")
        os.chmod(tmp, 0o600)
        tmp.replace(self.passwords_file)

    def _await_ready(self, port: int, started: dict[str, subprocess.Popen[bytes]], timeout: float) -> None:
        """Until the api-server says every component is healthy; a component that exits fails it."""
        health_url = f"{self.url(port)}/api/v2/monitor/health"
        keys = {"scheduler": "scheduler", "dag-processor": "dag_processor", "triggerer": "triggerer"}
        deadline = time.monotonic() + timeout
        health: dict[str, Any] | None = None
        unhealthy: list[str] = []
        while time.monotonic() < deadline:
            for name, proc in started.items():
                if proc.poll() is not None:
                    log_path = self.log_dir / f"{name}.log"
                    raise UIError(name, f"exited at start (code {proc.returncode})", log_path)
            health = self.health(port) or health
            if health is not None:
                unhealthy = [n for n, k in keys.items() if (health.get(k) or {}).get("status") != "healthy"]
                if (health.get("metadatabase") or {}).get("status") != "healthy":
                    unhealthy.insert(0, "api-server")
                if not unhealthy:
                    return
            time.sleep(0.5)
        if health is None:
            why = f"{health_url} did not answer within {timeout:.0f}s"
            raise UIError("api-server", why, self.log_dir / "api-server.log")
        why = f"not healthy within {timeout:.0f}s according to {health_url}"
        raise UIError(unhealthy[0], why, self.log_dir / f"{unhealthy[0]}.log")


def print_status(ui: UI) -> None:
    status = ui.status()
    states = {c["state"] for c in status["components"].values()}
    state = "running" if states == {"running"} else "partial" if "running" in states else "stopped"
    line = f"{'ui':9s} {state:8s}"
    if state != "stopped":
        user, password = ui.login()
        line += f" {status['url']}  login: {user} / {password}"
    print(line)
    for name, comp in status["components"].items():
        if comp["state"] == "running" or state == "partial":
            print(f"  {name:14s} {comp['state']:8s} pid={comp['pid']}")


def print_ready(ui: UI, seconds: float) -> None:
    user, password = ui.login()
    print(f"Airflow UI ready in {seconds:.0f}s: {ui.url()}")
    print(f"  login:  {user} / {password}")
    print(f"  Trilha: {ui.url()}/plugin/trilha   (the lake, trace, upload; alone: {ui.url()}/trilha/)")
    print(f"  logs:   {ui.log_dir}/<component>.log   task logs: {ui.airflow_home / 'logs'}")
    # Not the default stack: `make down` alone would stop .trilha's, not this one.
    default = config.repo_root() / ".trilha"
    named = "" if ui.stack.state_dir.resolve() == default.resolve() else f" STATE={ui.stack.state_dir}"
    print(f"  stop:   make down{named}   (stops the UI and the stack)")


# --------------------------------------------------------------------------------------------------
# airflow dags test, with task logs where the UI reads them


class TaskLogTee:
    """Also writes each task's log lines of an in-process ``dag.test()`` run to the task's log file.

    ``airflow dags test`` runs every task in its own process, through Airflow's in-process test
    supervisor, which logs to the console only; the api-server reads a task's log from
    ``<base_log_folder>/<log_filename_template>``, and shows "Log file not found" for these runs.
    While a task runs (:meth:`to`), this structlog processor writes every event to that file too,
    rendered as the real supervisor renders task log files: Airflow's own file-log processors
    (secrets masked, JSON lines, exceptions as ``error_detail``), at the path its executors give a
    worker (``log_filename_template`` rendered for the task's run id and try number).
    """

    def __init__(self) -> None:
        from airflow.sdk.log import logging_processors

        *self._prepare, self._render = logging_processors(json_output=True)
        self._file: IO[bytes] | None = None
        self.path: Path | None = None

    def __call__(self, logger: Any, method_name: str, event_dict: Any) -> Any:
        if self._file is not None:
            event: Any = dict(event_dict)
            try:
                for proc in self._prepare:
                    event = proc(logger, method_name, event)
                if exc := event.pop("exception", None):
                    event["error_detail"] = exc
                line: Any = self._render(logger, method_name, event)
                self._file.write((line.encode() if isinstance(line, str) else bytes(line)) + b"\n")
                self._file.flush()
            except Exception as err:  # noqa: BLE001 - the console line must not be lost for the file's sake
                event = f"{event_dict.get('event')} (not rendered: {err!r})"
                fallback = {"level": method_name, "event": event}
                self._file.write(json.dumps(fallback, default=str).encode() + b"\n")
        return event_dict

    def install(self) -> None:
        """Insert the tee before the final renderer of structlog's chain and of stdlib's handlers.

        Loggers already cached by structlog hold the configured list itself, so the list is extended
        in place (and configured again, for loggers made from now on).
        """
        import logging

        import structlog

        processors = structlog.get_config()["processors"]
        processors.insert(len(processors) - 1, self)
        structlog.configure(processors=processors)
        for handler in logging.getLogger().handlers:
            formatter = handler.formatter
            if isinstance(formatter, structlog.stdlib.ProcessorFormatter):
                formatter.processors = [*formatter.processors[:-1], self, formatter.processors[-1]]

    @contextlib.contextmanager
    def to(self, ti: Any) -> Iterator[Path]:
        """Tee into the log file of the task instance ``ti`` (an SDK ``TaskInstance``)."""
        from airflow.sdk.log import init_log_file
        from airflow.utils.helpers import log_filename_template_renderer

        relative = log_filename_template_renderer()(ti=ti, try_number=ti.try_number)
        path = init_log_file(relative)
        with open(path, "ab") as handle:
            self._file, self.path = handle, path
            try:
                yield path
            finally:
                self._file = None


# --------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trilha.ops.ui", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["up", "down", "status"])
    parser.add_argument("--state-dir", type=Path, default=None, help="default: $TRILHA_STATE_DIR or .trilha/")
    parser.add_argument("--port", type=int, default=None, help="default: $TRILHA_UI_PORT, else a free port")
    args = parser.parse_args(argv)
    ui = UI(Stack(args.state_dir or default_state_dir()))
    if args.command == "up":
        start = time.monotonic()
        try:
            ui.up(port=args.port)
        except UIError as err:
            print(f"trilha ui: could not start the Airflow UI:\n{err}", file=sys.stderr)
            return 1
        print_ready(ui, time.monotonic() - start)
        return 0
    if args.command == "down":
        stopped = ui.down()
        print("stopped: " + (", ".join(stopped) if stopped else "the UI was not running"))
        return 0
    print_status(ui)
    return 0 if ui.running() else 3


if __name__ == "__main__":
    sys.exit(main())
