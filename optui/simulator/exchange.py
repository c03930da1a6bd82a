"""The simulated exchange in-process: a clock, the listed contracts and Kite-shaped answers.

Methods return exactly what Kite Connect returns in its `data` field, so the HTTP server is a
thin wrapper and the app can also use this object directly as its embedded default source.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from datetime import date, datetime

import numpy as np

from optui.errors import SourceError
from optui.simulator.chain import (
    ChainDay,
    book_top,
    build_chain_day,
    depth_levels,
    empty_depth,
    fair_prices,
    round_tick,
    years_left,
)
from optui.simulator.instruments import Listing, build_listings, to_csv
from optui.simulator.market import (
    INDEX_ORDER,
    SESSION_SECONDS,
    MarketModel,
    hash_uniform,
    listing_day,
    session_point,
)
from optui.timeutil import IST

QUOTE_LIMIT = 500
LTP_LIMIT = 1000
KITE_TIME = "%Y-%m-%d %H:%M:%S"
_EXCHANGES = ("NSE", "BSE", "NFO", "BFO")


class KiteApiError(SourceError):
    """An error Kite would answer with: HTTP status, error_type and message."""

    def __init__(self, status: int, error_type: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message


class _Listed:
    """The contracts of one listing day, indexed the ways Kite clients look them up."""

    def __init__(self, rows: list[Listing]) -> None:
        self.rows = rows
        self.by_key = {r.key: r for r in rows}
        self.by_token = {str(r.instrument_token): r for r in rows}
        self.groups: dict[tuple[str, date], list[Listing]] = {}
        for r in rows:
            if r.expiry is not None:
                self.groups.setdefault((r.index_key, r.expiry), []).append(r)
        self.csv: dict[str | None, str] = {}


class SimulatedExchange:
    """A seeded index-derivatives market that answers like Kite Connect; thread-safe."""

    def __init__(
        self,
        seed: int = 7,
        speed: float = 1.0,
        start: datetime | None = None,
        api_key: str = "sim_key",
        access_token: str = "sim_token",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not speed > 0:
            raise ValueError(f"speed must be positive (1 = real time), got {speed}")
        self.seed = int(seed)
        self.speed = float(speed)
        self.api_key = api_key
        self.access_token = access_token
        self.market = MarketModel(self.seed)
        self._clock = clock
        self._lock = threading.RLock()
        self._token_expired = False
        self._listed: dict[date, _Listed] = {}
        self._chains: dict[tuple[str, date, date], ChainDay] = {}
        self.set_time(start)

    def __repr__(self) -> str:
        return f"SimulatedExchange(seed={self.seed}, speed={self.speed}, now={self.now():%F %T})"

    # -- clock -------------------------------------------------------------------------------
    def set_time(self, at: datetime | None) -> None:
        """Move the simulated clock to `at` (naive = IST; None = the real time now)."""
        if at is None:
            at = datetime.now(IST)
        elif at.tzinfo is None:
            at = at.replace(tzinfo=IST)
        with self._lock:
            self._start = at.astimezone(IST)
            self._t0 = self._clock()

    def now(self) -> datetime:
        """Simulated time, aware in IST: start + real elapsed x speed."""
        with self._lock:
            elapsed = (self._clock() - self._t0) * self.speed
            return self._start + (np.timedelta64(int(elapsed * 1e6), "us")).item()

    # -- sessions ----------------------------------------------------------------------------
    def check_auth(self, api_key: str, access_token: str) -> None:
        """Raise 403 TokenException unless the key and token are the configured, live ones."""
        if api_key != self.api_key or access_token != self.access_token:
            raise KiteApiError(403, "TokenException", "Incorrect `api_key` or `access_token`.")
        if self._token_expired:
            raise KiteApiError(403, "TokenException", "Token is invalid or has expired.")

    def expire_token(self) -> None:
        """Make the access token stale, as Kite does every morning; a new login revives it."""
        self._token_expired = True

    def _user(self) -> dict:
        return {
            "user_id": "SIM001",
            "user_type": "individual",
            "email": "sim@example.com",
            "user_name": "Simulated Trader",
            "user_shortname": "Simulated",
            "broker": "ZERODHA",
            "exchanges": list(_EXCHANGES),
            "products": ["CNC", "NRML", "MIS"],
            "order_types": ["MARKET", "LIMIT", "SL", "SL-M"],
            "avatar_url": None,
            "meta": {"demat_consent": "physical"},
        }

    def profile(self) -> dict:
        """GET /user/profile."""
        return self._user()

    def generate_session(self, request_token: str, api_key: str | None = None) -> dict:
        """POST /session/token: any request token buys the configured access token."""
        if not request_token:
            raise KiteApiError(400, "InputException", "Missing request_token")
        if api_key is not None and api_key != self.api_key:
            raise KiteApiError(403, "TokenException", "Invalid `api_key`.")
        self._token_expired = False
        return {
            **self._user(),
            "api_key": self.api_key,
            "access_token": self.access_token,
            "public_token": "sim_public_token",
            "refresh_token": "",
            "enctoken": "",
            "login_time": self.now().strftime(KITE_TIME),
        }

    # -- instruments -------------------------------------------------------------------------
    def _listing(self, at: datetime | None = None) -> _Listed:
        day = listing_day(at or self.now())
        with self._lock:
            listed = self._listed.get(day)
            if listed is None:
                refs = {k: self.market.previous_close(k, day) for k in INDEX_ORDER}
                listed = _Listed(build_listings(day, refs))
                self._listed = {day: listed}
            return listed

    def instruments(self, exchange: str | None = None) -> list[Listing]:
        """Listed contracts, optionally of one exchange (NSE, BSE, NFO, BFO)."""
        rows = self._listing().rows
        if exchange is None:
            return list(rows)
        return [r for r in rows if r.exchange == exchange]

    def instruments_csv(self, exchange: str | None = None) -> str:
        """GET /instruments[/{exchange}]: the dump in Kite's CSV format."""
        if exchange is not None and exchange not in _EXCHANGES:
            raise KiteApiError(400, "InputException",
                               f"Invalid exchange {exchange!r}: use one of {', '.join(_EXCHANGES)}")
        listed = self._listing()
        with self._lock:
            text = listed.csv.get(exchange)
            if text is None:
                text = to_csv(self.instruments(exchange))
                listed.csv[exchange] = text
        return text

    # -- quotes ------------------------------------------------------------------------------
    def _resolve(self, keys: Iterable[str], limit: int, route: str) -> list[tuple[str, Listing]]:
        keys = [str(k) for k in keys]
        if not keys:
            raise KiteApiError(400, "InputException", "No instruments given: pass i=EXCHANGE:SYMBOL")
        if len(keys) > limit:
            raise KiteApiError(400, "InputException",
                               f"Too many instruments: {route} accepts at most {limit} per request")
        listed = self._listing()
        found: list[tuple[str, Listing]] = []
        for key in keys:
            exch, sep, symbol = key.partition(":")
            if sep and exch and symbol:
                row = listed.by_key.get(key)
            elif key.isdigit():
                row = listed.by_token.get(key)
            else:
                raise KiteApiError(400, "InputException",
                                   f"Invalid instrument {key!r}: use EXCHANGE:TRADINGSYMBOL "
                                   "or an instrument token")
            if row is not None:
                found.append((key, row))
        if not found:
            raise KiteApiError(400, "InputException", "No valid instruments in the request")
        return found

    def _chain(self, row: Listing, day: date) -> ChainDay:
        assert row.expiry is not None
        cache_key = (row.index_key, row.expiry, day)
        with self._lock:
            chain = self._chains.get(cache_key)
            if chain is None or row.instrument_token not in chain.row_of:
                group = self._listing().groups[(row.index_key, row.expiry)]
                chain = build_chain_day(self.market, row.index_key, row.expiry, day, group)
                if len(self._chains) > 48:
                    self._chains.clear()
                self._chains[cache_key] = chain
            return chain

    def _index_quote(self, row: Listing, day: date, second: int, full: bool) -> dict:
        path, high, low = self.market.spot_path(row.index_key, day)
        last = float(path[second])
        close = self.market.previous_close(row.index_key, day)
        ohlc = {"open": float(path[0]), "high": float(high[second]), "low": float(low[second]),
                "close": close}
        out = {"instrument_token": row.instrument_token, "last_price": last, "ohlc": ohlc}
        if not full:
            return out
        return {
            "instrument_token": row.instrument_token, "last_price": last,
            "last_quantity": 0, "buy_quantity": 0, "sell_quantity": 0, "volume": 0,
            "average_price": 0, "oi": 0, "oi_day_high": 0, "oi_day_low": 0,
            "net_change": round(last - close, 2),
            "lower_circuit_limit": 0, "upper_circuit_limit": 0, "ohlc": ohlc,
            "depth": empty_depth(),
        }

    def _derivative_quote(self, row: Listing, day: date, second: int, full: bool) -> dict:
        chain = self._chain(row, day)
        i = chain.row_of[row.instrument_token]
        assert row.expiry is not None
        boundary, rest = divmod(second, 60)
        minute = min(boundary, SESSION_SECONDS // 60 - 1)
        spot = self.market.spot(row.index_key, day, second)
        t = years_left(row.expiry, float(second), day)
        is_fut = row.instrument_type == "FUT"
        fair = float(fair_prices(self.market, row.index_key, day, np.float64(row.strike),
                                 row.instrument_type == "CE", is_fut, spot, t))
        bid, ask = (float(x) for x in book_top(np.float64(fair), row.tick_size, is_fut))
        dayo = day.toordinal()
        no_bids = (not is_fut and fair < 0.3
                   and float(hash_uniform(self.seed, 62, row.instrument_token, dayo)) < 0.3)
        if no_bids:
            bid = 0.0
        last = ask if (chain.side[i, minute] > 0 or bid <= 0) else bid
        open_ = float(chain.trade[i, 0])
        high = max(float(chain.high[i, minute]), last)
        low = min(float(chain.low[i, minute]), last)
        close = float(chain.prev_close[i])
        ohlc = {"open": open_, "high": high, "low": low, "close": close}
        out = {"instrument_token": row.instrument_token, "last_price": last, "ohlc": ohlc}
        if not full:
            return out
        lots_row = chain.lots[i]
        if boundary >= SESSION_SECONDS // 60:
            lots_now = float(lots_row[-1])
        else:
            lots_now = float(lots_row[boundary]
                             + rest / 60.0 * (lots_row[boundary + 1] - lots_row[boundary]))
        whole = float(np.floor(lots_now + 1e-9))
        volume = int(whole) * chain.lot
        value = float(np.interp(whole, lots_row, chain.value[i]))
        average = round(value / volume, 2) if volume else 0.0
        per_minute = float(lots_row[minute + 1] - lots_row[minute])
        liquidity = float(np.clip(per_minute * 0.5, 3.0, 400.0))
        depth = depth_levels(self.seed, row.instrument_token, day, second, bid, ask,
                             row.tick_size, chain.lot, liquidity, no_bids)
        depth_mult = 3.0 + 12.0 * float(hash_uniform(self.seed, 63, row.instrument_token, dayo,
                                                     second))
        buy_q = int(sum(level["quantity"] for level in depth["buy"]) * depth_mult)
        sell_q = int(sum(level["quantity"] for level in depth["sell"]) * depth_mult)
        last_qty = chain.lot * (1 + int(hash_uniform(self.seed, 64, row.instrument_token, dayo,
                                                     second) * 5))
        if is_fut:
            lower, upper = round_tick(close * 0.9, row.tick_size), round_tick(close * 1.1,
                                                                               row.tick_size)
        else:
            lower = row.tick_size
            upper = round_tick(close + max(close, spot * 0.02), row.tick_size)
        return {
            "instrument_token": row.instrument_token,
            "last_price": last,
            "last_quantity": last_qty if volume else 0,
            "buy_quantity": buy_q,
            "sell_quantity": sell_q,
            "volume": volume,
            "average_price": average,
            "oi": int(chain.oi[i, boundary]),
            "oi_day_high": int(chain.oi_high[i, boundary]),
            "oi_day_low": int(chain.oi_low[i, boundary]),
            "net_change": round(last - close, 2),
            "lower_circuit_limit": float(lower),
            "upper_circuit_limit": float(upper),
            "ohlc": ohlc,
            "depth": depth,
        }

    def _answer(self, keys: Iterable[str], limit: int, route: str, full: bool) -> dict:
        found = self._resolve(keys, limit, route)
        now = self.now()
        day, second = session_point(now)
        stamp = now.astimezone(IST).strftime(KITE_TIME)
        traded = self.market.session_time(day, second).strftime(KITE_TIME)
        out: dict[str, dict] = {}
        for key, row in found:
            if row.is_index:
                item = self._index_quote(row, day, second, full)
            else:
                item = self._derivative_quote(row, day, second, full)
            if full:
                item = {"instrument_token": item.pop("instrument_token"), "timestamp": stamp,
                        "last_trade_time": traded, **item}
            out[key] = item
        return out

    def quote(self, keys: Iterable[str]) -> dict:
        """GET /quote: full quotes keyed as requested; unknown instruments are left out."""
        return self._answer(keys, QUOTE_LIMIT, "/quote", full=True)

    def ohlc(self, keys: Iterable[str]) -> dict:
        """GET /quote/ohlc: instrument_token, last_price and ohlc."""
        return self._answer(keys, LTP_LIMIT, "/quote/ohlc", full=False)

    def ltp(self, keys: Iterable[str]) -> dict:
        """GET /quote/ltp: instrument_token and last_price."""
        return {
            key: {"instrument_token": v["instrument_token"], "last_price": v["last_price"]}
            for key, v in self._answer(keys, LTP_LIMIT, "/quote/ltp", full=False).items()
        }
