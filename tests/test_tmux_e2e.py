"""End to end: the installed `optui` driven in tmux, asserting on the captured screen at each step.

Main menu → 2 Development → d dashboard → t cycles the timeframe → q quits with exit status 0.
"""

from __future__ import annotations

import importlib.util
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

WIDTH, HEIGHT = 80, 24
# Loaded by the app's interpreter: SIGUSR1 writes every thread's stack, explaining a hang at exit.
DIAGNOSTICS = """
import faulthandler, os, signal
faulthandler.register(signal.SIGUSR1, file=open({dump!r}, "w"), all_threads=True)
with open({dump!r} + ".pid", "w") as handle:
    handle.write(str(os.getpid()))
"""


def app_command() -> list[str]:
    """The console script once the CLI exists; until then the app started the same way by hand."""
    script = Path(sys.executable).parent / "optui"
    if script.exists() and importlib.util.find_spec("optui.cli") is not None:
        return [str(script)]
    code = "from optui.app import OptuiApp; from optui.config import load_settings; OptuiApp(load_settings()).run()"
    return [sys.executable, "-c", code]


class Tmux:
    """A private tmux server (own socket) holding one session, so a user's tmux is never touched."""

    def __init__(self, socket: str) -> None:
        self.base = ["tmux", "-L", socket]
        self.dump = Path(os.devnull)
        self.status = Path(os.devnull)

    def __call__(self, *args: str) -> str:
        done = subprocess.run([*self.base, *args], capture_output=True, text=True, timeout=10)
        if done.returncode != 0:
            raise AssertionError(f"tmux {' '.join(args)} failed: {done.stderr.strip()}")
        return done.stdout

    def capture(self) -> str:
        return self("capture-pane", "-p", "-t", "optui")

    def pane(self, fmt: str) -> str:
        return self("display-message", "-p", "-t", "optui", fmt).strip()

    def wait_for(self, what: str, test: Callable[[str], bool], timeout: float = 30.0) -> str:
        """Poll the screen until `test` holds, within a bounded time; fail showing the last screen."""
        deadline = time.monotonic() + timeout
        text = ""
        while time.monotonic() < deadline:
            text = self.capture()
            assert "Traceback" not in text, f"traceback on screen:\n{text}"
            if test(text):
                return text
            time.sleep(0.1)
        raise AssertionError(f"screen never showed {what} within {timeout} s; last screen:\n{text}")


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[Tmux]:
    if shutil.which("tmux") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("tmux is not installed: CI must install it (apt-get install tmux) for this test")
        pytest.skip("tmux is not installed")
    server = Tmux(f"optui-e2e-{os.getpid()}-{tmp_path.name}")
    server.dump = tmp_path / "threads.txt"
    diagnostics = tmp_path / "diag"
    diagnostics.mkdir()
    (diagnostics / "sitecustomize.py").write_text(DIAGNOSTICS.format(dump=str(server.dump)))
    env = {
        "OPTUI_CONFIG_FILE": tmp_path / "optui.toml",
        "OPTUI_SECRETS_FILE": tmp_path / "secrets.toml",
        "OPTUI_GENERAL_DATA_DIR": tmp_path / "data",
        "OPTUI_GENERAL_LOG_DIR": tmp_path / "logs",
        "OPTUI_STORE_URL": f"sqlite:///{tmp_path / 'data' / 'optui.db'}",
        "OPTUI_STORE_SPOOL_DIR": tmp_path / "data" / "spool",
        "OPTUI_SOURCE_INSTRUMENTS_CACHE_DIR": tmp_path / "data" / "instruments",
        "OPTUI_EXPORT_OUT_DIR": tmp_path / "data",
        "OPTUI_SOURCE_KIND": "sim",
        "OPTUI_FLOW_TIMEFRAME": "5m",
        "PYTHONPATH": diagnostics,
    }
    command = "env " + " ".join(f"{k}={shlex.quote(str(v))}" for k, v in env.items())
    command += " " + " ".join(shlex.quote(part) for part in app_command())
    # The shell records the exit status: tmux's own pane state can lag behind a finished process.
    server.status = tmp_path / "exit-status"
    command += f"; echo $? > {shlex.quote(str(server.status))}"
    server("new-session", "-d", "-s", "optui", "-x", str(WIDTH), "-y", str(HEIGHT), "-c", str(tmp_path), command)
    server("set-option", "-t", "optui", "remain-on-exit", "on")
    try:
        yield server
    finally:
        subprocess.run([*server.base, "kill-server"], capture_output=True, timeout=10)


def test_menu_to_dashboard_timeframes_and_quit(tmux: Tmux) -> None:
    tmux.wait_for("the main menu", lambda s: "1  Setup (First Time)" in s and "3  Production" in s)
    tmux("send-keys", "-t", "optui", "2")
    screen = tmux.wait_for("the development menu", lambda s: "1  Test mode selection" in s)
    assert "8  Complete development setup" in screen and "0  Back" in screen
    tmux("send-keys", "-t", "optui", "d")
    screen = tmux.wait_for("the dashboard", lambda s: "Timeframe" in s and "Test mode selection" not in s)
    header = screen.splitlines()[0]
    assert header.rstrip().endswith("5m"), header
    for expected in ("15m", "30m", "1h"):
        tmux("send-keys", "-t", "optui", "t")
        tmux.wait_for(f"timeframe {expected}", lambda s, e=expected: s.splitlines()[0].rstrip().endswith(" " + e))
    tmux("send-keys", "-t", "optui", "T")
    tmux.wait_for("timeframe back to 30m", lambda s: s.splitlines()[0].rstrip().endswith(" 30m"))
    tmux("send-keys", "-t", "optui", "q")
    deadline = time.monotonic() + 60  # a collection cycle in flight finishes before exit
    while not (tmux.status.exists() and tmux.status.read_text().strip()):
        if time.monotonic() > deadline:
            pytest.fail(f"optui did not exit within 60 s of q; its threads:\n{thread_dump(tmux, tmux.dump)}")
        time.sleep(0.1)
    assert tmux.status.read_text().strip() == "0", "optui exited with a failure status"


def thread_dump(tmux: Tmux, dump: Path) -> str:
    """Ask a hung app for every thread's stack (faulthandler on SIGUSR1, see DIAGNOSTICS)."""
    pid = int(Path(f"{dump}.pid").read_text())  # the pane's process may be a shell around it
    os.kill(pid, signal.SIGUSR1)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not (dump.exists() and dump.stat().st_size):
        time.sleep(0.1)
    text = dump.read_text() if dump.exists() else "(no dump written)"
    tty = tmux.pane("#{pane_tty}")
    ps = subprocess.run(["ps", "-t", tty, "-o", "pid,ppid,stat,etime,cmd"], capture_output=True, text=True)
    try:
        state = next(ln for ln in Path(f"/proc/{pid}/status").read_text().splitlines() if ln.startswith("State"))
    except (OSError, StopIteration):
        state = "State: gone"
    os.kill(pid, signal.SIGKILL)
    return f"app pid {pid} {state}\nprocesses on {tty}:\n{ps.stdout}\n{text}"


def _exit_status(tmux: Tmux, within_s: float) -> str:
    """The app's exit status once the shell recorded it, or "" if it is still running."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if tmux.status.exists() and tmux.status.read_text().strip():
            return tmux.status.read_text().strip()
        time.sleep(0.1)
    return ""


def test_tiny_terminal_keeps_the_app_alive_and_it_recovers(tmux: Tmux) -> None:
    """3x5 on the main menu once ended the app; so did resize storms on the dashboard."""
    tmux.wait_for("the main menu", lambda s: "1  Setup (First Time)" in s)
    for width, height in ((3, 5), (1, 1), (80, 1), (3, 5)):
        tmux("resize-window", "-t", "optui", "-x", str(width), "-y", str(height))
        time.sleep(0.3)
    tmux("resize-window", "-t", "optui", "-x", "100", "-y", "30")
    tmux.wait_for("the main menu at 100 columns", lambda s: "1  Setup (First Time)" in s
                  and max(len(line.rstrip()) for line in s.splitlines()) > 90)
    assert _exit_status(tmux, 0.5) == "", "optui exited after being resized"
    # The dashboard through a storm of resizes across its wide/tabbed switch and the cover.
    tmux("send-keys", "-t", "optui", "d")
    tmux.wait_for("the dashboard", lambda s: "Timeframe" in s and "Setup (First Time)" not in s)
    for _ in range(3):
        for width, height in ((160, 48), (3, 5), (100, 30), (130, 40), (1, 1), (81, 24), (200, 50)):
            tmux("resize-window", "-t", "optui", "-x", str(width), "-y", str(height))
    tmux("resize-window", "-t", "optui", "-x", "160", "-y", "48")
    screen = tmux.wait_for("the wide dashboard", lambda s: "╭─ Alerts " in s and "╭─ Health " in s
                          and "Timeframe" in s)
    assert len(screen.splitlines()[0].rstrip()) > 120, "the dashboard did not follow the terminal to 160 columns"
    assert _exit_status(tmux, 0.5) == "", "optui exited during a resize storm"
    tmux("send-keys", "-t", "optui", "q")
    assert _exit_status(tmux, 60) == "0"


def test_closed_terminal_ends_the_app_even_with_sighup_ignored(tmp_path: Path) -> None:
    """As under nohup: SIGHUP ignored, the terminal closed; the app must notice and exit."""
    if shutil.which("tmux") is None:
        pytest.fail("tmux is not installed: install it (apt-get install tmux) for this test")
    server = Tmux(f"optui-hup-{os.getpid()}-{tmp_path.name}")
    pid_file = tmp_path / "app.pid"
    code = (
        "import os, signal; signal.signal(signal.SIGHUP, signal.SIG_IGN); "
        f"open({str(pid_file)!r}, 'w').write(str(os.getpid())); "
        "from optui.app import OptuiApp; from optui.config import load_settings; "
        "OptuiApp(load_settings()).run()"
    )
    env = {
        "OPTUI_CONFIG_FILE": tmp_path / "optui.toml",
        "OPTUI_SECRETS_FILE": tmp_path / "secrets.toml",
        "OPTUI_GENERAL_DATA_DIR": tmp_path / "data",
        "OPTUI_GENERAL_LOG_DIR": tmp_path / "logs",
        "OPTUI_STORE_URL": f"sqlite:///{tmp_path / 'data' / 'optui.db'}",
    }
    command = "env " + " ".join(f"{k}={shlex.quote(str(v))}" for k, v in env.items())
    command += f" {shlex.quote(sys.executable)} -c {shlex.quote(code)}"
    server("new-session", "-d", "-s", "optui", "-x", "100", "-y", "30", "-c", str(tmp_path), command)
    try:
        server.wait_for("the main menu", lambda s: "1  Setup (First Time)" in s)
        pid = int(pid_file.read_text())
    finally:
        subprocess.run([*server.base, "kill-server"], capture_output=True, timeout=10)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.1)
    if _alive(pid):
        os.kill(pid, signal.SIGKILL)
        pytest.fail("optui kept running after its terminal closed (SIGHUP ignored)")
    log_text = (tmp_path / "logs" / "optui.log").read_text()
    assert "the terminal went away" in log_text


def _alive(pid: int) -> bool:
    """Whether the process runs (a zombie awaiting its reaper counts as ended)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return False
    state = next((ln for ln in status if ln.startswith("State")), "")
    return bool(state) and "zombie" not in state
