"""Pilot tests of the configuration wizard, the section forms and the Kite token screens."""

from __future__ import annotations

import asyncio
import os
import socket
import stat
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.app import App
from textual.widgets import Input, Static

from optui.config import Settings, load_secrets, load_settings, secrets_path
from optui.screens.form_sections import SECTIONS, WIZARD_ORDER, check_value
from optui.screens.kite_login import KiteLoginScreen, ReloginPrompt, TokenPromptScreen
from optui.screens.settings_form import SectionScreen, section_screen
from optui.screens.wizard import WizardScreen

COMMENTED = """# my optui settings
[positions]
# watched intervals for OI changes
intervals = ["1m", "5m"]

[flow]
threshold_cr = 100.0  # crore
"""


class FormApp(App[None]):
    """A bare app holding settings, like OptuiApp, with one screen pushed at start."""

    def __init__(self, first: object) -> None:
        super().__init__()
        self.settings = load_settings()
        self._first = first

    def on_mount(self) -> None:
        self.push_screen(self._first)  # type: ignore[arg-type]


def text_of(screen: object, selector: str) -> str:
    return str(screen.query_one(selector, Static).render())  # type: ignore[attr-defined]


@pytest.fixture
def config_file(isolated_config: Path) -> Path:
    path = Path(os.environ["OPTUI_CONFIG_FILE"])
    path.write_text(COMMENTED, encoding="utf-8")
    return path


async def _settle(app: App[None], pilot: object) -> None:
    await app.workers.wait_for_complete()
    await pilot.pause()  # type: ignore[attr-defined]


@pytest.mark.unit
def test_every_section_has_at_most_nine_fields_and_known_keys() -> None:
    settings = Settings()
    for name, (_, fields) in SECTIONS.items():
        assert 1 <= len(fields) <= 9, name
        for fld in fields:
            if fld.key:
                section, _, key = fld.key.partition(".")
                assert hasattr(getattr(settings, section), key), fld.key
    assert [len(SECTIONS[s][1]) for s in ("kite", "participants", "cash_flow", "positions")] == [7, 7, 6, 5]


@pytest.mark.unit
@pytest.mark.parametrize(
    ("key", "raw", "message"),
    [
        ("positions.intervals", "abc", "positions.intervals"),
        ("source.interval_s", "abc", "not a valid float"),
        ("flow.retention_days", "0", "out of range"),
        ("kite.redirect_url", "https://x/success", "not a http URL"),
        ("simulator.start", "9:15", "YYYY-MM-DD HH:MM"),
        ("general.log_level", "LOUD", "choose one of"),
        ("source.snapshot_s", "0.5", "allowed 1.0 to 60.0"),
        ("source.snapshot_s", "61", "or 0 for one cycle every interval_s"),
        ("source.snapshot_s", "soon", "not a valid float"),
    ],
)
@pytest.mark.unit
def test_check_value_names_the_problem(key: str, raw: str, message: str) -> None:
    problem = check_value(key, raw, Settings())
    assert problem is not None and message in problem


@pytest.mark.unit
def test_check_value_accepts_good_values() -> None:
    assert check_value("positions.intervals", "1m, 15m, 1h", Settings()) is None
    assert check_value("source.snapshot_s", "0", Settings()) is None
    assert check_value("source.snapshot_s", "2.5", Settings()) is None


@pytest.mark.unit
def test_snapshot_cadence_is_in_the_form_with_the_example_files_words() -> None:
    example = (Path(__file__).parents[1] / "config" / "optui.example.toml").read_text(encoding="utf-8")
    (line,) = [ln for ln in example.splitlines() if ln.startswith("snapshot_s")]
    for section in ("monitoring", "performance"):
        (fld,) = [f for f in SECTIONS[section][1] if f.key == "source.snapshot_s"]
        assert "(1 to 60)" in fld.help and "(1 to 60)" in line
        assert "0: one cycle every interval_s" in fld.help and "0: one cycle every interval_s" in line
        assert "at most one per this many seconds" in fld.help and "at most one per this many seconds" in line
    assert check_value("kite.redirect_url", "http://127.0.0.1:5000/success", Settings()) is None


@pytest.mark.unit
async def test_wizard_digit_opens_section_and_zero_returns(config_file: Path) -> None:
    app = FormApp(WizardScreen())
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("3")
        assert isinstance(app.screen, SectionScreen) and app.screen.section == "database"
        assert str(config_file) in text_of(app.screen, "#form-title")
        await pilot.press("0")
        assert isinstance(app.screen, WizardScreen)
        await pilot.press("1", "enter")
        assert isinstance(app.screen, SectionScreen) and app.screen.section == "kite"
        await pilot.press("escape")
        await pilot.press("0")
        assert not isinstance(app.screen, WizardScreen)


@pytest.mark.unit
async def test_wizard_ten_runs_every_section_in_order(config_file: Path) -> None:
    app = FormApp(WizardScreen())
    seen: list[str] = []
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("1", "0")
        for _ in WIZARD_ORDER:
            assert isinstance(app.screen, SectionScreen)
            seen.append(app.screen.section)
            await pilot.press("escape")
        assert isinstance(app.screen, WizardScreen)
        assert "all sections visited" in text_of(app.screen, "#wizard-status")
    assert seen == WIZARD_ORDER


@pytest.mark.unit
async def test_wrong_type_shows_message_and_saves_nothing(config_file: Path) -> None:
    app = FormApp(section_screen("positions"))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("1")
        box = app.screen.query_one("#field-1", Input)
        assert box.has_focus
        box.value = ""
        await pilot.press("a", "b", "c", "enter")
        await _settle(app, pilot)
        message = text_of(app.screen, "#form-message")
        assert "positions.intervals" in message and "allowed 1m" in message
    assert config_file.read_text(encoding="utf-8") == COMMENTED


@pytest.mark.unit
async def test_valid_value_is_saved_keeping_comments(config_file: Path) -> None:
    app = FormApp(section_screen("cash_flow"))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("1")
        app.screen.query_one("#field-1", Input).value = ""
        await pilot.press(*"120", "enter")
        await _settle(app, pilot)
        assert "saved flow.retention_days" in text_of(app.screen, "#form-message")
        assert text_of(app.screen, "#value-1") == "120"
        assert app.settings.flow.retention_days == 120  # type: ignore[attr-defined]
    text = config_file.read_text(encoding="utf-8")
    assert "# watched intervals for OI changes" in text and "# crore" in text
    assert load_settings().flow.retention_days == 120


@pytest.mark.unit
async def test_bad_interval_typed_in_form_keeps_file(config_file: Path) -> None:
    app = FormApp(section_screen("monitoring"))
    async with app.run_test(size=(100, 30)) as pilot:
        assert text_of(app.screen, "#form-message") == ""
        assert text_of(app.screen, "#value-1") == "30.0"
        await pilot.press("1")
        app.screen.query_one("#field-1", Input).value = ""
        await pilot.press(*"abc")
        assert "not a valid float" in text_of(app.screen, "#form-message")
        await pilot.press("enter")
        await _settle(app, pilot)
        assert "not a valid float" in text_of(app.screen, "#form-message")
    assert config_file.read_text(encoding="utf-8") == COMMENTED


@pytest.mark.unit
async def test_snapshot_cadence_typed_in_the_form_is_checked_then_saved(config_file: Path) -> None:
    app = FormApp(section_screen("monitoring"))
    async with app.run_test(size=(100, 30)) as pilot:
        assert text_of(app.screen, "#value-2") == "1.0"
        await pilot.press("2")
        assert "(1 to 60)" in text_of(app.screen, "#form-message")  # the help
        app.screen.query_one("#field-2", Input).value = ""
        await pilot.press(*"0.5")
        assert "allowed 1.0 to 60.0" in text_of(app.screen, "#form-message")
        await pilot.press("enter")
        await _settle(app, pilot)
        assert config_file.read_text(encoding="utf-8") == COMMENTED  # refused: nothing saved
        app.screen.query_one("#field-2", Input).value = ""
        await pilot.press(*"2", "enter")
        await _settle(app, pilot)
    assert load_settings().source.snapshot_s == 2.0


@pytest.mark.unit
async def test_secret_is_masked_and_file_private(config_file: Path) -> None:
    app = FormApp(section_screen("kite"))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("2")
        await pilot.press(*"supersecretvalue99", "enter")
        await _settle(app, pilot)
        shown = text_of(app.screen, "#value-2")
        assert shown == "****99"
        screen_text = " ".join(str(w.render()) for w in app.screen.query(Static))
        assert "supersecretvalue99" not in screen_text
        assert app.screen.query_one("#field-2", Input).value == ""
    assert load_secrets()["kite_api_secret"] == "supersecretvalue99"
    assert stat.S_IMODE(secrets_path().stat().st_mode) == 0o600
    assert "supersecretvalue99" not in config_file.read_text(encoding="utf-8")


@pytest.mark.unit
async def test_import_credentials_from_file(config_file: Path, tmp_path: Path) -> None:
    creds = tmp_path / "kite.env"
    creds.write_text("KITE_API_KEY=abc123\nKITE_API_SECRET=s3cretvalue1234\n")
    app = FormApp(section_screen("kite"))
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.press("3")
        app.screen.query_one("#field-3", Input).value = str(creds)
        await pilot.press("enter")
        await _settle(app, pilot)
        assert "API key abc123 saved" in text_of(app.screen, "#form-result")
        assert "s3cretvalue1234" not in text_of(app.screen, "#form-result")
        assert text_of(app.screen, "#value-1") == "abc123"
    assert load_settings().kite.api_key == "abc123"
    assert load_secrets()["kite_api_secret"] == "s3cretvalue1234"


@pytest.mark.unit
async def test_kite_complete_reports_missing_pieces(config_file: Path) -> None:
    app = FormApp(section_screen("kite"))
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.press("7")
        await _settle(app, pilot)
        result = text_of(app.screen, "#form-result")
        assert "FAIL  API key (not set" in result and "no access token stored" in result
        assert "failed" in text_of(app.screen, "#form-message")


@pytest.mark.unit
async def test_form_actions_open_login_and_token_screens(config_file: Path) -> None:
    app = FormApp(section_screen("kite"))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("5")
        assert isinstance(app.screen, KiteLoginScreen)
        await pilot.press("escape")
        await app.workers.wait_for_complete()
        assert isinstance(app.screen, SectionScreen)
    app = FormApp(section_screen("security"))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2")
        assert isinstance(app.screen, TokenPromptScreen) and app.screen.mode == "manual"
        await pilot.press("escape")
        await pilot.press("3")
        await _settle(app, pilot)
        assert isinstance(app.screen, TokenPromptScreen) and app.screen.mode == "previous"
        assert "no stored access token" in text_of(app.screen, "#token-status")


@pytest.mark.unit
async def test_login_screen_without_api_key_names_the_fix(config_file: Path) -> None:
    app = FormApp(KiteLoginScreen(port=0, open_browser=False))
    async with app.run_test(size=(120, 30)) as pilot:
        await _settle(app, pilot)
        assert "kite.api_key is not set" in text_of(app.screen, "#login-status")


@pytest.mark.unit
async def test_login_screen_rejects_paste_without_token(
    config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPTUI_KITE_API_KEY", "abc123")
    app = FormApp(KiteLoginScreen(port=0, open_browser=False))
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.pause()
        assert "api_key=abc123" in text_of(app.screen, "#login-url")
        app.screen.query_one("#login-paste", Input).value = "http://127.0.0.1:5000/success?status=x"
        await pilot.press("enter")
        assert "no request_token" in text_of(app.screen, "#login-status")
        await pilot.press("escape")
        await app.workers.wait_for_complete()


@pytest.mark.unit
async def test_previous_token_missing_is_explained(config_file: Path) -> None:
    app = FormApp(TokenPromptScreen(mode="previous"))
    async with app.run_test(size=(120, 30)) as pilot:
        await _settle(app, pilot)
        assert "no stored access token" in text_of(app.screen, "#token-status")


@pytest.mark.unit
async def test_relogin_prompt_opens_login_screen(config_file: Path) -> None:
    app = FormApp(ReloginPrompt("token expired"))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        assert "token expired" in text_of(app.screen, "#relogin-problem")
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, KiteLoginScreen)
        await pilot.press("escape")
        await app.workers.wait_for_complete()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _until(pilot: object, check: object, rounds: int = 300) -> None:
    """Let the app process messages until `check()` holds (bounded; no fixed sleeps)."""
    for _ in range(rounds):
        if check():  # type: ignore[operator]
            return
        await pilot.pause(0.01)  # type: ignore[attr-defined]
    raise AssertionError("condition not reached")


@pytest.mark.unit
async def test_login_callback_without_then_with_token(
    config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPTUI_KITE_API_KEY", "abc123")
    monkeypatch.setenv("OPTUI_KITE_API_SECRET", "secret")
    monkeypatch.setenv("OPTUI_KITE_ROOT", f"http://127.0.0.1:{_free_port()}")
    app = FormApp(KiteLoginScreen(port=0, open_browser=False))
    async with app.run_test(size=(120, 30)) as pilot:
        screen = app.screen
        await _until(pilot, lambda: getattr(screen, "listening_url", None))
        url = screen.listening_url  # type: ignore[attr-defined]
        code = await asyncio.to_thread(_http_status, f"{url}?status=cancelled")
        assert code == 400
        await _until(pilot, lambda: "no request_token" in text_of(screen, "#login-status"))
        code = await asyncio.to_thread(_http_status, f"{url}?status=success&request_token=Tok1")
        assert code == 200
        await _until(pilot, lambda: "cannot reach Kite" in text_of(screen, "#login-status"))
        assert not screen.logged_in  # type: ignore[attr-defined]
        await pilot.press("escape")
        await app.workers.wait_for_complete()


def _http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 - loopback only
            return int(resp.status)
    except urllib.error.HTTPError as err:
        return int(err.code)


@pytest.fixture
def sim_kite(config_file: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The simulated Kite API on a free loopback port, with the app configured to use it."""
    from optui.simulator import server as server_mod
    from optui.simulator.exchange import SimulatedExchange

    server = server_mod.serve(SimulatedExchange(seed=5), "127.0.0.1", 0)
    monkeypatch.setenv("OPTUI_KITE_API_KEY", "sim_key")
    monkeypatch.setenv("OPTUI_KITE_ROOT", server.url)
    monkeypatch.setenv("OPTUI_KITE_API_SECRET", "sim_secret")
    yield server
    server.close()


@pytest.mark.integration
async def test_login_end_to_end_with_simulated_kite(sim_kite: Any) -> None:
    app = FormApp(KiteLoginScreen(port=0, open_browser=False))
    async with app.run_test(size=(120, 30)) as pilot:
        screen = app.screen
        await _until(pilot, lambda: getattr(screen, "listening_url", None))
        url = screen.listening_url  # type: ignore[attr-defined]
        code = await asyncio.to_thread(_http_status, f"{url}?status=success&request_token=RT9")
        assert code == 200
        await _until(pilot, lambda: screen.logged_in)  # type: ignore[attr-defined]
        result = text_of(screen, "#login-result")
        assert "Logged in as Simulated Trader (SIM001)" in result and "06:00:00 IST" in result
        assert "sim_token" not in result
        await pilot.press("escape")
        await app.workers.wait_for_complete()
    assert load_secrets()["kite_access_token"] == "sim_token"
    assert stat.S_IMODE(secrets_path().stat().st_mode) == 0o600


@pytest.mark.integration
async def test_token_prompts_with_simulated_kite(sim_kite: Any) -> None:
    app = FormApp(TokenPromptScreen(mode="manual"))
    async with app.run_test(size=(120, 30)) as pilot:
        app.screen.query_one("#token-input", Input).value = "wrong_token"
        await pilot.press("enter")
        await _settle(app, pilot)
        assert "log in again" in text_of(app.screen, "#token-status")
        assert "kite_access_token" not in load_secrets()
        app.screen.query_one("#token-input", Input).value = "sim_token"
        await pilot.press("enter")
        await _settle(app, pilot)
        status = text_of(app.screen, "#token-status")
        assert "Token valid for Simulated Trader" in status and "0600" in status
    assert load_secrets()["kite_access_token"] == "sim_token"
    app = FormApp(TokenPromptScreen(mode="previous"))
    async with app.run_test(size=(120, 30)) as pilot:
        await _settle(app, pilot)
        status = text_of(app.screen, "#token-status")
        assert "Token valid for Simulated Trader" in status and "valid until about" in status
    sim_kite.exchange.expire_token()
    app = FormApp(TokenPromptScreen(mode="previous"))
    async with app.run_test(size=(120, 30)) as pilot:
        await _settle(app, pilot)
        assert "expired" in text_of(app.screen, "#token-status")


def _closed_port() -> int:
    return _free_port()  # nothing listens there once the probe socket is closed


@pytest.mark.unit
async def test_enter_ends_the_edit_so_a_digit_picks_a_field_and_stale_results_clear(
    config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = f"http://127.0.0.1:{_closed_port()}"
    monkeypatch.setenv("OPTUI_KITE_ROOT", root)
    app = FormApp(section_screen("kite"))
    async with app.run_test(size=(120, 30)) as pilot:
        screen = app.screen
        await pilot.press("1", *"abc123", "enter")
        await _settle(app, pilot)
        assert screen.focused is None and "saved kite.api_key = abc123" in text_of(screen, "#form-message")
        await pilot.press("4")  # picks field 4 (Test connection); types into nothing
        await _settle(app, pilot)
        assert screen.query_one("#field-1", Input).value == "abc123"
        assert load_settings().kite.api_key == "abc123"
        assert f"cannot reach {root}" in text_of(screen, "#form-result")
        # a later save makes that test result stale: it is cleared
        await pilot.press("1")
        screen.query_one("#field-1", Input).value = ""
        await pilot.press(*"def456", "enter")
        await _settle(app, pilot)
        assert text_of(screen, "#form-result") == ""
        assert "saved kite.api_key = def456" in text_of(screen, "#form-message")
        # a result that was computed before the latest save is not shown either
        from optui.screens.settings_form import ActionFinished

        screen.post_message(ActionFinished(4, True, "connected as someone", saves=screen.saves - 1))
        await pilot.pause()
        assert text_of(screen, "#form-result") == ""
        assert "settings changed while it ran" in text_of(screen, "#form-message")
    assert load_settings().kite.api_key == "def456"


@pytest.mark.unit
async def test_a_rejected_value_keeps_the_field_for_correction(config_file: Path) -> None:
    app = FormApp(section_screen("cash_flow"))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("1")
        box = app.screen.query_one("#field-1", Input)
        box.value = ""
        await pilot.press(*"-5", "enter")
        await _settle(app, pilot)
        assert box.has_focus and "out of range" in text_of(app.screen, "#form-message")
        await pilot.press("backspace", "backspace", *"30", "enter")
        await _settle(app, pilot)
        assert app.screen.focused is None and load_settings().flow.retention_days == 30


@pytest.mark.unit
async def test_brackets_in_values_and_messages_show_literally(config_file: Path) -> None:
    app = FormApp(section_screen("simulator"))
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.press("4")
        app.screen.query_one("#field-4", Input).value = ""
        await pilot.press(*"[::1]", "enter")
        await _settle(app, pilot)
        assert text_of(app.screen, "#value-4") == "[::1]"
        assert text_of(app.screen, "#form-message") == "saved simulator.host = [::1]"
    assert load_settings().simulator.host == "[::1]"


@pytest.mark.unit
def test_check_tables_show_instructions_literally() -> None:
    from rich.console import Console

    from optui.ops.checks import Check
    from optui.screens.menu import check_table

    console = Console(width=200, record=True, color_system=None)
    console.print(check_table("Deployment", [
        Check("next 2", None, 'Point optui at InfluxDB: in optui.toml set [store] url = "influxdb://127.0.0.1:8086"',
              "[bold]not markup[/bold]")]))
    text = console.export_text()
    assert 'set [store] url = "influxdb://127.0.0.1:8086"' in text and "[bold]not markup[/bold]" in text


@pytest.mark.unit
async def test_cache_url_password_never_reaches_the_screen(
    config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = _closed_port()
    monkeypatch.setenv("OPTUI_CACHE_URL", f"redis://:s3cretpw@127.0.0.1:{port}/0")
    app = FormApp(section_screen("fallback"))
    async with app.run_test(size=(140, 30)) as pilot:
        screen = app.screen
        assert text_of(screen, "#value-3") == f"redis://:****@127.0.0.1:{port}/0"
        assert screen.query_one("#field-3", Input).value == ""  # nothing to reveal by editing
        await pilot.press("3", "enter")  # an empty Enter keeps the current URL
        await _settle(app, pilot)
        assert "cache.url kept" in text_of(screen, "#form-message")
        await pilot.press("5")  # Run health checks now
        await _settle(app, pilot)
        result = text_of(screen, "#form-result")
        assert f"FAIL  cache redis://:****@127.0.0.1:{port}/0" in result
        shown = " ".join(str(w.render()) for w in screen.query(Static))
        assert "s3cretpw" not in shown and "s3cretpw" not in str(screen.query_one("#field-3", Input).value)
    assert "cache" not in config_file.read_text(encoding="utf-8")


@pytest.mark.unit
def test_every_alert_setting_is_in_the_participant_and_alert_forms() -> None:
    from dataclasses import fields as dc_fields

    from optui.config import AlertSettings

    offered = {f.key for s in ("participants", "alerts", "alert_delivery") for f in SECTIONS[s][1] if f.key}
    assert {f"alerts.{f.name}" for f in dc_fields(AlertSettings)} <= offered


@pytest.mark.unit
async def test_alert_forms_open_from_the_participant_form(config_file: Path) -> None:
    app = FormApp(section_screen("participants"))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("4")  # All alert rules, bell and webhooks
        await _settle(app, pilot)
        assert isinstance(app.screen, SectionScreen) and app.screen.section == "alerts"
        await pilot.press("9")  # Cooldowns, severities, bell, webhook
        await _settle(app, pilot)
        assert isinstance(app.screen, SectionScreen) and app.screen.section == "alert_delivery"


@pytest.mark.unit
async def test_webhook_url_is_shown_redacted_and_kept(config_file: Path) -> None:
    url = "https://hooks.slack.com/services/T0/B0/SECRETXYZ"
    config_file.write_text(f'[alerts]\nwebhook_url = "{url}"\n', encoding="utf-8")
    app = FormApp(section_screen("alert_delivery"))
    async with app.run_test(size=(100, 30)) as pilot:
        assert text_of(app.screen, "#value-5") == "https://hooks.slack.com/****"
        assert app.screen.query_one("#field-5", Input).value == ""  # the token is not put in the box
        await pilot.press("5", "enter")  # an empty Enter keeps the real URL
        await _settle(app, pilot)
        assert "alerts.webhook_url kept" in text_of(app.screen, "#form-message")
        await pilot.press("5")
        await pilot.press(*"https://hooks.slack.com/services/T1/B1/NEWSECRET", "enter")
        await _settle(app, pilot)
        message = text_of(app.screen, "#form-message")
        assert "saved alerts.webhook_url" in message and "NEWSECRET" not in message
    assert load_settings().alerts.webhook_url == "https://hooks.slack.com/services/T1/B1/NEWSECRET"


@pytest.mark.integration
def test_send_a_test_alert_reaches_the_webhook() -> None:
    from webhook_server import webhook_server

    from optui.screens.form_sections import run_action

    with webhook_server() as server:
        settings = Settings()
        settings.alerts.webhook_url = server.url("/hook/SECRET")
        ok, report = run_action("alerts_test", settings, "monitoring", None)
        assert ok and "SECRET" not in report and "/****" in report
        [got] = server.received
        assert got.path == "/hook/SECRET" and "optui test alert: the webhook works" in got.body["text"]
