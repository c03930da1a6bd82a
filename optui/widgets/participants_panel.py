"""Participants table (FII, DII, Pro, Client) and FII/DII cash panel, labelled end of day.

`show_day(day)` fills both from a ParticipantsDay (optui.storage.participants_store). Compact
mode (the dashboard's narrow side panel) shows futures net and its day change only; the full
mode shows every column of PARTICIPANT_COLUMNS. Until anything is stored, it says how to get data.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date
from typing import Any

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import DataTable, Static

from optui.analytics.trading_calendar import TradingCalendar
from optui.storage.participants_store import ParticipantsDay, metric_history, participants_day
from optui.widgets.participants_format import (
    PARTICIPANT_COLUMNS,
    cash_rows,
    day_label,
    participant_rows,
)

log = logging.getLogger(__name__)

EMPTY_TEXT = (
    "No participant data stored yet.\n"
    "NSE's end-of-day participant files (F&O OI and volume) and FII/DII cash figures are "
    "captured at 08:00 IST each trading day; load past days with `optui participants "
    "import PATH` or `optui participants backfill`."
)
COMPACT_KEYS = ("", "index_futures_net", "index_futures_net_change_1d")
CASH_HEADERS = ("", "Net", "Streak", "5 days", "20 days")


@dataclass
class ParticipantsLoaded(Message):
    """A worker read one trade date and one metric's history from the store."""

    day: ParticipantsDay | None
    history: list[tuple[date, float | int | None]]
    error: str = ""


def load_view(store: Any, calendar: TradingCalendar, participant: str, metric: str,
              days: int, fallback_url: str | None = None) -> ParticipantsLoaded:
    """Blocking store reads for the screen (run in a worker); errors become `error`.

    With nothing stored in `store`, the store at `fallback_url` is read instead (opened and
    closed here): the live store a simulated session's own store stands beside, where `optui
    participants import` puts the exchange's files (see live_participants_url).
    """
    try:
        day = participants_day(store, calendar)
        if day is None and fallback_url:
            from optui.storage.base import open_store

            with open_store(fallback_url) as live:
                return load_view(live, calendar, participant, metric, days)
        history = (metric_history(store, calendar, participant, metric, day.trade_date, days)
                   if day is not None else [])
        return ParticipantsLoaded(day, history)
    except Exception as exc:  # noqa: BLE001 - shown on the screen, trace to the log
        log.exception("reading participant data failed")
        return ParticipantsLoaded(None, [], f"cannot read participant data: {exc}")


def live_participants_url(live_url: str, store: Any) -> str | None:
    """`live_url` (store.url) when `store` is another SQLite file (the simulator's own,
    data/sim/optui.db) and the live SQLite file exists: participant data is exchange fact,
    imported into the live store, so a simulated session shows it from there. None otherwise
    (the same store, a network store, or no live file: nothing is created)."""
    from pathlib import Path

    from optui.config import canonical_store_url

    url = canonical_store_url(live_url or "")
    own = getattr(store, "path", None)
    if not url.startswith("sqlite:///") or own is None or str(own) == ":memory:":
        return None
    path = Path(url[len("sqlite:///"):]).expanduser()
    if not path.is_file() or path.resolve() == Path(own).resolve():
        return None
    return url


class ParticipantsPanel(Vertical):
    """Who holds what, from the exchange's end-of-day files; never shown as live."""

    DEFAULT_CSS = """
    ParticipantsPanel { height: auto; padding: 0 1; }
    ParticipantsPanel .participants-when { color: $text-muted; }
    ParticipantsPanel DataTable { height: auto; max-height: 8; }
    ParticipantsPanel #participants-empty { color: $text-muted; }
    """

    def __init__(self, compact: bool = False, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.compact = compact
        self.day: ParticipantsDay | None = None

    def compose(self) -> ComposeResult:
        yield Static(EMPTY_TEXT, id="participants-empty")
        yield Static("", id="participants-when", classes="participants-when")
        yield DataTable(id="participants-table", show_cursor=False, zebra_stripes=True)
        yield Static("", id="cash-when", classes="participants-when")
        yield DataTable(id="cash-table", show_cursor=False)

    def on_mount(self) -> None:
        table = self.query_one("#participants-table", DataTable)
        columns = [c for c in PARTICIPANT_COLUMNS if not self.compact or c[1] in COMPACT_KEYS]
        for header, key in columns:
            table.add_column(header if key else "", key=key or "participant")
        cash = self.query_one("#cash-table", DataTable)
        for header in (CASH_HEADERS[:3] if self.compact else CASH_HEADERS):
            cash.add_column(header, key=header or "category")
        self._render_day()

    def show_day(self, day: ParticipantsDay | None) -> None:
        """Show one trade date's participants and cash (None: the how-to-load text)."""
        self.day = day
        if self.is_mounted:
            self._render_day()

    def _render_day(self) -> None:
        day = self.day
        empty = day is None
        self.query_one("#participants-empty").display = empty
        for wid in ("#participants-when", "#participants-table", "#cash-when", "#cash-table"):
            self.query_one(wid).display = not empty
        if day is None:
            return
        keep = [i for i, (_, key) in enumerate(PARTICIPANT_COLUMNS)
                if not self.compact or key in COMPACT_KEYS]
        self.query_one("#participants-when", Static).update(
            f"Index derivatives OI, contracts · {day_label(day)}")
        table = self.query_one("#participants-table", DataTable)
        table.clear()
        for row in participant_rows(day):
            table.add_row(*(row[i] for i in keep), key=row[0])
        dates = sorted({c.trade_date for c in day.cash.values()})
        when = f"trade date {dates[-1]:%Y-%m-%d} · end of day" if dates else "not stored"
        self.query_one("#cash-when", Static).update(f"FII/DII cash, ₹ crore (provisional) · {when}")
        cash = self.query_one("#cash-table", DataTable)
        cash.clear()
        width = 3 if self.compact else len(CASH_HEADERS)
        for row in cash_rows(day):
            cash.add_row(*row[:width], key=row[0])
