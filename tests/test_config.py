"""Settings: defaults, TOML, environment precedence, validation messages, secrets at 0600."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from optui.config import check_value, load_secrets, load_settings, mask, save_secret, set_value
from optui.errors import ConfigError

pytestmark = pytest.mark.unit


def test_defaults_without_file(tmp_path: Path) -> None:
    s = load_settings(tmp_path / "absent.toml", environ={})
    assert s.source.kind == "sim" and s.store.url.startswith("sqlite:///") and s.path is None


def test_environment_overrides_file(tmp_path: Path) -> None:
    f = tmp_path / "optui.toml"
    f.write_text('[source]\ninterval_s = 10\nindices = ["NIFTY"]\n')
    s = load_settings(f, environ={"OPTUI_SOURCE_INTERVAL_S": "5"})
    assert s.source.interval_s == 5.0 and s.source.indices == ["NIFTY"] and s.path == f


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('[source]\nkind = "yahoo"\n', ["source.kind", "yahoo", "sim, kite"]),
        ("[source]\ninterval_s = 0\n", ["source.interval_s", "out of range", "1.0 to 3600.0"]),
        ("[source]\nsnapshot_s = 0.2\n", ["source.snapshot_s", "out of range", "1.0 to 60.0"]),
        ('[source]\ninterval_s = "fast"\n', ["source.interval_s", "fast", "float"]),
        ('[source]\nindices = ["NIFTY", "DOW"]\n', ["source.indices", "DOW"]),
        ("[nonsense]\na = 1\n", ["unknown section [nonsense]"]),
        ("[source]\nspeed = 1\n", ["unknown key source.speed"]),
        ("[source\n", ["not valid TOML"]),
    ],
)
def test_invalid_values_name_key_value_and_allowed(tmp_path: Path, text: str, words: list[str]) -> None:
    f = tmp_path / "optui.toml"
    f.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_settings(f, environ={})
    for word in words:
        assert word in str(err.value)


def test_set_value_keeps_comments_and_validates(tmp_path: Path) -> None:
    f = tmp_path / "optui.toml"
    f.write_text("# my notes\n[flow]\n# keep me\nretention_days = 90\n")
    set_value("flow.retention_days", "250", f)
    text = f.read_text()
    assert "# my notes" in text and "# keep me" in text and "retention_days = 250" in text
    with pytest.raises(ConfigError, match="flow.retention_days"):
        set_value("flow.retention_days", "0", f)
    assert f.read_text() == text  # a rejected value leaves the file as it was


def test_secret_file_is_private_and_env_wins(isolated_config: Path) -> None:
    path = save_secret("kite_access_token", "file-token-123456")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_secrets(environ={})["kite_access_token"] == "file-token-123456"
    assert load_secrets(environ={"OPTUI_KITE_ACCESS_TOKEN": "env-token"})["kite_access_token"] == "env-token"


def test_mask_never_reveals() -> None:
    assert mask("") == "(not set)"
    assert "abcdef" not in mask("abcdefghijklmnop")
    assert mask("short") == "****"


def test_check_value_validates_without_saving(tmp_path: Path) -> None:
    assert check_value("source.interval_s", "15") == 15.0
    assert check_value("participants.history_days", "60") == 60
    with pytest.raises(ConfigError, match="participants.history_days"):
        check_value("participants.history_days", "0")
    with pytest.raises(ConfigError, match="unknown setting"):
        check_value("source.nothing", "1")


def test_redact_url_hides_passwords_and_webhook_tokens() -> None:
    from optui.config import redact_url

    assert redact_url("influxdb://admin:S3cret@db:8086") == "influxdb://admin:****@db:8086"
    assert redact_url("redis://:pw@127.0.0.1:6379/0") == "redis://:****@127.0.0.1:6379/0"
    assert "T000/B000/XXXX" not in redact_url("https://hooks.slack.com/services/T000/B000/XXXX")
    assert redact_url("sqlite:///data/optui.db") == "sqlite:///data/optui.db"
    assert redact_url("http://127.0.0.1:5000") == "http://127.0.0.1:5000"


def test_unreadable_files_raise_config_error_naming_them(isolated_config: Path) -> None:
    from optui.config import secrets_path

    conf = isolated_config / "optui.toml"
    conf.write_bytes(b"[ui]\ntheme = \"\xe9\"\n")
    with pytest.raises(ConfigError, match=r"optui\.toml: configuration file is not UTF-8"):
        load_settings(conf)
    with pytest.raises(ConfigError, match="not UTF-8"):
        set_value("source.interval_s", "20", conf)
    secrets_path().write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ConfigError, match=r"secrets\.toml: secrets file is not UTF-8"):
        load_secrets()
    with pytest.raises(ConfigError, match="secrets file"):
        save_secret("kite_access_token", "x")
    secrets_path().write_text("kite_access_token = \n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        save_secret("kite_access_token", "x")


def test_moved_keys_keep_old_files_working(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    f = tmp_path / "optui.toml"
    f.write_text("[flow]\nthreshold_cr = 250.0\n[positions]\noi_change_pct = 35\n")
    s = load_settings(f, environ={})
    assert s.alerts.single_flow_cr == 250.0 and s.alerts.oi_change_pct == 35.0
    assert "flow.threshold_cr is now alerts.single_flow_cr" in caplog.text
    f.write_text("[flow]\nthreshold_cr = 250.0\n[alerts]\nsingle_flow_cr = 900\n")
    assert load_settings(f, environ={}).alerts.single_flow_cr == 900.0  # the new name wins


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"OPTUI_ALERTS_SEVERITIES": "oi_change=urgent"}, ["alerts.severities", "urgent", "critical"]),
        ({"OPTUI_ALERTS_COOLDOWNS": "nosuchrule=60"}, ["alerts.cooldowns", "nosuchrule", "pcr_shift"]),
        ({"OPTUI_ALERTS_COOLDOWNS": "pcr_shift=-5"}, ["alerts.cooldowns", "pcr_shift=-5", "seconds"]),
        ({"OPTUI_ALERTS_WEBHOOK_FORMAT": "teams"}, ["alerts.webhook_format", "teams", "telegram"]),
        ({"OPTUI_ALERTS_OI_CHANGE_WINDOW_MIN": "0"}, ["alerts.oi_change_window_min", "0"]),
    ],
)
def test_alert_settings_are_checked(tmp_path: Path, env: dict[str, str], words: list[str]) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(tmp_path / "none.toml", environ=env)
    for word in words:
        assert word in str(err.value)
