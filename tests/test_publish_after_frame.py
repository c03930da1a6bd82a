"""A local feed's publication for attached consumers (the latest-cycle file, what `optui` with
the in-process cache writes) waits until the dashboard wrote the cycle's frame, and attached
readers still receive every cycle's payload, byte for byte as published at once."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from dashboard_pilot import open_dashboard
from test_store_after_show import STEP_S, FakeClock, _engine

from optui.feed import local
from optui.feed.attached import FileFeed
from optui.feed.local import LocalFeed, cycle_payload
from optui.screens import feed_loop
from optui.storage.cache import dumps


def _wait_for(check: Any, what: str, limit_s: float = 30.0) -> None:
    """Poll `check()` until true (a bound only so a broken publisher fails instead of hanging)."""
    deadline = time.monotonic() + limit_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.01)


def test_the_latest_file_gets_every_cycle_as_published_at_once(tmp_path: Path) -> None:
    clock = FakeClock()
    engine = _engine(tmp_path, clock)
    latest = tmp_path / "collector.latest.json"
    feed = LocalFeed(engine, interval_s=STEP_S, latest_file=latest)
    reader = FileFeed(latest, poll_s=0.01)
    assert feed.show_before_store()
    try:
        for n in range(3):
            clock.t = 1000.0 + STEP_S * n
            cycle = feed.next_cycle(wait_ticks=False)
            expected = dumps(cycle_payload(cycle))  # what publishing at once wrote
            # Held while the screen would apply it and write its frame: not yet in the file.
            assert cycle.snapshot is not None
            if latest.exists():
                assert json.loads(latest.read_text())["snapshot"]["timestamp"] != \
                    cycle.snapshot.timestamp.isoformat()
            feed.store_cycle()  # after the frame: published, then stored
            _wait_for(lambda text=expected: latest.exists() and latest.read_text() == text,
                      f"cycle {n} in the latest file")
            got = reader.next_cycle(timeout_s=5.0)
            assert got is not None and got.snapshot is not None
            assert got.snapshot.timestamp == cycle.snapshot.timestamp
            assert not engine.store_is_pending
    finally:
        feed.close()


def test_closing_publishes_a_held_cycle(tmp_path: Path) -> None:
    clock = FakeClock()
    latest = tmp_path / "collector.latest.json"
    feed = LocalFeed(_engine(tmp_path, clock), interval_s=STEP_S, latest_file=latest)
    assert feed.show_before_store()
    cycle = feed.next_cycle(wait_ticks=False)
    expected = dumps(cycle_payload(cycle))
    feed.close()
    assert latest.read_text() == expected


@pytest.mark.asyncio
async def test_the_dashboard_publishes_a_cycle_after_its_frame(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # No timeout stands in for the frame here: the order alone decides.
    monkeypatch.setattr(feed_loop, "FRAME_WAIT_S", 60.0)
    events: list[tuple[str, datetime | None]] = []
    lock = threading.Lock()
    send = local._Publisher._send

    def recorded_send(self: Any, cycle: Any, at: Any = None) -> None:
        with lock:
            events.append(("publish", cycle.snapshot.timestamp if cycle.snapshot else None))
        send(self, cycle, at)

    monkeypatch.setattr(local._Publisher, "_send", recorded_send)
    clock = FakeClock()
    latest = tmp_path / "collector.latest.json"
    feed = LocalFeed(_engine(tmp_path, clock), interval_s=3600.0, latest_file=latest)
    try:
        async with open_dashboard(feed=feed, rounds=0) as dash:
            app, screen = dash.app, dash.screen
            show, display = screen.show_snapshot, app._display
            applied: list[datetime] = []

            def shown(snapshot: Any, *args: Any, **kwargs: Any) -> None:
                show(snapshot, *args, **kwargs)
                applied.append(snapshot.timestamp)

            def displayed(screen_: Any, renderable: Any) -> None:
                display(screen_, renderable)
                if renderable is not None and applied:
                    with lock:
                        events.extend(("frame", t) for t in applied)
                    applied.clear()

            screen.show_snapshot = shown  # type: ignore[method-assign]
            app._display = displayed  # type: ignore[method-assign]
            for n in range(1, 4):
                await dash.settle()
                clock.t = 1000.0 + STEP_S * n
                screen.collect_now()
                await asyncio.sleep(0)
            await dash.settle()
            _wait_for(lambda: ("publish", max(t for _, t in events if t is not None)) in events,
                      "the last cycle published")
    finally:
        feed.close()
    framed = [t for kind, t in events if kind == "frame"]
    published = [t for kind, t in events if kind == "publish"]
    assert len(published) >= 3 and published == sorted(set(published))  # every cycle, in order
    assert set(published) <= set(framed)
    for t in published:
        assert events.index(("frame", t)) < events.index(("publish", t))
    assert json.loads(latest.read_text())["snapshot"]["timestamp"] == published[-1].isoformat()


def test_a_cycle_is_encoded_once_for_the_channel_the_key_and_the_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from optui.storage import cache as cache_module
    from optui.storage.cache import SNAPSHOT_CHANNEL, MemoryCache

    encoded: list[int] = []
    real = cache_module.json.dumps

    class CountingJson:
        loads = staticmethod(json.loads)

        @staticmethod
        def dumps(value: Any, **kwargs: Any) -> str:
            text = real(value, **kwargs)
            encoded.append(len(text))
            return text

    cache = MemoryCache()
    channel = cache.subscribe(SNAPSHOT_CHANNEL)
    clock = FakeClock()
    feed = LocalFeed(_engine(tmp_path, clock), interval_s=STEP_S)  # collects, publishes nothing
    latest = tmp_path / "collector.latest.json"
    publisher = local._Publisher(cache, latest)
    try:
        for n in range(2):
            clock.t = 1000.0 + STEP_S * n
            cycle = feed.publish(feed.next_cycle(wait_ticks=False, publish=False))
            expected = dumps(cycle_payload(cycle))
            monkeypatch.setattr(cache_module, "json", CountingJson)
            encoded.clear()
            publisher._send(cycle)  # as its thread does
            monkeypatch.undo()
            assert encoded == [len(expected)]
            assert latest.read_text() == expected
            assert cache._data[local.CYCLE_KEY] == expected
            assert channel.get(timeout=5.0) == json.loads(expected)
    finally:
        channel.close()
        publisher.close()
        feed.close()
