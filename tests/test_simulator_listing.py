"""The simulator's calendar, trading symbols and instrument dump against real exchange data."""

from __future__ import annotations

import csv
import io
from datetime import date
from pathlib import Path

import pytest

from optui.simulator import calendar as cal
from optui.simulator.instruments import (
    CONTRACTS,
    CSV_HEADER,
    SEGMENT_CODES,
    build_listings,
    option_expiries,
    to_csv,
)
from optui.simulator.symbols import future_symbol, option_symbol

pytestmark = pytest.mark.unit

REFS = {"NIFTY": 26000.0, "BANKNIFTY": 59000.0, "FINNIFTY": 27500.0, "MIDCPNIFTY": 13500.0,
        "SENSEX": 85000.0}
WEEKDAY = {"NFO": cal.TUESDAY, "BFO": cal.THURSDAY}


def _real_rows(path: Path) -> list[dict[str, str]]:
    lines = [ln for ln in path.read_text().splitlines() if ln and not ln.startswith("#")]
    return list(csv.DictReader(io.StringIO("\n".join(lines))))


@pytest.mark.parametrize("name", ["instruments_raw_rows_2026-10-02.csv",
                                  "instruments_excerpt_2026-08-18.csv"])
def test_symbols_and_expiries_match_the_real_dump(fixtures_dir: Path, name: str) -> None:
    rows = [r for r in _real_rows(fixtures_dir / "kite" / name) if r["segment"] != "INDICES"]
    assert len(rows) > 20
    for row in rows:
        expiry = date.fromisoformat(row["expiry"])
        exch = row["exchange"]
        # The real expiry is exactly what the calendar rules produce.
        nominal_monthly = cal.monthly_expiry(expiry.year, expiry.month, WEEKDAY[exch], exch)
        monthly = nominal_monthly == expiry
        assert cal.is_trading_day(expiry, exch)
        if row["instrument_type"] == "FUT":
            assert monthly, row
            assert future_symbol(row["name"], expiry) == row["tradingsymbol"]
        else:
            weeklies = cal.weekly_expiries(expiry, 1, WEEKDAY[exch], exch)
            assert weeklies == [expiry], row
            symbol = option_symbol(row["name"], expiry, float(row["strike"]),
                                   row["instrument_type"], monthly)
            assert symbol == row["tradingsymbol"]


def test_holiday_moves_expiries_to_the_previous_trading_day() -> None:
    assert date(2026, 11, 24) in cal.NSE_HOLIDAYS
    assert cal.monthly_expiry(2026, 11, cal.TUESDAY, "NFO") == date(2026, 11, 23)
    assert cal.weekly_expiries(date(2026, 10, 14), 1, cal.TUESDAY, "NFO") == [date(2026, 10, 19)]
    nifty = dict(option_expiries(CONTRACTS["NIFTY"], date(2026, 11, 2)))
    assert nifty[date(2026, 11, 23)] is True
    assert date(2026, 11, 24) not in nifty
    listed = {r.tradingsymbol: r for r in build_listings(date(2026, 11, 2), REFS)}
    assert listed["NIFTY26NOVFUT"].expiry == date(2026, 11, 23)
    assert listed["NIFTY26NOV26000CE"].expiry == date(2026, 11, 23)
    # Diwali (Tuesday 10 Nov) moves that weekly to Monday, and the symbol carries the real day.
    assert listed["NIFTY26N0926000CE"].expiry == date(2026, 11, 9)
    assert "NIFTY26N1026000CE" not in listed


def test_expiry_cycles_follow_current_rules() -> None:
    on = date(2026, 10, 1)
    for key, contract in CONTRACTS.items():
        expiries = option_expiries(contract, on)
        for expiry, _ in expiries:
            nominal = cal.weekly_expiries(expiry, 1, contract.expiry_weekday,
                                          contract.deriv_exchange)[0]
            assert nominal == expiry
            assert expiry.weekday() <= contract.expiry_weekday
        weeklies = [e for e, monthly in expiries if not monthly]
        if key in ("NIFTY", "SENSEX"):
            assert len(weeklies) >= 4
        else:
            assert weeklies == []
            assert sum(1 for _, m in expiries if m) >= 3


def test_dump_format_tokens_lots_and_strikes(fixtures_dir: Path) -> None:
    rows = build_listings(date(2026, 10, 5), REFS)
    text = to_csv(rows)
    assert text.splitlines()[0] == CSV_HEADER
    parsed = list(csv.DictReader(io.StringIO(text)))
    real_nifty = next(r for r in _real_rows(fixtures_dir / "kite" /
                                            "instruments_raw_rows_2026-10-02.csv")
                      if r["tradingsymbol"] == "NIFTY 50")
    ours = next(r for r in parsed if r["tradingsymbol"] == "NIFTY 50")
    assert ours == real_nifty
    tokens = [int(r["instrument_token"]) for r in parsed]
    assert len(set(tokens)) == len(tokens)
    for r in parsed:
        code = SEGMENT_CODES["INDICES" if r["segment"] == "INDICES" else r["exchange"]]
        assert int(r["instrument_token"]) == int(r["exchange_token"]) * 256 + code
        if r["instrument_type"] in ("CE", "PE"):
            assert r["tick_size"] == "0.05"
            assert int(r["lot_size"]) == CONTRACTS[r["name"]].lot_size
    lots = {r["name"]: int(r["lot_size"]) for r in parsed if r["segment"] != "INDICES"}
    assert lots == {"NIFTY": 65, "BANKNIFTY": 30, "FINNIFTY": 60, "MIDCPNIFTY": 120, "SENSEX": 20}
    for key, step in {"NIFTY": 50, "BANKNIFTY": 100, "FINNIFTY": 50, "MIDCPNIFTY": 25,
                      "SENSEX": 100}.items():
        first = min(r.expiry for r in rows if r.index_key == key and r.instrument_type == "CE")
        strikes = sorted(r.strike for r in rows if r.index_key == key and r.expiry == first
                         and r.instrument_type == "CE")
        near = [k for k in strikes if abs(k - REFS[key]) <= 5 * step]
        assert all(b - a == step for a, b in zip(near, near[1:], strict=False))
        assert max(b - a for a, b in zip(strikes, strikes[1:], strict=False)) > step
        if key == "NIFTY":
            assert len(strikes) >= 100
