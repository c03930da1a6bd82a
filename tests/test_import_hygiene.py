"""The core (collectors, analytics, storage, simulator, ops) never imports Textual.

The headless collector runs on servers where a UI toolkit has no business loading; a subprocess
gives a clean sys.modules, and import-linter checks the declared contract statically.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[1]
CORE = ("optui.collectors", "optui.analytics", "optui.storage", "optui.simulator", "optui.ops")

PROBE = """
import importlib, pkgutil, sys
failed = []
for name in sys.argv[1:]:
    package = importlib.import_module(name)
    for info in pkgutil.walk_packages(package.__path__, name + "."):
        try:
            importlib.import_module(info.name)
        except ImportError as exc:
            failed.append(f"{info.name}: {exc}")
print("TEXTUAL" if any(m == "textual" or m.startswith("textual.") for m in sys.modules) else "CLEAN")
print("\\n".join(failed))
"""


def test_core_packages_do_not_import_textual() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *CORE], capture_output=True, text=True, timeout=120, cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    first, *failures = done.stdout.splitlines()
    assert first == "CLEAN", "a core module imported textual"
    assert not [f for f in failures if f], f"core modules failed to import: {failures}"


def test_import_linter_contracts_hold() -> None:
    linter = Path(sys.executable).parent / "lint-imports"
    if not linter.exists():
        linter_path = shutil.which("lint-imports")
        assert linter_path is not None, "import-linter is missing: pip install -e '.[test]'"
        linter = Path(linter_path)
    done = subprocess.run([str(linter)], capture_output=True, text=True, timeout=300, cwd=ROOT)
    hint = ""
    if "include_external_packages" in done.stdout:
        hint = "\nFix: add `include_external_packages = true` under [tool.importlinter] in pyproject.toml."
    assert done.returncode == 0, f"lint-imports failed:\n{done.stdout[-1500:]}{hint}"
