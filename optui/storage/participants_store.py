"""Participant positions and FII/DII cash flows in any `Store`, one point per row per trade date.

Measurements:
- `participants`: tags `participant` (Client, DII, FII, Pro, TOTAL) and `kind` (oi, vol); fields
  the 14 contract counts of optui.analytics.participants.FIELDS (integers).
- `fii_dii_cash`: tag `category` (FII, DII); fields `buy_cr`, `sell_cr`, `net_cr` (₹ crore).

A trade date is stored at its close, 15:30 IST (10:00 UTC), so identity (measurement, tags, time)
makes a re-import of the same day replace it rather than add to it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from optui.analytics.participants import (
    CHANGE_LAGS,
    FIELDS,
    KINDS,
    ROWS,
    CashFlow,
    CashSummary,
    ParticipantFile,
    ParticipantRow,
    ParticipantView,
    ProClientVolume,
    cash_summary,
    participant_views,
    pro_client_divergence,
    pro_client_volume,
)
from optui.analytics.trading_calendar import TradingCalendar
from optui.storage.base import Row, Store
from optui.storage.points import Point
from optui.timeutil import IST

PARTICIPANTS_MEASUREMENT = "participants"
CASH_MEASUREMENT = "fii_dii_cash"
CLOSE_IST = time(15, 30)


def trade_time(trade_date: date) -> datetime:
    """The stored time of a trade date: its close, 15:30 IST (an aware datetime)."""
    return datetime.combine(trade_date, CLOSE_IST, tzinfo=IST)


def _trade_date(at: datetime) -> date:
    return at.astimezone(IST).date()


def _day_range(first: date, last: date) -> tuple[datetime, datetime]:
    start = datetime.combine(first, time(0, 0), tzinfo=IST)
    end = datetime.combine(last + timedelta(days=1), time(0, 0), tzinfo=IST)
    return start, end


def participant_points(parsed: ParticipantFile) -> list[Point]:
    """The five points of one parsed file (all rows, TOTAL included)."""
    at = trade_time(parsed.trade_date)
    return [
        Point(PARTICIPANTS_MEASUREMENT, {"participant": name, "kind": parsed.kind},
              dict(parsed.rows[name].values), at)
        for name in ROWS
    ]


def cash_points(flows: Sequence[CashFlow]) -> list[Point]:
    """One point per CashFlow."""
    return [
        Point(CASH_MEASUREMENT, {"category": f.category},
              {"buy_cr": f.buy_cr, "sell_cr": f.sell_cr, "net_cr": f.net_cr},
              trade_time(f.trade_date))
        for f in flows
    ]


def save_participant_file(store: Store, parsed: ParticipantFile) -> int:
    """Store one validated file, replacing that day and kind if present; returns points written."""
    return store.write(participant_points(parsed))


def save_cash(store: Store, flows: Sequence[CashFlow]) -> int:
    """Store FII/DII cash figures, replacing those of the same day; returns points written."""
    return store.write(cash_points(flows))


def _files_from_rows(rows: Sequence[Row], kind: str) -> dict[date, ParticipantFile]:
    grouped: dict[date, dict[str, ParticipantRow]] = {}
    for row in rows:
        name = row.tags.get("participant", "")
        if row.tags.get("kind") != kind or name not in ROWS:
            continue
        values = {f: int(row.fields[f]) for f in FIELDS if f in row.fields}
        if len(values) != len(FIELDS):
            continue
        grouped.setdefault(_trade_date(row.time), {})[name] = ParticipantRow(name, values)
    return {
        day: ParticipantFile(day, kind, rows_of_day, source="store")
        for day, rows_of_day in grouped.items()
        if all(n in rows_of_day for n in ROWS)
    }


def load_participant_files(store: Store, first: date, last: date,
                           kind: str = "oi") -> dict[date, ParticipantFile]:
    """Stored files of one kind with first <= trade date <= last, keyed by trade date (a day
    with any row missing is left out)."""
    if kind not in KINDS:
        raise ValueError(f"kind {kind!r}: use oi or vol")
    start, end = _day_range(first, last)
    rows = store.query(PARTICIPANTS_MEASUREMENT, start, end, tags={"kind": kind})
    return _files_from_rows(rows, kind)


def load_cash(store: Store, first: date, last: date) -> dict[date, dict[str, CashFlow]]:
    """Stored cash figures with first <= trade date <= last: {trade date: {"FII"|"DII": flow}}."""
    start, end = _day_range(first, last)
    out: dict[date, dict[str, CashFlow]] = {}
    for row in store.query(CASH_MEASUREMENT, start, end):
        category = row.tags.get("category", "")
        try:
            flow = CashFlow(_trade_date(row.time), category, float(row.fields["buy_cr"]),
                            float(row.fields["sell_cr"]), float(row.fields["net_cr"]))
        except (KeyError, TypeError, ValueError):
            continue
        out.setdefault(flow.trade_date, {})[category] = flow
    return out


def stored_trade_dates(store: Store, first: date, last: date, kind: str = "oi") -> list[date]:
    """Trade dates with a complete file of `kind` stored, oldest first."""
    return sorted(load_participant_files(store, first, last, kind))


def latest_trade_date(store: Store, kind: str = "oi") -> date | None:
    """The newest trade date with any participant row of `kind` stored, or None."""
    row = store.latest(PARTICIPANTS_MEASUREMENT, {"kind": kind, "participant": "TOTAL"})
    return _trade_date(row.time) if row is not None else None


@dataclass(frozen=True, slots=True)
class ParticipantsDay:
    """Everything shown for one trade date: per-participant views (from OI), Pro-Client volume,
    and cash summaries keyed "FII"/"DII" (absent when not stored)."""

    trade_date: date
    participants: dict[str, ParticipantView]
    volume: ProClientVolume | None
    cash: dict[str, CashSummary]
    oi_divergence_pct: float | None = None
    warnings: tuple[str, ...] = ()

    @property
    def missing(self) -> list[str]:
        """Parts not stored for the date: "positions" (the OI file), "volume" (the volume
        file), "cash" (FII/DII provisional figures)."""
        return [part for part, absent in (("positions", not self.participants),
                                          ("volume", self.volume is None),
                                          ("cash", not self.cash)) if absent]

    def as_json(self) -> dict[str, object]:
        """The `optui participants show --json` shape (contracts; cash in ₹ crore)."""
        return {
            "trade_date": self.trade_date.isoformat(),
            "participants": {
                name: view.as_dict() for name, view in self.participants.items()
            },
            "volume": None if self.volume is None else {
                "pro_share_pct": self.volume.pro_share_pct,
                "client_share_pct": self.volume.client_share_pct,
                "pro_long_pct": self.volume.pro_long_pct,
                "client_long_pct": self.volume.client_long_pct,
                "pro_client_divergence_pct": self.volume.divergence_pct,
            },
            "pro_client_oi_divergence_pct": self.oi_divergence_pct,
            "cash": {
                name: {
                    "trade_date": c.trade_date.isoformat(), "buy_cr": c.buy_cr,
                    "sell_cr": c.sell_cr, "net_cr": c.net_cr, "streak": c.streak,
                    "sum_5d_cr": c.sum_5d, "days_5d": c.days_5d,
                    "sum_20d_cr": c.sum_20d, "days_20d": c.days_20d,
                }
                for name, c in self.cash.items()
            },
        }


def participants_day(store: Store, calendar: TradingCalendar,
                     trade_date: date | None = None) -> ParticipantsDay | None:
    """Views for `trade_date` (default: the newest stored OI day), with changes against 1, 5 and
    21 trading days earlier by `calendar`, or None when that day's OI file is not stored.

    Cash summaries use the cash figures stored for the same trade date (with no `trade_date`:
    the newest stored cash day, which may differ) and the 19 trading days before it.
    """
    day = trade_date or latest_trade_date(store, "oi")
    if day is None:
        return None
    lags = {h: calendar.previous(day, n) for h, n in CHANGE_LAGS.items()}
    first = min(lags.values())
    oi = load_participant_files(store, first, day, "oi")
    if day not in oi:
        return None
    views = participant_views(oi[day], {h: oi.get(d) for h, d in lags.items()})
    vol = load_participant_files(store, day, day, "vol").get(day)
    cash_day = day
    if trade_date is None:  # the newest figures of each source, each labelled with its date
        newest = store.latest(CASH_MEASUREMENT)
        if newest is not None:
            cash_day = _trade_date(newest.time)
    cash = cash_summaries(store, calendar, cash_day)
    return ParticipantsDay(day, views, pro_client_volume(vol) if vol is not None else None, cash,
                           pro_client_divergence(oi[day]))


def stored_day(store: Store, calendar: TradingCalendar,
               trade_date: date | None = None) -> ParticipantsDay | None:
    """`participants_day`, else, when no participant OI file is stored for the date (default:
    the newest), the FII/DII cash figures alone (no positions, no volume: `missing` says so);
    None when neither is stored."""
    day = participants_day(store, calendar, trade_date)
    if day is not None:
        return day
    cash = cash_day(store, calendar, trade_date)
    return ParticipantsDay(cash[0], {}, None, cash[1]) if cash is not None else None


def cash_summaries(store: Store, calendar: TradingCalendar, day: date) -> dict[str, CashSummary]:
    """FII and DII cash summaries (₹ crore) for `day` from the figures stored for it and the 19
    trading days before it, keyed "FII"/"DII"; a category not stored for `day` is absent."""
    window = calendar.last_n(day, 20)
    stored_cash = load_cash(store, window[0], day)
    cash: dict[str, CashSummary] = {}
    for category in ("FII", "DII"):
        summary = cash_summary([stored_cash.get(d, {}).get(category) for d in window])
        if summary is not None:
            cash[category] = summary
    return cash


def cash_day(store: Store, calendar: TradingCalendar,
             trade_date: date | None = None) -> tuple[date, dict[str, CashSummary]] | None:
    """The FII/DII cash summaries of `trade_date` (default: the newest stored cash day), with
    that date; None when no cash figures are stored for it. Needs no participant OI file."""
    day = trade_date
    if day is None:
        newest = store.latest(CASH_MEASUREMENT)
        if newest is None:
            return None
        day = _trade_date(newest.time)
    cash = cash_summaries(store, calendar, day)
    return (day, cash) if cash else None


def metric_history(store: Store, calendar: TradingCalendar, participant: str, metric: str,
                   last: date, days: int) -> list[tuple[date, float | int | None]]:
    """(trade date, value) of one participant metric over the `days` trading days ending at
    `last`, oldest first; None where the day is not stored."""
    from optui.analytics.participants import metric_series

    window = calendar.last_n(last, days)
    files = load_participant_files(store, window[0], window[-1], "oi")
    values = metric_series([files.get(d) for d in window], participant, metric)
    return list(zip(window, values, strict=True))


def cash_history(store: Store, calendar: TradingCalendar, last: date,
                 days: int) -> list[tuple[date, CashFlow | None, CashFlow | None]]:
    """(trade date, FII flow, DII flow) over the `days` trading days ending at `last`."""
    window = calendar.last_n(last, days)
    stored = load_cash(store, window[0], window[-1])
    return [(d, stored.get(d, {}).get("FII"), stored.get(d, {}).get("DII")) for d in window]
