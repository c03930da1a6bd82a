"""What the dashboard's feed loop computes off the event loop: display rows of each cycle, and
the store reads the screen asks for (IV history, participants). Each returns a typed message."""

from __future__ import annotations

import logging
import time
from datetime import date
from typing import Any

from textual.message import Message

from optui.config import Settings
from optui.errors import OptuiError
from optui.feed.model import Feed, FeedCycle
from optui.ui_messages import IvHistoryLoaded
from optui.widgets.chain_table import all_chain_rows
from optui.widgets.positions_table import top_oi_changes

log = logging.getLogger(__name__)


def _yield_gil() -> None:
    time.sleep(0)


def cycle_views(settings: Settings, cycle: FeedCycle) -> dict[str, Any]:
    """Every chain formatted and every index's OI changes ranked (plain data), so index and
    bucket keys cost no formatting on the event loop; sleep(0) between chains hands the GIL to
    key presses."""
    snapshot = cycle.snapshot
    assert snapshot is not None  # a gap cycle has no rows to format
    top_n = settings.positions.top_n
    return {
        "chain_rows": all_chain_rows(snapshot, pause=_yield_gil, oi_unit=settings.ui.oi_unit),
        "positions": {k: top_oi_changes(i.legs, top_n) for k, i in snapshot.indices.items()},
    }


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
        from optui.widgets.participants_panel import load_view

        return load_view(store, TradingCalendar.from_settings(settings), "FII", "index_futures_net", 1)
    return run
