"""Runs the project's pytest suite on one marker in a subprocess, streaming its output lines.

A subprocess keeps the tests' imports, event loops and failures out of the running app.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

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

_COUNT = re.compile(r"(\d+) (passed|failed|errors?|skipped|deselected|xfailed|xpassed|warnings?)")


@dataclass
class PytestSummary:
    """Counts from pytest's last line plus its exit code."""

    marker: str
    returncode: int | None = None
    counts: dict[str, int] = field(default_factory=dict)
    cancelled: bool = False

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def line(self) -> str:
        what = f"-m {self.marker}" if self.marker else "all tests"
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


def run_pytest(
    marker: str,
    on_line: Callable[[str], None],
    cwd: Path | None = None,
    is_cancelled: Callable[[], bool] = lambda: False,
) -> PytestSummary:
    """Run pytest in `cwd` (the project root by default), calling on_line for each output line."""
    summary = PytestSummary(marker)
    root = cwd or project_root()
    if root is None:
        on_line("No tests/ directory next to the installed optui: run from a source checkout "
                "(pip install -e .).")
        summary.returncode = 4
        return summary
    env = dict(os.environ, PYTHONUNBUFFERED="1", NO_COLOR="1")
    on_line(f"$ {' '.join(pytest_command(marker)[1:])}   (in {root})")
    proc = subprocess.Popen(
        pytest_command(marker), cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL, text=True, bufsize=1, errors="replace",
    )
    assert proc.stdout is not None
    try:
        for raw in proc.stdout:
            line = raw.rstrip("\n")
            on_line(line)
            if _COUNT.search(line) and (" in " in line or line.startswith("=")):
                summary.counts = parse_counts(line)
            if is_cancelled():
                summary.cancelled = True
                proc.terminate()
                break
    finally:
        proc.stdout.close()
        try:
            summary.returncode = proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            summary.returncode = proc.wait()
    return summary
