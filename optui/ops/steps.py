"""The named steps each menu's "complete setup" runs, and `optui setup --mode X --auto`.

One list per mode so the menus and the headless command cannot drift apart.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from optui.config import Settings
from optui.ops import checks
from optui.ops.deploy import write_deployment

log = logging.getLogger(__name__)

MODES = ("setup", "development", "production")


@dataclass(frozen=True)
class Step:
    """A titled unit of work returning check rows."""

    title: str
    run: Callable[[Settings], list[checks.Check]]


@dataclass
class StepResult:
    """One step's rows, or the error that stopped it."""

    title: str
    checks: list[checks.Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return checks.passed(self.checks)

    def summary(self) -> str:
        failed = [c for c in self.checks if c.ok is False]
        if failed:
            return "; ".join(f"{c.name}: {c.detail}" for c in failed)
        shown = [c for c in self.checks if c.ok] or self.checks
        return "; ".join(f"{c.name}: {c.detail}" for c in shown[:3])


def default_deploy_dir(settings: Settings) -> Path:
    """Where the production steps put deployment files unless told otherwise."""
    return Path(settings.general.data_dir).expanduser() / "deploy"


def deployment_step(directory: Path | None = None) -> Step:
    """A step that writes the deployment files and reports them."""

    def run(settings: Settings) -> list[checks.Check]:
        target = directory or default_deploy_dir(settings)
        done = write_deployment(target, settings)
        rows = [checks.Check("Deployment files", True, f"{len(done.written)} files in {done.directory}")]
        rows += [checks.Check("kept", None, f"{p} exists and was left unchanged") for p in done.kept]
        rows += [checks.Check(f"next {i}", None, s) for i, s in enumerate(done.next_steps, 1)]
        return rows

    return Step("Deployment files", run)


SYSTEM = Step("System requirements", checks.system_requirements)
PREREQUISITES = Step("Prerequisites", checks.prerequisites)
DIRECTORIES = Step("Data and log directories", checks.create_directories)
SERVICES = Step("Initialise services", checks.initialise_services)
SOURCE = Step("Source and login", checks.source_login)
VALIDATE = Step("Validate installation", checks.validate_installation)


def steps_for(mode: str) -> list[Step]:
    """The steps of one mode's complete setup (the menus swap in a terminal-aware first step).

    Every mode checks the configured source (SOURCE) before a collection cycle from it (VALIDATE).
    """
    if mode == "setup":
        return [SYSTEM, PREREQUISITES, DIRECTORIES, SERVICES, SOURCE, VALIDATE]
    if mode == "development":
        return [SYSTEM, PREREQUISITES, DIRECTORIES, SOURCE, VALIDATE]
    if mode == "production":
        return [SYSTEM, PREREQUISITES, DIRECTORIES, SERVICES, SOURCE, VALIDATE, deployment_step()]
    raise ValueError(f"unknown setup mode {mode!r}: use {', '.join(MODES)}")


def run_step(step: Step, settings: Settings) -> StepResult:
    """Run one step; an unexpected error becomes a failed row (trace in the log), never a crash."""
    try:
        return StepResult(step.title, step.run(settings))
    except Exception as exc:
        log.exception("step %s failed", step.title)
        return StepResult(step.title, [checks.Check(step.title, False, f"{type(exc).__name__}: {exc}",
                                                    "see the log file for details")])


def iter_steps(steps: list[Step], settings: Settings) -> Iterator[StepResult]:
    """Each step's result as it finishes, for progress displays."""
    for step in steps:
        yield run_step(step, settings)


def run_setup_auto(mode: str, settings: Settings, out: TextIO | None = None) -> int:
    """Run a mode's steps without a screen, one result line per step; 0 only if all passed."""
    import sys

    stream = out or sys.stdout
    if mode not in MODES:
        print(f"FAIL  setup mode {mode!r} is not known: use {', '.join(MODES)}", file=stream)
        return 2
    failed = 0
    for result in iter_steps(steps_for(mode), settings):
        failed += not result.ok
        print(f"{'PASS' if result.ok else 'FAIL'}  {result.title}: {result.summary()}", file=stream)
        for row in result.checks:
            if row.ok is False and row.fix:
                print(f"      fix {row.name}: {row.fix}", file=stream)
            elif row.name.startswith("next "):
                print(f"      {row.name[5:]}. {row.detail}", file=stream)
    total = len(steps_for(mode))
    print(f"{total - failed}/{total} steps passed", file=stream)
    return 0 if failed == 0 else 1
