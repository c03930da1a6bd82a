"""The dashboard's partial updates (SpanCompositor) leave the terminal showing what a full render
shows, cell for cell (character and style), through cycles, key presses and scrolls; and the
keyed tables' own finishing of content lines gives Textual's lines."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from dashboard_pilot import Host, fixed_clock
from rich.style import Style
from sample_data import SAMPLE_TIME, sample_snapshot
from textual._compositor import LayoutUpdate
from textual.geometry import Region
from textual.strip import Strip
from textual.widget import Widget

from optui.config import Settings
from optui.screens.dashboard import DashboardScreen
from optui.widgets.chain_table import ChainTable
from optui.widgets.keyed_table import KeyedTable
from optui.widgets.span_compositor import SpanCompositor, SpanUpdate

Cells = list[list[tuple[str, Style | None]]]


def cells(strip: Strip) -> list[tuple[str, Style | None]]:
    """One (character, style) per cell (the dashboard draws single-width characters only)."""
    return [(char, seg.style) for seg in strip if not seg.control for char in seg.text]


class Terminal:
    """What the terminal shows: full updates replace it, span updates write their pieces."""

    def __init__(self) -> None:
        self.screen: Cells = []
        self.spans_checked = 0

    def write(self, update: Any) -> list[tuple[int, int, int]]:
        """Apply an update; returns the cells it wrote as (y, x1, x2)."""
        written = []
        if isinstance(update, LayoutUpdate):
            self.screen = [[c for strip in line for c in cells(strip)] for line in update.strips]
            written = [(y, 0, len(line)) for y, line in enumerate(self.screen)]
        elif isinstance(update, SpanUpdate):
            for y, pieces in update.lines:
                for x, strip in pieces:
                    line = cells(strip)
                    self.screen[y][x:x + len(line)] = line
                    written.append((y, x, x + len(line)))
                    self.spans_checked += 1
        return written


async def check_frames(screen: DashboardScreen, app: Host, terminal: Terminal,
                       mismatches: list[tuple[int, int, int]]) -> None:
    """From now on every frame's written cells must be what a full render shows there (a
    change still on its way to the compositor shows in a later frame: the whole screen is
    compared once the app is idle, by the caller)."""
    display = app._display
    terminal.screen = [cells(strip) for strip in screen._compositor.render_strips()]

    def checked(screen_: Any, renderable: Any) -> None:
        display(screen_, renderable)
        if renderable is None or app._batch_count:
            return
        full = [cells(strip) for strip in screen._compositor.render_strips()]
        for y, x1, x2 in terminal.write(renderable):
            if terminal.screen[y][x1:x2] != full[y][x1:x2]:
                mismatches.append((y, x1, x2))

    app._display = checked  # type: ignore[method-assign]


async def settled_screen_matches(screen: DashboardScreen, pilot: Any, terminal: Terminal) -> bool:
    for _ in range(3):
        await pilot.pause()
    return terminal.screen == [cells(strip) for strip in screen._compositor.render_strips()]


@pytest.mark.mock
async def test_partial_updates_leave_the_screen_a_full_render_shows() -> None:
    settings = Settings()
    settings.ui.chain_strikes = 30  # a chain taller than its panel: scrolls, a scrollbar cuts it
    screen = DashboardScreen(settings, collect=False, clock=fixed_clock)
    app = Host(screen)
    terminal = Terminal()
    mismatches: list[tuple[int, int, int]] = []
    settled: list[bool] = []
    async with app.run_test(size=(160, 48)) as pilot:
        assert isinstance(screen._compositor, SpanCompositor)
        await pilot.pause()
        await check_frames(screen, app, terminal, mismatches)
        for n in range(3):  # cycles: prices, OI and the header's age change all over the screen
            snap = replace(sample_snapshot(strikes_each_side=30, tick=n),
                           timestamp=SAMPLE_TIME + timedelta(seconds=n))
            screen.show_snapshot(snap)
            settled.append(await settled_screen_matches(screen, pilot, terminal))
        screen.query_one(ChainTable).focus()
        for key in ("i", "down", "down", "t", "b", "pagedown", "up", "I", "a"):
            await pilot.press(key)
            settled.append(await settled_screen_matches(screen, pilot, terminal))
        snap = replace(sample_snapshot(strikes_each_side=30, tick=7),
                       timestamp=SAMPLE_TIME + timedelta(seconds=7))
        screen.show_snapshot(snap)
        settled.append(await settled_screen_matches(screen, pilot, terminal))
    assert terminal.spans_checked > 50
    assert mismatches == []
    assert all(settled), settled


@pytest.mark.mock
async def test_keyed_tables_finish_content_lines_as_textual_does() -> None:
    """Every content line a keyed table finishes itself equals Textual's finished line of it."""
    screen = DashboardScreen(Settings(), collect=False, clock=fixed_clock)
    app = Host(screen)
    async with app.run_test(size=(160, 48)) as pilot:
        screen.show_snapshot(sample_snapshot(strikes_each_side=30))
        await pilot.pause()
        tables = list(screen.query(KeyedTable))
        assert len(tables) == 3
        for table in tables:
            width, height = table.region.size
            table._finished.clear()
            ours = table.render_lines(Region(0, 0, width, height))
            assert table._frame, f"{table.id} finishes its lines through Textual"
            theirs = Widget.render_lines(table, Region(0, 0, width, height))
            assert [list(s) for s in ours] == [list(s) for s in theirs], table.id


async def test_a_textual_whose_compositor_differs_draws_as_textual_does(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """Should a Textual release drop an internal the span drawing reads, the dashboard warns
    once and goes on with Textual's own partial updates: the screen still shows each cycle."""

    def gone(self: SpanCompositor, spans: Any) -> Any:
        raise AttributeError("'SpanCompositor' object has no attribute 'cuts'")

    monkeypatch.setattr(SpanCompositor, "_span_pieces", gone)
    settings = Settings()
    screen = DashboardScreen(settings, collect=False, clock=fixed_clock)
    app = Host(screen)
    async with app.run_test(size=(160, 48)) as pilot:
        compositor = screen._compositor
        assert isinstance(compositor, SpanCompositor)
        screen.show_snapshot(sample_snapshot(strikes_each_side=10, tick=0))
        await pilot.pause()
        first = app.export_screenshot()
        for n in (1, 2):
            snap = replace(sample_snapshot(strikes_each_side=10, tick=n),
                           timestamp=SAMPLE_TIME + timedelta(seconds=n))
            screen.show_snapshot(snap)
            await pilot.pause()
            await pilot.pause()
        assert compositor.textual_drawing
        update = compositor.render_partial_update()
        assert update is None or not isinstance(update, SpanUpdate)
        assert app.export_screenshot() != first  # the later cycles' prices reached the screen
    warned = [r for r in caplog.records if "compositor differs" in r.getMessage()]
    assert len(warned) == 1
