"""Production: checks, Kite login and tokens, live configuration, deployment files."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text

from optui.ops.deploy import write_deployment
from optui.ops.steps import PREREQUISITES, SOURCE, VALIDATE, default_deploy_dir, steps_for
from optui.screens.menu import MenuItem, MenuScreen, PathPrompt
from optui.screens.setup_menu import system_step


class ProductionMenuScreen(MenuScreen):
    """Items 1-9 of the production menu."""

    MENU_TITLE = "Production"
    ITEMS = (
        MenuItem("1", "All system checks", "checks"),
        MenuItem("2", "Kite Connect authentication", "kite_login"),
        MenuItem("3", "Enter an access token manually", "token_manual"),
        MenuItem("4", "Use the previous token", "token_previous"),
        MenuItem("5", "Live analytics configuration", "analytics"),
        MenuItem("6", "Participant analysis with alerts", "participants"),
        MenuItem("7", "Monitoring and alerting", "monitoring"),
        MenuItem("8", "Deployment files (systemd, docker-compose)", "deploy"),
        MenuItem("9", "Complete production setup", "complete"),
    )

    def item_checks(self) -> None:
        # The configured source is checked as it will be used: Kite's login, then a cycle from it.
        self.run_steps("All system checks", [system_step(self.app), PREREQUISITES, SOURCE, VALIDATE])

    def item_kite_login(self) -> None:
        def load():
            from optui.screens.kite_login import KiteLoginScreen

            return KiteLoginScreen()

        self.push_named(load, "Kite Connect authentication")

    def _token_prompt(self, mode: str, what: str) -> None:
        def load():
            from optui.screens.kite_login import TokenPromptScreen

            return TokenPromptScreen(mode=mode)

        self.push_named(load, what)

    def item_token_manual(self) -> None:
        self._token_prompt("manual", "Manual access token")

    def item_token_previous(self) -> None:
        self._token_prompt("previous", "Previous access token")

    def item_analytics(self) -> None:
        self.open_section("analytics", "Live analytics configuration")

    def item_participants(self) -> None:
        self.open_section("participants", "Participant analysis with alerts")

    def item_monitoring(self) -> None:
        self.open_section("monitoring", "Monitoring and alerting")

    def item_deploy(self) -> None:
        default = str(default_deploy_dir(self.settings))
        self.app.push_screen(PathPrompt("Write deployment files into which directory?", default),
                             self._deploy_into)

    def _deploy_into(self, directory: str | None) -> None:
        if directory is None:
            self.show(Text("Deployment files: cancelled", style="dim"))
            return
        settings = self.settings

        def task() -> list[object]:
            done = write_deployment(Path(directory), settings)
            out: list[object] = [f"Wrote {len(done.written)} files into {done.directory}:"]
            out += [f"  {p.name}" for p in done.written]
            out += [f"  {p.name} already exists and was left unchanged (it may hold secrets)" for p in done.kept]
            out.append(Text("Next steps:", style="bold"))
            out += [f"  {i}. {step}" for i, step in enumerate(done.next_steps, 1)]
            return out

        self.run_task("Deployment files", task)

    def item_complete(self) -> None:
        self.run_steps("Complete production setup", [system_step(self.app), *steps_for("production")[1:]])
