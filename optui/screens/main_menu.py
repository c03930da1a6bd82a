"""The main menu: Setup (first time), Development, Production, Exit."""

from __future__ import annotations

from optui.screens.menu import MenuItem, MenuScreen


class MainMenuScreen(MenuScreen):
    """Where `optui` starts; each item opens a sub-menu."""

    MENU_TITLE = "optui — Indian index options workstation"
    BACK_LABEL = "Exit"
    ITEMS = (
        MenuItem("1", "Setup (First Time)", "setup"),
        MenuItem("2", "Development", "development"),
        MenuItem("3", "Production", "production"),
    )

    def on_mount(self) -> None:
        super().on_mount()
        settings = self.settings
        where = settings.path or "defaults (no configuration file yet: run 1 Setup → 4 wizard)"
        self.show(f"Configuration: {where}")
        self.show(f"Source: {settings.source.kind}   Store: {settings.store.url}   Cache: {settings.cache.url}")
        self.show("Press a digit to choose, d for the dashboard, ? for help, q to quit.")

    def action_back(self) -> None:
        self.app.exit()

    def item_setup(self) -> None:
        from optui.screens.setup_menu import SetupMenuScreen

        self.app.push_screen(SetupMenuScreen())

    def item_development(self) -> None:
        from optui.screens.development_menu import DevelopmentMenuScreen

        self.app.push_screen(DevelopmentMenuScreen())

    def item_production(self) -> None:
        from optui.screens.production_menu import ProductionMenuScreen

        self.app.push_screen(ProductionMenuScreen())
