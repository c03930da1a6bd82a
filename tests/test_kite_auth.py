"""Kite login steps: URL, pasted redirects, the callback server, token expiry and the 0600 store."""

from __future__ import annotations

import json
import os
import socket
import stat
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from optui.collectors import kite_auth
from optui.collectors.kite_auth import (
    CallbackServer,
    LoginError,
    login_url,
    parse_redirect,
    read_credentials_file,
    store_access_token,
    token_expiry,
    token_status,
)
from optui.config import Settings, load_secrets, secrets_path
from optui.errors import ConfigError, TokenExpiredError
from optui.timeutil import IST, UTC


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 - loopback only
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


@pytest.mark.unit
def test_login_url_uses_configured_page_and_key() -> None:
    settings = Settings()
    settings.kite.api_key = "abc123"
    assert login_url(settings) == "https://kite.zerodha.com/connect/login?v=3&api_key=abc123"
    settings.kite.login_url = "http://127.0.0.1:9/connect/login"
    assert login_url(settings, "k 2") == "http://127.0.0.1:9/connect/login?v=3&api_key=k+2"


@pytest.mark.unit
def test_login_url_without_key_names_the_fix() -> None:
    with pytest.raises(ConfigError, match="kite.api_key is not set"):
        login_url(Settings())


@pytest.mark.unit
@pytest.mark.parametrize(
    "text",
    [
        "http://127.0.0.1:5000/success?action=login&type=login&status=success&request_token=Tok123",
        "  https://example.org/cb?request_token=Tok123&status=success  ",
        "?status=success&request_token=Tok123",
        "request_token=Tok123",
        "Tok123",
    ],
)
@pytest.mark.unit
def test_parse_redirect_accepts_url_query_or_bare_token(text: str) -> None:
    assert parse_redirect(text) == "Tok123"


@pytest.mark.unit
@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "nothing pasted"),
        ("http://127.0.0.1:5000/success?status=success", "no request_token"),
        ("http://127.0.0.1:5000/success?status=error&request_token=x", "status 'error'"),
        ("not a token!", "not a request token"),
    ],
)
@pytest.mark.unit
def test_parse_redirect_rejects_with_specific_message(text: str, message: str) -> None:
    with pytest.raises(LoginError, match=message):
        parse_redirect(text)


@pytest.mark.unit
def test_callback_server_captures_request_token() -> None:
    with CallbackServer("http://127.0.0.1:5000/success", port=0) as server:
        assert server.port != 0
        code, body = _get(f"{server.url}?action=login&status=success&request_token=ReqTok9")
        result = server.wait(5)
    assert code == 200 and "Login captured" in body
    assert result is not None and result.ok
    assert result.request_token == "ReqTok9" and result.status == "success"
    assert "ReqTok9" not in repr(result)


@pytest.mark.unit
def test_callback_without_token_is_an_error_result_and_server_keeps_serving() -> None:
    with CallbackServer("http://127.0.0.1:5000/success", port=0) as server:
        code, body = _get(f"{server.url}?status=cancelled")
        first = server.wait(5)
        assert code == 400 and "no request_token" in body
        assert first is not None and not first.ok and "status=cancelled" in (first.error or "")
        other, _ = _get(f"http://127.0.0.1:{server.port}/favicon.ico")
        assert other == 404
        code2, _ = _get(f"{server.url}?status=success&request_token=Second")
        second = server.wait(5)
    assert code2 == 200 and second is not None and second.request_token == "Second"


@pytest.mark.unit
def test_callback_wait_times_out_with_none() -> None:
    with CallbackServer("http://127.0.0.1:5000/success", port=0) as server:
        assert server.wait(0.01) is None


@pytest.mark.unit
def test_callback_port_in_use_is_a_login_error() -> None:
    with CallbackServer("http://127.0.0.1:5000/success", port=0) as first:
        busy = CallbackServer(f"http://127.0.0.1:{first.port}/success")
        with pytest.raises(LoginError, match="cannot listen on 127.0.0.1"):
            busy.start()


@pytest.mark.unit
def test_callback_server_refuses_https_redirect() -> None:
    with pytest.raises(LoginError, match="plain"):
        CallbackServer("https://127.0.0.1:5000/success")


@pytest.mark.unit
@pytest.mark.parametrize(
    ("obtained", "expected"),
    [
        (datetime(2026, 11, 24, 5, 59, 59, tzinfo=IST), datetime(2026, 11, 24, 6, 0, tzinfo=IST)),
        (datetime(2026, 11, 24, 6, 0, 0, tzinfo=IST), datetime(2026, 11, 25, 6, 0, tzinfo=IST)),
        (datetime(2026, 11, 24, 9, 15, tzinfo=IST), datetime(2026, 11, 25, 6, 0, tzinfo=IST)),
        (datetime(2026, 12, 31, 23, 30, tzinfo=IST), datetime(2027, 1, 1, 6, 0, tzinfo=IST)),
        # 00:20 UTC is 05:50 IST: still before that morning's cut-off.
        (datetime(2026, 11, 24, 0, 20, tzinfo=UTC), datetime(2026, 11, 24, 6, 0, tzinfo=IST)),
        # 00:40 UTC is 06:10 IST: the next morning.
        (datetime(2026, 11, 24, 0, 40, tzinfo=UTC), datetime(2026, 11, 25, 6, 0, tzinfo=IST)),
    ],
)
@pytest.mark.unit
def test_token_expiry_is_next_0600_ist(obtained: datetime, expected: datetime) -> None:
    assert token_expiry(obtained) == expected


@pytest.mark.unit
def test_token_expiry_needs_aware_time() -> None:
    with pytest.raises(ValueError):
        token_expiry(datetime(2026, 11, 24, 9, 0))


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.unit
def test_store_access_token_is_private_and_status_tracks_expiry() -> None:
    obtained = datetime(2026, 11, 24, 8, 0, tzinfo=IST)
    store_access_token("AccessTok42", obtained)
    assert _mode(secrets_path()) == 0o600
    assert _mode(kite_auth.meta_path()) == 0o600
    assert "AccessTok42" not in kite_auth.meta_path().read_text()
    secrets = load_secrets()
    assert secrets["kite_access_token"] == "AccessTok42"
    before = token_status(Settings(), secrets, now=datetime(2026, 11, 25, 5, 59, tzinfo=IST))
    assert before.present and not before.expired
    assert before.obtained_at == obtained
    assert before.expires_at == datetime(2026, 11, 25, 6, 0, tzinfo=IST)
    after = token_status(Settings(), secrets, now=datetime(2026, 11, 25, 6, 0, tzinfo=IST))
    assert after.expired and "expired" in after.describe()


@pytest.mark.unit
def test_token_status_for_foreign_or_missing_token() -> None:
    assert not token_status(Settings(), {}).present
    store_access_token("Stored", datetime(2026, 11, 24, 8, 0, tzinfo=IST))
    other = token_status(Settings(), {"kite_access_token": "FromEnvironment"})
    assert other.present and other.expires_at is None and not other.expired
    assert "unknown" in other.describe()


@pytest.mark.unit
def test_store_access_token_rejects_empty() -> None:
    with pytest.raises(LoginError, match="empty access token"):
        store_access_token("   ")


@pytest.mark.unit
def test_read_credentials_from_env_toml_and_json(tmp_path: Path) -> None:
    env = tmp_path / "kite.env"
    env.write_text("# my app\nexport KITE_API_KEY=key1\nKITE_API_SECRET='sec1'\n")
    assert read_credentials_file(env) == {"api_key": "key1", "api_secret": "sec1"}
    toml = tmp_path / "kite.toml"
    toml.write_text('[kite]\napi_key = "key2"\napi_secret = "sec2"\n')
    assert read_credentials_file(toml) == {"api_key": "key2", "api_secret": "sec2"}
    js = tmp_path / "kite.json"
    js.write_text(json.dumps({"api_key": "key3", "access_token": "tok3"}))
    assert read_credentials_file(js) == {"api_key": "key3", "access_token": "tok3"}


@pytest.mark.unit
def test_read_credentials_file_errors_are_specific(tmp_path: Path) -> None:
    with pytest.raises(LoginError, match="cannot read"):
        read_credentials_file(tmp_path / "missing.env")
    empty = tmp_path / "empty.env"
    empty.write_text("SOMETHING=else\n")
    with pytest.raises(LoginError, match="no api_key or api_secret"):
        read_credentials_file(empty)


# ---------------------------------------------------------------- against the simulated Kite API

@pytest.fixture
def sim_server() -> Iterator[Any]:
    from optui.simulator import server as server_mod
    from optui.simulator.exchange import SimulatedExchange

    server = server_mod.serve(SimulatedExchange(seed=3), "127.0.0.1", 0)
    yield server
    server.close()


def _sim_settings(server: Any) -> Settings:
    settings = Settings()
    settings.kite.root = server.url
    settings.kite.api_key = "sim_key"
    return settings


@pytest.mark.integration
def test_exchange_and_validate_against_simulator(sim_server: Any) -> None:
    settings = _sim_settings(sim_server)
    at = datetime(2026, 11, 24, 9, 5, tzinfo=IST)
    session = kite_auth.exchange_request_token(settings, "sim_key", "any-secret", "ReqTok", now=at)
    assert session.access_token == "sim_token"
    assert session.user_name == "Simulated Trader" and session.user_id == "SIM001"
    assert session.expires_at == datetime(2026, 11, 25, 6, 0, tzinfo=IST)
    assert "sim_token" not in repr(session)
    profile = kite_auth.validate_token(settings, "sim_key", session.access_token)
    assert profile["user_id"] == "SIM001"
    rows = kite_auth.check_permissions(settings, "sim_key", session.access_token)
    assert [(name, ok) for name, ok, _ in rows] == [("profile", True), ("quote", True), ("ltp", True)]


@pytest.mark.integration
def test_simulator_rejections_become_clear_messages(sim_server: Any) -> None:
    settings = _sim_settings(sim_server)
    with pytest.raises(LoginError, match="Kite rejected the API key"):
        kite_auth.exchange_request_token(settings, "wrong_key", "s", "ReqTok")
    with pytest.raises(TokenExpiredError, match="log in again"):
        kite_auth.validate_token(settings, "sim_key", "not_the_token")
    sim_server.exchange.expire_token()
    with pytest.raises(TokenExpiredError, match="06:00 IST"):
        kite_auth.validate_token(settings, "sim_key", "sim_token")
    with pytest.raises(ConfigError, match="API secret is not set"):
        kite_auth.exchange_request_token(settings, "sim_key", "", "ReqTok")


@pytest.mark.integration
def test_unreachable_kite_is_a_network_message() -> None:
    settings = Settings()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        settings.kite.root = f"http://127.0.0.1:{sock.getsockname()[1]}"
    with pytest.raises(LoginError, match="cannot reach Kite"):
        kite_auth.exchange_request_token(settings, "key", "secret", "ReqTok")


@pytest.mark.integration
def test_api_secret_checked_by_checksum() -> None:
    from optui.simulator import server as server_mod
    from optui.simulator.exchange import SimulatedExchange

    server = server_mod.serve(SimulatedExchange(seed=3, api_secret="right-secret"), "127.0.0.1", 0)
    try:
        settings = _sim_settings(server)
        with pytest.raises(LoginError) as caught:
            kite_auth.exchange_request_token(settings, "sim_key", "wrong-secret", "ReqTok")
        session = kite_auth.exchange_request_token(settings, "sim_key", "right-secret", "ReqTok")
    finally:
        server.close()
    assert str(caught.value) == kite_auth.SECRET_REJECTED
    assert "wrong-secret" not in str(caught.value)
    assert session.access_token == "sim_token"
