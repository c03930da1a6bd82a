"""Index dynamics of the simulated market: daily closes, intraday spot paths and ATM volatility.

Everything is a pure function of the seed and the date, so the same seed replays the same
market and any day can be computed without simulating the days before it: daily closes follow
a mean-reverting walk around realistic late-2026 levels (correlated across indices), and each
session's spot path is a Brownian bridge from the open to that day's close.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import numpy as np

from optui.simulator import calendar as cal
from optui.timeutil import IST, MARKET_CLOSE, MARKET_OPEN

SESSION_SECONDS = 22_500  # 09:15 to 15:30
SESSION_MINUTES = 375
RATE = 0.065
DIV_YIELD = 0.012
FIRST_DAY = date(2025, 1, 1)  # the clock may start anywhere from here ...
# ... to here: past the holiday table's years only weekends close, so the demo keeps working.
LAST_DAY = date(2035, 9, 30)
SERIES_START = date(2024, 12, 2)
SERIES_END = date(2035, 12, 31)
ANCHOR = date(2026, 11, 2)  # closes sit near the configured levels around this day
PHI = 0.985  # daily mean reversion of log levels (stationary spread about 6 %)


@dataclass(frozen=True, slots=True)
class IndexDynamics:
    """How one index moves and trades."""

    level: float
    daily_vol: float
    atm_vol: float  # usual ATM implied volatility; NIFTY's sets the market's vol level
    beta: float  # loading on the common market factor
    call_volume: float  # call lots per day summed over strikes, 6 days before expiry
    call_oi: float  # call open interest in lots summed over strikes, at expiry
    future_volume: float  # front-month future lots per day
    future_oi: float  # front-month future open interest in lots


# ATM vols (MARKET.md): BANKNIFTY typically 1-4 points above NIFTY, MIDCPNIFTY higher still,
# FINNIFTY between them, SENSEX close to NIFTY. Each index's vol is NIFTY's times its usual
# ratio, moved day to day by at most IV_SPREAD_NOISE either way, so the order holds every day.
DYNAMICS: dict[str, IndexDynamics] = {
    "NIFTY": IndexDynamics(26_000.0, 0.0075, 0.105, 0.95, 20e6, 3.0e6, 150e3, 250e3),
    "BANKNIFTY": IndexDynamics(59_000.0, 0.0085, 0.132, 0.85, 20e6, 0.8e6, 50e3, 90e3),
    "FINNIFTY": IndexDynamics(27_500.0, 0.0080, 0.119, 0.85, 1.5e6, 0.1e6, 5e3, 10e3),
    "MIDCPNIFTY": IndexDynamics(13_500.0, 0.0100, 0.158, 0.75, 2.0e6, 0.2e6, 8e3, 15e3),
    "SENSEX": IndexDynamics(85_000.0, 0.0072, 0.108, 0.97, 12e6, 2.0e6, 10e3, 20e3),
}
IV_SPREAD_NOISE = 0.045  # relative day-to-day noise of an index's vol against NIFTY's, at most
# Intraday ATM vol (MARKET.md: drifts a few tenths of a point through a session): it rises as
# the index falls (VOL_SPOT_BETA x the log move since the open) plus a market-wide random walk
# whose standard deviation over a whole session is INTRADAY_VOL_NOISE (relative).
VOL_SPOT_BETA = 3.0
INTRADAY_VOL_NOISE = 0.025
INDEX_ORDER: tuple[str, ...] = tuple(DYNAMICS)

_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: a fast, well-spread hash of uint64 arrays."""
    with np.errstate(over="ignore"):
        x = (x + np.uint64(0x9E3779B97F4A7C15)) & _MASK64
        x = ((x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)) & _MASK64
        x = ((x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)) & _MASK64
        return x ^ (x >> np.uint64(31))


def hash_uniform(*keys: object) -> np.ndarray:
    """Uniforms in (0, 1) from integer keys (scalars or broadcastable arrays).

    Used instead of a sequential generator wherever a draw belongs to one instrument, so that
    its value does not depend on which other instruments happen to be listed or requested.
    """
    h = np.zeros((), dtype=np.uint64)
    for key in keys:
        h = _mix(h ^ np.asarray(key).astype(np.uint64))
    return ((h >> np.uint64(11)).astype(np.float64) + 0.5) / float(1 << 53)


def hash_normal(*keys: object) -> np.ndarray:
    """Standard normals from integer keys (Box-Muller on two hashed uniforms)."""
    u1 = hash_uniform(*keys, 1)
    u2 = hash_uniform(*keys, 2)
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)


def session_open(day: date) -> datetime:
    """09:15 IST on `day`."""
    return datetime.combine(day, MARKET_OPEN, tzinfo=IST)


def session_close(day: date) -> datetime:
    """15:30 IST on `day`."""
    return datetime.combine(day, MARKET_CLOSE, tzinfo=IST)


def session_point(at: datetime) -> tuple[date, int]:
    """The trading day and second into its session whose state the market shows at `at`.

    Outside 09:15-15:30 (and on holidays) the market is closed: prices freeze at the last close.
    """
    local = at.astimezone(IST)
    day = local.date()
    if cal.is_trading_day(day) and local >= session_open(day):
        second = int((local - session_open(day)).total_seconds())
        return day, min(second, SESSION_SECONDS)
    return cal.previous_trading_day(day), SESSION_SECONDS


def listing_day(at: datetime) -> date:
    """The trading day whose contracts are listed at `at` (today, or the next session)."""
    return cal.trading_day_on_or_after(at.astimezone(IST).date())


class MarketModel:
    """Seeded index dynamics; thread-safe, with per-day caches."""

    def __init__(self, seed: int = 7) -> None:
        self.seed = int(seed)
        self._lock = threading.Lock()
        self._paths: dict[tuple[str, date], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._vol_paths: dict[tuple[str, date], np.ndarray] = {}
        days: list[date] = []
        day = cal.trading_day_on_or_after(SERIES_START)
        while day <= SERIES_END:
            days.append(day)
            day = cal.next_trading_day(day)
        self._days = days
        self._day_index = {d: i for i, d in enumerate(days)}
        rng = np.random.default_rng([self.seed, 11])
        shocks = rng.standard_normal((len(days), 1 + len(INDEX_ORDER)))
        vol_shocks = rng.standard_normal((len(days), len(INDEX_ORDER)))
        anchor = self._day_index[cal.trading_day_on_or_before(ANCHOR)]
        self._closes: dict[str, np.ndarray] = {}
        self._atm: dict[str, np.ndarray] = {}
        market_vol = np.ones(len(days))
        for i, key in enumerate(INDEX_ORDER):
            dyn = DYNAMICS[key]
            eps = dyn.daily_vol * (
                dyn.beta * shocks[:, 0] + np.sqrt(1.0 - dyn.beta**2) * shocks[:, 1 + i]
            )
            x = np.zeros(len(days))
            for j in range(anchor + 1, len(days)):
                x[j] = PHI * x[j - 1] + eps[j]
            for j in range(anchor - 1, -1, -1):
                x[j] = PHI * x[j + 1] + eps[j]
            self._closes[key] = np.round(dyn.level * np.exp(x), 2)
            if key == "NIFTY":
                # The market's vol rises as NIFTY falls below its usual level, plus daily noise.
                market_vol = np.clip(np.exp(0.06 * vol_shocks[:, i] - 2.0 * x), 0.6, 2.0)
        for i, key in enumerate(INDEX_ORDER):
            spread = 1.0 if key == "NIFTY" else np.exp(
                IV_SPREAD_NOISE / 2.5 * np.clip(vol_shocks[:, i], -2.5, 2.5))
            self._atm[key] = DYNAMICS[key].atm_vol * market_vol * spread

    def _index_of(self, day: date) -> int:
        try:
            return self._day_index[day]
        except KeyError:
            raise ValueError(
                f"{day} is not a simulated trading day: choose a date between "
                f"{SERIES_START} and {SERIES_END} that is not a weekend or exchange holiday"
            ) from None

    def close(self, key: str, day: date) -> float:
        """Closing level of the index on trading day `day`."""
        return float(self._closes[key][self._index_of(day)])

    def previous_close(self, key: str, day: date) -> float:
        """Close of the trading day before `day`: Kite's ohlc.close for `day`."""
        return float(self._closes[key][self._index_of(day) - 1])

    def atm_vol(self, key: str, day: date) -> float:
        """At-the-money volatility at the open of trading day `day` (annual, 0.105 = 10.5 %)."""
        return float(self._atm[key][self._index_of(day)])

    def atm_vol_path(self, key: str, day: date) -> np.ndarray:
        """Per-second ATM volatility through the session of `day` (SESSION_SECONDS + 1 values).

        Starts at `atm_vol(key, day)`; moves against the index (VOL_SPOT_BETA) and with a
        market-wide random walk on the minute grid, interpolated linearly between minutes.
        """
        cache_key = (key, day)
        with self._lock:
            hit = self._vol_paths.get(cache_key)
        if hit is not None:
            return hit
        path = self.spot_path(key, day)[0]
        walk_rng = np.random.default_rng([self.seed, 23, day.toordinal()])
        steps = walk_rng.standard_normal(SESSION_MINUTES) * (
            INTRADAY_VOL_NOISE / np.sqrt(SESSION_MINUTES))
        walk = np.interp(np.arange(SESSION_SECONDS + 1) / 60.0, np.arange(SESSION_MINUTES + 1),
                         np.concatenate(([0.0], np.cumsum(steps))))
        vols = self.atm_vol(key, day) * np.exp(walk - VOL_SPOT_BETA * np.log(path / path[0]))
        with self._lock:
            if len(self._vol_paths) > 64:
                self._vol_paths.clear()
            self._vol_paths[cache_key] = vols
        return vols

    def atm_vol_at(self, key: str, day: date, second: np.ndarray | float) -> np.ndarray:
        """ATM volatility `second` seconds into the session of `day` (whole seconds, any shape)."""
        idx = np.clip(np.asarray(second), 0, SESSION_SECONDS).astype(np.int64)
        return self.atm_vol_path(key, day)[idx]

    def spot_path(self, key: str, day: date) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per-second spot of the session (SESSION_SECONDS + 1 values), running high, low."""
        cache_key = (key, day)
        with self._lock:
            hit = self._paths.get(cache_key)
        if hit is not None:
            return hit
        dyn = DYNAMICS[key]
        i = INDEX_ORDER.index(key)
        prev, close = self.previous_close(key, day), self.close(key, day)
        common = np.random.default_rng([self.seed, 21, day.toordinal()])
        own = np.random.default_rng([self.seed, 22, i, day.toordinal()])
        open_ = prev * np.exp(0.3 * dyn.daily_vol * own.standard_normal())
        n = SESSION_SECONDS
        step_sd = 0.8 * dyn.daily_vol / np.sqrt(n)
        steps = step_sd * (dyn.beta * common.standard_normal(n)
                           + np.sqrt(1.0 - dyn.beta**2) * own.standard_normal(n))
        walk = np.concatenate(([0.0], np.cumsum(steps)))
        frac = np.arange(n + 1) / n
        log_path = np.log(open_) + frac * np.log(close / open_) + (walk - frac * walk[-1])
        path = np.round(np.exp(log_path), 2)
        path[-1] = close
        result = (path, np.maximum.accumulate(path), np.minimum.accumulate(path))
        with self._lock:
            if len(self._paths) > 64:
                self._paths.clear()
            self._paths[cache_key] = result
        return result

    def spot(self, key: str, day: date, second: int) -> float:
        """Index level `second` seconds into the session of `day`."""
        return float(self.spot_path(key, day)[0][second])

    def forward(self, spot: float | np.ndarray, t_years: float | np.ndarray) -> np.ndarray:
        """Cost-of-carry forward of the index for `t_years`."""
        return np.asarray(spot) * np.exp((RATE - DIV_YIELD) * np.asarray(t_years))

    def session_time(self, day: date, second: int) -> datetime:
        """The aware instant `second` seconds after 09:15 IST on `day`."""
        return session_open(day) + timedelta(seconds=second)
