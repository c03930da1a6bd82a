"""A dashboard in a Textual pilot: a bare host app, a scripted engine and store, settings for the
simulator, and the check that the overview, chain and positions tables show a snapshot.

`open_dashboard` is the set-up every dashboard test shares: it builds the screen, runs the host
app at a terminal size and waits with `dashboard_wait.settle` until the first cycle is on screen.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from dashboard_wait import settle
from sample_data import SAMPLE_TIME, sample_snapshot
from textual.app import App
from textual.message import Message
from textual.pilot import Pilot

from optui.config import Settings
from optui.errors import StoreError
from optui.models import Snapshot
from optui.screens.dashboard import DashboardScreen
from optui.storage.base import Row
from optui.ui_messages import SnapshotCollected
from optui.widgets.chain_table import ChainTable
from optui.widgets.format import (
    fmt_delta,
    fmt_iv,
    fmt_lakh,
    fmt_pct,
    fmt_price,
    fmt_signed,
    fmt_strike,
)
from optui.widgets.keyed_table import cell_text
from optui.widgets.overview_table import OverviewTable, bucket_stats


def plain(cell: object) -> str:
    """A table cell's text without its style."""
    return cell_text(cell)  # type: ignore[arg-type]


def table_cell(table: Any, row_key: str, col: str) -> str:
    return plain(table.get_cell(row_key, col))


def fixed_clock() -> datetime:
    """The screen's local clock: five seconds after the sample snapshot."""
    return SAMPLE_TIME + timedelta(seconds=5)


def sim_settings(tmp_path: Path, interval_s: float = 1.0) -> Settings:
    """Simulated source, SQLite store and every path under `tmp_path`; no JSON or CSV files."""
    s = Settings()
    s.source.kind = "sim"
    s.source.interval_s = interval_s
    s.store.url = f"sqlite:///{tmp_path / 'x.db'}"
    s.export.write_json = False
    s.export.write_csv = False
    s.export.out_dir = str(tmp_path / "out")
    s.general.data_dir = str(tmp_path / "data")
    s.general.log_dir = str(tmp_path / "logs")
    s.source.instruments_cache_dir = str(tmp_path / "instruments")
    return s


class FakeStore:
    """Answers flow queries from a fixed list of bars; can be told to fail."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.calls: list[tuple[str, str, dict[str, str]]] = []

    def aggregate(self, measurement, fields, start, end, every, tags=None, fn="sum") -> list[Row]:
        self.calls.append((measurement, every, dict(tags or {})))
        if self.fail:
            raise StoreError("cannot read data/optui.db: database is locked (close other writers)")
        return [
            Row(SAMPLE_TIME - timedelta(minutes=10), {}, {"inflow_cr": 3.0, "outflow_cr": 1.0}),
            Row(SAMPLE_TIME - timedelta(minutes=5), {}, {"inflow_cr": 5.0, "outflow_cr": 2.5}),
        ]

    def describe(self) -> str:
        return "fake store"

    def close(self) -> None:
        pass


class FakeEngine:
    """collect_once returns the hand-built snapshot, a minute later each call, or raises."""

    source_name = "sim"

    def __init__(self, raises: Exception | None = None, store: FakeStore | None = None) -> None:
        self.raises = raises
        self.store = store or FakeStore()
        self.calls = 0
        self.closed = False
        self.lock = threading.Lock()

    def collect_once(self) -> Snapshot:
        with self.lock:
            self.calls += 1
            n = self.calls
        if self.raises is not None:
            raise self.raises
        return replace(sample_snapshot(), timestamp=SAMPLE_TIME + timedelta(minutes=n - 1))

    def close(self) -> None:
        self.closed = True


class Host(App[None]):
    """A bare app hosting only the dashboard, so tests need nothing from the menus."""

    def __init__(self, screen: DashboardScreen) -> None:
        super().__init__()
        self.dash = screen

    def on_mount(self) -> None:
        self.push_screen(self.dash)


@dataclass
class RunningDashboard:
    """The host app, its dashboard and the pilot driving them; `messages` is every message handled."""

    app: Host
    screen: DashboardScreen
    pilot: Pilot[None]
    messages: list[Message] = field(default_factory=list)

    async def settle(self, rounds: int = 1) -> None:
        """`rounds` times: wait until the feed loop is idle (`settle`), then one more refresh."""
        for _ in range(rounds):
            await settle(self.app, self.pilot)
            await self.pilot.pause()

    def collected(self) -> list[Snapshot]:
        """The snapshots the screen was sent, oldest first."""
        return [m.snapshot for m in self.messages if isinstance(m, SnapshotCollected)]


@asynccontextmanager
async def open_dashboard(
    settings: Settings | None = None,
    *,
    size: tuple[int, int] = (160, 48),
    rounds: int = 1,
    clock: Callable[[], datetime] | None = fixed_clock,
    host: Callable[[DashboardScreen], Host] = Host,
    **screen_args: Any,
) -> AsyncIterator[RunningDashboard]:
    """A DashboardScreen(settings, clock=clock, **screen_args) running in `host` at `size`, settled
    `rounds` times (0: not at all) before the body runs. clock=None keeps the screen's own clock."""
    if clock is not None:
        screen_args["clock"] = clock
    screen = DashboardScreen(settings or Settings(), **screen_args)
    app = host(screen)
    messages: list[Message] = []
    async with app.run_test(size=size, message_hook=messages.append) as pilot:
        dash = RunningDashboard(app, screen, pilot, messages)
        await dash.settle(rounds)
        yield dash


def assert_tables_match(screen: DashboardScreen, snap: Snapshot) -> None:
    """The overview (every index, the selected bucket) and the chain (the selected index and
    bucket, every strike) show `snap`'s values as the formatters print them."""
    overview = screen.query_one(OverviewTable)
    for key, idx in snap.indices.items():
        ov = idx.overview
        b = bucket_stats(ov, screen.bucket)
        assert b is not None
        if screen.bucket in ov.buckets:
            assert b is ov.buckets[screen.bucket]
        assert table_cell(overview, key, "ltp") == fmt_price(ov.last_price)
        assert table_cell(overview, key, "chg_pct") == fmt_pct(ov.net_change_percent)
        assert table_cell(overview, key, "atm_iv") == fmt_iv(b.atm_iv)
        assert table_cell(overview, key, "pcr") == f"{b.pcr_oi:.2f}"
        assert table_cell(overview, key, "max_pain") == fmt_strike(b.max_pain)
        assert table_cell(overview, key, "straddle") == fmt_price(b.straddle)
        if "atm" in overview.column_keys:
            assert table_cell(overview, key, "atm") == fmt_strike(b.atm_strike)
            assert table_cell(overview, key, "expiry") == b.expiry.strftime("%d %b")
    chain = screen.query_one(ChainTable)
    legs = [
        leg for leg in snap.indices[screen.index].legs
        if leg.bucket == screen.bucket
    ]
    assert legs, "the selected bucket has legs"
    assert len(chain.rows) == len({leg.strike for leg in legs})
    for leg in legs:
        prefix = "c_" if leg.side == "CALL" else "p_"
        row = f"{leg.strike:g}"
        assert table_cell(chain, row, f"{prefix}ltp") == fmt_price(leg.last_price)
        assert table_cell(chain, row, f"{prefix}chg") == fmt_signed(leg.net_change)
        assert table_cell(chain, row, f"{prefix}oi_chg") == fmt_lakh(leg.oi_change, signed=True)
        if f"{prefix}delta" in chain.column_keys:
            assert table_cell(chain, row, f"{prefix}iv") == fmt_iv(leg.iv)
            assert table_cell(chain, row, f"{prefix}oi") == fmt_lakh(leg.oi)
            assert table_cell(chain, row, f"{prefix}delta") == fmt_delta(leg.delta)
            assert table_cell(chain, row, f"{prefix}vol") == fmt_lakh(leg.volume)
