"""What a key press costs the dashboard: rows drawn once and reused when scrolled, a new chain
drawn at its ATM in its first frame, neighbouring chains formatted off the event loop, and the
app's objects kept out of garbage collection while the dashboard runs."""

from __future__ import annotations

import gc

import pytest
from dashboard_pilot import FakeEngine, open_dashboard
from dashboard_wait import views_formatted
from sample_data import sample_snapshot
from textual.app import App

from optui.screens.dashboard_reads import neighbour_selections
from optui.widgets.chain_table import ChainTable, chain_rows
from optui.widgets.keyed_table import KeyedTable

COLUMNS = [("strike", "Strike", "right"), ("ltp", "LTP", "right"), ("oi", "OI", "right"),
           ("bu", "Bu", "left")]


def _rows(n: int, tick: int = 0) -> dict[str, dict]:
    return {str(100 + k): {"strike": (str(100 + k), "bold reverse" if k == 20 else "bold"),
                           "ltp": (f"{k * 1.25 + tick:.2f}", "bold"),
                           "oi": (f"{k * 7 % 11 - 5:+d}", "green" if k % 2 else "red"),
                           "bu": ("LB" if k % 3 else "SU", "")}
            for k in range(n)}


class TableApp(App[None]):
    CSS = "KeyedTable { height: 12; border: round $primary; } KeyedTable:focus { border: round $accent; }"

    def compose(self):
        yield KeyedTable(COLUMNS)


async def _fresh_screenshot(history: list[dict], scroll_y: int, focused: bool) -> str:
    """The same rows (the same history of row sets, so columns are as wide) and scroll offset in
    a table drawn once."""
    app = TableApp()
    async with app.run_test(size=(50, 16)) as pilot:
        table = app.query_one(KeyedTable)
        for rows in history:
            table.sync_rows(rows)
        if focused:
            table.focus()
        else:
            app.set_focus(None)
        await pilot.pause()
        table.scroll_to(y=scroll_y, animate=False)
        await pilot.pause()
        return app.export_screenshot()


@pytest.mark.unit
async def test_scrolled_rows_come_back_drawn_as_a_fresh_table_draws_them() -> None:
    """Rows scrolled away and back, rows changed off screen, a focus change (the border's
    colour): every frame equals the same state drawn from scratch, and scrolling by a row draws
    only the row scrolled into view from its cells."""
    app = TableApp()
    history = [_rows(40)]
    async with app.run_test(size=(50, 16)) as pilot:
        table = app.query_one(KeyedTable)
        table.sync_rows(history[0])
        app.set_focus(None)
        await pilot.pause()
        built: list[str] = []
        line = table._line
        table._line = lambda cells, *a: built.append(cells["strike"][0]) or line(cells, *a)  # type: ignore[method-assign]
        table.scroll_to(y=5, animate=False)
        await pilot.pause()
        built.clear()
        table.scroll_to(y=6, animate=False)
        await pilot.pause()
        assert built == ["114"]  # the one row scrolled into view (10 lines: header, rows 6..14)
        assert app.export_screenshot() == await _fresh_screenshot(history, 6, focused=False)
        # Changes on and off screen, then back to the top: the changed rows are drawn anew.
        history.append(_rows(40, tick=1))
        table.sync_rows(history[-1])
        await pilot.pause()
        table.scroll_to(y=0, animate=False)
        await pilot.pause()
        assert app.export_screenshot() == await _fresh_screenshot(history, 0, focused=False)
        table.focus()
        await pilot.pause()
        table.scroll_to(y=20, animate=False)
        await pilot.pause()
        assert app.export_screenshot() == await _fresh_screenshot(history, 20, focused=True)


@pytest.mark.unit
async def test_scrollbar_lines_kept_by_look_are_the_lines_textual_draws() -> None:
    """At every scroll offset (every thumb position and eighth-cell end) the table's scrollbar
    shows the lines Textual's own scrollbar draws for that position."""
    from textual.scrollbar import ScrollBar

    from optui.widgets.finished_lines import LineScrollBar

    app = TableApp()
    async with app.run_test(size=(50, 16)) as pilot:
        table = app.query_one(KeyedTable)
        table.sync_rows(_rows(40))
        await pilot.pause()
        bar = table.vertical_scrollbar
        assert isinstance(bar, LineScrollBar)
        whole = bar.size.region
        for y in [*range(int(table.max_scroll_y) + 1), 3, 0]:
            table.scroll_to(y=y, animate=False)
            await pilot.pause()
            kept = bar.render_lines(whole)
            assert kept == ScrollBar.render_lines(bar, whole), y
        assert len(bar._looks) <= 3 + 2 * 8  # track above, thumb, track below, eighth-cell ends


@pytest.mark.mock
@pytest.mark.parametrize("size", [(160, 48), (80, 24)])
async def test_index_key_opens_the_next_chain_at_its_atm_before_its_first_frame(
        size: tuple[int, int]) -> None:
    """The next index's chain is scrolled to its ATM by the key's own handler: its first frame
    shows it where it stays, not at the previous chain's offset and a frame later at the ATM."""
    async with open_dashboard(collect=False, size=size, rounds=0) as dash:
        screen = dash.screen
        snap = sample_snapshot(strikes_each_side=15)
        screen.show_snapshot(snap)
        await dash.pilot.pause()
        await dash.pilot.pause()
        chain = screen.query_one(ChainTable)
        chain.scroll_to(y=0, animate=False)
        await dash.pilot.pause()
        screen.action_cycle_index(1)  # no frame in between
        atm = snap.indices[screen.index].overview.buckets[screen.bucket].atm_strike
        position = chain.row_keys.index(f"{atm:g}")
        visible = chain.scrollable_content_region.height - 1
        assert int(chain.scroll_y) == max(0, min(position - (visible - 1) // 2, chain.max_scroll_y))
        assert int(chain.scroll_y) <= position < int(chain.scroll_y) + visible


@pytest.mark.unit
def test_neighbour_selections_are_one_key_away() -> None:
    snap = sample_snapshot()
    order = ["NIFTY", "BANKNIFTY", "FINNIFTY", "MIDCPNIFTY", "SENSEX"]
    # i and I (BANKNIFTY has no weekly: its first bucket), then b and B.
    assert neighbour_selections(snap, order, "NIFTY", "this_week") == [
        ("BANKNIFTY", "this_month"), ("SENSEX", "this_week"),
        ("NIFTY", "next_week"), ("NIFTY", "next_month")]
    assert neighbour_selections(snap, order, "BANKNIFTY", "this_month") == [
        ("FINNIFTY", "this_month"), ("NIFTY", "this_month"), ("BANKNIFTY", "next_month")]


@pytest.mark.mock
async def test_chains_one_key_away_are_formatted_off_the_event_loop() -> None:
    """After a cycle a thread worker has formatted the chains of the next and previous index
    and expiry: the index key formats nothing on the event loop and shows the same rows the
    chain's formatter makes."""
    async with open_dashboard(engine=FakeEngine()) as dash:
        screen = dash.screen
        await views_formatted(dash.app, dash.pilot)
        snap = screen._snapshot
        assert snap is not None
        for selection in neighbour_selections(snap, screen._index_keys(), screen.index,
                                              screen.bucket):
            assert selection in screen._chain_rows
        screen._format_window = None  # type: ignore[assignment]  # calling it would fail
        await dash.pilot.press("i")
        await dash.pilot.pause()
        chain = screen.query_one(ChainTable)
        idx = snap.indices[screen.index]
        expected = chain_rows(idx.legs, screen.index, screen.bucket)
        assert chain.rows == {k: expected[k] for k in chain.row_keys}
        assert chain.selection == (screen.index, screen.bucket)


@pytest.mark.mock
async def test_app_objects_are_frozen_out_of_collections_while_the_dashboard_runs() -> None:
    async with open_dashboard(engine=FakeEngine()) as dash:
        assert dash.screen._snapshot is not None
        assert gc.get_freeze_count() > 0
    assert gc.get_freeze_count() == 0  # handed back when the screen left


@pytest.mark.unit
async def test_a_row_cut_to_the_view_shows_what_cropping_the_whole_row_shows() -> None:
    """Rows are cut to the visible columns in their text: cell for cell (character and style)
    what Strip.crop_extend makes of the whole line, at every horizontal scroll and width."""
    from rich.style import Style

    def cells_of(strip) -> list[tuple[str, Style | None]]:
        return [(ch, seg.style) for seg in strip for ch in seg.text]

    app = TableApp()
    async with app.run_test(size=(50, 16)):
        table = app.query_one(KeyedTable)
        rows = _rows(25)
        table.sync_rows(rows)
        base, pad = Style(color="white"), Style(bgcolor="black")
        for cells in (rows["100"], rows["120"], {}):
            whole = table._line(cells, base, {})
            for start, end in ((0, 10), (0, whole.cell_length), (3, 17), (5, 60), (40, 70), (0, 0)):
                cut = table._line(cells, base, {}, (start, end), pad)
                assert cut.cell_length == end - start
                assert cells_of(cut) == cells_of(whole.crop_extend(start, end, pad)), (start, end)
