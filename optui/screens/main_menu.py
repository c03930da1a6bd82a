"""The main menu: Setup (first time), Development, Production, Exit."""

from __future__ import annotations

from textual.binding import Binding

from optui.config import config_path, redact_url
from optui.screens.menu import MenuItem, MenuScreen


class MainMenuScreen(MenuScreen):
    """Where `optui` starts; each item opens a sub-menu."""

    MENU_TITLE = "optui — Indian index options workstation"
    BACK_LABEL = "Exit"
    # A stray Escape over SSH (or a terminal's Alt prefix) must not close the app: 0 or q exits.
    BINDINGS = [
        *(
            Binding("0", b.action, "Exit", show=b.show, id=b.id, tooltip="Exit optui")
            if isinstance(b, Binding) and b.action == "back" else b
            for b in MenuScreen.BINDINGS
        ),
        Binding("escape", "stay", show=False),
    ]
    ITEMS = (
        MenuItem("1", "Setup (First Time)", "setup"),
        MenuItem("2", "Development", "development"),
        MenuItem("3", "Production", "production"),
    )

    def on_screen_resume(self) -> None:
        """Show the configuration in use each time the menu comes back (the wizard may have written it)."""
        settings = self.settings
        where = settings.path
        if where is None and config_path().is_file():
            where = config_path()  # written since these settings were loaded
        self.results.clear()
        self.show(f"Configuration: {where or 'defaults (no configuration file yet: run 1 Setup → 4 wizard)'}")
        from optui.collectors.make_source import is_simulated, store_in_use

        # The store collection writes: a simulated source keeps its own (data/sim by default).
        apart = " (simulated: kept apart)" if is_simulated(settings) and store_in_use(settings) != settings.store.url else ""
        self.show(f"Source: {settings.source.kind}   Store: {redact_url(store_in_use(settings))}{apart}   "
                  f"Cache: {redact_url(settings.cache.url)}")
        self.show("Press a digit to choose, d for the dashboard, ? for help, q to quit.")

    def action_back(self) -> None:
        self.app.exit()

    def action_stay(self) -> None:
        self.notify("This is the main menu: press 0 or q to exit.", timeout=3)

    def item_setup(self) -> None:
        from optui.screens.setup_menu import SetupMenuScreen

        self.app.push_screen(SetupMenuScreen())

    def item_development(self) -> None:
        from optui.screens.development_menu import DevelopmentMenuScreen

        self.app.push_screen(DevelopmentMenuScreen())

    def item_production(self) -> None:
        from optui.screens.production_menu import ProductionMenuScreen

        self.app.push_screen(ProductionMenuScreen())
