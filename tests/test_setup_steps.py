"""Setup, prerequisite, deployment and pytest-runner steps, without a screen."""

from __future__ import annotations

import configparser
import io
import os
import socket
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from optui.config import Settings
from optui.logs import configure_logging, tail
from optui.ops import checks, run_setup_auto
from optui.ops.deploy import COMPOSE_NAME, ENV_NAME, UNIT_NAME, write_deployment
from optui.ops.pytest_runner import parse_counts, pytest_command, run_pytest
from optui.ops.steps import Step, run_step, steps_for


def make_settings(root: Path) -> Settings:
    s = Settings()
    s.general.data_dir = str(root / "data")
    s.general.log_dir = str(root / "logs")
    s.store.url = f"sqlite:///{root / 'data' / 'optui.db'}"
    s.store.spool_dir = str(root / "data" / "spool")
    s.source.instruments_cache_dir = str(root / "data" / "instruments")
    s.export.out_dir = str(root / "data")
    return s


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.unit
def test_system_requirements_flags_small_terminal_and_low_memory(tmp_path: Path) -> None:
    rows = checks.system_requirements(
        make_settings(tmp_path), terminal=(60, 20), colors=256,
        meminfo={"MemTotal": 1_000_000, "MemAvailable": 100_000},
    )
    by = {r.name: r for r in rows}
    assert by["Python"].ok is True
    assert by["Memory"].ok is False and "97 MB available" in by["Memory"].detail
    assert by["Terminal size"].ok is False and "60x20" in by["Terminal size"].detail
    assert "80x24" in by["Terminal size"].detail and by["Terminal size"].fix
    assert by["Disk"].ok is True and str(tmp_path) in by["Disk"].detail


@pytest.mark.unit
def test_meminfo_parser_reads_kilobytes(tmp_path: Path) -> None:
    f = tmp_path / "meminfo"
    f.write_text("MemTotal:       16318412 kB\nMemAvailable:    8000000 kB\nHugePages_Total:       0\n")
    assert checks.read_meminfo(f) == {"MemTotal": 16318412, "MemAvailable": 8000000, "HugePages_Total": 0}
    assert checks.read_meminfo(tmp_path / "missing") == {}


@pytest.mark.unit
def test_packages_report_versions_and_missing_install_command() -> None:
    rows = checks.package_checks([("textual", "textual>=0.80"), ("no-such-pkg-xyz", "no-such-pkg-xyz>=1")])
    assert rows[0].ok is True and rows[0].detail.split()[0][0].isdigit()
    assert rows[1].ok is False and rows[1].fix == "pip install 'no-such-pkg-xyz>=1'"
    names = {n for n, _ in checks.required_packages()}
    assert {"textual", "kiteconnect", "numpy"} <= names


@pytest.mark.unit
def test_unreachable_services_fail_with_a_fix(tmp_path: Path) -> None:
    s = make_settings(tmp_path)
    port = closed_port()
    s.store.url = f"influxdb://127.0.0.1:{port}"
    s.cache.url = f"redis://:pw@127.0.0.1:{closed_port()}/0"
    rows = {r.name: r for r in checks.service_checks(s, timeout=0.5)}
    assert rows["InfluxDB"].ok is False and f"127.0.0.1:{port}" in rows["InfluxDB"].detail
    assert "sqlite" in rows["InfluxDB"].fix
    assert rows["Redis"].ok is False and "memory://" in rows["Redis"].fix
    assert "pw" not in rows["Redis"].detail  # passwords never shown


@pytest.mark.unit
def test_health_checks_name_each_failure_and_never_show_a_password(tmp_path: Path) -> None:
    s = make_settings(tmp_path)
    port = closed_port()
    s.cache.url = f"redis://:pw@127.0.0.1:{port}/0"
    blocker = tmp_path / "file"
    blocker.write_text("x")
    s.general.log_dir = str(blocker / "logs")
    rows = {r.name: r for r in checks.health_checks(s, timeout=0.5)}
    assert list(rows) == ["store", "cache", "general.data_dir", "general.log_dir"]
    assert rows["store"].ok is True and "SQLite" in rows["store"].detail
    assert rows["cache"].ok is False and f"redis://:****@127.0.0.1:{port}/0" in rows["cache"].detail
    assert "pw@" not in rows["cache"].detail and "memory://" in rows["cache"].fix
    assert rows["general.data_dir"].ok is True and (tmp_path / "data").is_dir()
    assert rows["general.log_dir"].ok is False and str(blocker / "logs") in rows["general.log_dir"].detail
    s.source.kind = "kite"
    token = checks.health_checks(s, timeout=0.5)[-1]
    assert token.name == "Kite token" and token.ok is False


@pytest.mark.unit
def test_form_actions_report_the_ops_checks(tmp_path: Path) -> None:
    from optui.screens.form_sections import run_action

    s = make_settings(tmp_path)
    ok, report = run_action("store_test", s, "database", None)
    assert ok and report.startswith("PASS  store SQLite ")
    ok, report = run_action("health", s, "monitoring", None)
    assert ok and report.splitlines()[1] == "PASS  cache in memory"
    assert f"PASS  general.log_dir {tmp_path / 'logs'} writable" in report
    ok, report = run_action("view_log", s, "logging", None)
    assert ok and report == f"no log file in {tmp_path / 'logs'} yet"
    configure_logging(s)
    import logging

    logging.getLogger("optui.test").warning("seen in the viewer")
    for h in logging.getLogger().handlers:
        h.flush()
    ok, report = run_action("view_log", s, "logging", None)
    assert report.splitlines()[0].startswith(str(tmp_path / "logs" / "optui.log"))
    assert report.splitlines()[-1].endswith("seen in the viewer")


@pytest.mark.unit
def test_embedded_defaults_are_explained(tmp_path: Path) -> None:
    rows = {r.name: r for r in checks.initialise_services(make_settings(tmp_path))}
    assert rows["Store"].ok is True and "SQLite" in rows["Store"].detail
    assert rows["InfluxDB"].ok is None and "embedded" in rows["InfluxDB"].detail
    assert rows["Redis"].ok is None
    assert (tmp_path / "data" / "optui.db").exists()


@pytest.mark.unit
def test_create_directories_makes_them_writable(tmp_path: Path) -> None:
    s = make_settings(tmp_path)
    rows = checks.create_directories(s)
    assert all(r.ok for r in rows)
    assert (tmp_path / "data").is_dir() and (tmp_path / "logs").is_dir() and (tmp_path / "data" / "spool").is_dir()
    blocker = tmp_path / "file"
    blocker.write_text("x")
    s.general.log_dir = str(blocker / "logs")
    bad = [r for r in checks.create_directories(s) if r.ok is False]
    assert bad and bad[0].name == "logs dir"


@pytest.mark.unit
def test_step_error_becomes_failed_row(tmp_path: Path) -> None:
    def boom(_: Settings) -> list[checks.Check]:
        raise RuntimeError("disk on fire")

    result = run_step(Step("Boom", boom), make_settings(tmp_path))
    assert not result.ok and "disk on fire" in result.summary()


@pytest.mark.unit
def test_deployment_files(tmp_path: Path) -> None:
    s = make_settings(tmp_path)
    done = write_deployment(tmp_path / "deploy", s, user="trader")
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(tmp_path / "deploy" / UNIT_NAME)
    service = unit["Service"]
    assert service["Restart"] == "on-failure"
    assert service["ExecStart"].endswith("optui collect")
    assert service["EnvironmentFile"] == str(tmp_path / "deploy" / ENV_NAME)
    assert service["User"] == "trader"
    env = tmp_path / "deploy" / ENV_NAME
    assert stat.S_IMODE(env.stat().st_mode) == 0o600
    compose = (tmp_path / "deploy" / COMPOSE_NAME).read_text()
    for image in ("influxdb:2", "redis:7", "grafana/grafana"):
        assert f"image: {image}" in compose
    assert "DOCKER_INFLUXDB_INIT_BUCKET: options-data" in compose
    assert "DOCKER_INFLUXDB_INIT_RETENTION" not in compose.replace("# No DOCKER_INFLUXDB_INIT_RETENTION", "")
    assert any("systemctl enable" in step for step in done.next_steps)
    # an existing secrets file is never overwritten
    env.write_text("OPTUI_KITE_API_SECRET=keep\n")
    again = write_deployment(tmp_path / "deploy", s)
    assert env.read_text() == "OPTUI_KITE_API_SECRET=keep\n" and env in again.kept


@pytest.mark.unit
def test_run_setup_auto_reports_each_step_and_exit_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    s = make_settings(tmp_path)
    monkeypatch.setattr(checks, "collection_cycle", lambda _s: checks.Check("Collection cycle", True, "ok"))
    out = io.StringIO()
    code = run_setup_auto("setup", s, out=out)
    lines = out.getvalue().splitlines()
    assert [ln.split("  ")[0] for ln in lines[:6]] == ["PASS"] * 6, out.getvalue()
    assert code == 0 and lines[-1] == "6/6 steps passed"
    assert "PASS  Source and login: Source: source.kind = sim: the built-in simulated exchange" in out.getvalue()
    s.cache.url = f"redis://127.0.0.1:{closed_port()}/0"
    out = io.StringIO()
    assert run_setup_auto("setup", s, out=out) == 1
    assert "FAIL  Prerequisites" in out.getvalue() and "fix Redis" in out.getvalue()
    assert run_setup_auto("nonsense", s, out=io.StringIO()) == 2
    assert [st.title for st in steps_for("production")][-1] == "Deployment files"


@pytest.mark.unit
def test_parse_counts_reads_pytest_summary() -> None:
    assert parse_counts("==== 3 passed, 1 failed, 2 skipped in 0.52s ====") == {"passed": 3, "failed": 1, "skipped": 2}
    assert parse_counts("1 error in 0.1s") == {"errors": 1}
    assert pytest_command("unit")[-2:] == ["-m", "unit"] and "-m" not in pytest_command("")[3:]


@pytest.mark.unit
def test_run_pytest_streams_lines_and_counts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")  # the tiny suite needs no plugins
    (tmp_path / "pytest.ini").write_text("[pytest]\nmarkers =\n    unit: u\n")
    (tmp_path / "test_x.py").write_text(
        "import pytest\n@pytest.mark.unit\ndef test_a():\n    assert True\n"
        "@pytest.mark.unit\ndef test_b():\n    assert False\ndef test_c():\n    pass\n"
    )
    lines: list[str] = []
    summary = run_pytest("unit", lines.append, cwd=tmp_path)
    assert summary.counts.get("passed") == 1 and summary.counts.get("failed") == 1
    assert summary.returncode == 1 and "FAILED" in summary.line()
    assert any("test_b" in ln for ln in lines)
    empty = run_pytest("integration", [].append, cwd=tmp_path)
    assert empty.returncode == 5 and "no tests" in empty.line()


@pytest.mark.unit
def test_log_file_and_tail(tmp_path: Path) -> None:
    import logging

    path = configure_logging(make_settings(tmp_path))
    logging.getLogger("optui.test").warning("hello log")
    for h in logging.getLogger().handlers:
        h.flush()
    assert path == tmp_path / "logs" / "optui.log"
    assert tail(path, 5)[-1].endswith("hello log")
    assert tail(tmp_path / "none.log") == []
    assert os.access(path, os.R_OK)


@pytest.mark.integration
def test_services_on_real_influxdb_and_redis(tmp_path: Path, influx_server: str, redis_server: str) -> None:
    s = make_settings(tmp_path)
    s.store.url = influx_server.replace("http://", "influxdb://")
    s.cache.url = redis_server
    reach = {r.name: r for r in checks.service_checks(s)}
    assert reach["InfluxDB"].ok is True and "answers" in reach["InfluxDB"].detail
    assert reach["Redis"].ok is True and "PONG" in reach["Redis"].detail
    init = {r.name: r for r in checks.initialise_services(s)}
    assert init["InfluxDB"].ok is True, init["InfluxDB"].detail
    assert init["Redis"].ok is True
    import httpx

    shown = httpx.get(f"{influx_server}/query", params={"q": "SHOW DATABASES"}, timeout=5).json()
    names = [row[0] for row in shown["results"][0]["series"][0]["values"]]
    assert s.influxdb.database in names or s.influxdb.bucket in names
    db = s.influxdb.database if s.influxdb.database in names else s.influxdb.bucket
    policies = httpx.get(f"{influx_server}/query", params={"q": f'SHOW RETENTION POLICIES ON "{db}"'}, timeout=5).json()
    durations = [row[1] for row in policies["results"][0]["series"][0]["values"]]
    assert "0s" in durations  # infinite retention


def kite_settings(root: Path, kite_root: str = "http://127.0.0.1:9") -> Settings:
    s = make_settings(root)
    s.source.kind = "kite"
    s.source.indices = ["NIFTY"]
    s.kite.api_key = "sim_key"
    s.kite.root = kite_root
    return s


@pytest.mark.unit
def test_production_auto_with_kite_and_no_token_fails_the_login_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    out = io.StringIO()
    code = run_setup_auto("production", kite_settings(tmp_path), out=out)
    text = out.getvalue()
    assert code == 1, text
    assert ("FAIL  Source and login: Kite login: no access token stored: log in (Kite Connect "
            "authentication)") in text
    assert "fix Kite login: log in: optui → 3 Production → 2 Kite Connect authentication" in text
    # the collection check uses the configured source, never a simulated cycle in its place
    assert "FAIL  Validate installation: Collection cycle: Kite cycle (http://127.0.0.1:9) failed:" in text
    assert "simulated cycle" not in text
    assert text.splitlines()[-1] == "5/7 steps passed"


@pytest.fixture
def kite_sim() -> Iterator[str]:
    from datetime import datetime

    from optui.simulator.exchange import SimulatedExchange
    from optui.simulator.server import serve
    from optui.timeutil import IST

    server = serve(SimulatedExchange(seed=3, start=datetime(2026, 11, 25, 11, 0, tzinfo=IST)), "127.0.0.1", 0)
    yield server.url
    server.close()


@pytest.mark.integration
def test_kite_login_and_cycle_checked_through_the_official_client(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kite_sim: str
) -> None:
    s = kite_settings(tmp_path, kite_sim)
    monkeypatch.setenv("OPTUI_KITE_ACCESS_TOKEN", "not_the_token")
    login = checks.source_login(s)
    assert [(r.name, r.ok) for r in login] == [("Kite login", False)]
    assert "Kite access token is invalid or expired" in login[0].detail and login[0].fix
    monkeypatch.setenv("OPTUI_KITE_ACCESS_TOKEN", "sim_token")
    login = checks.source_login(s)
    assert [(r.name, r.ok) for r in login] == [("Kite login", True)]
    assert login[0].detail.startswith(f"{kite_sim} accepts the access token")
    cycle = checks.collection_cycle(s)
    assert cycle.ok is True, cycle.detail
    assert cycle.detail.startswith(f"Kite cycle ({kite_sim}): 1 indices, ")
    assert not (tmp_path / "data" / "sim").exists()  # the trial cycle wrote nothing beside real data


@pytest.mark.unit
def test_run_pytest_passes_the_environment_unchanged_and_runs_one_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    from optui.ops import pytest_runner

    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    monkeypatch.setenv("OPTUI_RUNNER_PROBE", "from-the-parent")
    started, release = tmp_path / "started", tmp_path / "release"
    (tmp_path / "pytest.ini").write_text("[pytest]\nmarkers =\n    unit: u\n")
    (tmp_path / "test_env.py").write_text(
        "import os, pathlib, time\n"
        "def test_env():\n"
        "    assert 'NO_COLOR' not in os.environ\n"  # the README's command adds no NO_COLOR
        "    assert os.environ['OPTUI_RUNNER_PROBE'] == 'from-the-parent'\n"
        f"    pathlib.Path({str(started)!r}).write_text('yes')\n"
        f"    for _ in range(6000):\n        if pathlib.Path({str(release)!r}).exists(): break\n"
        "        time.sleep(0.01)\n"
        f"    assert pathlib.Path({str(release)!r}).exists()\n"
    )
    first: list[pytest_runner.PytestSummary] = []
    runner = threading.Thread(target=lambda: first.append(pytest_runner.run_pytest("", [].append, cwd=tmp_path)))
    runner.start()
    try:
        for _ in range(6000):  # bounded wait for the first run's test to begin
            if started.exists():
                break
            runner.join(0.01)
        assert started.exists() and pytest_runner.is_running()
        said: list[str] = []
        second = pytest_runner.run_pytest("", said.append, cwd=tmp_path)
        assert second.refused and second.returncode is None
        assert second.line() == "all tests: not started, another test run is going"
        assert said == ["A test run is already going: wait for it to finish (or leave its screen to stop it)."]
    finally:
        release.write_text("go")
        runner.join(120)
    assert first[0].returncode == 0 and first[0].counts == {"passed": 1}, first[0]
    assert not pytest_runner.is_running()


@pytest.mark.unit
def test_run_pytest_cancel_stops_a_silent_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    started = tmp_path / "started"
    (tmp_path / "test_slow.py").write_text(
        "import pathlib, time\ndef test_slow():\n"
        f"    pathlib.Path({str(started)!r}).write_text('yes')\n    time.sleep(600)\n")
    summary = run_pytest("", [].append, cwd=tmp_path, is_cancelled=started.exists)
    assert summary.cancelled and summary.line() == "all tests: cancelled"
    assert summary.returncode not in (None, 0)  # Ctrl-C: pytest reports an interrupted run


@pytest.mark.unit
def test_services_name_the_embedded_store_the_source_writes(tmp_path: Path) -> None:
    """The simulator writes data/sim/optui.db by default, never the live history's file: the
    InfluxDB row names the store collection really uses."""
    s = make_settings(tmp_path)
    s.store.url = "sqlite:///data/optui.db"
    s.general.data_dir = "data"
    s.source.kind = "sim"
    assert checks.service_checks(s)[0].detail == "not configured: embedded store sqlite:///data/sim/optui.db"
    s.source.kind = "kite"
    s.kite.root = "https://api.kite.trade"
    assert checks.service_checks(s)[0].detail == "not configured: embedded store sqlite:///data/optui.db"
