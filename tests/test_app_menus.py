"""Pilot tests of the app shell: every menu item reached by its digit, with its effect checked."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from textual.widgets import Log, ProgressBar, RichLog

from optui.app import OptuiApp, TooSmallScreen
from optui.config import Settings
from optui.screens.menu import MenuScreen

pytestmark = pytest.mark.unit


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("OPTUI_CONFIG_FILE", str(tmp_path / "home" / "optui.toml"))
    monkeypatch.chdir(tmp_path)
    s = Settings()
    s.general.data_dir = str(tmp_path / "data")
    s.general.log_dir = str(tmp_path / "logs")
    s.store.url = f"sqlite:///{tmp_path / 'data' / 'optui.db'}"
    s.store.spool_dir = str(tmp_path / "data" / "spool")
    s.source.instruments_cache_dir = str(tmp_path / "data" / "instruments")
    s.export.out_dir = str(tmp_path / "data")
    yield s
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "_optui", False)]:
        root.removeHandler(handler)
        handler.close()


@pytest.fixture
def fast_validation(monkeypatch: pytest.MonkeyPatch) -> None:
    """The collection cycle has its own tests; here it only has to be called."""
    from optui.ops import checks

    monkeypatch.setattr(checks, "collection_cycle", lambda _s: checks.Check("Collection cycle", True, "stub"))


def panel_text(screen: MenuScreen) -> str:
    panel = screen.query_one("#results")
    if isinstance(panel, Log):
        return "\n".join(panel.lines)
    assert isinstance(panel, RichLog)
    return "\n".join("".join(seg.text for seg in strip) for strip in panel.lines)


async def settle(app: OptuiApp, pilot) -> None:
    await pilot.pause()
    await app.workers.wait_for_complete()
    await pilot.pause()
    await pilot.pause()


async def open_menu(app: OptuiApp, pilot, digit: str, name: str) -> MenuScreen:
    await pilot.press(digit)
    await pilot.pause()
    assert type(app.screen).__name__ == name
    return app.screen  # type: ignore[return-value]


async def test_main_menu_digits_and_back(settings: Settings) -> None:
    app = OptuiApp(settings)
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.pause()
        assert type(app.screen).__name__ == "MainMenuScreen"
        text = panel_text(app.screen)
        assert "Source: sim" in text
        for digit, name in (("1", "SetupMenuScreen"), ("2", "DevelopmentMenuScreen"), ("3", "ProductionMenuScreen")):
            await open_menu(app, pilot, digit, name)
            await pilot.press("escape" if digit != "2" else "0")
            await pilot.pause()
            assert type(app.screen).__name__ == "MainMenuScreen"
        # arrows + Enter reach the same items
        await pilot.press("home", "down", "enter")
        await pilot.pause()
        assert type(app.screen).__name__ == "DevelopmentMenuScreen"
        await pilot.press("0")
        await pilot.press("9")  # not an item: nothing happens
        await pilot.pause()
        assert type(app.screen).__name__ == "MainMenuScreen"
        await pilot.press("escape")  # a stray Escape on the main menu does not exit
        await pilot.pause()
        assert app.is_running and type(app.screen).__name__ == "MainMenuScreen"
        await pilot.press("0")
        await pilot.pause()
    assert app.return_code == 0


async def test_setup_items(settings: Settings, tmp_path: Path, fast_validation: None) -> None:
    app = OptuiApp(settings)
    async with app.run_test(size=(100, 40)) as pilot:
        screen = await open_menu(app, pilot, "1", "SetupMenuScreen")
        await pilot.press("1")
        await settle(app, pilot)
        text = panel_text(screen)
        assert "Terminal size" in text and "100x40" in text and "PASS" in text
        await pilot.press("2")
        await settle(app, pilot)
        assert "package textual" in panel_text(screen) and "not configured" in panel_text(screen)
        await pilot.press("3")
        await settle(app, pilot)
        assert (tmp_path / "data" / "spool").is_dir() and (tmp_path / "logs").is_dir()
        await pilot.press("5")
        await settle(app, pilot)
        assert (tmp_path / "data" / "optui.db").exists()
        rows = {c.name: c for c in screen.last_results[0].checks}
        assert "embedded SQLite store is in use" in rows["InfluxDB"].detail
        assert "Initialise services: 1/1 steps passed" in panel_text(screen)
        await pilot.press("6")
        await settle(app, pilot)
        assert [c.name for c in screen.last_results[0].checks] == ["Configuration", "Store", "Collection cycle"]
        await pilot.press("7")
        await settle(app, pilot)
        assert [r.title for r in screen.last_results] == [
            "System requirements", "Prerequisites", "Data and log directories", "Initialise services",
            "Source and login", "Validate installation",
        ]
        assert screen.query_one("#menu-progress", ProgressBar).progress == 6
        assert "Complete setup: 6/6 steps passed" in panel_text(screen)
        await pilot.press("4")
        await pilot.pause()
        assert type(app.screen).__name__ == "WizardScreen"


async def test_development_items(
    settings: Settings, tmp_path: Path, fast_validation: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")  # the tiny suite needs no plugins
    project = tmp_path / "proj"
    project.mkdir()
    (project / "pytest.ini").write_text("[pytest]\nmarkers =\n    unit: u\n")
    (project / "test_tiny.py").write_text("import pytest\n@pytest.mark.unit\ndef test_ok():\n    assert 1\n")
    app = OptuiApp(settings)
    async with app.run_test(size=(100, 40)) as pilot:
        dev = await open_menu(app, pilot, "2", "DevelopmentMenuScreen")
        tests = await open_menu(app, pilot, "1", "TestModeScreen")
        tests.tests_dir = project
        await pilot.press("1")
        await settle(app, pilot)
        assert tests.last_summary is not None and tests.last_summary.counts == {"passed": 1}
        log_text = panel_text(tests)
        assert "-m unit" in log_text and "Summary: -m unit: 1 passed, 0 failed" in log_text
        await pilot.press("escape")
        await pilot.pause()
        for digit, section in (("2", "participants"), ("3", "cash_flow"), ("4", "positions"),
                               ("5", "simulator"), ("6", "fallback")):
            await pilot.press(digit)
            await pilot.pause()
            assert app.screen is not dev, f"item {digit} did not open {section}"
            assert getattr(app.screen, "section", section) == section
            app.pop_screen()
            await pilot.pause()
        debug = await open_menu(app, pilot, "7", "DebugToolsScreen")
        await pilot.press("1")
        await settle(app, pilot)
        config = tmp_path / "home" / "optui.toml"
        assert 'log_level = "DEBUG"' in config.read_text()
        assert logging.getLogger().level == logging.DEBUG
        await pilot.press("2")
        await settle(app, pilot)
        assert 'log_level = "INFO"' in config.read_text()
        await pilot.press("5")
        await settle(app, pilot)
        assert "menu Development" in panel_text(debug)  # the log file's own lines
        await pilot.press("0")
        await pilot.pause()
        await pilot.press("8")
        await settle(app, pilot)
        assert [r.title for r in dev.last_results][-1] == "Validate installation"
        assert "Complete development setup: 5/5 steps passed" in panel_text(dev)


async def test_second_test_run_is_refused_while_one_is_going(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    project = tmp_path / "proj"
    project.mkdir()
    started, release = tmp_path / "started", tmp_path / "release"
    (project / "pytest.ini").write_text("[pytest]\nmarkers =\n    unit: u\n    mock: m\n")
    (project / "test_wait.py").write_text(
        "import pathlib, time, pytest\n@pytest.mark.unit\n@pytest.mark.mock\ndef test_wait():\n"
        f"    pathlib.Path({str(started)!r}).write_text('yes')\n"
        f"    for _ in range(6000):\n        if pathlib.Path({str(release)!r}).exists(): break\n"
        "        time.sleep(0.01)\n"
    )
    app = OptuiApp(settings)
    async with app.run_test(size=(100, 40)) as pilot:
        await open_menu(app, pilot, "2", "DevelopmentMenuScreen")
        tests = await open_menu(app, pilot, "1", "TestModeScreen")
        tests.tests_dir = project
        await pilot.press("1")
        for _ in range(6000):
            if started.exists():
                break
            await pilot.pause(0.01)
        await pilot.press("7")  # while -m unit runs
        await pilot.pause()
        messages = [n.message for n in app._notifications]
        assert any(m.startswith("Mock data tests not started: Unit tests is still going") for m in messages), messages
        release.write_text("go")
        await settle(app, pilot)
        log_text = panel_text(tests)
        assert log_text.count("$ -m pytest") == 1 and "-m mock" not in log_text
        assert tests.last_summary is not None and tests.last_summary.counts == {"passed": 1}
        assert tests.running is None
        await pilot.press("7")  # free again: this one runs
        await settle(app, pilot)
        assert "Summary: -m mock: 1 passed" in panel_text(tests)


async def test_main_menu_shows_the_file_the_wizard_just_wrote(settings: Settings, tmp_path: Path) -> None:
    from textual.widgets import Input

    config = tmp_path / "home" / "optui.toml"
    app = OptuiApp(settings)
    async with app.run_test(size=(100, 40)) as pilot:
        main = app.screen
        assert "Configuration: defaults (no configuration file yet" in panel_text(main)
        await open_menu(app, pilot, "1", "SetupMenuScreen")
        await open_menu(app, pilot, "4", "WizardScreen")
        await pilot.press("4")  # Logging
        await pilot.pause()
        app.screen.query_one("#field-1", Input).focus()
        app.screen.query_one("#field-1", Input).value = "WARNING"
        await pilot.press("enter")
        await settle(app, pilot)
        assert config.is_file()
        for _ in range(3):  # form → wizard → setup menu → main menu
            await pilot.press("escape")
            await pilot.pause()
        assert app.screen is main
        text = panel_text(main).replace("\n", "")  # the panel wraps the long path
        assert f"Configuration: {config}" in text and "defaults (no configuration file" not in text
        assert text.count("Configuration:") == 1


async def test_menu_results_a_save_made_stale_are_cleared(
    settings: Settings, tmp_path: Path, fast_validation: None
) -> None:
    from textual.widgets import Input

    app = OptuiApp(settings)
    async with app.run_test(size=(100, 40)) as pilot:
        setup = await open_menu(app, pilot, "1", "SetupMenuScreen")
        await pilot.press("6")
        await settle(app, pilot)
        assert "Validate installation: 1/1 steps passed" in panel_text(setup)
        await open_menu(app, pilot, "4", "WizardScreen")
        await pilot.press("escape")  # nothing saved: the results stay
        await pilot.pause()
        assert app.screen is setup and "Validate installation: 1/1 steps passed" in panel_text(setup)
        await open_menu(app, pilot, "4", "WizardScreen")
        await pilot.press("4")  # Logging
        await pilot.pause()
        box = app.screen.query_one("#field-1", Input)
        box.focus()
        box.value = "ERROR"
        await pilot.press("enter")
        await settle(app, pilot)
        await pilot.press("escape")
        await pilot.pause()
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is setup
        text = " ".join(panel_text(setup).split())
        assert "Validate installation" not in text and setup.last_results == []
        assert "Settings were saved since the results shown here, so they were cleared" in text


async def test_production_items(settings: Settings, tmp_path: Path, fast_validation: None) -> None:
    app = OptuiApp(settings)
    async with app.run_test(size=(100, 40)) as pilot:
        prod = await open_menu(app, pilot, "3", "ProductionMenuScreen")
        await pilot.press("1")
        await settle(app, pilot)
        assert [r.title for r in prod.last_results] == [
            "System requirements", "Prerequisites", "Source and login", "Validate installation"]
        for digit, expected in (("2", "KiteLoginScreen"), ("3", "TokenPromptScreen"), ("4", "TokenPromptScreen")):
            await pilot.press(digit)
            await pilot.pause()
            assert type(app.screen).__name__ == expected
            if digit != "2":
                assert app.screen.mode == ("manual" if digit == "3" else "previous")
            app.pop_screen()
            await pilot.pause()
        for digit, section in (("5", "analytics"), ("6", "participants"), ("7", "monitoring")):
            await pilot.press(digit)
            await pilot.pause()
            assert app.screen is not prod and getattr(app.screen, "section", section) == section
            app.pop_screen()
            await pilot.pause()
        await pilot.press("8")
        await pilot.pause()
        assert type(app.screen).__name__ == "PathPrompt"
        target = tmp_path / "deploy-here"
        field = app.screen.query_one("#prompt-input")
        field.value = str(target)
        await pilot.press("enter")
        await settle(app, pilot)
        assert (target / "optui-collect.service").exists() and (target / "docker-compose.yml").exists()
        flat = " ".join(panel_text(prod).split())  # the panel wraps long lines
        assert "Next steps:" in flat and "systemctl enable" in flat
        await pilot.press("9")
        await settle(app, pilot)
        assert prod.last_results[-1].title == "Deployment files" and prod.last_results[-1].ok
        assert (tmp_path / "data" / "deploy" / "docker-compose.yml").exists()


async def test_production_checks_use_the_configured_kite_source(settings: Settings) -> None:
    settings.source.kind = "kite"
    settings.kite.api_key = "abc123"
    settings.kite.root = "http://127.0.0.1:9"
    app = OptuiApp(settings)
    async with app.run_test(size=(100, 40)) as pilot:
        prod = await open_menu(app, pilot, "3", "ProductionMenuScreen")
        await pilot.press("1")
        await settle(app, pilot)
        by_title = {r.title: r for r in prod.last_results}
        login = by_title["Source and login"].checks
        assert [(c.name, c.ok) for c in login] == [("Kite login", False)]
        assert "no access token stored" in login[0].detail
        cycle = {c.name: c for c in by_title["Validate installation"].checks}["Collection cycle"]
        assert cycle.ok is False and cycle.detail.startswith("Kite cycle (http://127.0.0.1:9) failed")
        assert "All system checks: 2/4 steps passed" in panel_text(prod)


async def test_help_lists_registry_commands(settings: Settings) -> None:
    from optui.commands import COMMANDS

    app = OptuiApp(settings)
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.press("question_mark")
        await pilot.pause()
        assert type(app.screen).__name__ == "HelpScreen"
        table = app.screen.query_one("#help-table")
        keys = {row.value for row in table.rows}
        assert {c.id for c in COMMANDS} <= keys
        await pilot.press("escape")
        await pilot.pause()
        await pilot.press("f1")
        await pilot.pause()
        assert type(app.screen).__name__ == "HelpScreen"


async def test_command_palette_opens_a_menu(settings: Settings) -> None:
    app = OptuiApp(settings)
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"Production menu")
        await pilot.pause()
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()
        await pilot.pause()
        assert type(app.screen).__name__ == "ProductionMenuScreen"


async def test_small_terminal_shows_minimum_size_and_q_quits(settings: Settings) -> None:
    app = OptuiApp(settings)
    async with app.run_test(size=(60, 20)) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, TooSmallScreen)
        message = str(app.screen.query_one("#too-small-message").render())
        assert "60x20" in message and "80x24" in message
        await pilot.resize_terminal(100, 30)
        await pilot.pause()
        assert type(app.screen).__name__ == "MainMenuScreen"
        await pilot.resize_terminal(70, 30)
        await pilot.pause()
        assert isinstance(app.screen, TooSmallScreen)
        await pilot.press("q")
        await pilot.pause()
    assert app.return_code == 0


async def test_failed_worker_notifies_and_logs_trace(settings: Settings, tmp_path: Path) -> None:
    app = OptuiApp(settings)
    async with app.run_test(size=(100, 40)) as pilot:
        screen = await open_menu(app, pilot, "1", "SetupMenuScreen")

        def broken() -> list[object]:
            raise ValueError("feed went sideways")

        screen.run_task("Broken task", broken)
        await settle(app, pilot)
        messages = [n.message for n in app._notifications]
        assert any("feed went sideways" in m and "optui.log" in m for m in messages), messages
    for handler in logging.getLogger().handlers:
        handler.flush()
    log_text = (tmp_path / "logs" / "optui.log").read_text()
    assert "Traceback" in log_text and "feed went sideways" in log_text


async def test_d_opens_dashboard_from_a_menu(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    from optui.screens import dashboard

    real = dashboard.DashboardScreen

    class QuietDashboard(real):  # type: ignore[misc,valid-type]
        """The dashboard without its collector: its own tests cover collection."""

        def __init__(self) -> None:
            super().__init__(collect=False)

    monkeypatch.setattr(dashboard, "DashboardScreen", QuietDashboard)
    app = OptuiApp(settings)
    async with app.run_test(size=(100, 40)) as pilot:
        await open_menu(app, pilot, "2", "DevelopmentMenuScreen")
        await pilot.press("d")
        await pilot.pause()
        assert isinstance(app.screen, real)
        await pilot.press("d")  # already there: no second copy
        await pilot.pause()
        assert sum(isinstance(s, real) for s in app.screen_stack) == 1


async def test_missing_screen_module_is_a_notification(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "optui.screens.kite_login", None)  # import now fails
    app = OptuiApp(settings)
    async with app.run_test(size=(100, 40)) as pilot:
        prod = await open_menu(app, pilot, "3", "ProductionMenuScreen")
        await pilot.press("2")
        await pilot.pause()
        assert app.screen is prod
        assert any("not available" in n.message for n in app._notifications)


async def test_optui_login_opens_the_kite_login_over_the_main_menu(settings: Settings) -> None:
    from optui.screens.kite_login import KiteLoginScreen
    from optui.screens.main_menu import MainMenuScreen

    app = OptuiApp(settings, start="login")
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, KiteLoginScreen)
        assert isinstance(app.screen_stack[-2], MainMenuScreen)  # escape returns to the menu


async def test_main_menu_names_the_store_the_source_writes(settings: Settings, tmp_path: Path) -> None:
    """store.url left at its default: the simulator writes its own store (data/sim), Kite the
    configured one; the menu and the store check name the one in use."""
    from optui.config import StoreSettings
    from optui.ops.checks import store_check

    settings.store.url = StoreSettings().url
    sim_store = f"sqlite:///{tmp_path / 'data' / 'sim' / 'optui.db'}"
    app = OptuiApp(settings)
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.pause()
        text = panel_text(app.screen).replace("\n", "")  # a long path wraps
        assert f"Store: {sim_store} (simulated: kept apart)" in text
        assert "Store: sqlite:///data/optui.db" not in text
    row = store_check(settings)
    assert row.ok and str(tmp_path / "data" / "sim" / "optui.db") in row.detail
    settings.source.kind = "kite"
    settings.kite.root = "https://api.kite.trade"
    app = OptuiApp(settings)
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.pause()
        assert "Store: sqlite:///data/optui.db   " in panel_text(app.screen).replace("\n", "")


def test_help_names_keys_as_they_are_typed() -> None:
    """Help shows the replay keys as the characters a trader types, never Textual's key names."""
    from optui.commands import dashboard_commands, display_keys

    shown = {c.id: display_keys(c.keys) for c in dashboard_commands()}
    assert shown["dashboard.replay_step"] == "."
    assert shown["dashboard.replay_faster"] == "+ / ="
    assert shown["dashboard.replay_slower"] == "-"
    assert shown["dashboard.index_next"] == "i / ]"
    for keys in shown.values():
        assert not any(name in keys for name in ("_", "full_stop", "minus", "plus")), keys
