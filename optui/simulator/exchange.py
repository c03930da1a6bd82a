"""The simulated exchange in-process: a clock, the listed contracts and Kite-shaped answers.

Methods return exactly what Kite Connect returns in its `data` field, so the HTTP server is a
thin wrapper and the app can also use this object directly as its embedded default source.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import numpy as np

from optui.errors import SourceError
from optui.simulator import calendar as cal
from optui.simulator.chain import (
    ChainDay,
    build_chain_day,
    empty_depth,
)
from optui.simulator.instruments import Listing, build_listings, to_csv
from optui.simulator.market import (
    FIRST_DAY,
    INDEX_ORDER,
    LAST_DAY,
    MarketModel,
    listing_day,
    session_open,
    session_point,
)
from optui.simulator.quote_state import ChainQuotes, chain_quotes
from optui.tick_packets import TickBatch
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


@dataclass(frozen=True, slots=True)
class _StreamPlan:
    """A streamed token list resolved: the listed tokens kept (positions `keep` of the list),
    the indices (row, output position) and the derivative groups of one index and expiry
    (first row, output positions, tokens)."""

    keep: np.ndarray
    tokens: np.ndarray
    indices: list[tuple[Listing, int]]
    groups: list[tuple[Listing, np.ndarray, np.ndarray]]


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
        api_secret: str | None = None,
    ) -> None:
        if int(seed) < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed}")
        if not speed > 0:
            raise ValueError(f"speed must be positive (1 = real time), got {speed}")
        self.seed = int(seed)
        self.speed = float(speed)
        self.api_key = api_key
        self.access_token = access_token
        # With a secret, /session/token checks Kite's checksum sha256(api_key + request_token + secret).
        self.api_secret = api_secret
        self.market = MarketModel(self.seed)
        self._clock = clock
        self._lock = threading.RLock()
        self._token_expired = False
        # Instruments left out of quote answers, as Kite omits those it cannot price.
        self.unpriced: set[int] = set()
        self._listed: dict[date, _Listed] = {}
        self._chains: dict[tuple[str, date, date], ChainDay] = {}
        self._quote_cache: dict[tuple[int, date, int], tuple[ChainDay, ChainQuotes]] = {}
        self._plans: dict[tuple[int, bytes], _StreamPlan] = {}
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
        if not FIRST_DAY <= at.astimezone(IST).date() <= LAST_DAY:
            raise ValueError(f"simulated time {at:%Y-%m-%d} is outside the simulator's calendar: "
                             f"choose a start between {FIRST_DAY} and {LAST_DAY}")
        with self._lock:
            self._start = at.astimezone(IST)
            self._t0 = self._clock()

    def now(self) -> datetime:
        """Simulated time, aware in IST: start + real elapsed x speed."""
        with self._lock:
            elapsed = (self._clock() - self._t0) * self.speed
            return self._start + timedelta(seconds=elapsed)

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

    def generate_session(self, request_token: str, api_key: str | None = None,
                         checksum: str | None = None) -> dict:
        """POST /session/token: any request token buys the configured access token.

        When the exchange has an API secret, the checksum must be Kite's
        sha256(api_key + request_token + api_secret), as the real endpoint demands.
        """
        if not request_token:
            raise KiteApiError(400, "InputException", "Missing request_token")
        if api_key is not None and api_key != self.api_key:
            raise KiteApiError(403, "TokenException", "Invalid `api_key`.")
        if self.api_secret is not None:
            expected = hashlib.sha256(f"{self.api_key}{request_token}{self.api_secret}".encode()).hexdigest()
            if not checksum or not hmac.compare_digest(checksum, expected):
                raise KiteApiError(403, "TokenException", "Invalid `checksum`.")
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
    def omit(self, keys: Iterable[str], omitted: bool = True) -> None:
        """Leave these instruments ('EXCHANGE:SYMBOL' or token) out of quote answers, or back in.

        Kite drops an instrument it cannot price from a /quote answer without an error; this
        reproduces that for tests and demos.
        """
        listed = self._listing()
        for key in keys:
            row = listed.by_key.get(key) or listed.by_token.get(str(key))
            if row is None:
                raise ValueError(f"{key!r} is not listed on {listing_day(self.now())}")
            with self._lock:
                (self.unpriced.add if omitted else self.unpriced.discard)(row.instrument_token)

    @staticmethod
    def _before_first_trade(item: dict) -> None:
        """Kite's quote of a trading day before its first trade: ohlc 0 but the previous close.

        Prices are the previous session's last; the day's volume and VWAP start from 0.
        """
        item["ohlc"] = {"open": 0.0, "high": 0.0, "low": 0.0, "close": float(item["last_price"])}
        if "volume" in item:
            item.update(volume=0, average_price=0.0, last_quantity=0, net_change=0.0)

    def _resolve(self, keys: Iterable[str], limit: int,
                 route: str) -> tuple[_Listed, list[tuple[str, Listing]]]:
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
        return listed, found

    def _chain(self, row: Listing, day: date, listed: _Listed) -> ChainDay:
        assert row.expiry is not None
        cache_key = (row.index_key, row.expiry, day)
        with self._lock:
            chain = self._chains.get(cache_key)
            if chain is None or row.instrument_token not in chain.row_of:
                group = listed.groups[(row.index_key, row.expiry)]
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

    def _chain_quotes(self, chain: ChainDay, key: str, day: date, second: int) -> ChainQuotes:
        """Every row of `chain` quoted at `second` (cached: the ticker's connections and the
        REST calls of one simulated second share one computation)."""
        cache_key = (id(chain), day, second)
        with self._lock:
            hit = self._quote_cache.get(cache_key)
            if hit is not None and hit[0] is chain:
                return hit[1]
        tokens = np.fromiter(chain.row_of, dtype=np.int64, count=len(chain.row_of))
        quotes = chain_quotes(self.market, self.seed, chain, tokens, key, day, second)
        with self._lock:
            if len(self._quote_cache) >= 128:
                self._quote_cache.clear()
            self._quote_cache[cache_key] = (chain, quotes)
        return quotes

    def _derivative_quotes(self, rows: list[Listing], day: date, second: int, full: bool,
                           listed: _Listed) -> list[dict]:
        """Quotes of contracts sharing one index and expiry, computed together."""
        first = rows[0]
        assert first.expiry is not None
        chain = self._chain(first, day, listed)
        idx = np.array([chain.row_of[r.instrument_token] for r in rows])
        q = self._chain_quotes(chain, first.index_key, day, second)
        last = q.last_price[idx]
        ohlcs = [{"open": float(o), "high": float(h), "low": float(lo), "close": float(c)}
                 for o, h, lo, c in zip(q.open[idx], q.high[idx], q.low[idx], q.close[idx],
                                        strict=True)]
        if not full:
            return [{"instrument_token": r.instrument_token, "last_price": float(p), "ohlc": o}
                    for r, p, o in zip(rows, last, ohlcs, strict=True)]
        cols = [a[idx].tolist() for a in (
            q.last_price, q.last_quantity, q.buy_quantity, q.sell_quantity, q.volume,
            q.average_price, q.oi, q.oi_day_high, q.oi_day_low, q.lower_circuit_limit,
            q.upper_circuit_limit)]
        change = [round(c, 2) for c in (last - q.close[idx]).tolist()]
        dp, dq, dn = (a[idx].tolist() for a in (q.depth_price, q.depth_quantity,
                                                 q.depth_orders))
        out = []
        for j, row in enumerate(rows):
            depth = {side: [{"price": px, "quantity": qty, "orders": n}
                            for px, qty, n in zip(dp[j][s], dq[j][s], dn[j][s], strict=True)]
                     for s, side in enumerate(("buy", "sell"))}
            out.append({
                "instrument_token": row.instrument_token,
                "last_price": cols[0][j],
                "last_quantity": cols[1][j],
                "buy_quantity": cols[2][j],
                "sell_quantity": cols[3][j],
                "volume": cols[4][j],
                "average_price": cols[5][j],
                "oi": cols[6][j],
                "oi_day_high": cols[7][j],
                "oi_day_low": cols[8][j],
                "net_change": change[j],
                "lower_circuit_limit": cols[9][j],
                "upper_circuit_limit": cols[10][j],
                "ohlc": ohlcs[j],
                "depth": depth,
            })
        return out

    def _answer(self, keys: Iterable[str], limit: int, route: str, full: bool) -> dict:
        listed, found = self._resolve(keys, limit, route)
        found = [(key, row) for key, row in found if row.instrument_token not in self.unpriced]
        now = self.now()
        day, second = session_point(now)
        local = now.astimezone(IST)
        pre_open = cal.is_trading_day(local.date()) and local < session_open(local.date())
        stamp = now.astimezone(IST).strftime(KITE_TIME)
        traded = self.market.session_time(day, second).strftime(KITE_TIME)
        items: dict[int, dict] = {}
        groups: dict[tuple[str, date], list[int]] = {}
        for n, (_, row) in enumerate(found):
            if row.is_index:
                items[n] = self._index_quote(row, day, second, full)
            else:
                assert row.expiry is not None
                groups.setdefault((row.index_key, row.expiry), []).append(n)
        for members in groups.values():
            quotes = self._derivative_quotes([found[n][1] for n in members], day, second, full,
                                             listed)
            items.update(zip(members, quotes, strict=True))
        out: dict[str, dict] = {}
        for n, (key, _) in enumerate(found):
            item = items[n]
            if pre_open:
                self._before_first_trade(item)
            if full:
                item = {"instrument_token": item.pop("instrument_token"), "timestamp": stamp,
                        "last_trade_time": traded, **item}
            out[key] = item
        return out

    def stream_quotes(self, tokens: Iterable[int]) -> dict[int, dict]:
        """Full quotes of the listed tokens at the simulated now, by token, for the ticker.

        The same values GET /quote gives at the same simulated moment; unknown tokens are left
        out; no per-request instrument limit (the ticker limits per connection instead).
        """
        listed = self._listing()
        keys = [str(int(t)) for t in tokens if str(int(t)) in listed.by_token]
        if not keys:
            return {}
        return {int(k): v for k, v in self._answer(keys, len(keys), "ticker", full=True).items()}

    def _stream_plan(self, tokens: np.ndarray, listed: _Listed) -> _StreamPlan:
        """Where each streamed token's quote comes from (cached per token list and listing)."""
        cache_key = (id(listed), tokens.tobytes())
        with self._lock:
            plan = self._plans.get(cache_key)
        if plan is not None:
            return plan
        rows = [listed.by_token.get(str(t)) for t in tokens.tolist()]
        keep = np.array([r is not None for r in rows], dtype=bool)
        known = [r for r in rows if r is not None]
        indices: list[tuple[Listing, int]] = []
        groups: dict[tuple[str, date], list[int]] = {}
        for n, row in enumerate(known):
            if row.is_index:
                indices.append((row, n))
            else:
                assert row.expiry is not None
                groups.setdefault((row.index_key, row.expiry), []).append(n)
        plan = _StreamPlan(
            keep=np.flatnonzero(keep), tokens=tokens[keep], indices=indices,
            groups=[(known[m[0]], np.array(m, dtype=np.intp),
                     np.array([known[n].instrument_token for n in m], dtype=np.int64))
                    for m in groups.values()])
        with self._lock:
            if len(self._plans) >= 32:
                self._plans.clear()
            self._plans[cache_key] = plan
        return plan

    def stream_batch(self, tokens: np.ndarray, modes: np.ndarray) -> TickBatch:
        """Ticks of the listed `tokens` (with their mode codes) at the simulated now, in order.

        The same values GET /quote gives at the same simulated moment, computed as arrays;
        unknown and unpriced tokens are left out; no per-request instrument limit (the ticker
        limits per connection instead).
        """
        tokens = np.asarray(tokens, dtype=np.int64)
        modes = np.asarray(modes, dtype=np.int8)
        if self.unpriced:
            priced = ~np.isin(tokens, np.fromiter(self.unpriced, dtype=np.int64))
            tokens, modes = tokens[priced], modes[priced]
        listed = self._listing()
        plan = self._stream_plan(tokens, listed)
        now = self.now()
        day, second = session_point(now)
        local = now.astimezone(IST)
        pre_open = cal.is_trading_day(local.date()) and local < session_open(local.date())
        b = TickBatch.empty(plan.tokens.size)
        b.instrument_token[:] = plan.tokens
        b.mode[:] = modes[plan.keep]
        b.tradable = (plan.tokens & 0xFF) != 9
        b.exchange_timestamp[:] = int(local.replace(microsecond=0).timestamp())
        b.last_trade_time[:] = int(self.market.session_time(day, second).timestamp())
        for row, n in plan.indices:
            path, high, low = self.market.spot_path(row.index_key, day)
            b.last_price[n] = path[second]
            b.open[n], b.high[n], b.low[n] = path[0], high[second], low[second]
            b.close[n] = self.market.previous_close(row.index_key, day)
        for first, pos, group_tokens in plan.groups:
            chain = self._chain(first, day, listed)
            idx = np.fromiter((chain.row_of[t] for t in group_tokens.tolist()), dtype=np.intp,
                              count=group_tokens.size)
            q = self._chain_quotes(chain, first.index_key, day, second)
            for name in ("last_price", "last_quantity", "average_price", "volume",
                         "buy_quantity", "sell_quantity", "open", "high", "low", "close", "oi",
                         "oi_day_high", "oi_day_low", "depth_price", "depth_quantity",
                         "depth_orders"):
                getattr(b, name)[pos] = getattr(q, name)[idx]
        if pre_open:  # Kite before the first trade: ohlc 0 but the previous close, no volume
            b.close[:] = b.last_price
            for arr in (b.open, b.high, b.low, b.volume, b.average_price, b.last_quantity):
                arr[:] = 0
        return b

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

    def historical(self, instrument_token: str, interval: str, start: str, end: str,
                   continuous: bool = False, oi: bool = False) -> dict:
        """GET /instruments/historical/{token}/{interval}: `{"candles": [...]}` (see
        optui.simulator.historical); an unlisted token or a refused request is an InputException."""
        from optui.simulator.historical import (
            INTERVALS,
            HistoricalError,
            day_candles,
            last_completed_session,
            parse_kite_date,
        )

        if interval not in INTERVALS:
            raise KiteApiError(400, "InputException",
                               f"invalid interval {interval!r}: the simulator serves 'day' candles")
        row = self._listing().by_token.get(str(instrument_token))
        if row is None:
            raise KiteApiError(400, "InputException", f"invalid token {instrument_token!r}")
        try:
            first, last = parse_kite_date(start), parse_kite_date(end)
            candles = day_candles(self.market, row, first, last, last_completed_session(self.now()),
                                  continuous, oi)
        except HistoricalError as exc:
            raise KiteApiError(400, "InputException", str(exc)) from None
        return {"candles": candles}
