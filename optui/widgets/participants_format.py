"""Rows and lines for participant positions and FII/DII cash, shared by the dashboard and the CLI.

Pure formatting (no Textual): contracts as signed whole numbers with thousands separators, cash in
₹ crore, and every block labelled with its trade date and "end of day" so nobody takes it for live.
"""

from __future__ import annotations

from optui.analytics.participants import PARTICIPANTS, CashSummary
from optui.storage.participants_store import ParticipantsDay
from optui.widgets.format import DASH, fmt_crore

PARTICIPANT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("Participant", ""),
    ("Fut net", "index_futures_net"),
    ("Calls net", "index_calls_net"),
    ("Puts net", "index_puts_net"),
    ("Opt bias", "options_bias"),
    ("Fut Δ day", "index_futures_net_change_1d"),
    ("Fut Δ week", "index_futures_net_change_1w"),
)
"""Participants table columns: header and the ParticipantView.as_dict() key (contracts)."""
DISPLAY_ORDER: tuple[str, ...] = ("FII", "DII", "Pro", "Client")


def fmt_contracts(value: float | int | None, signed: bool = True) -> str:
    """Whole contracts with separators; signed for nets and changes; a dash when unknown."""
    if value is None:
        return DASH
    return f"{value:+,.0f}" if signed else f"{value:,.0f}"


def day_label(day: ParticipantsDay) -> str:
    """'Trade date 2026-08-18 (Tue) · end of day'."""
    return f"Trade date {day.trade_date:%Y-%m-%d} ({day.trade_date:%a}) · end of day"


def participant_rows(day: ParticipantsDay) -> list[tuple[str, ...]]:
    """One row of PARTICIPANT_COLUMNS per participant, FII, DII, Pro, Client."""
    rows: list[tuple[str, ...]] = []
    for name in DISPLAY_ORDER:
        if name not in PARTICIPANTS or name not in day.participants:
            continue
        values = day.participants[name].as_dict()
        rows.append((name, *(fmt_contracts(values.get(key)) for _, key in PARTICIPANT_COLUMNS[1:])))
    return rows


def fmt_streak(streak: int) -> str:
    """"3 days buying", "2 days selling", "flat"."""
    if streak == 0:
        return "flat"
    days = abs(streak)
    return f"{days} day{'s' if days != 1 else ''} {'buying' if streak > 0 else 'selling'}"


def cash_rows(day: ParticipantsDay) -> list[tuple[str, ...]]:
    """(category, net, streak, 5-day sum, 20-day sum) for FII and DII (₹ crore)."""
    rows: list[tuple[str, ...]] = []
    for name in ("FII", "DII"):
        c: CashSummary | None = day.cash.get(name)
        if c is None:
            rows.append((name, DASH, "not stored", DASH, DASH))
            continue
        rows.append((
            name, fmt_crore(c.net_cr, signed=True), fmt_streak(c.streak),
            fmt_crore(c.sum_5d, signed=True) + ("" if c.days_5d == 5 else f" ({c.days_5d}d)"),
            fmt_crore(c.sum_20d, signed=True) + ("" if c.days_20d == 20 else f" ({c.days_20d}d)"),
        ))
    return rows


def participants_lines(day: ParticipantsDay) -> list[str]:
    """The participants table and cash panel as plain text lines (optui participants show)."""
    headers = [h for h, _ in PARTICIPANT_COLUMNS]
    table = [tuple(headers), *participant_rows(day)]
    widths = [max(len(r[i]) for r in table) for i in range(len(headers))]
    lines = [f"Participants (index derivatives OI, contracts) · {day_label(day)}"]
    for row in table:
        lines.append("  ".join(cell.ljust(w) if i == 0 else cell.rjust(w)
                               for i, (cell, w) in enumerate(zip(row, widths, strict=True))))
    if day.oi_divergence_pct is not None:
        lines.append(f"Pro − Client index futures long share: {day.oi_divergence_pct:+.1f} pp")
    if day.volume is not None:
        v = day.volume
        lines.append(f"Volume share: Pro {v.pro_share_pct:.1f}% · Client {v.client_share_pct:.1f}%")
    cash_header = ("", "Net", "Streak", "5 days", "20 days")
    cash = [cash_header, *cash_rows(day)]
    cw = [max(len(r[i]) for r in cash) for i in range(len(cash_header))]
    dates = {c.trade_date for c in day.cash.values()}
    when = f"trade date {min(dates):%Y-%m-%d} · end of day" if dates else "end of day"
    lines.append(f"FII/DII cash (₹ crore, provisional) · {when}")
    for row in cash:
        lines.append("  ".join(cell.ljust(w) if i == 0 else cell.rjust(w)
                               for i, (cell, w) in enumerate(zip(row, cw, strict=True))))
    return lines
