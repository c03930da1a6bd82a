"""A replayed call's answers: the tick book's rows kept as the recorded call found them while the
book moves on, and a call answered in columns giving, bit for bit, what its quote dicts give."""

from __future__ import annotations

import math

import pytest

from optui.collectors.quote_table import FLOAT_COLUMNS, QuoteTable
from optui.collectors.replay_answers import RecordedAnswers, kept_rows
from optui.collectors.source import quote_from_kite
from optui.collectors.tick_book import TickBook
from optui.tick_packets import MODE_FULL, MODE_LTP, MODE_QUOTE, TickBatch

STAMP = 1_764_048_600  # 2025-11-25 10:30 IST


def _batch(rows: list[tuple[int, int, float, int]]) -> TickBatch:
    """Ticks (token, mode, last price, OI): full ones with a book, a quote one, an index."""
    b = TickBatch.empty(len(rows))
    for j, (tok, mode, last, oi) in enumerate(rows):
        b.instrument_token[j], b.mode[j], b.last_price[j] = tok, mode, last
        b.tradable[j] = tok != 256_265
        if mode != MODE_LTP:
            b.volume[j], b.average_price[j] = 100 + j, last - 0.05
            b.open[j], b.high[j], b.low[j], b.close[j] = last, last + 1, last - 1, 0.0 if j else last
        if mode == MODE_FULL:
            b.oi[j], b.exchange_timestamp[j], b.last_trade_time[j] = oi, STAMP, STAMP - j
            b.depth_price[j, 0, 0], b.depth_price[j, 1, 0] = last - 0.1, 0.0 if j == 1 else last + 0.1
    return b


def _same_table(got: QuoteTable, want: QuoteTable) -> None:
    assert got.keys == want.keys
    assert got.has.tolist() == want.has.tolist()
    assert got.instrument_token.tolist() == want.instrument_token.tolist()
    for name in FLOAT_COLUMNS:
        assert [repr(x) for x in getattr(got, name).tolist()] == \
            [repr(x) for x in getattr(want, name).tolist()], name


@pytest.mark.unit
def test_kept_rows_answer_as_the_book_did_when_kept() -> None:
    book = TickBook(capacity=2)
    book.add(_batch([(258, MODE_FULL, 101.5, 1200), (514, MODE_FULL, 55.25, 700),
                     (770, MODE_QUOTE, 12.05, 0), (256_265, MODE_FULL, 26_010.4, 0)]))
    tokens = [258, 514, 770, 256_265, 1026]  # 1026 never ticked
    keys = [f"NFO:X{t}" for t in tokens]
    before = {t: book.quote(t) for t in tokens}
    table_before = book.quote_table(keys, tokens)
    kept = kept_rows(book, keys, tokens)
    assert set(kept) == set(keys[:4])  # a key whose instrument never ticked has no answer
    book.add(_batch([(258, MODE_FULL, 104.0, 1500), (770, MODE_LTP, 12.4, 0),
                     (1026, MODE_FULL, 3.1, 40)]))  # the book moves on
    assert book.quote(258)["last_price"] == 104.0  # type: ignore[index]
    frozen = kept[keys[0]][0]
    assert {t: frozen.quote(t) for t in tokens} == {**before, 1026: None}
    _same_table(frozen.quote_table(keys, tokens), table_before)


@pytest.mark.unit
def test_a_call_in_columns_gives_what_its_quote_dicts_give() -> None:
    """Polled answers, streamed ones kept from two calls (two books' rows), a key streamed
    after it was polled and one polled after it was streamed, a key without an answer: the
    table equals QuoteTable.from_quotes over quote_from_kite of each answer, bit for bit."""
    book = TickBook()
    book.add(_batch([(258, MODE_FULL, 101.5, 1200), (514, MODE_FULL, 55.25, 700),
                     (256_265, MODE_FULL, 26_010.4, 0)]))
    answers = RecordedAnswers()
    polled = {"NFO:P1": {"instrument_token": 9001, "last_price": 20.5, "volume": 10, "oi": 300,
                         "ohlc": {"open": 0, "high": 0, "low": 0, "close": 21.0},
                         "depth": {"buy": [{"price": 20.4}], "sell": [{"price": 20.6}]},
                         "timestamp": "2025-11-25 10:30:00",
                         "last_trade_time": "2025-11-25 10:29:58"},
              "NFO:X514": {"instrument_token": 514, "last_price": 50.0}}
    assert answers.record(polled, {}) == ["NFO:P1", "NFO:X514"]
    first = kept_rows(book, ["NFO:X258", "NFO:X514", "NSE:NIFTY 50"], [258, 514, 256_265])
    assert answers.record({}, first) == ["NFO:X258", "NFO:X514", "NSE:NIFTY 50"]
    book.add(_batch([(258, MODE_FULL, 103.0, 1300)]))
    second = kept_rows(book, ["NFO:X258"], [258])
    answers.record({"NFO:X258": {"instrument_token": 258, "last_price": 1.0}}, second)
    answers.record({"NSE:NIFTY 50": {"instrument_token": 256_265, "last_price": 26_000.0}}, {})
    keys = ["NFO:X514", "NFO:P1", "NFO:X258", "NFO:NONE", "NSE:NIFTY 50", "NFO:X514"]
    got = answers.table(keys)
    want = QuoteTable.from_quotes(keys, {k: quote_from_kite(q) for k in keys
                                         if (q := answers.quote(k)) is not None})
    _same_table(got, want)
    assert got.last_price.tolist()[:3] == [55.25, 20.5, 103.0]  # streamed wins; newest call
    assert got.last_price[4] == 26_000.0 and not got.has[3] and math.isnan(got.last_price[3])
    whole = answers.table(["NFO:X514"])  # one kept call answers the batch whole
    _same_table(whole, QuoteTable.from_quotes(["NFO:X514"],
                                              {"NFO:X514": quote_from_kite(book.quote(514))}))  # type: ignore[arg-type]
