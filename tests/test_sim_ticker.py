"""The official KiteTicker, unchanged, against the simulator's WebSocket ticker on loopback."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from kiteconnect import KiteConnect
from websockets.sync.client import connect

from optui.simulator.exchange import SimulatedExchange
from optui.simulator.server import RateLimiter, SimulatorServer, serve
from optui.simulator.ticker import MAX_INSTRUMENTS
from optui.tick_packets import HEARTBEAT, MODE_FULL, MODE_QUOTE, parse_frame
from optui.timeutil import IST

pytestmark = [pytest.mark.integration, pytest.mark.mock]

START = datetime(2026, 11, 17, 10, 30, 17, tzinfo=IST)
PROBE = Path(__file__).parent / "ticker_probe.py"


@pytest.fixture(scope="module")
def exchange() -> SimulatedExchange:
    # A frozen clock: every tick and every REST quote is of the same simulated moment.
    return SimulatedExchange(seed=7, start=START, clock=lambda: 0.0)


@pytest.fixture(scope="module")
def server(exchange: SimulatedExchange) -> Iterator[SimulatorServer]:
    # Quotes here check ticks, not Kite's one-quote-a-second limit (tested elsewhere).
    srv = serve(exchange, "127.0.0.1", 0, limiter=RateLimiter(limits={"other": 10**6}))
    srv.tick_interval = 0.2
    yield srv
    srv.close()


@pytest.fixture(scope="module")
def tokens(exchange: SimulatedExchange) -> list[int]:
    """The NIFTY index, its future and a call and a put of the nearest expiry, and SENSEX."""
    rows = exchange.instruments()
    nifty = [r for r in rows if r.index_key == "NIFTY"]
    index = next(r for r in nifty if r.is_index)
    fut = next(r for r in nifty if r.instrument_type == "FUT")
    expiry = min(r.expiry for r in nifty if r.instrument_type == "CE" and r.expiry)
    legs = sorted((r for r in nifty if r.expiry == expiry and r.instrument_type in ("CE", "PE")),
                  key=lambda r: abs(r.strike - 26_000))[:2]
    sensex = next(r for r in rows if r.index_key == "SENSEX" and r.is_index)
    return [index.instrument_token, fut.instrument_token, *(r.instrument_token for r in legs),
            sensex.instrument_token]


def _ws_root(server: SimulatorServer) -> str:
    return server.url.replace("http://", "ws://", 1)


def _probe(server: SimulatorServer, token: str, mode: str, tokens: list[int]) -> list[dict]:
    done = subprocess.run(
        [sys.executable, str(PROBE), _ws_root(server), "sim_key", token, mode,
         ",".join(map(str, tokens))],
        capture_output=True, text=True, timeout=60, check=True)
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


@pytest.mark.parametrize("mode", ["ltp", "quote", "full"])
def test_kiteticker_ticks_equal_rest_quote(server: SimulatorServer, tokens: list[int],
                                           mode: str) -> None:
    events = _probe(server, "sim_token", mode, tokens)
    ticks = next(e["ticks"] for e in reversed(events) if "ticks" in e)
    assert {t["mode"] for t in ticks} == {mode}
    assert sorted(t["instrument_token"] for t in ticks) == sorted(tokens)
    kite = KiteConnect("sim_key", access_token="sim_token", root=server.url)
    quotes = {q["instrument_token"]: q for q in kite.quote([str(t) for t in tokens]).values()}
    for tick in ticks:
        q = quotes[tick["instrument_token"]]
        index = not tick["tradable"]
        assert index == (tick["instrument_token"] & 0xFF == 9)
        assert tick["last_price"] == q["last_price"]
        if mode == "ltp":
            assert set(tick) == {"tradable", "mode", "instrument_token", "last_price"}
            continue
        assert tick["ohlc"] == q["ohlc"]
        if index:
            if mode == "full":
                stamp = datetime.fromisoformat(tick["exchange_timestamp"]).astimezone(IST)
                assert stamp == START.replace(microsecond=0)
            continue
        assert tick["volume_traded"] == q["volume"]
        assert tick["average_traded_price"] == q["average_price"]
        assert tick["last_traded_quantity"] == q["last_quantity"]
        assert tick["total_buy_quantity"] == q["buy_quantity"]
        assert tick["total_sell_quantity"] == q["sell_quantity"]
        if mode == "full":
            assert (tick["oi"], tick["oi_day_high"], tick["oi_day_low"]) == (
                q["oi"], q["oi_day_high"], q["oi_day_low"])
            assert tick["depth"] == q["depth"]
            # kiteconnect reads Unix seconds as naive local time: compare as instants.
            ltt = datetime.fromisoformat(tick["last_trade_time"]).astimezone(IST)
            assert ltt == q["last_trade_time"].replace(tzinfo=IST)


def test_bad_access_token_is_refused_with_403(server: SimulatorServer, tokens: list[int]) -> None:
    events = _probe(server, "not_the_token", "full", tokens)
    assert not any("ticks" in e for e in events)
    errors = [e["error"] for e in events if "error" in e]
    assert errors and "403 - Forbidden" in errors[0][1]


def _recv_frame(ws: object, want: int, mode: int) -> bytes:
    """The next binary frame of `want` packets all in `mode` (earlier frames may still carry the
    mode a subscribe set before the mode message arrived)."""
    for _ in range(100):
        msg = ws.recv(timeout=10)  # type: ignore[attr-defined]
        if isinstance(msg, bytes) and len(msg) > 1 and int.from_bytes(msg[:2], "big") == want:
            if set(parse_frame(msg).mode.tolist()) == {mode}:
                return msg
    raise AssertionError("no frame of the expected size and mode")


def test_frames_use_kite_packet_lengths(server: SimulatorServer, tokens: list[int]) -> None:
    with connect(_ws_root(server) + "/?api_key=sim_key&access_token=sim_token") as ws:
        ws.send(json.dumps({"a": "subscribe", "v": tokens}))
        ws.send(json.dumps({"a": "mode", "v": ["full", tokens]}))
        frame = _recv_frame(ws, len(tokens), MODE_FULL)
        lengths, pos = [], 2
        for _ in range(len(tokens)):
            n = int.from_bytes(frame[pos:pos + 2], "big")
            lengths.append((int.from_bytes(frame[pos + 2:pos + 6], "big") & 0xFF == 9, n))
            pos += 2 + n
        assert pos == len(frame)
        assert sorted(set(lengths)) == [(False, 184), (True, 32)]
        ws.send(json.dumps({"a": "mode", "v": ["quote", tokens]}))
        batch = parse_frame(_recv_frame(ws, len(tokens), MODE_QUOTE))
        assert len(batch) == len(tokens) and not batch.tradable[0]


def test_text_errors_heartbeat_and_instrument_limit(server: SimulatorServer) -> None:
    with connect(_ws_root(server) + "/?api_key=sim_key&access_token=sim_token") as ws:
        assert ws.recv(timeout=10) == HEARTBEAT  # nothing subscribed: heartbeats
        ws.send("not json")
        err = json.loads(ws.recv(timeout=10))
        assert err["type"] == "error" and "Invalid message" in err["data"]
        ws.send(json.dumps({"a": "mode", "v": ["fast", [1]]}))
        assert "Invalid mode" in json.loads(ws.recv(timeout=10))["data"]
        ws.send(json.dumps({"a": "subscribe", "v": list(range(1, MAX_INSTRUMENTS + 6))}))
        msg = ws.recv(timeout=10)
        assert json.loads(msg) == {
            "type": "error",
            "data": "Maximum of 3000 instruments per connection: 5 not subscribed"}
        for session in server.sessions():
            session.send_text({"type": "message", "data": "Exchange notice"})
        for _ in range(20):
            msg = ws.recv(timeout=10)
            if isinstance(msg, str):
                assert json.loads(msg) == {"type": "message", "data": "Exchange notice"}
                break
        else:
            raise AssertionError("no message frame")


def test_unchanged_instruments_get_no_packet(server: SimulatorServer, tokens: list[int]) -> None:
    """The clock is frozen: after the subscribe's full snapshot nothing changes, so the ticker
    sends heartbeats, not the same packets again; a mode change sends the snapshot again."""
    with connect(_ws_root(server) + "/?api_key=sim_key&access_token=sim_token") as ws:
        ws.send(json.dumps({"a": "subscribe", "v": tokens}))
        first = _recv_frame(ws, len(tokens), MODE_QUOTE)
        assert sorted(parse_frame(first).instrument_token.tolist()) == sorted(tokens)
        assert [ws.recv(timeout=10) for _ in range(3)] == [HEARTBEAT] * 3
        ws.send(json.dumps({"a": "mode", "v": ["full", tokens[:2]]}))
        again = parse_frame(_recv_frame(ws, 2, MODE_FULL))
        assert sorted(again.instrument_token.tolist()) == sorted(tokens[:2])
