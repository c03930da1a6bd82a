"""The dashboard header keeps the selection (index, expiry, timeframe) on screen at 80 columns
whatever flags stand before it: the flags shorten first (cached, paused, attached, replay)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sample_data import sample_snapshot
from textual.widgets import Label

from optui.config import Settings
from optui.screens.dashboard import DashboardScreen
from optui.screens.dashboard_replay import replay_flag
from optui.widgets.status_header import StatusHeader, fit_selection
from tests.dashboard_pilot import Host, sim_settings

SELECTION = "NIFTY 01 Dec 5m"


@pytest.mark.unit
def test_flags_shorten_before_the_selection_is_lost() -> None:
    paused = replay_flag(1.0, None, paused=True, ended=False)
    assert paused == ("replay 1x PAUSED (space resumes)", "REPLAY 1x ⏸")
    # The tester's header at 80 columns: 29 columns for the selection text.
    assert fit_selection([paused], SELECTION, 29) == f"REPLAY 1x ⏸ · {SELECTION}"
    assert fit_selection([paused], SELECTION, 60) == f"replay 1x PAUSED (space resumes) · {SELECTION}"
    cached = [("cached 2m 10s", "CACHED")]
    assert fit_selection(cached, SELECTION, 29) == f"cached 2m 10s {SELECTION}"  # the age kept
    assert fit_selection(cached, SELECTION, 28) == f"CACHED · {SELECTION}"
    both = [("cached 2m 10s", "CACHED"), ("attached to box-1", "ATTACHED")]
    assert fit_selection(both, SELECTION, 31) == f"CACHED ATTACHED {SELECTION}"
    assert fit_selection(both, SELECTION, 25) == f"CACHED A… {SELECTION}"
    assert fit_selection(both, SELECTION, 16) == SELECTION


class FakeReplay:
    """The replay feed's header part only (a real replay is shown in test_dashboard_replay)."""

    replay = True
    paused = True
    ended = False
    speed = 1.0

    def actual_speed(self) -> float | None:
        return None

    def is_holiday(self, at: object) -> bool:
        return False

    def exchange_now(self) -> None:
        return None


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return sim_settings(tmp_path, interval_s=30.0)


FLAGS = {
    "cached": lambda d: setattr(d, "_cached", True),
    "paused": lambda d: setattr(d, "_paused", True),
    "attached": lambda d: setattr(d, "_attached_to", "collector-host-01.example"),
    "replay paused": lambda d: setattr(d, "_given_feed", FakeReplay()),
    "all": lambda d: [f(d) for k, f in FLAGS.items() if k != "all"],
}


@pytest.mark.parametrize("flag", list(FLAGS))
async def test_the_selection_stays_on_screen_at_80_columns(settings: Settings, flag: str) -> None:
    screen = DashboardScreen(settings, collect=False)
    app = Host(screen)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        snap = sample_snapshot()
        screen.show_snapshot(snap)
        await pilot.pause()
        FLAGS[flag](screen)
        screen._refresh_header()
        await pilot.pause()
        label = screen.query_one(StatusHeader).query_one("#selection", Label)
        text = str(label.render())
        expiry = screen._expiry_label().strip()
        assert expiry and f"{screen.index} {expiry} {screen.timeframe}" in text, text
        assert len(text) <= label.content_region.width, (text, label.content_region.width)
        word = {"cached": "CACHED", "paused": "PAUSED", "attached": "ATTACHED",
                "replay paused": "REPLAY 1x ⏸", "all": "CACHED"}[flag]
        assert text.lower().startswith(word.lower()), text
