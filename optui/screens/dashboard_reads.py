"""The dashboard's reads: what its feed loop computes off the event loop (display rows of each
cycle, the store reads for premium flow, IV history and participants, each returning a typed
message), and `DashboardReads`, the screen's side that asks for them and shows the answers."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import date
from typing import Any

from textual import on
from textual.message import Message
from textual.worker import get_current_worker

from optui.analytics.premium_flow import FlowSeries, flow_window
from optui.config import Settings
from optui.errors import OptuiError
from optui.feed.model import Feed, FeedCycle
from optui.heap import run_once
from optui.models import IndexSnapshot, Snapshot
from optui.screens.dashboard_replay import ReplayControls
from optui.screens.feed_loop import flow_job
from optui.timeutil import IST
from optui.ui_messages import FlowQueried, FlowQueryFailed, IvHistoryLoaded
from optui.widgets.chain_table import all_chain_rows, chain_rows, count_divisor
from optui.widgets.dashboard_model import buckets_of
from optui.widgets.overview_table import OverviewTable
from optui.widgets.participants_panel import ParticipantsLoaded, ParticipantsPanel
from optui.widgets.positions_table import top_oi_changes

log = logging.getLogger(__name__)


def _yield_gil() -> None:
    time.sleep(0)


def shown_bucket(snapshot: Snapshot, index: str, bucket: str) -> str:
    """The bucket the dashboard shows for `index`: `bucket` when the snapshot has it, else the
    index's first bucket in the standard order ('' when the index is absent)."""
    buckets = buckets_of(snapshot, index)
    if buckets and bucket not in buckets:
        return buckets[0]
    return bucket


def cycle_views(settings: Settings, cycle: FeedCycle,
                selection: tuple[str, str] | None = None) -> dict[str, Any]:
    """Display rows of a cycle formatted off the event loop (plain data).

    With `selection` (index, bucket), the one shown: only that chain is formatted (the strikes
    its window can show: `around_atm`) and only that index's OI changes ranked, so a cycle's
    cost does not grow with the chains and strikes not on screen; a switch to another index or
    bucket formats its chain from the kept snapshot when shown.
    Without it every chain and index (sleep(0) between chains hands the GIL to key presses).
    """
    snapshot = cycle.snapshot
    assert snapshot is not None  # a gap cycle has no rows to format
    top_n = settings.positions.top_n
    oi_unit = settings.ui.oi_unit
    if selection is None:
        return {
            "chain_rows": all_chain_rows(snapshot, pause=_yield_gil, oi_unit=oi_unit),
            "positions": {k: top_oi_changes(i.legs, top_n) for k, i in snapshot.indices.items()},
        }
    index = selection[0]
    idx = snapshot.indices.get(index)
    if idx is None:
        return {"chain_rows": {}, "positions": {}}
    bucket = shown_bucket(snapshot, index, selection[1])
    per = count_divisor(oi_unit, idx.lot_sizes.get(bucket, 0))
    return {
        "chain_rows": {(index, bucket): chain_rows(idx.legs, index, bucket, per,
                                                   around_atm(settings, idx, bucket))},
        "positions": {index: top_oi_changes(idx.legs, top_n)},
    }


def around_atm(settings: Settings, idx: IndexSnapshot, bucket: str) -> tuple[float, int] | None:
    """The strikes of a chain its window can show (chain_rows' `around`): the dashboard's
    StrikeWindow shows `ui.chain_strikes` strikes either side of a centre at most one strike
    from the ATM, so those within `ui.chain_strikes + 2` of the ATM hold every row it can show,
    whatever centre it kept. None (every strike) without the bucket's statistics."""
    stats = idx.overview.buckets.get(bucket)
    if stats is None:
        return None
    return stats.atm_strike, settings.ui.chain_strikes + 2


class ViewsFormatted(Message):
    """Chains and OI-change rankings of `snapshot` formatted ahead of a key press: `chain_rows`
    (index, bucket) -> rows as chain_rows makes them, `positions` index -> ranked legs."""

    def __init__(self, snapshot: Snapshot, chain_rows: dict[tuple[str, str], Any],
                 positions: dict[str, Any]) -> None:
        super().__init__()
        self.snapshot = snapshot
        self.chain_rows = chain_rows
        self.positions = positions


def neighbour_selections(snapshot: Snapshot, order: list[str], index: str,
                         bucket: str) -> list[tuple[str, str]]:
    """The (index, bucket) pairs one key away from the shown one: the next and previous index
    (at the bucket each would show, as the index keys pick it) and the next and previous
    expiry bucket of the shown index."""
    out: list[tuple[str, str]] = []
    present = [k for k in order if k in snapshot.indices]
    if index in present and len(present) > 1:
        at = present.index(index)
        for step in (1, -1):
            other = present[(at + step) % len(present)]
            out.append((other, shown_bucket(snapshot, other, bucket)))
    buckets = buckets_of(snapshot, index)
    if bucket in buckets and len(buckets) > 1:
        at = buckets.index(bucket)
        out += [(index, buckets[(at + step) % len(buckets)]) for step in (1, -1)]
    return list(dict.fromkeys(p for p in out if p != (index, bucket)))


def neighbour_views(settings: Settings, snapshot: Snapshot, wanted: list[tuple[str, str]],
                    cancelled: Callable[[], bool] = lambda: False) -> ViewsFormatted | None:
    """The chains `wanted` of `snapshot` formatted (and their indices' OI changes ranked), for a
    thread worker: an index or expiry key then shows them without formatting on the event loop.
    sleep(0) between chains hands the GIL to a key press waiting for it; None once `cancelled`
    (a newer request replaced this one)."""
    rows: dict[tuple[str, str], Any] = {}
    positions: dict[str, Any] = {}
    top_n = settings.positions.top_n
    for index, bucket in wanted:
        if cancelled():
            return None
        idx = snapshot.indices.get(index)
        if idx is None:
            continue
        per = count_divisor(settings.ui.oi_unit, idx.lot_sizes.get(bucket, 0))
        rows[(index, bucket)] = chain_rows(idx.legs, index, bucket, per,
                                           around_atm(settings, idx, bucket))
        if index not in positions:
            positions[index] = top_oi_changes(idx.legs, top_n)
        _yield_gil()
    return ViewsFormatted(snapshot, rows, positions)


def iv_history_job(day: date, wanted: list[tuple[str, str]]):  # noqa: ANN201 - a feed_loop.Job
    """Stored daily ATM IV closes of (index, bucket) pairs up to `day` from the feed's store."""
    def run(feed: Feed | None) -> Message | None:
        store = feed.store if feed is not None else None
        if store is None:
            return None
        from optui.storage.iv_history import iv_history

        out = {}
        for key, bucket in wanted:
            try:
                closes = iv_history(store, key, bucket, day)
            except OptuiError as exc:
                log.warning("IV history of %s %s not read: %s", key, bucket, exc)
                continue
            except Exception:  # noqa: BLE001 - the overview shows IV without its history
                log.warning("IV history of %s %s not read", key, bucket, exc_info=True)
                continue
            if any(c.atm_iv == c.atm_iv for c in closes):  # no stored close: plain ATM IV
                out[(key, bucket)] = ([c.atm_iv for c in closes], [c.spot for c in closes])
        return IvHistoryLoaded(out)
    return run


def participants_job(settings: Settings):  # noqa: ANN201 - a feed_loop.Job
    """The newest end-of-day participant data from the feed's store (ParticipantsLoaded)."""
    def run(feed: Feed | None) -> Message | None:
        store = feed.store if feed is not None else None
        if store is None:
            return None
        from optui.analytics.trading_calendar import TradingCalendar
        from optui.widgets.participants_panel import live_participants_url, load_view

        return load_view(store, TradingCalendar.from_settings(settings), "FII", "index_futures_net", 1,
                         live_participants_url(settings.store.url, store))
    return run


class DashboardReads(ReplayControls):
    """Asks the feed loop for store reads when the selection or the data changes, and shows
    the answers (a stale answer for a selection already left is dropped)."""

    flow_queries = 0
    """Flow queries started (tests and the benchmark read it)."""

    _iv_history_asked: object = None

    _views_asked: tuple[int, frozenset[tuple[str, str]]] | None = None

    # ---- flow, participants, IV history: reads the loop runs between cycles --------------

    def _prefetch_views(self) -> None:
        """Format the chains one index or expiry key away from the shown one, for the current
        snapshot (those not formatted yet; once per snapshot and selection), in a thread worker
        of its own: the feed loop's worker may be busy collecting for most of a second. Called
        after the frame that showed a key or cycle, so the worker does not contend for the GIL
        with drawing it."""
        snapshot = self._snapshot
        if self.loop is None or snapshot is None:
            return
        wanted = [sel for sel in neighbour_selections(snapshot, self._index_keys(), self.index,
                                                      self.bucket)
                  if sel not in self._chain_rows]
        ask = (id(snapshot), frozenset(wanted))
        if not wanted or ask == self._views_asked:
            return
        self._views_asked = ask
        settings = self.settings

        def work() -> None:
            worker = get_current_worker()
            message = neighbour_views(settings, snapshot, wanted, lambda: worker.is_cancelled)
            if message is not None:
                self.post_message(message)

        # run_once: a finished Textual worker waits in a reference cycle for a full collection;
        # the snapshot its closure holds must not (optui.heap).
        self.run_worker(run_once(work), thread=True, group="dashboard-views", exclusive=True,
                        exit_on_error=False, description="format the chains a key away")

    @on(ViewsFormatted)
    def _on_views_formatted(self, message: ViewsFormatted) -> None:
        if message.snapshot is not self._snapshot:
            return  # formatted for a snapshot already replaced
        for selection, rows in message.chain_rows.items():
            self._chain_rows.setdefault(selection, rows)
        for index, top in message.positions.items():
            self._positions.setdefault(index, top)

    def query_flow(self) -> None:
        """Re-query the store for the selected index and timeframe (the loop answers)."""
        loop, feed = self.loop, self.feed
        if loop is None or feed is None or not loop.started:
            return
        if feed.store is None:
            self.show_flow(FlowSeries(self.index, self.timeframe, []))
            return
        # Stored flow bars carry the source's clock (the simulator's may be another day).
        anchor = self._snapshot.timestamp if self._snapshot else self._market_now()
        start, end = flow_window(anchor, self.timeframe, self.settings.flow.retention_days)
        self.flow_queries += 1
        loop.request(flow_job(self.index, self.timeframe, start, end))

    @on(FlowQueried)
    def _on_flow(self, message: FlowQueried) -> None:
        series = message.series
        if (series.index, series.timeframe) != (self.index, self.timeframe):
            return  # an answer for a selection the user already moved away from
        self.show_flow(series)

    @on(FlowQueryFailed)
    def _on_flow_failed(self, message: FlowQueryFailed) -> None:
        self._log("error", f"flow {message.index} {message.timeframe}: {message.error}")
        self.notify(f"Premium flow query failed: {message.error}", title="Store",
                    severity="error", timeout=8)

    def _refresh_participants(self, changed: bool = True) -> None:
        """Reload the panel when the feed says new end-of-day participant data was stored."""
        feed = self.feed
        if self.loop is not None and feed is not None and feed.store is not None and changed:
            self.loop.request(participants_job(self.settings))

    @on(ParticipantsLoaded)
    def _on_participants_loaded(self, message: ParticipantsLoaded) -> None:
        if message.error:
            self._log("error", message.error)
        self.query_one(ParticipantsPanel).show_day(message.day)

    def _want_iv_history(self, snapshot: Any) -> None:
        """Read the stored daily IV closes once per day and bucket (the loop), for the overview."""
        feed = self.feed
        if self.loop is None or feed is None or feed.store is None:
            return
        from optui.widgets.overview_table import bucket_stats

        day = snapshot.timestamp.astimezone(IST).date()
        wanted = []
        for key, idx in snapshot.indices.items():
            b = bucket_stats(idx.overview, self.bucket)
            if b is not None:
                wanted.append((key, b.bucket))
        ask = (day, tuple(wanted))
        if ask != self._iv_history_asked:
            self._iv_history_asked = ask
            self.loop.request(iv_history_job(day, wanted))

    @on(IvHistoryLoaded)
    def _show_iv_history(self, message: IvHistoryLoaded) -> None:
        self.query_one(OverviewTable).iv_history = message.history
        self._render_all(flow=False)

