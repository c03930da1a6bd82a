"""The installed `optui` command as users run it: collect, export, config show, bad input."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from optui.models import LEG_CSV_COLUMNS

pytestmark = [pytest.mark.mock, pytest.mark.integration]

OPTUI = str(Path(sys.executable).with_name("optui"))


def run(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """`optui ARGS` at 11:00 IST on the simulator's clock, quoting four strikes each side of each
    ATM rather than every listed one: the stored legs are the same, a cycle costs half."""
    full_env = {**os.environ, "OPTUI_SIMULATOR_START": "2026-11-25 11:00",
                "OPTUI_SOURCE_CHAIN_STRIKES": "4", **(env or {})}
    return subprocess.run([OPTUI, *args], capture_output=True, text=True, timeout=120, env=full_env, cwd=cwd)


def test_collect_once_on_simulator_then_export(tmp_path: Path) -> None:
    db = tmp_path / "optui.db"
    out = tmp_path / "out"
    res = run("collect", "--once", "--source", "sim", "--store", f"sqlite:///{db}", "--out", str(out), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    lines = [ln for ln in res.stdout.splitlines() if " IST source=" in ln]  # status lines only
    assert len(lines) == 1
    line = lines[0]
    for word in ("source=simulated", "indices=NIFTY,BANKNIFTY,FINNIFTY,MIDCPNIFTY,SENSEX", "legs=", "flagged=", "duration=", "stored=", "spooled=0"):
        assert word in line
    legs = int(line.split("legs=")[1].split()[0])
    assert legs >= 5 * 2 * 5
    assert len(list(out.rglob("*.json"))) == legs
    assert "Traceback" not in res.stderr

    target = tmp_path / "legs.csv"
    # --to on the same day as --from is that whole IST day
    exp = run("export", "csv", "--from", "2026-11-25", "--to", "2026-11-25", "--store", f"sqlite:///{db}", "--out", str(target), cwd=tmp_path)
    assert exp.returncode == 0, exp.stderr
    with target.open(newline="") as handle:
        rows = list(csv.reader(handle))
    assert tuple(rows[0]) == LEG_CSV_COLUMNS and len(rows) - 1 == legs

    # an existing file is never replaced without --force
    target.write_text("kept\n")
    again = run("export", "csv", "--from", "2026-11-25", "--to", "2026-11-25", "--store", f"sqlite:///{db}", "--out", str(target), cwd=tmp_path)
    assert again.returncode == 2 and f"{target} already exists" in again.stderr and "--force" in again.stderr
    assert target.read_text() == "kept\n"
    forced = run("export", "csv", "--from", "2026-11-25", "--to", "2026-11-25", "--force", "--store", f"sqlite:///{db}", "--out", str(target), cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr
    assert f"exported {legs} rows" in forced.stdout and target.read_text().startswith("timestamp,")

    # unknown index or measurement: one line listing the known ones, nothing written
    for flag, value, known in (("--index", "NIFTI", "NIFTY, BANKNIFTY, FINNIFTY, MIDCPNIFTY, SENSEX"),
                               ("--measurement", "flows", "atm_options, index_overview, premium_flow")):
        bad = run("export", "json", "--from", "2026-11-25", "--to", "2026-11-25", flag, value, "--store", f"sqlite:///{db}",
                  "--out", str(tmp_path / "bad.json"), cwd=tmp_path)
        assert bad.returncode == 2 and repr(value) in bad.stderr and known in bad.stderr, bad.stderr
        assert "Traceback" not in bad.stderr and not (tmp_path / "bad.json").exists()


def test_bad_indices_and_missing_login_exit_with_one_line(tmp_path: Path) -> None:
    res = run("collect", "--once", "--indices", "NIFTY,DOW", cwd=tmp_path)
    assert res.returncode == 2 and "DOW" in res.stderr and "Traceback" not in res.stderr
    # No token: a one-shot has nothing to wait for, so it ends at once with the fix (no request).
    res = run("collect", "--once", "--source", "kite", env={"OPTUI_KITE_API_KEY": "abc"}, cwd=tmp_path)
    assert res.returncode == 2 and res.stdout == ""
    assert "no Kite access token is stored: log in: `optui login`" in res.stderr and "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    # A configuration error still ends even a long run with 2 (systemd does not restart on it).
    res = run("collect", "--source", "kite", env={"OPTUI_KITE_API_KEY": ""}, cwd=tmp_path)
    assert res.returncode == 2 and "kite.api_key is not set" in res.stderr and "Traceback" not in res.stderr


@pytest.mark.parametrize("command", [("simulate",), ("serve",), ("collect", "--serve", "--once")])
def test_a_port_out_of_range_is_one_line_before_anything_starts(tmp_path: Path, command: tuple[str, ...]) -> None:
    """`optui simulate --port 99999` printed the socket layer's OverflowError traceback (it is
    no OSError); `collect --serve` generated an API token and collected a cycle first."""
    res = run(*command, "--port", "99999", cwd=tmp_path,
              env={"OPTUI_SECRETS_FILE": str(tmp_path / "secrets.toml")})
    assert res.returncode == 2, (res.stdout, res.stderr)
    assert res.stderr.strip() == "error: --port 99999: allowed 0 to 65535 (0: any free port)"
    assert res.stdout == "" and not (tmp_path / "secrets.toml").exists()


def test_invalid_config_names_key(tmp_path: Path) -> None:
    res = run("config", "show", env={"OPTUI_SOURCE_INTERVAL_S": "fast"}, cwd=tmp_path)
    assert res.returncode == 2 and "source.interval_s" in res.stderr and "fast" in res.stderr


def test_config_show_masks_secrets(tmp_path: Path) -> None:
    secret = "tok_abcdefghijklmnop"
    res = run("config", "show", env={"OPTUI_KITE_ACCESS_TOKEN": secret, "OPTUI_INFLUXDB_TOKEN": "influx-secret-value",
                                     "OPTUI_STORE_URL": "influxdb://admin:S3cretPass@db.example:8086"}, cwd=tmp_path)
    assert res.returncode == 0
    assert secret not in res.stdout and "influx-secret-value" not in res.stdout
    assert "S3cretPass" not in res.stdout and "influxdb://admin:****@db.example:8086" in res.stdout
    assert "kite_access_token" in res.stdout and "[source]" in res.stdout


@pytest.mark.parametrize("content", [b"[source]\ninterval_s = 30\n# caf\xe9 \xff\xfe\n", b"[source\ninterval_s = 30\n"])
def test_config_file_not_utf8_or_not_toml_is_one_line_naming_the_file(tmp_path: Path, content: bytes) -> None:
    bad = tmp_path / "optui.toml"
    bad.write_bytes(content)
    for args in (("config", "show"), ("collect", "--once", "--source", "sim"), ()):  # () opens the app
        res = run(*args, env={"OPTUI_CONFIG_FILE": str(bad)}, cwd=tmp_path)
        assert res.returncode == 2, (args, res.stderr)
        assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1
        assert str(bad) in res.stderr and ("UTF-8" in res.stderr or "TOML" in res.stderr)


def test_secrets_file_not_utf8_is_one_line_naming_the_file(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets.toml"
    secrets.write_bytes(b'kite_access_token = "\xff\xfeabc"\n')
    res = run("collect", "--once", "--source", "kite", cwd=tmp_path,
              env={"OPTUI_KITE_API_KEY": "abc", "OPTUI_SECRETS_FILE": str(secrets),
                   "OPTUI_CONFIG_FILE": str(tmp_path / "none.toml")})
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert str(secrets) in res.stderr and "not UTF-8" in res.stderr


def test_outage_status_exit_report_summary_and_log(influx_process: Any, tmp_path: Path) -> None:
    """InfluxDB down: the status line says spooled, exit says how many points wait and where,
    --summary-json counts them; back up: the next run drains the spool, and the log (with zoned
    times) has both."""
    import re

    env = {"OPTUI_CONFIG_FILE": str(tmp_path / "none.toml"), "OPTUI_STORE_SPOOL_DIR": str(tmp_path / "spool"),
           "OPTUI_GENERAL_LOG_DIR": str(tmp_path / "logs")}
    args = ("collect", "--once", "--source", "sim", "--indices", "NIFTY", "--store", influx_process.store_url)
    summary = tmp_path / "summary.json"
    influx_process.stop()
    res = run(*args, "--summary-json", str(summary), env=env, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    (line,) = [ln for ln in res.stdout.splitlines() if " IST source=" in ln]
    spooled = int(line.split("spooled=")[1].split()[0])
    assert spooled > 0 and "stored=0 " in line
    assert f"{spooled} point(s) still spooled in {tmp_path / 'spool'}" in res.stdout + res.stderr
    assert json.loads(summary.read_text()) == {"cycles": 1, "points": spooled, "pending": spooled}

    influx_process.start()
    res = run(*args, "--summary-json", str(summary), env=env, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    (line,) = [ln for ln in res.stdout.splitlines() if " IST source=" in ln]
    assert "spooled=0" in line and "still spooled" not in res.stdout + res.stderr
    done = json.loads(summary.read_text())
    assert done["cycles"] == 1 and done["pending"] == 0 and done["points"] > 0
    log_text = (tmp_path / "logs" / "optui.log").read_text(encoding="utf-8")
    assert "spooling writes" in log_text and f"replayed {spooled} spooled point(s)" in log_text
    assert "still spooled" in log_text
    stamps = re.findall(r"^(\S+) (?:INFO|WARNING|ERROR)", log_text, re.MULTILINE)
    assert stamps and all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+05:30", s) for s in stamps)


def test_summary_json_on_a_plain_run(tmp_path: Path) -> None:
    summary = tmp_path / "s.json"
    res = run("collect", "--once", "--source", "sim", "--indices", "NIFTY", "--store", f"sqlite:///{tmp_path / 'a.db'}",
              "--summary-json", str(summary), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    stored = int(res.stdout.split("stored=")[1].split()[0])
    assert stored > 0 and json.loads(summary.read_text()) == {"cycles": 1, "points": stored, "pending": 0}


def test_config_option_before_or_after_the_command_is_used(tmp_path: Path) -> None:
    conf = tmp_path / "mine.toml"
    conf.write_text('[source]\nindices = ["BANKNIFTY"]\n\n[general]\ndata_dir = "mydata"\n')
    db = tmp_path / "c.db"
    for args in (("-c", str(conf), "collect", "--once"), ("collect", "-c", str(conf), "--once"),
                 ("--config", str(conf), "collect", "--once")):
        res = run(*args, "--source", "sim", "--store", f"sqlite:///{db}", "--out", str(tmp_path / "o"), cwd=tmp_path)
        assert res.returncode == 0, res.stderr
        assert "indices=BANKNIFTY " in res.stdout, (args, res.stdout)
    for args in (("-c", str(conf), "config", "show"), ("config", "show", "-c", str(conf))):
        show = run(*args, env={"OPTUI_SECRETS_FILE": ""}, cwd=tmp_path)
        assert show.returncode == 0, show.stderr
        assert show.stdout.splitlines()[0] == f"# configuration file: {conf} (found)"
        assert 'data_dir = "mydata"' in show.stdout and 'indices = ["BANKNIFTY"]' in show.stdout
        # the secrets beside the chosen file, not the default file's
        assert f"# secrets (environment or {tmp_path / 'secrets.toml'}, mode 0600)" in show.stdout
    other = tmp_path / "other.toml"
    other.write_text("")
    both = run("-c", str(conf), "config", "show", "-c", str(other), cwd=tmp_path)
    assert both.returncode == 2 and str(conf) in both.stderr and str(other) in both.stderr


def test_a_missing_config_file_is_an_error_naming_it(tmp_path: Path) -> None:
    nope = tmp_path / "nope.toml"
    for args in (("collect", "-c", str(nope), "--once"), ("-c", str(nope), "collect", "--once"),
                 ("config", "show", "-c", str(nope)), ("-c", str(nope), "config", "show"),
                 ("-c", str(nope), "setup", "--auto"), ("-c", str(nope), "simulate")):
        res = run(*args, cwd=tmp_path)
        assert res.returncode == 2, (args, res.stdout, res.stderr)
        assert res.stderr.strip() == (f"error: configuration file {nope} does not exist: check the path, copy "
                                      "config/optui.example.toml there, or leave out -c to use the default file")
        assert res.stdout == ""  # nothing ran on defaults
    assert not (tmp_path / "data").exists()


def test_setup_auto_production_checks_the_configured_kite_source(tmp_path: Path) -> None:
    conf = tmp_path / "optui.toml"
    conf.write_text('[source]\nkind = "kite"\nindices = ["NIFTY"]\n\n[kite]\napi_key = "abc123"\nroot = "http://127.0.0.1:9"\n')
    res = run("setup", "--mode", "production", "--auto", env={"OPTUI_CONFIG_FILE": str(conf)}, cwd=tmp_path)
    assert res.returncode == 1, res.stdout
    assert "FAIL  Source and login: Kite login: no access token stored" in res.stdout
    assert "FAIL  Validate installation" in res.stdout and "simulated cycle" not in res.stdout
    assert res.stdout.splitlines()[-1] == "5/7 steps passed"
