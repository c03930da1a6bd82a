"""The dashboard's replay draws the previous close's IV smile as the live dashboard did: the
chain stored at the previous session's close (and the overview with the forward of that
moment) is copied from the live store into the replay's own, and nothing else of that day."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from optui.collectors.engine import build_engine
from optui.config import Settings
from optui.feed.replay import ReplayFeed
from optui.storage.base import open_store
from optui.storage.records import LEGS, OVERVIEW
from optui.timeutil import IST
from optui.widgets.charts.data import load_chart_data

DAY = date(2026, 11, 25)  # a Wednesday; its previous session is Monday 23 Nov (24th: a holiday)


def _settings(root: Path) -> Settings:
    s = Settings()
    s.general.data_dir = str(root / "data")
    s.general.log_dir = str(root / "logs")
    s.store.url = f"sqlite:///{root / 'live.db'}"
    s.export.write_json = s.export.write_csv = False
    s.simulator.start = "2026-11-23 14:00"
    s.simulator.speed = 0.01  # the clock stands still between the moments set
    s.source.stream = False
    s.source.indices = ["NIFTY"]
    s.source.interval_s = 30.0
    s.source.chain_strikes = 6
    s.participants.enabled = False
    return s


@pytest.mark.integration
def test_a_dashboard_replay_overlays_the_previous_close_smile_the_live_one_did(
        tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    engine = build_engine(settings)
    try:
        exchange = engine.source.exchange
        # Monday: an afternoon cycle, then the last two before the close (the last one is the
        # day's close); Wednesday morning, recorded.
        for at in ("2026-11-23T14:00:00", "2026-11-23T15:29:00", "2026-11-23T15:29:30",
                   "2026-11-25T09:15:00", "2026-11-25T09:15:30", "2026-11-25T09:16:00"):
            exchange.set_time(datetime.fromisoformat(f"{at}+05:30"))
            engine.collect_once()
    finally:
        engine.close()
    close = datetime(2026, 11, 23, 15, 29, 30, tzinfo=IST)

    feed = ReplayFeed(settings, DAY, speed=1000.0)
    feed.start()
    try:
        cycle = feed.next_cycle()
        assert cycle is not None and cycle.snapshot is not None
        snap = cycle.snapshot
        buckets = list(snap.indices["NIFTY"].overview.buckets)
        replayed = {b: load_chart_data(feed.store, snap, "NIFTY", b) for b in buckets}
        before = (datetime.combine(DAY - timedelta(days=7), datetime.min.time(), IST),
                  datetime.combine(DAY, datetime.min.time(), IST))
        copied_legs = feed.store.query(LEGS, *before)
        copied_overview = feed.store.query(OVERVIEW, *before)
    finally:
        feed.close()
    with open_store(settings.store.url, settings) as live:
        shown = {b: load_chart_data(live, snap, "NIFTY", b) for b in buckets}
        close_legs = live.query(LEGS, close, close + timedelta(microseconds=1))
    for bucket in buckets:  # an expiry not quoted on Monday has no smile live either
        want, got = shown[bucket], replayed[bucket]
        assert (got.prev_smile_day, got.prev_smile) == (want.prev_smile_day, want.prev_smile), \
            bucket
    drawn = [b for b in buckets if len(shown[b].prev_smile.strikes) >= 5]
    assert "this_week" in drawn and shown["this_week"].prev_smile_day == close.date()
    # Only the close's chain and its overview: not Monday's earlier cycles.
    assert {r.time for r in copied_legs} == {close}
    assert len(copied_legs) == len(close_legs)
    assert {r.time for r in copied_overview} == {close}
