"""A dashboard that collects in process writes the collector's health file as `optui collect`
does, so `optui doctor` sees it collecting (and its failures)."""

from __future__ import annotations

import json
import stat
from datetime import datetime
from pathlib import Path

import pytest
from dashboard_pilot import open_dashboard, sim_settings

from optui.collectors.engine import build_engine
from optui.collectors.health import HEALTH_FILE
from optui.errors import NetworkError
from optui.feed.local import LocalFeed
from optui.ops.doctor import collector_checks

pytestmark = pytest.mark.integration


def _health(settings) -> tuple[Path, dict]:  # noqa: ANN001 - Settings
    path = Path(settings.general.data_dir) / "state" / "sim" / HEALTH_FILE
    return path, json.loads(path.read_text(encoding="utf-8"))


async def test_a_collecting_dashboard_writes_the_health_file_doctor_reads(tmp_path: Path) -> None:
    settings = sim_settings(tmp_path)
    settings.source.indices = ["NIFTY"]
    settings.participants.enabled = False  # no pre-market capture warnings here
    async with open_dashboard(settings, engine_factory=build_engine, size=(120, 40), rounds=2) as dash:
        assert dash.screen._snapshot is not None
        path, doc = _health(settings)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert doc["source"] == "sim" and doc["cycles"] >= 1 and doc["gaps"] == 0 and doc["open"] == []
    rows = collector_checks(settings, datetime.fromisoformat(doc["at"]))
    assert rows[0].name == "Collector" and rows[0].ok is True and "source sim" in rows[0].detail


def test_a_failed_cycle_is_an_open_fault_in_the_health_file_until_a_cycle_succeeds(tmp_path: Path) -> None:
    settings = sim_settings(tmp_path)
    settings.source.indices = ["NIFTY"]
    settings.participants.enabled = False  # no pre-market capture warnings here
    feed = LocalFeed.from_settings(settings, lock=False)
    try:
        feed.start()
        engine = feed.engine
        assert engine is not None
        feed.next_cycle(wait_ticks=False)
        collect = engine.collect_once

        def refused():  # noqa: ANN202 - Snapshot
            raise NetworkError("quote: cannot reach Kite (ConnectTimeout)")

        engine.collect_once = refused  # type: ignore[method-assign]
        with pytest.raises(NetworkError):
            feed.next_cycle(wait_ticks=False)
        _, doc = _health(settings)
        assert (doc["cycles"], doc["gaps"]) == (1, 1)
        rows = collector_checks(settings, datetime.fromisoformat(doc["at"]))
        assert rows[0].ok is False
        assert any("source_down" in r.name and "cannot reach Kite" in r.detail for r in rows), rows
        engine.collect_once = collect  # type: ignore[method-assign]
        feed.next_cycle(wait_ticks=False)
        _, doc = _health(settings)
        # Only the source fault is judged: a loaded machine may also open a slow_cycle warning.
        assert (doc["cycles"], doc["gaps"]) == (2, 1)
        assert [f for f in doc["open"] if f["kind"] == "source_down"] == [], doc["open"]
    finally:
        feed.close()
