"""The chain's Flag column: every mark (a flag's short form, '+N' for more) fits the column,
so no chain row runs past its panel's edge; the help screen's legend gives each mark's meaning."""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

import pytest
from sample_data import sample_snapshot

from optui.analytics.quality import FLAG_BITS
from optui.config import Settings
from optui.screens.dashboard import DashboardScreen
from optui.screens.help import flag_legend
from optui.widgets.chain_table import FLAG_WIDTH, ChainTable
from optui.widgets.format import FLAG_MARKS, QUALITY_MARK_WIDTH, quality_mark
from tests.dashboard_pilot import Host, sim_settings


@pytest.mark.unit
def test_every_flag_mark_fits_the_flag_column() -> None:
    assert set(FLAG_MARKS) == set(FLAG_BITS)  # every flag has a mark and a meaning
    assert quality_mark("below_intrinsic") == "<intrin"  # was "below_intrinsic", past the edge
    assert quality_mark("below_intrinsic,wide_spread,no_iv") == "<intrin+2"
    assert quality_mark("") == ""
    names = list(FLAG_BITS)
    for n in range(1, len(names) + 1):
        for combo in combinations(names, n):
            assert len(quality_mark(",".join(combo))) <= QUALITY_MARK_WIDTH == FLAG_WIDTH, combo
    assert len(quality_mark("some_future_flag,stale")) <= QUALITY_MARK_WIDTH
    legend = {row[0]: row[3] for row in flag_legend()}
    for mark, meaning in FLAG_MARKS.values():
        assert legend[mark] == meaning


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return sim_settings(tmp_path, interval_s=30.0)


@pytest.mark.parametrize("size", [(160, 48), (120, 40)], ids=lambda s: f"{s[0]}x{s[1]}")
async def test_no_chain_row_is_wider_than_its_panel(settings: Settings, size: tuple[int, int]) -> None:
    snap = sample_snapshot()
    worst = ["below_intrinsic", "below_intrinsic,wide_spread,no_iv", "crossed,stale", "no_price"]
    for idx in snap.indices.values():
        for n, leg in enumerate(idx.legs):  # puts and calls alike: the puts' Flag is outermost
            leg.flags = worst[n % len(worst)]
    screen = DashboardScreen(settings, collect=False)
    async with Host(screen).run_test(size=size) as pilot:
        await pilot.pause()
        screen.show_snapshot(snap)
        await pilot.pause()
        await pilot.pause()
        tables = list(screen.query(ChainTable))
        assert tables
        for table in tables:
            assert table.row_count > 0
            flags = [c for c in table.column_keys if c.endswith("_q")]
            marks = {table.get_cell(r, c)[0] for r in table.row_keys for c in flags}
            assert not flags or "<intrin+2" in marks, marks
            room = table.size.width - table.scrollbar_size_vertical
            assert 0 < table.virtual_size.width <= room, (table.virtual_size.width, room)
