"""A cycle's or a key's frame is written by its handler (optui.widgets.frame_now): before the work
meant to follow the frame, as a full render shows it, and left to Textual when a layout is due
or Textual's internals differ."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from dashboard_pilot import Host, fixed_clock
from sample_data import SAMPLE_TIME, sample_snapshot
from test_span_compositor import Terminal, check_frames, settled_screen_matches

from optui.config import Settings
from optui.feed.model import FeedCycle
from optui.screens.dashboard import DashboardScreen
from optui.ui_messages import SnapshotCollected
from optui.widgets import frame_now
from optui.widgets.chain_table import ChainTable
from optui.widgets.frame_now import draw_now
from optui.widgets.status_header import StatusHeader


def _snap(n: int) -> Any:
    return replace(sample_snapshot(strikes_each_side=30, tick=n),
                   timestamp=SAMPLE_TIME + timedelta(seconds=n))


def _record(app: Host, screen: DashboardScreen, events: list[str]) -> None:
    """Frames written and the screen's after-frame work, in the order they happen."""
    display, after = app._display, screen._after_frame

    def displayed(screen_: Any, renderable: Any) -> None:
        display(screen_, renderable)
        if renderable is not None and not app._batch_count:
            events.append("frame")

    def after_frame(*args: Any, **kwargs: Any) -> None:
        events.append("after frame")
        after(*args, **kwargs)

    app._display = displayed  # type: ignore[method-assign]
    screen._after_frame = after_frame  # type: ignore[method-assign]


@pytest.mark.mock
async def test_a_cycles_and_a_keys_frame_come_before_the_work_that_follows_them() -> None:
    """The chains a key away are formatted, and the flow queried, after the frame is written:
    on Textual's relay they started on the screen's first idle, before the frame, and took the
    GIL from it."""
    settings = Settings()
    settings.ui.chain_strikes = 30
    screen = DashboardScreen(settings, collect=False, clock=fixed_clock)
    app = Host(screen)
    events: list[str] = []
    async with app.run_test(size=(160, 48)) as pilot:
        screen.show_snapshot(_snap(0))
        for _ in range(3):
            await pilot.pause()
        _record(app, screen, events)
        for n in (1, 2):
            events.append("cycle")
            screen.post_message(SnapshotCollected(_snap(n), {}, FeedCycle(_snap(n))))
            await pilot.pause()
            await pilot.pause()
        screen.query_one(ChainTable).focus()
        await pilot.pause()
        for key in ("i", "b"):
            events.append(key)
            await pilot.press(key)
            await pilot.pause()
    for start in ("cycle", "i", "b"):
        at = events.index(start)
        following = events[at + 1:]
        assert "after frame" in following, events
        assert following.index("frame") < following.index("after frame"), (start, events)


@pytest.mark.mock
async def test_a_scroll_keys_frame_is_written_by_its_action_with_animations_off() -> None:
    """With the app's animations off (the product's default) a scroll is set at once, not on
    the animator's next tick, and the action writes its frame."""
    settings = Settings()
    settings.ui.chain_strikes = 30
    screen = DashboardScreen(settings, collect=False, clock=fixed_clock)
    app = Host(screen)
    app.animation_level = "none"
    events: list[str] = []
    async with app.run_test(size=(160, 48)) as pilot:
        screen.show_snapshot(_snap(0))
        for _ in range(3):
            await pilot.pause()
        chain = screen.query_one(ChainTable)
        chain.focus()
        await pilot.pause()
        _record(app, screen, events)
        for name in ("action_scroll_down", "action_scroll_up", "action_page_down"):
            action = getattr(chain, name)

            def acted(action: Any = action, name: str = name) -> None:
                events.append(f"{name} {chain.scroll_y}")
                action()
                events.append(f"{name} done {chain.scroll_y}")

            setattr(chain, name, acted)
        for key in ("down", "up", "pagedown"):
            await pilot.press(key)
            await pilot.pause()
    starts = [n for n, e in enumerate(events) if e.startswith("action_") and " done " not in e]
    assert len(starts) == 3, events
    for at in starts:
        begun, done = events[at].rsplit(" ", 1)[1], events[at + 2].rsplit(" ", 1)[1]
        assert events[at + 1] == "frame", events  # written inside the action
        assert begun != done, events  # the scroll was set by the action itself


@pytest.mark.mock
async def test_frames_written_by_handlers_leave_the_screen_a_full_render_shows() -> None:
    """Cycles as the feed loop posts them and scroll keys: every cell written is what a full
    render shows, and the settled screen is the full render."""
    settings = Settings()
    settings.ui.chain_strikes = 30
    screen = DashboardScreen(settings, collect=False, clock=fixed_clock)
    app = Host(screen)
    app.animation_level = "none"  # as the product runs: scrolls set at once
    terminal = Terminal()
    mismatches: list[tuple[int, int, int]] = []
    settled: list[bool] = []
    async with app.run_test(size=(160, 48)) as pilot:
        screen.show_snapshot(_snap(0))
        await pilot.pause()
        await check_frames(screen, app, terminal, mismatches)
        screen.query_one(ChainTable).focus()
        for n in range(1, 4):
            screen.post_message(SnapshotCollected(_snap(n), {}, FeedCycle(_snap(n))))
            settled.append(await settled_screen_matches(screen, pilot, terminal))
            for key in ("down", "pagedown", "end", "home", "i"):
                await pilot.press(key)
                settled.append(await settled_screen_matches(screen, pilot, terminal))
    assert terminal.spans_checked > 50
    assert mismatches == []
    assert all(settled), settled


@pytest.mark.mock
async def test_a_layout_due_is_left_to_textual() -> None:
    screen = DashboardScreen(Settings(), collect=False, clock=fixed_clock)
    app = Host(screen)
    async with app.run_test(size=(160, 48)) as pilot:
        screen.show_snapshot(_snap(0))
        await pilot.pause()
        header = screen.query_one(StatusHeader)
        header.refresh(layout=True)
        screen.query_one(ChainTable).refresh()
        assert draw_now(screen) is False
        assert header._layout_required  # untouched: Textual's relay lays it out
        await pilot.pause()
        await pilot.pause()
        assert not header._layout_required
        assert draw_now(screen) is False  # nothing left to draw


@pytest.mark.mock
async def test_a_textual_whose_screen_differs_draws_on_its_own_schedule(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """Should a Textual release drop an internal draw_now reads, it warns once and Textual's
    relay draws every frame: the screen still shows each cycle."""
    monkeypatch.setattr(frame_now, "_drawing", True)
    screen = DashboardScreen(Settings(), collect=False, clock=fixed_clock)
    app = Host(screen)
    async with app.run_test(size=(160, 48)) as pilot:
        screen.show_snapshot(_snap(0))
        await pilot.pause()
        first = app.export_screenshot()

        def gone(self: Any) -> None:
            raise AttributeError("'DashboardScreen' object has no attribute '_on_timer_update'")

        with monkeypatch.context() as patched:
            patched.setattr(type(screen), "_on_timer_update", gone, raising=False)
            screen.query_one(ChainTable).refresh()
            assert draw_now(screen) is False
        assert draw_now(screen) is False  # once found to differ, never again
        screen.post_message(SnapshotCollected(_snap(1), {}, FeedCycle(_snap(1))))
        await pilot.pause()
        await pilot.pause()
        assert app.export_screenshot() != first
    warned = [r for r in caplog.records if "drawn on Textual's schedule" in r.getMessage()]
    assert len(warned) == 1
