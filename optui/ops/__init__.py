"""Setup, development and production work as Textual-free functions, for the menus and `--auto`."""

from optui.ops.checks import Check, passed
from optui.ops.steps import MODES, Step, StepResult, iter_steps, run_setup_auto, run_step, steps_for

__all__ = [
    "Check", "passed", "MODES", "Step", "StepResult", "iter_steps", "run_setup_auto", "run_step",
    "steps_for",
]
