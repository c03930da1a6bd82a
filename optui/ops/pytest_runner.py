"""Runs the project's pytest suite on one marker in a subprocess, streaming its output lines.

A subprocess keeps the tests' imports, event loops and failures out of the running app. The run
is the README's test command (`python -m pytest -p no:cacheprovider` in the checkout, with the
user's environment unchanged) plus a marker and plain output; one run at a time per process.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

# Menu digit -> (label, marker); marker "" runs every test.
TEST_MODES: dict[str, tuple[str, str]] = {
    "1": ("Unit tests", "unit"),
    "2": ("Integration tests", "integration"),
    "3": ("Performance tests", "performance"),
    "4": ("Chaos tests", "chaos"),
    "5": ("Property-based tests", "property"),
    "6": ("Live data tests", "live"),
    "7": ("Mock data tests", "mock"),
    "8": ("Participant analysis tests", "participants"),
    "9": ("All tests", ""),
}

_RUN_LOCK = threading.Lock()  # one pytest run at a time: two would mix output and share tmp dirs
_POLL_S = 0.2  # how often a silent run checks for cancellation

_COUNT = re.compile(r"(\d+) (passed|failed|errors?|skipped|deselected|xfailed|xpassed|warnings?)")


@dataclass
class PytestSummary:
    """Counts from pytest's last line plus its exit code."""

    marker: str
    returncode: int | None = None
    counts: dict[str, int] = field(default_factory=dict)
    cancelled: bool = False
    refused: bool = False  # another run was going, so this one never started

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def line(self) -> str:
        what = f"-m {self.marker}" if self.marker else "all tests"
        if self.refused:
            return f"{what}: not started, another test run is going"
        if self.cancelled:
            return f"{what}: cancelled"
        if self.returncode == 5:
            return f"{what}: no tests carry this marker"
        parts = [f"{self.counts.get(k, 0)} {k}" for k in ("passed", "failed", "errors", "skipped")]
        verdict = "OK" if self.ok else f"FAILED (exit {self.returncode})"
        return f"{what}: {', '.join(parts)} — {verdict}"


def parse_counts(line: str) -> dict[str, int]:
    """Counts in a pytest summary line such as '3 passed, 1 failed in 0.20s'."""
    out: dict[str, int] = {}
    for number, kind in _COUNT.findall(line):
        if kind in ("error",):
            kind = "errors"
        if kind == "warning":
            kind = "warnings"
        out[kind] = int(number)
    return out


def project_root() -> Path | None:
    """The checkout holding pyproject.toml and tests/ for an editable install, else None."""
    root = Path(__file__).resolve().parents[2]
    return root if (root / "tests").is_dir() and (root / "pyproject.toml").is_file() else None


def pytest_command(marker: str, python: str | None = None) -> list[str]:
    """The pytest command line for one marker ("" for all)."""
    cmd = [python or sys.executable, "-m", "pytest", "-q", "--color=no", "-p", "no:cacheprovider"]
    if marker:
        cmd += ["-m", marker]
    return cmd


def is_running() -> bool:
    """Whether a pytest run started by this process is going."""
    return _RUN_LOCK.locked()


def run_pytest(
    marker: str,
    on_line: Callable[[str], None],
    cwd: Path | None = None,
    is_cancelled: Callable[[], bool] = lambda: False,
) -> PytestSummary:
    """Run pytest in `cwd` (the project root by default), calling on_line for each output line.

    The environment is passed on as it is (no NO_COLOR or other switches that change what the
    tests see). While a run is going, another call returns at once with `refused` set.
    """
    summary = PytestSummary(marker)
    if not _RUN_LOCK.acquire(blocking=False):
        on_line("A test run is already going: wait for it to finish (or leave its screen to stop it).")
        summary.refused = True
        return summary
    try:
        return _run_locked(summary, on_line, cwd, is_cancelled)
    finally:
        _RUN_LOCK.release()


def _run_locked(
    summary: PytestSummary, on_line: Callable[[str], None], cwd: Path | None, is_cancelled: Callable[[], bool],
) -> PytestSummary:
    root = cwd or project_root()
    if root is None:
        on_line("No tests/ directory next to the installed optui: run from a source checkout "
                "(pip install -e .).")
        summary.returncode = 4
        return summary
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    command = pytest_command(summary.marker)
    on_line(f"$ {' '.join(command[1:])}   (in {root})")
    proc = subprocess.Popen(
        command, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL, text=True, bufsize=1, errors="replace",
    )
    assert proc.stdout is not None
    lines: queue.Queue[str | None] = queue.Queue()

    def pump(stream: IO[str]) -> None:
        try:
            for raw in stream:
                lines.put(raw.rstrip("\n"))
        except (OSError, ValueError):
            pass  # the pipe was closed after a stop
        lines.put(None)

    reader = threading.Thread(target=pump, args=(proc.stdout,), name="pytest-output", daemon=True)
    reader.start()
    try:
        while True:
            if is_cancelled():
                summary.cancelled = True
                _stop(proc)
                break
            try:
                line = lines.get(timeout=_POLL_S)
            except queue.Empty:
                continue
            if line is None:
                break
            on_line(line)
            if _COUNT.search(line) and (" in " in line or line.startswith("=")):
                summary.counts = parse_counts(line)
    except BaseException:
        _stop(proc)  # the caller failed mid-run: never leave the suite running behind it
        raise
    finally:
        summary.returncode = proc.wait() if proc.returncode is None else proc.returncode
        reader.join(timeout=5)
        proc.stdout.close()
    return summary


def _stop(proc: subprocess.Popen[str], grace_s: float = 10.0) -> None:
    """Stop a pytest run: Ctrl-C first (pytest then tears its fixtures and test servers down),
    then SIGTERM and SIGKILL if it has not ended within `grace_s` each."""
    for send in (lambda: proc.send_signal(signal.SIGINT), proc.terminate, proc.kill):
        try:
            send()
            proc.wait(timeout=grace_s)
            return
        except subprocess.TimeoutExpired:
            continue
        except OSError:
            return  # already gone
