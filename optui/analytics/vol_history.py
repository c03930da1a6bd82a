"""Implied-volatility standing against its own history, and close-to-close realised volatility.

Definitions (the ones traders' tools use; tastytrade / Sinclair, *Volatility Trading*, ch. 2):

- IV rank = (IV now - lowest close) / (highest close - lowest close) x 100 over the look-back,
  today's value included in the range; 0 = at the low, 100 = at the high.
- IV percentile = share of the look-back's daily closes strictly below IV now, x 100.
- Realised volatility = sample standard deviation (n - 1) of the last N daily log returns of the
  index close, annualised with sqrt(252) trading days, in percent.

The look-back is one year (`YEAR_DAYS` trading days); with less history the figures are computed
over what exists and `IvStanding.days` says how much that is, so the screen can say "IVP 63 (41 d)".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

YEAR_DAYS = 252
"""Trading days in the one-year look-back and in the annualisation of realised volatility."""
RV_DAYS = 20
"""Daily returns in the realised-volatility window."""
MIN_HISTORY_DAYS = 5
"""Fewer past closes than this give no rank or percentile (NaN): five points say nothing."""


@dataclass(frozen=True, slots=True)
class IvStanding:
    """Where IV now sits in its past daily closes.

    `rank` and `percentile` are 0..100 (NaN when the history is too short or flat); `days` is how
    many past daily closes they use (at most YEAR_DAYS).
    """

    rank: float
    percentile: float
    days: int

    @property
    def full_year(self) -> bool:
        """True when a whole year of closes stands behind the figures."""
        return self.days >= YEAR_DAYS

    def label(self) -> str:
        """'IVR 40 IVP 63 (1y)', or '(41 d)' over a shorter history, or 'IVR – (3 d)'."""
        span = "1y" if self.full_year else f"{self.days} d"
        if not math.isfinite(self.percentile):
            return f"IVR – IVP – ({span})"
        rank = f"{self.rank:.0f}" if math.isfinite(self.rank) else "–"
        return f"IVR {rank} IVP {self.percentile:.0f} ({span})"

    def short_label(self, with_days: bool = True) -> str:
        """'30/63 41d' (rank/percentile, then the days behind them when less than a year),
        '30/63' over a full year, '–/– 3d' when the history is too short: the 80-column form."""
        rank = f"{self.rank:.0f}" if math.isfinite(self.rank) else "–"
        pct = f"{self.percentile:.0f}" if math.isfinite(self.percentile) else "–"
        days = f" {self.days}d" if with_days and not self.full_year else ""
        return f"{rank}/{pct}{days}"

    def short_width(self) -> int:
        """The widest short_label these days can give ('100/100 41d'), so a column sized by it
        keeps its width as IV moves."""
        return len("100/100") + (0 if self.full_year else len(f" {self.days}d"))


def iv_standing(current: float, past_closes: Sequence[float],
                lookback: int = YEAR_DAYS) -> IvStanding:
    """IV rank and percentile of `current` against the newest `lookback` of `past_closes`.

    `past_closes`: daily ATM IV closes (percent) of earlier sessions, oldest first; NaN entries
    are skipped. `current` is today's IV (percent). NaN results when `current` is NaN, fewer than
    MIN_HISTORY_DAYS closes exist, or (rank only) the range is flat.
    """
    hist = np.asarray(past_closes, dtype=float)
    hist = hist[np.isfinite(hist)][-lookback:] if lookback > 0 else hist[:0]
    days = int(hist.size)
    if not math.isfinite(current) or days < MIN_HISTORY_DAYS:
        return IvStanding(math.nan, math.nan, days)
    percentile = float(np.count_nonzero(hist < current)) / days * 100.0
    low, high = min(float(hist.min()), current), max(float(hist.max()), current)
    rank = (current - low) / (high - low) * 100.0 if high > low else math.nan
    return IvStanding(rank, percentile, days)


def realised_vol(closes: Sequence[float], window: int = RV_DAYS,
                 year_days: int = YEAR_DAYS) -> float:
    """Close-to-close realised volatility, percent, from daily closes (oldest first).

    Uses the last `window` log returns (needs window + 1 positive closes; NaN otherwise):
    stdev(ln(c_i / c_{i-1}), ddof=1) x sqrt(year_days) x 100.
    """
    c = np.asarray(closes, dtype=float)
    c = c[np.isfinite(c) & (c > 0)]
    if window < 2 or c.size < window + 1:
        return math.nan
    returns = np.diff(np.log(c[-(window + 1):]))
    return float(np.std(returns, ddof=1) * math.sqrt(year_days) * 100.0)
