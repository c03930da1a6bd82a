"""`optui collect` on the seeded simulator raises alerts once per cooldown and posts them to a
webhook on loopback, in each flavour, without the webhook's secret reaching the log."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from webhook_server import webhook_server

from optui.alerts import MEASUREMENT
from optui.storage.base import open_store

pytestmark = [pytest.mark.mock, pytest.mark.integration]

OPTUI = str(Path(sys.executable).with_name("optui"))
COOLDOWN_S = 60.0  # a second of real time at the simulator's 60x
SECRET = "987654:AAF-SECRETTOKEN"


@pytest.mark.parametrize("fmt", ["json", "slack", "telegram"])
def test_collect_raises_alerts_once_per_cooldown_and_posts_them(tmp_path: Path, fmt: str) -> None:
    answer = {"ok": True, "result": {"message_id": 1}} if fmt == "telegram" else "ok"
    path = f"/bot{SECRET}/sendMessage" if fmt == "telegram" else f"/services/T0/B0/{SECRET}"
    db = tmp_path / "optui.db"
    with webhook_server(default=(200, answer, {})) as server:
        env = {
            **os.environ,
            "OPTUI_SIMULATOR_START": "2026-11-25 11:00", "OPTUI_SIMULATOR_SEED": "7",
            "OPTUI_SIMULATOR_SPEED": "60",  # a minute of market per second
            "OPTUI_GENERAL_LOG_DIR": str(tmp_path / "logs"), "OPTUI_GENERAL_DATA_DIR": str(tmp_path / "data"),
            "OPTUI_ALERTS_SINGLE_FLOW_CR": "0.01",  # every cycle's premium flow is above it
            "OPTUI_ALERTS_COOLDOWN_S": str(COOLDOWN_S),
            "OPTUI_ALERTS_WEBHOOK_URL": server.url(path), "OPTUI_ALERTS_WEBHOOK_FORMAT": fmt,
            "OPTUI_ALERTS_TELEGRAM_CHAT_ID": "-100200300",
            "OPTUI_EXPORT_WRITE_JSON": "false", "OPTUI_EXPORT_WRITE_CSV": "false",
        }
        proc = subprocess.Popen(
            [OPTUI, "collect", "--source", "sim", "--indices", "NIFTY", "--interval", "1",
             "--store", f"sqlite:///{db}"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path,
        )
        try:
            # two rounds of "bought" and "sold": the second only after a cooldown of market time
            posts = server.wait_for(4, timeout=120, which=lambda r: "option premium" in str(r.body))
        finally:
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    flow_posts = [p for p in posts if "option premium" in str(p.body)]
    assert len(flow_posts) >= 4, (out, err)
    assert all(p.path == path for p in posts)
    if fmt == "telegram":
        assert all(p.body["chat_id"] == "-100200300" and p.body["text"].startswith("optui [") for p in posts)
    elif fmt == "slack":
        assert all(set(p.body) == {"text"} and p.body["text"].startswith("*optui ") for p in posts)
    else:
        assert {p.body["alert"]["rule"] for p in flow_posts} == {"premium_flow"}

    # the store holds each alert once; alerts of one subject are at least a cooldown apart
    # and come back at the first cycle past it
    lines = out.splitlines()
    cycles = [ln for ln in lines if " IST source=" in ln]
    assert any(ln.startswith("alerts: ") and "****" in ln for ln in lines)
    assert any("alerts=" in ln for ln in cycles) and any("premium_flow" in ln for ln in lines)
    with open_store(f"sqlite:///{db}") as store:
        rows = store.query(MEASUREMENT, datetime(2026, 11, 24, tzinfo=UTC), datetime(2026, 11, 27, tzinfo=UTC),
                           tags={"rule": "premium_flow"})
        times = sorted({r.time for r in store.query("index_overview", datetime(2026, 11, 24, tzinfo=UTC),
                                                     datetime(2026, 11, 27, tzinfo=UTC))})
    assert times, "cycles were stored"
    gap = max((b - a for a, b in zip(times, times[1:], strict=False)), default=timedelta(0))
    for subject in ("NIFTY bought", "NIFTY sold"):
        fired = sorted(r.time for r in rows if r.tags["subject"] == subject)
        assert len(fired) >= 2, subject
        for a, b in zip(fired, fired[1:], strict=False):
            assert timedelta(seconds=COOLDOWN_S) <= b - a <= timedelta(seconds=COOLDOWN_S) + gap
        assert len(fired) < len(times)  # some cycles were held back by the cooldown
    logged = (tmp_path / "logs" / "optui.log").read_text(encoding="utf-8")
    assert "ALERT WARNING premium_flow" in logged
    assert "SECRETTOKEN" not in logged + out + err
