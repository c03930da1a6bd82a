"""First-time setup: requirements, prerequisites, directories, wizard, services, validation."""

from __future__ import annotations

from optui.ops import checks
from optui.ops.steps import DIRECTORIES, PREREQUISITES, SERVICES, VALIDATE, Step, steps_for
from optui.screens.menu import MenuItem, MenuScreen


def system_step(app) -> Step:
    """System requirements measured against the terminal the app is drawn on."""
    size = (app.size.width, app.size.height)
    colors = checks.color_count(app.console.color_system)
    return Step("System requirements", lambda s: checks.system_requirements(s, terminal=size, colors=colors))


class SetupMenuScreen(MenuScreen):
    """Steps 1-7 of a first installation; each shows a pass/fail table."""

    MENU_TITLE = "Setup (First Time)"
    ITEMS = (
        MenuItem("1", "Check system requirements", "system"),
        MenuItem("2", "Check prerequisites (and how to install what is missing)", "prerequisites"),
        MenuItem("3", "Create data and log directories", "directories"),
        MenuItem("4", "Configuration wizard", "wizard"),
        MenuItem("5", "Initialise services (InfluxDB, Redis)", "services"),
        MenuItem("6", "Validate the installation", "validate"),
        MenuItem("7", "Run all steps", "all"),
    )

    def item_system(self) -> None:
        self.run_steps("System requirements", [system_step(self.app)])

    def item_prerequisites(self) -> None:
        self.run_steps("Prerequisites", [PREREQUISITES])

    def item_directories(self) -> None:
        self.run_steps("Directories", [DIRECTORIES])

    def item_wizard(self) -> None:
        def load():
            from optui.screens.wizard import WizardScreen

            return WizardScreen()

        self.push_named(load, "Configuration wizard")

    def item_services(self) -> None:
        self.run_steps("Initialise services", [SERVICES])

    def item_validate(self) -> None:
        self.run_steps("Validate installation", [VALIDATE])

    def item_all(self) -> None:
        self.run_steps("Complete setup", [system_step(self.app), *steps_for("setup")[1:]])
