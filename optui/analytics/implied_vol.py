"""Vectorised implied-volatility solver for Black-76 prices, in Jäckel's normalised Black form.

Why this shape: a chain refresh solves thousands of options and a replay millions, so everything
is numpy over whole arrays with no per-option Python. Every option is reduced by put-call parity
to an out-of-the-money call on ln-moneyness x <= 0 with undiscounted normalised price
beta = price / sqrt(F K); the unknown is the total volatility s = vol * sqrt(T). A bilinear table
lookup gives s to about 1e-5 relative (at worst ~1e-3), one third-order Householder step on
ln b(s) takes it to double precision, and options the table does not cover (or whose step was
large) go through a bracketed iteration with a bisection safeguard. Arrays are solved in
cache-sized slices, large ones on several threads (the ufuncs release the GIL).

ln b is evaluated through erfcx, so deep out-of-the-money prices (down to 1e-290) neither
underflow nor lose their digits. Options no volatility reproduces, or whose price does not pin the
volatility down, get NaN and a status code saying why.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import erfcx

IV_OK = np.int8(0)
"""A volatility was found."""
IV_BELOW_INTRINSIC = np.int8(1)
"""Price at or below discounted intrinsic value: no time value to invert."""
IV_ABOVE_BOUND = np.int8(2)
"""Price at or above the no-arbitrage bound (discounted forward for a call, strike for a put)."""
IV_BAD_INPUT = np.int8(3)
"""Price, forward or strike is zero, negative or NaN, or rate is not finite."""
IV_EXPIRED = np.int8(4)
"""Time to expiry is zero, negative or NaN."""
IV_UNDETERMINED = np.int8(5)
"""The price does not pin the volatility down: a 1e-15 relative price change moves it > 1e-9."""
IV_NO_CONVERGENCE = np.int8(6)
"""The solver could not pin the volatility down (never expected; reported rather than guessed)."""

STATUS_NAMES = {
    int(IV_OK): "ok",
    int(IV_BELOW_INTRINSIC): "below intrinsic",
    int(IV_ABOVE_BOUND): "above upper bound",
    int(IV_BAD_INPUT): "bad input",
    int(IV_EXPIRED): "expired",
    int(IV_UNDETERMINED): "price does not determine volatility",
    int(IV_NO_CONVERGENCE): "no convergence",
}

_SQRT1_2 = np.sqrt(0.5)
_SQRT_2_OVER_PI = np.sqrt(2.0 / np.pi)
_EPS = np.finfo(float).eps
_CHUNK = 1 << 14
# Inputs of at least this many slices per thread are split across up to _MAX_THREADS threads.
_SLICES_PER_THREAD = 8
_MAX_THREADS = 4
_DETERMINACY = 1e-15 / 1e-9
_TINY_PRICE = 1e-290

# Lookup-table domain: sqrt|x| uniform on [0, sqrt(_A_MAX)] (dense near the money, where s changes
# fastest with x), v = 1/sqrt(1 + L) uniform on [0, _V_MAX] with L = -ln(beta e^{-x/2}).
_A_MAX = 1.0
_V_MAX = 0.95
_NA = 257
_NV = 513
# A Householder step larger than this (relative) means the table guess was poor: redo robustly.
_FAST_STEP_OK = 2e-3


def _householder_step(
    x: np.ndarray, s: np.ndarray, ln_beta: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Third-order Householder step on f(s) = ln b(x, s) - ln beta: (ds, Newton step, b'/b).

    b = exp(-(h^2 + t^2)/2) D / 2 with h = x/s, t = s/2 and D a difference of two erfcx values,
    so ln b never underflows; b'/b = sqrt(2/pi)/D, and the higher derivatives over b' are
    polynomials in h and s.
    """
    h = x / s
    t = 0.5 * s
    dd = erfcx((h + t) * -_SQRT1_2) - erfcx((t - h) * _SQRT1_2)
    hh = h * h
    f = np.log(0.5 * dd) - 0.5 * (hh + t * t) - ln_beta
    psi = _SQRT_2_OVER_PI / dd  # b'/b
    h2s = hh / s
    m = h2s - 0.5 * t  # b''/b'
    n = m * m - 3.0 * h2s / s - 0.25  # b'''/b'
    gam = m - psi
    dlt = n - psi * (3.0 * m - 2.0 * psi)
    nu = -f / psi
    den = 1.0 + nu * (gam + dlt * nu * (1.0 / 6.0))
    ds = nu * (1.0 + 0.5 * gam * nu) / den
    # Far from the root the higher-order terms can flip or stall the step: fall back to Newton.
    ds = np.where((den > 0) & (ds * nu > 0), ds, nu)
    return ds, nu, psi


def _robust(x: np.ndarray, ln_beta: np.ndarray, s0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Householder iteration from s0 inside a shrinking bracket, bisecting when a step leaves it.

    Returns (s, converged); the bracket makes every option converge well inside the 200 rounds.
    """
    s = np.where(np.isfinite(s0) & (s0 > 0), s0, 0.5)
    lo = np.zeros_like(s)
    hi = np.full_like(s, np.inf)
    done = np.zeros(s.shape, dtype=bool)
    with np.errstate(all="ignore"):
        for _ in range(200):
            idx = np.flatnonzero(~done)
            if idx.size == 0:
                break
            si, xi, li = s[idx], x[idx], ln_beta[idx]
            ds, nu, _ = _householder_step(xi, si, li)
            too_low = nu > 0
            lo[idx] = np.where(too_low, np.maximum(lo[idx], si), lo[idx])
            hi[idx] = np.where(too_low, hi[idx], np.minimum(hi[idx], si))
            new = si + ds
            loi, hii = lo[idx], hi[idx]
            # Geometric bisection (s spans decades); double while there is no upper end yet.
            mid = np.where(loi > 0, np.sqrt(loi * hii), 0.5 * hii)
            bisect = np.where(np.isfinite(hii), mid, 2.0 * si + 1.0)
            conv = np.abs(nu) <= 4.0 * _EPS * si
            bad = ~conv & (~np.isfinite(new) | (new <= loi) | (new >= hii))
            new = np.where(bad, bisect, new)
            conv |= np.isfinite(hii) & (hii - loi <= 4.0 * _EPS * hii)
            s[idx] = new
            done[idx] = conv
    return s, done


def _simple_guess(x: np.ndarray, ln_beta: np.ndarray) -> np.ndarray:
    """A crude but positive starting point for the robust iteration."""
    a = -x
    big_l = np.maximum(-(ln_beta - 0.5 * x), 1e-300)
    deep = a / np.sqrt(2.0 * big_l)
    atm = np.sqrt(2.0 * np.pi) * np.exp(np.minimum(ln_beta - 0.5 * x, 0.0))
    return np.maximum(np.maximum(deep, atm), 1e-8)


@lru_cache(maxsize=1)
def _table() -> np.ndarray:
    """Bilinear coefficients of s on the (|x|, v) grid, solved once and cached (a constant).

    Row i * (_NV - 1) + j holds (c0, c1, c2, c3) so that s ~ c0 + c1 fa + c2 fv + c3 fa fv inside
    cell (i, j): one gather per option instead of four.
    """
    a = np.linspace(0.0, np.sqrt(_A_MAX), _NA) ** 2
    v = np.linspace(0.0, _V_MAX, _NV)
    aa, vv = np.meshgrid(a, v[1:], indexing="ij")
    with np.errstate(all="ignore"):
        x = -aa.ravel()
        ln_beta = 0.5 * x - (1.0 / (vv * vv) - 1.0).ravel()
        s, _ = _robust(x, ln_beta, _simple_guess(x, ln_beta))
    grid = np.zeros((_NA, _NV))
    grid[:, 1:] = s.reshape(_NA, _NV - 1)
    g00 = grid[:-1, :-1]
    g10 = grid[1:, :-1]
    g01 = grid[:-1, 1:]
    g11 = grid[1:, 1:]
    coef = np.stack([g00, g10 - g00, g01 - g00, g11 - g10 - g01 + g00], axis=-1)
    return np.ascontiguousarray(coef.reshape(-1, 4))


def solve_normalised(
    x: np.ndarray, ln_beta: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Total volatility s for OTM calls (x <= 0, 0 < beta < e^{x/2}).

    Returns (s, psi, converged) with psi = b'(s)/b(s), the relative vega the caller uses to
    judge whether the price determines s.
    """
    coef = _table()
    with np.errstate(all="ignore"):
        a = -x
        v = 1.0 / np.sqrt(1.0 + (0.5 * x - ln_beta))
        inside = (a < _A_MAX) & (v < _V_MAX)
        if not inside.all():
            a = np.where(inside, a, 0.0)
            v = np.where(inside, v, 0.5)
        ia = np.sqrt(a) * ((_NA - 1) / np.sqrt(_A_MAX))
        iv = v * ((_NV - 1) / _V_MAX)
        i0 = ia.astype(np.intp)
        j0 = iv.astype(np.intp)
        fa = ia - i0
        fv = iv - j0
        c = coef.take(i0 * (_NV - 1) + j0, axis=0)
        s0 = c[:, 0] + fa * (c[:, 1] + c[:, 3] * fv) + c[:, 2] * fv
        ds, nu, psi = _householder_step(x, s0, ln_beta)
        s = s0 + ds
    conv = inside & (np.abs(nu) <= _FAST_STEP_OK * s0) & (s > 0)
    if not conv.all():
        redo = np.flatnonzero(~conv)
        xr, lr = x[redo], ln_beta[redo]
        sr = s[redo]
        start = np.where(inside[redo] & np.isfinite(sr) & (sr > 0), sr, _simple_guess(xr, lr))
        sr, cr = _robust(xr, lr, start)
        s[redo] = sr
        conv[redo] = cr
        with np.errstate(all="ignore"):
            psi[redo] = _householder_step(xr, sr, lr)[2]
    return s, psi, conv


def _f(v: ArrayLike) -> np.ndarray:
    return np.asarray(v, dtype=float)


def _solve_chunk(
    p: np.ndarray, f: np.ndarray, k: np.ndarray, t: np.ndarray, r: np.ndarray, call: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Volatility and status for one cache-sized slice of flat arrays."""
    with np.errstate(all="ignore"):
        growth = np.exp(r * t)
        undisc = p * growth
        x = np.log(f / k)
        root = np.sqrt(f * k)
        # Reduce to the out-of-the-money side by put-call parity: C - P = F - K (undiscounted).
        sign = call * 2.0 - 1.0
        otm = undisc - np.maximum(sign * (f - k), 0.0)
        ln_beta = np.log(otm / root)
        xn = -np.abs(x)
        # No-arbitrage bound: call < discounted F, put < discounted K, i.e. the OTM value below
        # min(F, K); within rounding of the bound no finite volatility exists.
        above = ~(otm < np.minimum(f, k) * (1.0 - 4.0 * _EPS)) | ~(ln_beta < 0.5 * xn)
        # Time value near the subnormal range has lost its relative precision.
        tiny = otm < _TINY_PRICE * growth
        expired = ~(t > 0) | (t == np.inf)
        bad = ~((p > 0) & (f > 0) & (k > 0) & np.isfinite(p + f + k + r))
        below = ~(otm > 0)
        status = np.zeros(p.shape, dtype=np.int8)
        # Lowest priority first so the most basic reason wins.
        for mask, code in (
            (tiny, IV_UNDETERMINED),
            (above, IV_ABOVE_BOUND),
            (below, IV_BELOW_INTRINSIC),
            (bad, IV_BAD_INPUT),
            (expired, IV_EXPIRED),
        ):
            if mask.any():
                status[mask] = code
        good = status == IV_OK
        all_good = bool(good.all())
        if not all_good:
            # Harmless placeholders keep the unsolvable entries out of the way of the solve.
            xn[~good] = -0.1
            ln_beta[~good] = -5.0
        s, psi, conv = solve_normalised(xn, ln_beta)
        sqrt_t = np.sqrt(t)
        vol = s / sqrt_t
        # A 1e-15 relative price change must move the volatility by at most 1e-9, else the
        # price (typically deep in the money, time value lost to rounding) does not pin it down.
        undetermined = undisc * _DETERMINACY > psi * otm * sqrt_t
        all_conv = bool(conv.all())
        any_undetermined = bool(undetermined.any())
        if not all_conv:
            status[good & ~conv] = IV_NO_CONVERGENCE
        if any_undetermined:
            status[good & conv & undetermined] = IV_UNDETERMINED
        if not (all_good and all_conv and not any_undetermined):
            vol[status != IV_OK] = np.nan
    return vol, status


def solve_black76(
    price: ArrayLike,
    forward: ArrayLike,
    strike: ArrayLike,
    t_years: ArrayLike,
    rate: ArrayLike,
    is_call: ArrayLike,
    threads: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Black-76 implied volatility and status code for every option (broadcast shapes).

    threads=None splits large inputs (>= 8 slices of 16,384 per thread) over the cores, up to 4;
    threads=1 keeps everything on the calling thread.
    """
    arrays = np.broadcast_arrays(
        _f(price), _f(forward), _f(strike), _f(t_years), _f(rate), np.asarray(is_call, dtype=bool)
    )
    shape = arrays[0].shape
    flat = [np.ascontiguousarray(a).ravel() for a in arrays]
    n = flat[0].size
    vol = np.empty(n)
    status = np.empty(n, dtype=np.int8)

    def solve_slice(lo: int) -> None:
        sl = slice(lo, lo + _CHUNK)
        vol[sl], status[sl] = _solve_chunk(*(a[sl] for a in flat))

    # Cache-sized slices: long chains of numpy temporaries run several times faster in L2.
    starts = range(0, n, _CHUNK)
    workers = min(_MAX_THREADS, os.cpu_count() or 1, len(starts) // _SLICES_PER_THREAD)
    if threads is not None:
        workers = min(workers, max(1, threads))
    if workers > 1:
        _table()  # build once before the threads share it
        # numpy and scipy ufuncs release the GIL, so slices solve in parallel on several cores.
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(solve_slice, starts))
    else:
        for lo in starts:
            solve_slice(lo)
    return vol.reshape(shape), status.reshape(shape)
