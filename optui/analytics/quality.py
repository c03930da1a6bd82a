"""Per-leg data-quality flags, so a trader sees which quotes not to trust before acting on them.

Each flag is a bit in an integer mask (cheap to store and filter) with a name for screens and
exports; `quality_flags` gives the comma-joined names, "" for a clean quote. Checks:

- `stale`: the last trade is older than `stale_after_s` before the quote time.
- `no_bid` / `no_ask`: that side of the book is empty (0 or unknown).
- `crossed`: bid above ask with both present (a broken or mid-update book).
- `below_intrinsic`: last price under the discounted intrinsic value by more than a tick, which
  no live market allows for long (usually an old trade after the index moved).
- `wide_spread`: (ask - bid) / mid above `wide_spread_pct` percent.
- `no_price`: no last price (0 or NaN); below_intrinsic is then not judged.

`BUCKET_FLAGS` name the faults of a whole expiry's figures rather than of one leg.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

STALE = 1 << 0
NO_BID = 1 << 1
NO_ASK = 1 << 2
CROSSED = 1 << 3
BELOW_INTRINSIC = 1 << 4
WIDE_SPREAD = 1 << 5
NO_PRICE = 1 << 6
NO_IV = 1 << 7  # set by the collector from the IV solver's status, not by quality_mask

FLAG_BITS: dict[str, int] = {
    "stale": STALE,
    "no_bid": NO_BID,
    "no_ask": NO_ASK,
    "crossed": CROSSED,
    "below_intrinsic": BELOW_INTRINSIC,
    "wide_spread": WIDE_SPREAD,
    "no_price": NO_PRICE,
    "no_iv": NO_IV,
}
"""Flag name to bit, in the order names appear in a joined string."""

BUCKET_FLAGS: dict[str, str] = {
    "no_price": "an ATM leg has no price this cycle: straddle and ATM IV are empty or one-sided",
    "not_traded": "an ATM or skew-wing leg has not traded today: ATM IV, straddle or skew use old prices",
    "partial_chain": "some listed instruments did not quote: PCR, max pain and OI totals are partial",
}
"""Flags of an expiry bucket's figures (`BucketStats.flags`), with what each means to a trader."""

DEFAULT_STALE_AFTER_S = 300.0
DEFAULT_WIDE_SPREAD_PCT = 10.0

# Joined names for every possible mask: turning masks into strings is then one array lookup.
# Object dtype shares the 256 Python strings instead of copying 64-character cells per leg.
_NAMES_BY_MASK = np.array(
    [
        ",".join(name for name, bit in FLAG_BITS.items() if m & bit)
        for m in range(1 << len(FLAG_BITS))
    ],
    dtype=object,
)


def _f(values: ArrayLike) -> np.ndarray:
    return np.asarray(values, dtype=float)


def discounted_intrinsic(
    forward: ArrayLike, strike: ArrayLike, t_years: ArrayLike, rate: ArrayLike, is_call: ArrayLike
) -> np.ndarray:
    """exp(-r t) * max(F - K, 0) for calls or max(K - F, 0) for puts: a European option's floor."""
    f, k, t, r = _f(forward), _f(strike), _f(t_years), _f(rate)
    payoff = np.where(np.asarray(is_call, dtype=bool), f - k, k - f)
    return np.exp(-r * np.maximum(t, 0.0)) * np.maximum(payoff, 0.0)


def quality_mask(
    quote_age_s: ArrayLike,
    bid: ArrayLike,
    ask: ArrayLike,
    last: ArrayLike,
    intrinsic: ArrayLike,
    tick: ArrayLike = 0.05,
    stale_after_s: float = DEFAULT_STALE_AFTER_S,
    wide_spread_pct: float = DEFAULT_WIDE_SPREAD_PCT,
) -> np.ndarray:
    """Bitmask (int64) of FLAG_BITS per leg; 0 when clean.

    `quote_age_s` is quote time minus last trade time; NaN (unknown) is not called stale.
    """
    age, b, a, p, iv, tk = np.broadcast_arrays(
        _f(quote_age_s), _f(bid), _f(ask), _f(last), _f(intrinsic), _f(tick)
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        has_bid = np.isfinite(b) & (b > 0)
        has_ask = np.isfinite(a) & (a > 0)
        has_price = np.isfinite(p) & (p > 0)
        both = has_bid & has_ask
        crossed = both & (b > a)
        mid = (a + b) / 2.0
        wide = both & ~crossed & ((a - b) / mid * 100.0 > wide_spread_pct)
        below = has_price & np.isfinite(iv) & (p < iv - np.where(np.isfinite(tk), tk, 0.0))
        stale = np.isfinite(age) & (age > stale_after_s)
    mask = np.zeros(age.shape, dtype=np.int64)
    mask |= np.where(stale, STALE, 0)
    mask |= np.where(has_bid, 0, NO_BID)
    mask |= np.where(has_ask, 0, NO_ASK)
    mask |= np.where(crossed, CROSSED, 0)
    mask |= np.where(below, BELOW_INTRINSIC, 0)
    mask |= np.where(wide, WIDE_SPREAD, 0)
    mask |= np.where(has_price, 0, NO_PRICE)
    return mask


def flag_names(mask: ArrayLike) -> np.ndarray:
    """Comma-joined flag names for each mask, "" for 0 (an object array of str)."""
    m = np.asarray(mask, dtype=np.int64)
    if np.any((m < 0) | (m >= _NAMES_BY_MASK.size)):
        raise ValueError(f"quality mask outside 0..{_NAMES_BY_MASK.size - 1}")
    names = _NAMES_BY_MASK[m]
    # A 0-d mask indexes out a bare str; keep the array type the vectorised callers expect.
    return names if isinstance(names, np.ndarray) else np.array(names, dtype=object)


def parse_flags(text: str) -> int:
    """Mask for a comma-joined flag string (as stored in `LegRecord.flags`); unknown names raise."""
    mask = 0
    for name in (part.strip() for part in text.split(",")):
        if not name:
            continue
        if name not in FLAG_BITS:
            raise ValueError(f"unknown quality flag {name!r}: choose from {', '.join(FLAG_BITS)}")
        mask |= FLAG_BITS[name]
    return mask


def quality_flags(
    quote_age_s: ArrayLike,
    bid: ArrayLike,
    ask: ArrayLike,
    last: ArrayLike,
    intrinsic: ArrayLike,
    tick: ArrayLike = 0.05,
    stale_after_s: float = DEFAULT_STALE_AFTER_S,
    wide_spread_pct: float = DEFAULT_WIDE_SPREAD_PCT,
) -> np.ndarray:
    """Comma-joined flag names per leg ("" when clean), an object array of str.

    See the module docstring for each check.
    """
    return flag_names(
        quality_mask(quote_age_s, bid, ask, last, intrinsic, tick, stale_after_s, wide_spread_pct)
    )
