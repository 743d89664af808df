"""trilha.ops.devstack: a private Stack (not the session one) through up / status / down / up / up / down;
``make ui`` (trilha.ops.ui) on a private stack: loopback only, the printed login, ``make down`` stops it all.

Each test owns its Stack in its own temporary directory and always brings it down, whatever happens.
As root, PostgreSQL runs as the unprivileged ``trilha-pg`` user, which must traverse the parents of
the state directory: the directory is created with mode 0o711 (traverse, not list).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psutil
import psycopg2
import pytest
from pymongo import MongoClient

from tests.ui.support import clean_env, http_status, make, request, running_ui
from trilha import config
from trilha.ops import devstack
from trilha.ops import ui as trilha_ui
from trilha.ops.devstack import COMPONENTS, Stack, StackError, StackGroupError, port_open
from trilha.ops.ui import COMPONENTS as UI_COMPONENTS
from trilha.ops.ui import UI, Proc, UIError

pytestmark = [pytest.mark.integration, pytest.mark.slow]

EXPECT = {"postgres": "postgres", "s3": "rclone", "mongo": "mongod"}


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    # Deliberately deep: PostgreSQL's socket path would exceed the 107-byte Unix limit in here.
    parent = tmp_path / "a-checkout-path-deep-enough-to-exceed-the-unix-socket-limit"
    parent.mkdir(mode=0o711)
    os.chmod(parent, 0o711)
    return Path(tempfile.mkdtemp(prefix="stack-", dir=parent))


@pytest.fixture
def make_stack(state_dir: Path) -> Iterator[list[Stack]]:
    """Stacks created by the test; every one is brought down at the end, even on failure."""
    stacks: list[Stack] = []
    yield stacks
    for st in stacks:
        st.down()


def new_stack(stacks: list[Stack], state_dir: Path) -> Stack:
    st = Stack(state_dir, log=lambda _msg: None)
    stacks.append(st)
    return st


def is_dead(pid: int, expect: str) -> bool:
    """The recorded process is gone: no such pid, a zombie, or the pid now belongs to something else."""
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return True
        return expect not in " ".join(proc.cmdline())
    except psutil.NoSuchProcess:
        return True


def pids(st: Stack) -> dict[str, int]:
    return {c: int(st.state[c]["pid"]) for c in COMPONENTS}


def ports(st: Stack) -> dict[str, int]:
    return {c: int(st.state[c]["port"]) for c in COMPONENTS}


# --------------------------------------------------------------------------------------------------


def test_up_status_down_up_keeps_data_and_ports(make_stack: list[Stack], state_dir: Path) -> None:
    st = new_stack(make_stack, state_dir)
    status = st.up()
    assert {c: s["state"] for c, s in status.items()} == dict.fromkeys(COMPONENTS, "running")
    first_pids, first_ports = pids(st), ports(st)
    assert len(set(first_ports.values())) == 3
    for component in COMPONENTS:
        assert port_open(first_ports[component]), component
        assert status[component]["pid"] == first_pids[component]
        assert not is_dead(first_pids[component], EXPECT[component]), component
        assert Path(status[component]["data_dir"]).is_relative_to(state_dir.resolve())
    # The socket went to a short directory outside the (too deep) state directory.
    sock_dir = devstack.socket_dir_path(state_dir.resolve() / "postgres")
    assert not sock_dir.is_relative_to(state_dir.resolve())
    assert (sock_dir / f".s.PGSQL.{first_ports['postgres']}").is_socket()
    buckets = {b["Name"] for b in st.s3_client().list_buckets()["Buckets"]}
    assert buckets >= set(config.default_buckets().values())

    # Data in each of the three services.
    marker = uuid.uuid4().hex
    st.s3_client().put_object(Bucket="recepcao-raw", Key=f"probe/{marker}.txt", Body=marker.encode())
    # The S3 server keeps each object's md5 from write time (as MinIO keeps its ETag), in the state
    # directory: bytes changed on disk behind its back (same size, same modification time) still
    # answer the md5 they were written with, before and after a down/up. A server that computed the
    # md5 lazily from the file would answer the md5 of the changed bytes.
    written = marker.encode() * 100
    written_md5 = hashlib.md5(written, usedforsecurity=False).hexdigest()
    st.s3_client().put_object(Bucket="recepcao-raw", Key="probe/rot.bin", Body=written)
    assert Path(st.state["s3"]["hashes_dir"]).is_relative_to(state_dir.resolve())
    on_disk = Path(status["s3"]["data_dir"]) / "recepcao-raw" / "probe" / "rot.bin"
    before = on_disk.stat()
    on_disk.write_bytes(written[::-1])
    os.utime(on_disk, ns=(before.st_atime_ns, before.st_mtime_ns))
    head = st.s3_client().head_object(Bucket="recepcao-raw", Key="probe/rot.bin")
    assert head["ETag"].strip('"') == written_md5
    with psycopg2.connect(st.postgres_dsn()) as pg, pg.cursor() as cur:
        cur.execute("CREATE TABLE devstack_probe (marker text PRIMARY KEY)")
        cur.execute("INSERT INTO devstack_probe VALUES (%(m)s)", {"m": marker})
    pg.close()
    mongo = MongoClient(st.mongo_uri(), serverSelectionTimeoutMS=5000)
    mongo.get_database("trilha").probe.insert_one({"_id": marker})
    mongo.close()

    # down: exactly our processes are stopped, and really gone.
    assert sorted(st.down()) == sorted(COMPONENTS)
    for component in COMPONENTS:
        assert is_dead(first_pids[component], EXPECT[component]), component
        assert not port_open(first_ports[component]), component
        assert st.state[component]["pid"] is None
    assert {c: s["state"] for c, s in st.status().items()} == dict.fromkeys(COMPONENTS, "stopped")
    # A second down finds nothing to stop.
    assert st.down() == []

    # up again, from the state on disk (a new Stack object): same ports, same secrets, same data.
    st2 = new_stack(make_stack, state_dir)
    assert st2.state["secrets"] == st.state["secrets"]
    st2.up()
    assert ports(st2) == first_ports
    assert st2.postgres_dsn() == st.postgres_dsn()
    second_pids = pids(st2)
    for component in COMPONENTS:
        assert not is_dead(second_pids[component], EXPECT[component]), component
    body = st2.s3_client().get_object(Bucket="recepcao-raw", Key=f"probe/{marker}.txt")["Body"].read()
    assert body == marker.encode()
    listed = st2.s3_client().list_objects_v2(Bucket="recepcao-raw", Prefix="probe/rot.bin")["Contents"]
    assert [o["ETag"].strip('"') for o in listed] == [written_md5]
    head = st2.s3_client().head_object(Bucket="recepcao-raw", Key="probe/rot.bin")
    assert head["ETag"].strip('"') == written_md5
    with psycopg2.connect(st2.postgres_dsn()) as pg, pg.cursor() as cur:
        cur.execute("SELECT marker FROM devstack_probe")
        assert cur.fetchall() == [(marker,)]
    pg.close()
    mongo = MongoClient(st2.mongo_uri(), serverSelectionTimeoutMS=5000)
    assert mongo.get_database("trilha").probe.find_one({"_id": marker}) == {"_id": marker}
    mongo.close()

    # up while running is harmless: the same processes are kept.
    status = st2.up()
    assert pids(st2) == second_pids
    assert ports(st2) == first_ports
    assert {c: s["state"] for c, s in status.items()} == dict.fromkeys(COMPONENTS, "running")
    assert json.loads((state_dir / "stack.json").read_text())["postgres"]["pid"] == second_pids["postgres"]

    assert sorted(st2.down()) == sorted(COMPONENTS)
    for component in COMPONENTS:
        assert is_dead(second_pids[component], EXPECT[component]), component
    assert not sock_dir.exists()


def _source_env_file(path: Path, names: list[str]) -> dict[str, str]:
    """What a shell sees after ``set -a; . env``: proves the quoting, not just the Python view."""
    script = (
        "set -a; . "
        + shlex.quote(str(path))
        + "; "
        + "; ".join(f'printf "%s\\0" "${name}"' for name in names)
    )
    out = subprocess.run(["bash", "-c", script], capture_output=True, check=True, env={}, timeout=30).stdout
    values = out.decode().split("\0")[:-1]
    return dict(zip(names, values, strict=True))


def test_env_file_has_working_connections(
    make_stack: list[Stack], state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    st = new_stack(make_stack, state_dir)
    st.up()
    env_path = state_dir / "env"
    assert st.env_path == env_path.resolve()
    assert stat.S_IMODE(env_path.stat().st_mode) == 0o600
    names = [
        "AIRFLOW_CONN_TRILHA_MINIO",
        "AIRFLOW_CONN_TRILHA_POSTGRES",
        "AIRFLOW_CONN_TRILHA_MONGO",
        "AIRFLOW__CORE__FERNET_KEY",
        "AIRFLOW_HOME",
    ]
    env = _source_env_file(env_path, names)

    minio = json.loads(env["AIRFLOW_CONN_TRILHA_MINIO"])
    s3_port = st.state["s3"]["port"]
    assert minio["conn_type"] == "aws"
    assert minio["extra"]["endpoint_url"] == f"http://127.0.0.1:{s3_port}"
    assert "s3" not in minio["extra"]["config_kwargs"]  # path style is MinioHook's default
    assert minio["extra"]["config_kwargs"]["request_checksum_calculation"] == "when_required"
    assert minio["extra"]["config_kwargs"]["response_checksum_validation"] == "when_required"
    assert minio["login"] == st.state["secrets"]["s3_access_key"]
    assert minio["password"] == st.state["secrets"]["s3_secret_key"]

    pg = json.loads(env["AIRFLOW_CONN_TRILHA_POSTGRES"])
    assert (pg["conn_type"], pg["host"], pg["port"], pg["login"], pg["schema"]) == (
        "postgres",
        "127.0.0.1",
        st.state["postgres"]["port"],
        "trilha",
        "trilha",
    )
    assert pg["password"] == st.state["secrets"]["postgres_password"]
    mongo = json.loads(env["AIRFLOW_CONN_TRILHA_MONGO"])
    assert (mongo["host"], mongo["port"]) == ("127.0.0.1", st.state["mongo"]["port"])
    assert len(env["AIRFLOW__CORE__FERNET_KEY"]) == 44
    assert env["AIRFLOW_HOME"] == str(state_dir.resolve() / "airflow")

    # The JSON works as an Airflow connection: the provider-based hook reaches the server with it.
    from trilha.hooks.minio import MinioHook

    monkeypatch.setenv("AIRFLOW_CONN_TRILHA_DEVSTACK_ENV", env["AIRFLOW_CONN_TRILHA_MINIO"])
    MinioHook(aws_conn_id="trilha_devstack_env").check_buckets(config.default_buckets().values())
    with (
        psycopg2.connect(
            host=pg["host"], port=pg["port"], user=pg["login"], password=pg["password"], dbname=pg["schema"]
        ) as conn,
        conn.cursor() as cur,
    ):
        cur.execute("SELECT current_user")
        assert cur.fetchone() == ("trilha",)
    conn.close()

    # A wrong password is refused: password auth is really on for TCP.
    with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
        psycopg2.connect(
            host=pg["host"], port=pg["port"], user=pg["login"], password="wrong", dbname=pg["schema"]
        )


def test_component_that_cannot_start_names_itself_and_the_external_hint(
    make_stack: list[Stack],
    state_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("TRILHA_EXTERNAL_MONGO_URI", raising=False)
    monkeypatch.setattr(devstack, "mongod_binary", lambda: None)
    st = new_stack(make_stack, state_dir)
    with pytest.raises(StackGroupError) as exc:
        st.up()
    errors = exc.value.errors
    assert [type(e) for e in errors] == [StackError]
    assert errors[0].component == "mongo"
    message = str(exc.value)
    assert message.startswith("mongo: no mongod binary found")
    assert "TRILHA_EXTERNAL_MONGO_URI=" in message
    assert "postgres:" not in message
    assert "s3:" not in message
    # The others started, and the state file says so; no env file claims a complete stack.
    status = st.status()
    assert status["postgres"]["state"] == "running"
    assert status["s3"]["state"] == "running"
    assert status["mongo"]["state"] == "stopped"
    assert not (state_dir / "env").exists()
    started = {c: int(st.state[c]["pid"]) for c in ("postgres", "s3")}

    # The CLI says the same on stderr and exits 1; running components are kept, not restarted.
    assert devstack.main(["up", "--state-dir", str(state_dir)]) == 1
    err = capsys.readouterr().err
    assert "could not start the stack" in err
    assert "mongo: no mongod binary found" in err
    assert "TRILHA_EXTERNAL_MONGO_URI=" in err
    again = Stack(state_dir, log=lambda _msg: None)
    make_stack.append(again)
    assert {c: int(again.state[c]["pid"]) for c in ("postgres", "s3")} == started

    assert sorted(again.down()) == ["postgres", "s3"]
    assert is_dead(started["postgres"], "postgres")
    assert is_dead(started["s3"], "rclone")


@pytest.mark.skipif(os.geteuid() != 0, reason="the unprivileged PostgreSQL user exists only as root")
def test_as_root_postgres_can_reach_binaries_under_a_private_checkout(tmp_path: Path) -> None:
    """A checkout made with ``mktemp -d`` is 0700: the PostgreSQL user must still reach the binaries
    of the virtualenv inside it. Only the traverse bit is added, never read."""
    checkout = Path(tempfile.mkdtemp(prefix="trilha-private-checkout-"))
    try:
        assert stat.S_IMODE(checkout.stat().st_mode) == 0o700
        bindir = checkout / ".venv" / "pginstall" / "bin"
        bindir.mkdir(parents=True)
        pg_root = tmp_path / "state" / "postgres"
        assert devstack._postgres_os_user(pg_root, bindir) == devstack.PG_OS_USER
        assert stat.S_IMODE(checkout.stat().st_mode) == 0o701
        assert pg_root.is_dir()
    finally:
        shutil.rmtree(checkout, ignore_errors=True)


# --------------------------------------------------------------------------------------------------
# make ui: the Airflow UI's four components on the stack, started and stopped the way a user does


def ui_components(state: Path) -> dict[str, Proc]:
    components = json.loads((state / "stack.json").read_text())["ui"]["components"]
    return {name: Proc(int(c["pid"]), float(c["started"])) for name, c in components.items()}


def sessions(procs: list[Proc]) -> list[psutil.Process]:
    """Every live process of the components' sessions: executor workers and task processes too."""
    return [member for proc in procs for member in proc.session()]


def test_make_ui_listens_on_loopback_logs_in_with_the_printed_password_and_down_stops_all_of_it() -> None:
    with running_ui() as ui:
        assert ui.url == f"http://127.0.0.1:{ui.port}"
        components = ui_components(ui.state)
        assert sorted(components) == sorted(UI_COMPONENTS)
        procs = sessions(list(components.values()))
        started = {(p.pid, p.create_time()) for p in procs}
        # One LocalExecutor worker per CPU: [core] parallelism is fitted to the machine, not 32.
        workers = [p for p in procs if "LocalExecutor" in " ".join(p.cmdline())]
        assert len(workers) == len(os.sched_getaffinity(0))
        listening = {
            (c.laddr.ip, c.laddr.port)
            for p in procs
            for c in p.net_connections(kind="inet")
            if c.status == psutil.CONN_LISTEN
        }
        assert listening == {("127.0.0.1", ui.port)}  # no log server, no other port, nothing on 0.0.0.0

        # The printed login is the SimpleAuthManager's: a token for it, none for a wrong password.
        token = ui.token()
        assert request(ui.url, "GET", "/api/v2/pools", token=token)["total_entries"] >= 1
        wrong = {"username": ui.user, "password": ui.password[::-1]}
        assert http_status(ui.url, "POST", "/auth/token", wrong) == 401
        assert http_status(ui.url, "GET", "/api/v2/pools") == 401
        health = request(ui.url, "GET", "/api/v2/monitor/health")
        assert {k: v["status"] for k, v in health.items()} == dict.fromkeys(
            ("metadatabase", "scheduler", "triggerer", "dag_processor"), "healthy"
        )

        # A run of make demo's runner (dag.test() in one process) has its task log in the UI.
        demo_run = subprocess.run(
            [
                sys.executable,
                "-m",
                "trilha.ops.run",
                "reception_cleanup",
                "--conf",
                '{"dry_run": true}',
            ],
            env={**clean_env(ui.state), **Stack(ui.state).env_vars()},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert demo_run.returncode == 0, demo_run.stdout[-3000:] + demo_run.stderr[-3000:]
        assert demo_run.stdout.splitlines()[1].startswith("reception_cleanup  ok "), demo_run.stdout
        (run,) = request(ui.url, "GET", "/api/v2/dags/reception_cleanup/dagRuns", token=token)["dag_runs"]
        assert run["triggering_user_name"] == "dag_test"
        logs = request(
            ui.url,
            "GET",
            f"/api/v2/dags/reception_cleanup/dagRuns/{quote(run['dag_run_id'], safe='')}"
            "/taskInstances/cleanup/logs/1",
            token=token,
        )["content"]
        events = [str(line["event"]) for line in logs]
        assert [e for e in events if e.startswith("summary: {")], events
        assert not [e for e in events if "not found" in e], events

        # make ui again keeps the running UI: same processes, port and login. make status shows it.
        again = make(ui.state, "ui")
        assert again.returncode == 0, again.stderr
        assert f"{ui.url}\n  login:  {ui.user} / {ui.password}\n" in again.stdout
        assert ui_components(ui.state) == components
        status = make(ui.state, "status")
        assert f"ui        running  {ui.url}  login: {ui.user} / {ui.password}" in status.stdout

        down = make(ui.state, "down")
        assert down.returncode == 0, down.stderr
        assert "stopped: ui/api-server, ui/scheduler, ui/dag-processor, ui/triggerer, " in down.stdout
        assert sessions(list(components.values())) == []
        for pid, created in started:
            with contextlib.suppress(psutil.NoSuchProcess):
                assert psutil.Process(pid).create_time() != created, pid
        assert not port_open(ui.port)
        assert "ui        stopped" in make(ui.state, "status").stdout


def test_ui_component_that_exits_is_named_with_its_log_and_the_others_are_stopped(
    make_stack: list[Stack], state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in [k for k in os.environ if k.startswith("AIRFLOW")]:
        monkeypatch.delenv(key)  # the components get the stack's settings, not this session's
    st = new_stack(make_stack, state_dir)
    st.up()
    ui = UI(st)
    spawned: list[Proc] = []
    spawn = trilha_ui.spawn

    def recording_spawn(*args: Any, **kwargs: Any) -> subprocess.Popen[bytes]:
        proc = spawn(*args, **kwargs)
        spawned.append(Proc.of(proc.pid))
        return proc

    monkeypatch.setattr(trilha_ui, "spawn", recording_spawn)
    try:
        # A port in use is refused before anything starts.
        monkeypatch.setenv("TRILHA_UI_PORT", str(st.state["postgres"]["port"]))
        with pytest.raises(UIError, match=r"^api-server: port \d+ is already in use \(set TRILHA_UI_PORT"):
            ui.up()
        monkeypatch.delenv("TRILHA_UI_PORT")
        assert spawned == []

        migrate = subprocess.run(
            [str(Path(sys.executable).parent / "airflow"), "db", "migrate"],
            env={**os.environ, **st.env_vars()},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert migrate.returncode == 0, migrate.stderr[-2000:]
        commands = UI.commands

        def broken_triggerer(self: UI, port: int) -> dict[str, list[str]]:
            cmds = commands(self, port)
            return {**cmds, "triggerer": [*cmds["triggerer"], "--no-such-option"]}

        monkeypatch.setattr(UI, "commands", broken_triggerer)
        with pytest.raises(UIError) as exc:
            ui.up()
        message = str(exc.value)
        assert exc.value.component == "triggerer"
        assert message.startswith("triggerer: exited at start (code 2)")
        assert f"last lines of {state_dir.resolve() / 'ui' / 'triggerer.log'}" in message
        assert "unrecognized arguments: --no-such-option" in message
        # The three that had started are stopped, with everything they started.
        assert len(spawned) == 4
        assert sessions(spawned) == []
        assert ui.procs() == {}
        assert {c["state"] for c in ui.status()["components"].values()} == {"stopped"}
    finally:
        ui.down()
