"""The official kiteconnect client, unchanged, against the simulator on a loopback port."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import date, datetime

import pytest
from kiteconnect import KiteConnect
from kiteconnect import exceptions as kex

from optui.simulator.exchange import SimulatedExchange
from optui.simulator.server import RateLimiter, SimulatorServer, serve
from optui.timeutil import IST

pytestmark = [pytest.mark.integration, pytest.mark.mock]

START = datetime(2026, 11, 17, 10, 30, tzinfo=IST)


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture(scope="module")
def limiter_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="module")
def server(limiter_clock: FakeClock) -> Iterator[SimulatorServer]:
    exchange = SimulatedExchange(seed=7, start=START, clock=lambda: 0.0)
    srv = serve(exchange, "127.0.0.1", 0, limiter=RateLimiter(clock=limiter_clock))
    yield srv
    srv.close()


@pytest.fixture
def kite(server: SimulatorServer, limiter_clock: FakeClock) -> KiteConnect:
    limiter_clock.t += 5.0  # each test starts in a fresh rate-limit window, without sleeping
    return KiteConnect("sim_key", access_token="sim_token", root=server.url)


def _raw(server: SimulatorServer, path: str, headers: dict[str, str]) -> tuple[int, str, dict]:
    request = urllib.request.Request(server.url + path, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, resp.headers["Content-Type"], json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, err.headers["Content-Type"], json.loads(err.read())


def test_profile(kite: KiteConnect) -> None:
    profile = kite.profile()
    assert profile["user_id"] == "SIM001"
    assert "NFO" in profile["exchanges"]


def test_instruments_all_and_per_exchange(kite: KiteConnect) -> None:
    rows = kite.instruments()
    assert len(rows) > 5000
    nfo = kite.instruments("NFO")
    assert {r["exchange"] for r in nfo} == {"NFO"}
    assert len(nfo) + len(kite.instruments("BFO")) + len(kite.instruments("NSE")) + len(
        kite.instruments("BSE")) == len(rows)
    nifty = next(r for r in kite.instruments("NSE") if r["tradingsymbol"] == "NIFTY 50")
    assert nifty["instrument_token"] == 256265 and nifty["segment"] == "INDICES"
    fut = next(r for r in nfo if r["tradingsymbol"] == "NIFTY26NOVFUT")
    assert fut["expiry"] == date(2026, 11, 23) and fut["lot_size"] == 65
    assert isinstance(fut["strike"], float)


def test_quote_ltp_ohlc_for_spots_and_options(kite: KiteConnect, limiter_clock: FakeClock) -> None:
    option = next(r for r in kite.instruments("BFO") if r["instrument_type"] == "PE")
    option_key = f"BFO:{option['tradingsymbol']}"
    keys = ["NSE:NIFTY 50", "BSE:SENSEX", option_key, str(option["instrument_token"])]
    quotes = kite.quote(keys)
    assert set(quotes) == set(keys)
    q = quotes[option_key]
    assert q["instrument_token"] == option["instrument_token"]
    assert q["timestamp"] == datetime(2026, 11, 17, 10, 30)  # parsed by the client, IST naive
    assert isinstance(q["last_trade_time"], datetime)
    for field in ("last_price", "volume", "average_price", "oi", "oi_day_high", "oi_day_low",
                  "net_change", "buy_quantity", "sell_quantity", "last_quantity"):
        assert field in q
    assert len(q["depth"]["buy"]) == 5
    assert quotes[str(option["instrument_token"])]["last_price"] == q["last_price"]
    limiter_clock.t += 1.0
    ltp = kite.ltp(keys[:3])
    assert ltp["NSE:NIFTY 50"] == {"instrument_token": 256265,
                                   "last_price": quotes["NSE:NIFTY 50"]["last_price"]}
    limiter_clock.t += 1.0
    ohlc = kite.ohlc(keys[:3])
    assert ohlc["BSE:SENSEX"]["ohlc"] == quotes["BSE:SENSEX"]["ohlc"]
    assert ohlc[option_key]["last_price"] == q["last_price"]


def test_unknown_instruments_are_left_out_and_bad_ones_rejected(kite: KiteConnect,
                                                              limiter_clock: FakeClock) -> None:
    assert set(kite.ltp(["NSE:NIFTY 50", "NFO:NOSUCH26NOVFUT"])) == {"NSE:NIFTY 50"}
    limiter_clock.t += 1.0
    with pytest.raises(kex.InputException):
        kite.ltp(["NFO:NOSUCH26NOVFUT"])
    limiter_clock.t += 1.0
    with pytest.raises(kex.InputException, match="Invalid instrument"):
        kite.ltp(["NIFTY"])


def test_wrong_or_expired_token_is_a_token_exception(server: SimulatorServer,
                                                     kite: KiteConnect) -> None:
    wrong = KiteConnect("sim_key", access_token="stale", root=server.url)
    with pytest.raises(kex.TokenException) as info:
        wrong.profile()
    assert info.value.code == 403
    server.exchange.expire_token()
    try:
        with pytest.raises(kex.TokenException, match="expired"):
            kite.ltp(["NSE:NIFTY 50"])
    finally:
        session = KiteConnect("sim_key", root=server.url).generate_session("any", "secret")
    assert session["access_token"] == "sim_token"
    assert kite.profile()["user_id"] == "SIM001"


def test_session_token_exchange(server: SimulatorServer) -> None:
    kite = KiteConnect("sim_key", root=server.url)
    session = kite.generate_session("request-token-from-login", api_secret="whatever")
    assert session["access_token"] == "sim_token"
    assert isinstance(session["login_time"], datetime)
    assert kite.access_token == "sim_token"
    assert kite.profile()["user_name"] == "Simulated Trader"


def test_headers_are_checked(server: SimulatorServer) -> None:
    auth = {"Authorization": "token sim_key:sim_token"}
    status, ctype, body = _raw(server, "/user/profile", auth)
    assert status == 400 and ctype == "application/json"
    assert body["status"] == "error" and body["error_type"] == "InputException"
    status, _, body = _raw(server, "/user/profile", {"X-Kite-Version": "3"})
    assert status == 403 and body["error_type"] == "TokenException"
    status, _, body = _raw(server, "/user/profile", {**auth, "X-Kite-Version": "3"})
    assert status == 200 and body == {"status": "success", "data": body["data"]}
    status, _, body = _raw(server, "/no/such/route", {**auth, "X-Kite-Version": "3"})
    assert status == 404 and body["error_type"] == "GeneralException"


def test_too_many_instruments_is_an_input_exception(kite: KiteConnect) -> None:
    keys = [f"NFO:{r['tradingsymbol']}" for r in kite.instruments("NFO")[:501]]
    with pytest.raises(kex.InputException, match="at most 500"):
        kite.quote(keys)


def test_second_quote_within_a_second_is_refused(kite: KiteConnect,
                                                 limiter_clock: FakeClock) -> None:
    kite.quote(["NSE:NIFTY 50"])
    limiter_clock.t += 0.5
    with pytest.raises(kex.NetworkException, match="Too many requests") as info:
        kite.quote(["NSE:NIFTY 50"])
    assert info.value.code == 429
    limiter_clock.t += 0.6
    assert "NSE:NIFTY 50" in kite.quote(["NSE:NIFTY 50"])


def test_ltp_accepts_up_to_a_thousand(kite: KiteConnect) -> None:
    keys = [f"NFO:{r['tradingsymbol']}" for r in kite.instruments("NFO")[:700]]
    assert len(kite.ltp(keys)) == 700


def test_run_simulator_prints_how_to_connect_and_stops_on_sigterm() -> None:
    import signal
    import subprocess
    import sys

    code = ("from optui.simulator.server import run_simulator; "
            "run_simulator('127.0.0.1', 0, 7, 1.0, '2026-11-17 10:00', 'k1', 't1')")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert 'KiteConnect("k1"' in line and "t1" not in line
        root = line.split('root="')[1].split('"')[0]
        assert root.startswith("http://127.0.0.1:") and not root.endswith(":0")
        kite = KiteConnect("k1", access_token="t1", root=root)
        assert kite.ltp(["NSE:NIFTY 50"])["NSE:NIFTY 50"]["instrument_token"] == 256265
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
