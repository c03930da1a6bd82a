"""Real influxd and redis-server daemons on loopback for integration tests, with pytest fixtures.

Tests talk to the same servers production uses, so the store and cache are proven against real
wire behaviour; each daemon gets a free port and a temporary directory, is stopped by its own PID,
and a missing binary fails loudly under CI (skips elsewhere) with the command that installs it.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import httpx
import pytest

INSTALL_HINT = (
    "apt-get update && DEBIAN_FRONTEND=noninteractive "
    "apt-get install -y influxdb influxdb-client redis-server"
)
_READY_TRIES = 200  # x 0.05 s poll = 10 s cap; both daemons are ready in about 0.1 s
_POLL_S = 0.05
_STOP_TIMEOUT_S = 15.0


def require_binary(name: str, hint: str = INSTALL_HINT) -> str:
    """Path of a server binary; pytest.fail under CI=true, pytest.skip otherwise, when absent."""
    path = shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None)
    if path:
        return path
    message = f"{name} is not installed: {hint}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)
    raise AssertionError("unreachable")


def free_port() -> int:
    """A TCP port the kernel just handed out on 127.0.0.1 (bind port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Daemon:
    """One server process started with stdio redirected, stopped by PID with SIGTERM."""

    def __init__(self, argv: list[str], workdir: Path, log_name: str) -> None:
        self.argv = argv
        self.workdir = workdir
        self.log_path = workdir / log_name
        self.proc: subprocess.Popen[bytes] | None = None

    def _spawn(self) -> None:
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child for its lifetime
        try:
            self.proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                start_new_session=True,
            )
        finally:
            log.close()

    def _wait_ready(self) -> None:
        for _ in range(_READY_TRIES):
            if self.proc is not None and self.proc.poll() is not None:
                break
            if self.is_ready():
                return
            time.sleep(_POLL_S)
        tail = self.log_path.read_text(errors="replace")[-2000:] if self.log_path.exists() else ""
        self.stop()
        raise RuntimeError(f"{self.argv[0]} did not become ready; log tail:\n{tail}")

    def is_ready(self) -> bool:  # pragma: no cover - overridden
        raise NotImplementedError

    def start(self) -> None:
        """Start the daemon and return once it answers."""
        if self.running:
            return
        self._spawn()
        self._wait_ready()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        """SIGTERM the daemon's own PID and wait for it to exit (SIGKILL after a timeout)."""
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            try:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=_STOP_TIMEOUT_S)
            except ProcessLookupError:
                pass
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()


class InfluxServer(Daemon):
    """influxd 1.x with a minimal config and all state under `workdir`."""

    def __init__(self, workdir: Path, port: int | None = None, auth: bool = False) -> None:
        self.port = port or free_port()
        self.rpc_port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        workdir.mkdir(parents=True, exist_ok=True)
        config = workdir / "influxdb.conf"
        config.write_text(
            "reporting-enabled = false\n"
            f'bind-address = "127.0.0.1:{self.rpc_port}"\n'
            f'[meta]\n  dir = "{workdir / "meta"}"\n'
            f'[data]\n  dir = "{workdir / "data"}"\n  wal-dir = "{workdir / "wal"}"\n'
            "  query-log-enabled = false\n"
            "[coordinator]\n  max-select-point = 0\n"
            f'[http]\n  bind-address = "127.0.0.1:{self.port}"\n  log-enabled = false\n'
            "  max-row-limit = 0\n"
            f"  auth-enabled = {'true' if auth else 'false'}\n"
            "[monitor]\n  store-enabled = false\n"
            "[continuous_queries]\n  enabled = false\n",
            encoding="utf-8",
        )
        super().__init__([require_binary("influxd"), "-config", str(config)], workdir, "influxd.log")

    def create_admin(self, user: str, password: str) -> None:
        """Create the first (admin) user; allowed without credentials while none exist."""
        q = f"CREATE USER \"{user}\" WITH PASSWORD '{password}' WITH ALL PRIVILEGES"
        httpx.post(f"{self.url}/query", params={"q": q}, timeout=10.0).raise_for_status()

    @property
    def store_url(self) -> str:
        """The optui store URL for this server."""
        return f"influxdb://127.0.0.1:{self.port}"

    def is_ready(self) -> bool:
        try:
            return httpx.get(f"{self.url}/ping", timeout=0.5).status_code == 204
        except httpx.HTTPError:
            return False

    def start(self) -> None:
        if self.running:
            return
        # After a stop the old PID can linger briefly while the port is released: retry the bind.
        for _ in range(_READY_TRIES):
            if not _port_in_use(self.port):
                break
            time.sleep(_POLL_S)
        super().start()


class RedisServer(Daemon):
    """redis-server without persistence, on a free loopback port."""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        workdir.mkdir(parents=True, exist_ok=True)
        super().__init__(
            [
                require_binary("redis-server"),
                "--bind", "127.0.0.1",
                "--port", str(self.port),
                "--dir", str(workdir),
                "--save", "",
                "--appendonly", "no",
            ],
            workdir,
            "redis.log",
        )

    def is_ready(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False


class VictoriaMetricsServer(Daemon):
    """VictoriaMetrics: accepts line protocol on /api/v2/write, so the InfluxDB 2 client's write
    path meets a real server (no InfluxDB 2 is installable here)."""

    INSTALL = "apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y victoria-metrics"

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        workdir.mkdir(parents=True, exist_ok=True)
        super().__init__(
            [
                require_binary("victoria-metrics", self.INSTALL),
                f"-storageDataPath={workdir / 'data'}",
                f"-httpListenAddr=127.0.0.1:{self.port}",
                "-retentionPeriod=100y",
                "-search.disableCache",
                "-loggerLevel=ERROR",
            ],
            workdir,
            "victoria-metrics.log",
        )

    def is_ready(self) -> bool:
        try:
            return httpx.get(f"{self.url}/health", timeout=0.5).text.strip() == "OK"
        except httpx.HTTPError:
            return False

    def export(self, metric_regex: str) -> list[dict[str, object]]:
        """Every stored sample of metrics matching the regex (flushed first)."""
        import json

        httpx.get(f"{self.url}/internal/force_flush", timeout=10.0)
        response = httpx.post(
            f"{self.url}/api/v1/export",
            data={"match[]": f'{{__name__=~"{metric_regex}"}}'},
            timeout=10.0,
        )
        return [json.loads(line) for line in response.text.splitlines() if line.strip()]


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _session_dir(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix))


_S = TypeVar("_S", bound=Daemon)


@contextmanager
def _running(kind: type[_S], prefix: str) -> Iterator[_S]:
    """A server of `kind` in its own temporary directory, stopped and removed afterwards."""
    workdir = _session_dir(prefix)
    server = kind(workdir)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def influx_server() -> Iterator[str]:
    """A running influxd 1.x for the whole session; yields its base URL http://127.0.0.1:PORT."""
    with _running(InfluxServer, "optui-influxd-") as server:
        yield server.url


@pytest.fixture(scope="session")
def redis_server() -> Iterator[str]:
    """A running redis-server for the whole session; yields redis://127.0.0.1:PORT/0."""
    with _running(RedisServer, "optui-redis-") as server:
        yield server.url


@pytest.fixture(scope="session")
def victoria_server() -> Iterator[VictoriaMetricsServer]:
    """A running VictoriaMetrics (InfluxDB 2 write API stand-in) for the whole session."""
    with _running(VictoriaMetricsServer, "optui-victoria-") as server:
        yield server


@pytest.fixture
def influx_process(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[InfluxServer]:
    """A private influxd the test may stop and start (`.stop()`, `.start()`, `.restart()`).

    Parametrize indirectly with {"auth": True} for a server that requires a user and password.
    """
    options = getattr(request, "param", None) or {}
    server = InfluxServer(tmp_path / "influxd", auth=bool(options.get("auth")))
    server.start()
    try:
        yield server
    finally:
        server.stop()
