"""Instrument dump parsing on the real Kite files, expiry buckets and strike spacing."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import numpy as np
import pytest

from optui.collectors.instruments import (
    build_catalogs,
    expiry_buckets,
    instruments_to_csv,
    parse_instruments_csv,
    strike_spacing,
)
from optui.indices import INDEX_KEYS
from optui.models import WarningKind
from optui.timeutil import IST

pytestmark = pytest.mark.unit


def test_raw_dump_with_comment_lines(fixtures_dir: Path) -> None:
    text = (fixtures_dir / "kite/instruments_raw_rows_2026-10-02.csv").read_text()
    res = parse_instruments_csv(text)
    assert res.skipped == 0
    by_symbol = {i.tradingsymbol: i for i in res.instruments}
    weekly = by_symbol["NIFTY26O0625000CE"]
    assert weekly.expiry == date(2026, 10, 6) and weekly.strike == 25000 and weekly.lot_size == 65
    assert weekly.instrument_token == 10461442 and weekly.segment == "NFO-OPT"
    assert by_symbol["NIFTY 50"].segment == "INDICES"
    assert by_symbol["SENSEX26O0882100PE"].exchange == "BFO"


def test_pykiteconnect_written_floats_and_crlf(fixtures_dir: Path) -> None:
    text = (fixtures_dir / "kite/instruments_excerpt_2026-08-18.csv").read_text()
    crlf = text.replace("\n", "\r\n")
    a, b = parse_instruments_csv(text), parse_instruments_csv(crlf)
    assert a.instruments == b.instruments
    inst = {i.tradingsymbol: i for i in a.instruments}["NIFTY2681824150CE"]
    assert inst.strike == 24150.0 and inst.lot_size == 65 and isinstance(inst.lot_size, int)


def test_malformed_rows_skipped_and_counted(fixtures_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    lines = (fixtures_dir / "kite/instruments_excerpt_2026-08-18.csv").read_text().splitlines()
    good = len(lines) - 1
    broken = lines + ["1,2,BROKEN", "x,y,NIFTYBAD,NIFTY,0,2026-13-45,1,0.05,65,CE,NFO-OPT,NFO"]
    res = parse_instruments_csv("\n".join(broken), "dump.csv")
    assert len(res.instruments) == good
    assert res.skipped == 2
    assert "dump.csv line" in res.first_error
    assert sum("skipped 2 malformed" in r.message for r in caplog.records) == 1


def test_missing_columns_named() -> None:
    res = parse_instruments_csv("instrument_token,tradingsymbol\n1,X\n")
    assert res.instruments == [] and "missing columns" in res.first_error and "expiry" in res.first_error


def test_csv_round_trip(fixtures_dir: Path) -> None:
    res = parse_instruments_csv((fixtures_dir / "kite/instruments_all.csv").read_text())
    again = parse_instruments_csv(instruments_to_csv(res.instruments))
    assert again.instruments == res.instruments


def test_catalogs_and_buckets_from_real_excerpt(fixtures_dir: Path) -> None:
    res = parse_instruments_csv((fixtures_dir / "kite/instruments_excerpt_2026-08-18.csv").read_text())
    cats = build_catalogs(res.instruments, INDEX_KEYS)
    at = datetime(2026, 8, 18, 10, 0, tzinfo=IST)
    nifty = expiry_buckets(cats["NIFTY"].expiries(at), cats["NIFTY"].future_expiries)
    # The 25 Aug expiry coincides with NIFTY26AUGFUT: it is the monthly as well as next week's.
    assert nifty == {"this_week": date(2026, 8, 18), "next_week": date(2026, 8, 25), "this_month": date(2026, 8, 25)}
    bank = expiry_buckets(cats["BANKNIFTY"].expiries(at), cats["BANKNIFTY"].future_expiries)
    assert bank == {"this_month": date(2026, 8, 25)}
    sensex = expiry_buckets(cats["SENSEX"].expiries(at), cats["SENSEX"].future_expiries)
    assert sensex["this_week"] == date(2026, 8, 20) and sensex["this_month"] == date(2026, 8, 27)
    # After 15:30 IST on expiry day the weekly is settled and drops out.
    late = datetime(2026, 8, 18, 15, 31, tzinfo=IST)
    assert cats["NIFTY"].expiries(late)[0] == date(2026, 8, 25)


def test_monthly_only_index_gets_two_buckets() -> None:
    expiries = [date(2026, 11, 23), date(2026, 12, 29), date(2027, 1, 26)]
    assert expiry_buckets(expiries) == {"this_month": date(2026, 11, 23), "next_month": date(2026, 12, 29)}


def test_weekly_buckets_follow_listing_not_weekday() -> None:
    # A Monday expiry (holiday-shifted) is taken as listed.
    expiries = [date(2026, 11, 23), date(2026, 12, 1), date(2026, 12, 8), date(2026, 12, 29), date(2027, 1, 26)]
    assert expiry_buckets(expiries) == {
        "this_week": date(2026, 11, 23), "next_week": date(2026, 12, 1),
        "this_month": date(2026, 11, 23), "next_month": date(2026, 12, 29),
    }


def test_strike_spacing_near_the_money() -> None:
    near = np.arange(23000, 25001, 50.0)
    far = np.arange(25100, 30001, 100.0)
    strikes = np.concatenate([near, far])
    assert strike_spacing(strikes, 24010, fallback=100) == 50
    assert strike_spacing(strikes, 28000, fallback=50) == 100
    assert strike_spacing(np.array([24000.0]), 24000, fallback=50) == 50


LOCAL_FIXTURES = Path(__file__).resolve().parent / "fixtures"


def test_options_without_expiry_are_malformed_rows(caplog: pytest.LogCaptureFixture) -> None:
    # Real dump rows with the expiry of NIFTY's four 13 Oct option rows blanked.
    text = (LOCAL_FIXTURES / "kite/instruments_no_expiry_2026-10-02.csv").read_text()
    res = parse_instruments_csv(text, "NFO dump")
    assert res.skipped == res.no_expiry == 4
    assert "NIFTY26O13" not in " ".join(i.tradingsymbol for i in res.instruments)
    assert "NIFTY 50" in {i.tradingsymbol for i in res.instruments}  # an index row has no expiry
    assert res.warning.startswith("skipped 4 malformed instrument rows (4 options or futures without an expiry")
    assert "CE row without an expiry" in res.first_error
    warned = [r.message for r in caplog.records if "malformed" in r.message]
    assert warned == [f"NFO dump: {res.warning}"]  # one warning for the dump, naming how many
    cats = build_catalogs(res.instruments, ["NIFTY"])
    assert list(cats["NIFTY"].chains) == [date(2026, 10, 6)]


def test_options_without_expiry_through_the_official_parser(caplog: pytest.LogCaptureFixture) -> None:
    from kiteconnect import KiteConnect

    from optui.collectors.instruments import instruments_from_kite_rows

    text = (LOCAL_FIXTURES / "kite/instruments_no_expiry_2026-10-02.csv").read_text()
    dump = "\n".join(ln for ln in text.splitlines() if not ln.startswith("#"))
    rows = KiteConnect("key")._parse_instruments(dump.encode())  # pykiteconnect leaves "" expiries
    res = instruments_from_kite_rows(rows, "NFO instrument dump")
    assert res.skipped == res.no_expiry == 4 and len(res.instruments) == len(rows) - 4
    assert sum("skipped 4 malformed" in r.message for r in caplog.records) == 1


def test_collector_reports_dump_rows_without_expiry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from optui.collectors.engine import CollectionEngine
    from optui.collectors.sim_source import SimulatedSource
    from optui.config import Settings

    src = SimulatedSource(seed=7, speed=0.01, start=datetime(2026, 11, 25, 11, 0, tzinfo=IST))
    dump = src.exchange.instruments_csv

    def blank_weekly(exchange: str | None = None) -> str:
        lines = dump(exchange).splitlines()
        return "\n".join(ln.replace(",2026-12-01,", ",,") for ln in lines) + "\n"

    monkeypatch.setattr(src.exchange, "instruments_csv", blank_weekly)
    blanked = sum(",2026-12-01," in ln for ln in dump("NFO").splitlines())
    settings = Settings()
    settings.source.indices = ["NIFTY"]
    eng = CollectionEngine(settings, src)
    try:
        snap = eng.collect_once()
    finally:
        eng.close()
    notes = [w for w in snap.warnings if "malformed" in w]
    assert notes == [
        f"simulated NFO dump: skipped {blanked} malformed instrument rows ({blanked} options or "
        f"futures without an expiry; first: {notes[0].split('first: ', 1)[1]}"
    ]
    assert notes[0].kind is WarningKind.DUMP_MALFORMED
    assert blanked > 200  # the whole weekly chain, warned about, not silently gone
    assert snap.indices["NIFTY"].overview.buckets["this_week"].expiry == date(2026, 12, 8)
