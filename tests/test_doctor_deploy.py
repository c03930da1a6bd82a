"""Deployment files, `optui doctor`, and the installed commands through a rotated Kite token."""

from __future__ import annotations

import configparser
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from optui.config import Settings, secrets_path, write_private
from optui.ops.deploy import docker_compose, systemd_unit, write_deployment
from optui.ops.grafana import DATASOURCE_UID, dashboards, write_grafana
from tests.servers import free_port

OPTUI = str(Path(sys.executable).with_name("optui"))
REPO = Path(__file__).resolve().parents[1]


def _unit(text: str) -> configparser.SectionProxy:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read_string(text)
    return unit["Service"]


@pytest.mark.unit
def test_unit_keeps_the_token_out_and_does_not_restart_on_a_config_exit(tmp_path: Path) -> None:
    service = _unit(systemd_unit(Settings(), tmp_path / "optui.env", tmp_path, tmp_path / "c.toml", "trader"))
    assert service["RestartPreventExitStatus"] == "2"
    assert service["UnsetEnvironment"] == "OPTUI_KITE_ACCESS_TOKEN"
    assert service["Restart"] == "on-failure"
    done = write_deployment(tmp_path / "deploy", Settings(), user="trader")
    env = (tmp_path / "deploy" / "optui.env").read_text()
    assert "OPTUI_KITE_ACCESS_TOKEN=" not in env and "OPTUI_KITE_API_SECRET=" in env
    assert any("resumes on its own" in step for step in done.next_steps)
    assert (tmp_path / "deploy" / "grafana" / "dashboards" / "premium-flow.json").exists()


@pytest.mark.unit
def test_repository_compose_and_grafana_files_are_the_generated_ones(tmp_path: Path) -> None:
    settings = Settings()
    assert (REPO / "config" / "docker-compose.yml").read_text() == docker_compose(settings)
    for path in write_grafana(tmp_path, settings.influxdb.org, settings.influxdb.bucket):
        rel = path.relative_to(tmp_path)
        assert (REPO / "config" / "grafana" / rel).read_text() == path.read_text(), rel
    compose = docker_compose(settings)
    assert '"--appendonly", "yes"' in compose and "\n      DOCKER_INFLUXDB_INIT_RETENTION" not in compose
    assert "./grafana/provisioning:/etc/grafana/provisioning" in compose


@pytest.mark.unit
def test_dashboards_query_the_stored_measurements() -> None:
    boards = dashboards("options-data")
    assert sorted(boards) == ["alerts.json", "atm-iv-straddle.json", "collector-health.json",
                              "index-overview.json", "participants.json", "premium-flow.json"]
    measurements = {"index_overview", "premium_flow", "participants", "fii_dii_cash", "collector_health",
                    "alerts"}
    for name, board in boards.items():
        json.dumps(board)
        assert board["panels"], name
        for panel in board["panels"]:
            assert panel["datasource"]["uid"] == DATASOURCE_UID
            for target in panel["targets"]:
                query = target["query"]
                assert query.startswith('from(bucket: "options-data")')
                assert any(f'r._measurement == "{m}"' in query for m in measurements), query
    flow = boards["premium-flow.json"]
    assert any("every: ${timeframe}" in t["query"] for p in flow["panels"] for t in p["targets"])


@pytest.mark.integration
def test_simulate_rejects_a_bad_fault_spec() -> None:
    res = subprocess.run([OPTUI, "simulate", "--port", str(free_port()), "--faults", "fast=0.1"],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 2
    assert "unknown fault kind(s) fast" in res.stderr + res.stdout
    assert "Traceback" not in res.stderr + res.stdout


class Lines:
    """A child process's stdout, line by line, readable with a deadline."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.seen: list[str] = []
        self._q: queue.Queue[str] = queue.Queue()
        assert proc.stdout is not None
        stream = proc.stdout
        threading.Thread(target=lambda: [self._q.put(ln) for ln in stream], daemon=True).start()

    def wait_for(self, text: str, limit_s: float = 90.0) -> str:
        end = time.monotonic() + limit_s
        while time.monotonic() < end:
            try:
                line = self._q.get(timeout=0.5)
            except queue.Empty:
                continue
            self.seen.append(line)
            if text in line:
                return line
        raise AssertionError(f"{text!r} not printed; got:\n{''.join(self.seen[-30:])}")


@pytest.mark.chaos
@pytest.mark.integration
def test_collect_pauses_on_a_rotated_token_resumes_without_restart_and_doctor_reports(
        tmp_path: Path) -> None:
    port = free_port()
    # Streamed cycles make few REST requests: the token rotates after the first few (the clock
    # sync, the instrument dumps, the first cycle's quotes), not twenty seconds of cycles later.
    env = {**os.environ, "OPTUI_KITE_ROOT": f"http://127.0.0.1:{port}", "OPTUI_KITE_API_KEY": "sim_key",
           "PYTHONUNBUFFERED": "1", "OPTUI_SOURCE_CHAIN_STRIKES": "4"}
    sim = subprocess.Popen([OPTUI, "simulate", "--port", str(port), "--start", "2026-11-25 11:00",
                            "--faults", "rotate=6"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, env=env)
    collect = None
    try:
        Lines(sim).wait_for("Injecting faults")
        write_private(secrets_path(), 'kite_access_token = "sim_token"\n')
        collect = subprocess.Popen(
            [OPTUI, "collect", "--source", "kite", "--indices", "NIFTY", "--interval", "2",
             "--store", f"sqlite:///{tmp_path / 'x.db'}"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=tmp_path)
        out = Lines(collect)
        out.wait_for("source=simulated indices=NIFTY")
        paused = out.wait_for("gap: token rejected")
        assert "log in again" in paused and "sim_token" not in paused.replace("sim_token_r", "")
        out.wait_for("gap: source paused")  # still running, still paused: no exit, no restart
        write_private(secrets_path(), 'kite_access_token = "sim_token_r1"\n')
        out.wait_for("source=simulated indices=NIFTY legs=")
        assert collect.poll() is None
        doctor = subprocess.run([OPTUI, "doctor"], capture_output=True, text=True, timeout=60,
                                env={**env, "OPTUI_SOURCE_KIND": "kite"}, cwd=tmp_path)
        collect.send_signal(signal.SIGTERM)
        assert collect.wait(timeout=60) == 0
    finally:
        for proc in (collect, sim):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=30)
    report = doctor.stdout
    assert "Collector" in report and "gaps" in report, report
    assert "Kite token" in report and "Kite login" in report, report
    assert "(times by Kite's clock)" in report or "Kite refused" in report or "invalid" in report, report
    assert "Traceback" not in report + doctor.stderr


@pytest.mark.chaos
@pytest.mark.integration
def test_collect_without_a_token_waits_for_a_login_and_logs_every_source_error(tmp_path: Path) -> None:
    """`optui collect` as a user runs it, against the simulated Kite API with no token stored:
    it pauses (no exit 2), the health file doctor reads shows the fault with its fix, a stored token starts collection without a restart, a source failure is a gap, and
    every fault and recovery reaches optui.log with zoned times."""
    import re
    from datetime import datetime

    from optui.ops.doctor import collector_checks
    from optui.simulator.exchange import SimulatedExchange
    from optui.simulator.faults import FaultPlan
    from optui.simulator.server import serve
    from optui.timeutil import IST

    server = serve(SimulatedExchange(seed=5, start=datetime(2026, 11, 25, 11, 0, tzinfo=IST)), "127.0.0.1", 0)
    env = {**os.environ, "OPTUI_KITE_ROOT": server.url, "OPTUI_KITE_API_KEY": "sim_key",
           "OPTUI_GENERAL_LOG_DIR": str(tmp_path / "logs"), "PYTHONUNBUFFERED": "1",
           "OPTUI_SOURCE_CHAIN_STRIKES": "1", "OPTUI_SOURCE_OFFSETS": "0",  # one small quote call
           "OPTUI_EXPORT_WRITE_JSON": "false", "OPTUI_EXPORT_WRITE_CSV": "false",
           # The polled source's errors: streamed, a failing REST API is covered by the ticks
           # (tests/test_stream_source.py).
           "OPTUI_SOURCE_STREAM": "false"}
    env.pop("OPTUI_KITE_ACCESS_TOKEN", None)
    secrets_path().unlink(missing_ok=True)
    args = [OPTUI, "collect", "--source", "kite", "--indices", "NIFTY", "--interval", "1",
            "--store", f"sqlite:///{tmp_path / 'x.db'}"]
    summary = tmp_path / "summary.json"
    collect = None
    try:
        collect = subprocess.Popen([*args, "--summary-json", str(summary)], stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True, env=env, cwd=tmp_path)
        out = Lines(collect)
        paused = out.wait_for(" paused: no Kite access token is stored")
        assert "optui login" in paused and "resumes on its own" in paused
        out.wait_for("gap: source paused: no Kite access token is stored")
        out.wait_for("gap: source paused")  # still running: no exit, no restart loop
        settings = Settings()  # what `optui doctor` reads of this collector's health file
        settings.general.data_dir = str(tmp_path / "data")
        settings.source.kind, settings.kite.root = "kite", server.url
        rows = collector_checks(settings, datetime.now(IST))
        fault = next(r for r in rows if "token_rejected" in r.name)
        assert fault.ok is False and "no Kite access token is stored" in fault.detail
        assert fault.fix.startswith("log in again (`optui login`")
        write_private(secrets_path(), 'kite_access_token = "sim_token"\n')
        stored = out.wait_for("source=simulated indices=NIFTY legs=")
        assert " stored=" in stored and " spooled=0" in stored
        server.faults = FaultPlan({"5xx": 1.0})  # the exchange fails every request
        failed = out.wait_for(" gap: ")
        assert "Kite answered an error" in failed
        server.faults = None
        out.wait_for("source=simulated indices=NIFTY legs=")
        collect.send_signal(signal.SIGTERM)
        assert collect.wait(timeout=60) == 0
    finally:
        if collect is not None and collect.poll() is None:
            collect.send_signal(signal.SIGTERM)
            collect.wait(timeout=30)
        server.close()
    done = json.loads(summary.read_text())
    assert set(done) == {"cycles", "points", "pending"} and done["cycles"] >= 2 and done["pending"] == 0
    log_text = (tmp_path / "logs" / "optui.log").read_text(encoding="utf-8")
    for kind in ("ERROR optui.collectors.supervisor: token_rejected: no Kite access token is stored",
                 "INFO optui.collectors.supervisor: token_restored", "ERROR optui.collectors.supervisor: source_down: ",
                 "INFO optui.collectors.supervisor: source_back"):
        assert kind in log_text, kind
    stamps = re.findall(r"^(\S+) (?:DEBUG|INFO|WARNING|ERROR)", log_text, re.MULTILINE)
    assert stamps and all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+05:30", s) for s in stamps)
    assert "sim_token" not in log_text
