"""The cached tier on screen: while the source fails the last good snapshot stays, and every panel
title and the status line say how old it is ("cached 2m 10s"), until a live cycle clears it;
a collector elsewhere publishes its gaps with the cached tier's age and an attached dashboard
shows the same."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from dashboard_pilot import FakeEngine, Host
from dashboard_wait import settle
from sample_data import SAMPLE_TIME
from textual.message import Message
from textual.widgets import TabbedContent

from optui.collectors.supervisor import Outcome
from optui.config import Settings
from optui.errors import NetworkError
from optui.feed.attached import FileFeed
from optui.feed.local import LocalFeed
from optui.screens.dashboard import DashboardScreen
from optui.screens.dashboard_view import PANEL_TITLES, TABS
from optui.ui_messages import CycleAwaited
from optui.widgets.status_header import StatusHeader


class Clock:
    def __init__(self) -> None:
        self.now = SAMPLE_TIME + timedelta(seconds=5)

    def __call__(self) -> datetime:
        return self.now


def _titles(screen: DashboardScreen) -> dict[str, str]:
    if screen.query(TabbedContent):
        tabs = screen.query_one(TabbedContent)
        return {tab: str(tabs.get_tab(tab).label) for tab, _ in TABS}
    return {selector: str(screen.query_one(selector).border_title or "") for selector in PANEL_TITLES}


def _status(screen: DashboardScreen) -> str:
    return str(screen.query_one(StatusHeader).query_one("#selection").render())


@pytest.mark.mock
@pytest.mark.parametrize("size", [(160, 48), (80, 24)])
async def test_every_panel_title_and_the_status_line_carry_the_cached_age(size: tuple[int, int]) -> None:
    engine = FakeEngine()
    clock = Clock()
    screen = DashboardScreen(Settings(), engine=engine, clock=clock)
    app = Host(screen)
    async with app.run_test(size=size) as pilot:
        await settle(app, pilot)
        assert screen._snapshot is not None
        assert not any("cached" in t for t in _titles(screen).values())
        good = screen._snapshot
        engine.raises = NetworkError("quote: cannot reach Kite (ConnectTimeout)")
        await pilot.press("r")
        await settle(app, pilot)
        clock.now += timedelta(seconds=130)
        screen._refresh_header()  # the header's one-second tick
        await pilot.pause()
        assert screen._snapshot is good  # the last good snapshot stays on the panels
        titles = _titles(screen)
        assert len(titles) >= 6
        for where, title in titles.items():
            assert "cached 2m 10s" in title, (where, title)
        assert "cached 2m 10s" in _status(screen)
        engine.raises = None  # live again: every mention goes
        await pilot.press("r")
        await settle(app, pilot)
        assert screen._snapshot is not good
        assert not any("cached" in t for t in _titles(screen).values())
        assert "cached" not in _status(screen)
        await pilot.press("escape")


@pytest.mark.unit
def test_the_collectors_status_line_names_the_cached_age() -> None:
    from sample_data import sample_snapshot

    out = Outcome(gap="quote: cannot reach Kite", cached=sample_snapshot(), cached_age_s=130.0)
    line = out.gap_line(SAMPLE_TIME + timedelta(seconds=130))
    assert "gap: quote: cannot reach Kite" in line and "cached tier, cached 2m 10s" in line


@pytest.mark.mock
async def test_an_attached_dashboard_shows_the_collectors_cached_tier(tmp_path: Path) -> None:
    latest = tmp_path / "collector.latest.json"
    collector = LocalFeed(FakeEngine(), interval_s=30.0, latest_file=latest)
    collector.start()
    good = collector.next_cycle()
    for _ in range(500):
        if latest.exists():
            break
        time.sleep(0.01)
    follower = FileFeed(latest, poll_s=0.02)
    clock = Clock()
    screen = DashboardScreen(Settings(), feed=follower, clock=clock)
    messages: list[Message] = []
    app = Host(screen)
    try:
        async with app.run_test(size=(160, 48), message_hook=messages.append) as pilot:
            for _ in range(300):
                if screen._snapshot is not None:
                    break
                await pilot.pause(0.02)
            assert screen._snapshot is not None
            assert screen._snapshot.timestamp == good.snapshot.timestamp
            assert "cached" not in _status(screen)
            collector.publish_gap("quote: cannot reach Kite (ConnectTimeout)", 130.0)
            for _ in range(300):
                if screen._cached:
                    break
                await pilot.pause(0.02)
            screen._refresh_header()
            await pilot.pause()
            assert "cached 2m 10s" in _status(screen)
            assert all("cached 2m 10s" in t for t in _titles(screen).values()), _titles(screen)
            gaps = [m for m in messages if isinstance(m, CycleAwaited)]
            assert gaps and gaps[-1].cached_age_s == 130.0
            assert screen._snapshot.timestamp == good.snapshot.timestamp  # the same data, aged
            await pilot.press("escape")
    finally:
        collector.close()
