"""The per-leg implementation of the market rules that optui.alerts.market_rules replaced with
columns (each leg's OI samples and last volume as numpy arrays per index), kept as the tests'
oracle: the same definitions evaluated one LegRecord at a time, so the two must raise the same
alerts, value for value (tests/test_alerts_columns.py). Not used by the product.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TypeVar

from optui.alerts.model import RULES, Alert
from optui.alerts.thresholds import Thresholds
from optui.indices import BUCKETS, INDEX_SPECS
from optui.models import IndexSnapshot, LegRecord, Snapshot
from optui.timeutil import IST

LegKey = tuple[str, date, str, float]  # index, expiry, CALL/PUT, strike

_SIDE = {"CALL": "CE", "PUT": "PE"}
_S = TypeVar("_S")

MIN_OI_SHARE = 0.01
"""A leg's OI must be at least this share of its expiry's same-side total for the OI change rule."""

DAILY_MIN_WINDOWS = 3
"""The day's average OI change needs at least this many windows of history to mean anything."""


def fmt_cr(value: float) -> str:
    """₹ crore with thousands separators: 1234.5 -> '₹1,234.5 cr'; below 1, two decimals."""
    return f"₹{value:,.2f} cr" if abs(value) < 1 else f"₹{value:,.1f} cr"


def _strike(value: float) -> str:
    return f"{value:g}"


def _leg_subject(key: LegKey) -> str:
    index, expiry, side, strike = key
    return f"{index} {expiry.isoformat()} {_SIDE.get(side, side)} {_strike(strike)}"


def _alert(at: datetime, rule: str, subject: str, message: str, *, index: str = "",
           value: float = math.nan, threshold: float = math.nan, unit: str = "") -> Alert:
    return Alert(at=at, rule=rule, severity=RULES[rule].severity, subject=subject, message=message,
                 index=index, value=value, threshold=threshold, unit=unit)


@dataclass(slots=True)
class _LegHistory:
    """(time, OI) samples of one leg within the window, oldest first, and its last volume and buildup."""

    samples: deque[tuple[datetime, float]] = field(default_factory=deque)
    volume: int = -1
    volume_at: datetime | None = None
    buildup: str = ""


@dataclass(frozen=True, slots=True)
class _ChainSample:
    """The nearest expiry's aggregates at one snapshot, with cumulative |OI steps| per side."""

    at: datetime
    expiry: date
    pcr: float
    max_pain: float
    ce_oi: float
    pe_oi: float
    ce_cum: float
    pe_cum: float


@dataclass(slots=True)
class _IndexHistory:
    bars: deque[tuple[float, float]] = field(default_factory=deque)  # whole bars: (end, volume)
    bar_end: float = math.nan  # epoch seconds of the open minute bar's end (a minute mark)
    bar_volume: float = 0.0
    bar_start: float = math.nan  # the earliest previous snapshot the open bar's volume runs from
    volume_at: datetime | None = None  # the previous snapshot (its legs' volumes are remembered)
    chain: deque[_ChainSample] = field(default_factory=deque)
    chain_first_at: datetime | None = None


def _reference(samples: deque[_S], at: datetime, window_s: float,
               time_of: Callable[[_S], datetime]) -> _S | None:
    """The newest sample at least `window_s` before `at`, if it is no older than 1.5 windows.

    Drops samples older than that reference, keeping the deque short.
    """
    while len(samples) >= 2 and (at - time_of(samples[1])).total_seconds() >= window_s:
        samples.popleft()
    if not samples:
        return None
    age = (at - time_of(samples[0])).total_seconds()
    if age < window_s or age > 1.5 * window_s:
        return None
    return samples[0]


def _leg_time(sample: tuple[datetime, float]) -> datetime:
    return sample[0]


def _chain_time(sample: _ChainSample) -> datetime:
    return sample.at


def _step(now: float, before: float) -> float:
    """|now − before|, 0 when either is unknown."""
    d = now - before
    return abs(d) if math.isfinite(d) else 0.0


def nearest_bucket(idx: IndexSnapshot) -> str | None:
    """The first standard expiry bucket present for an index (this_week before next_week ...)."""
    present = idx.overview.buckets
    for name in BUCKETS:
        if name in present:
            return name
    return next(iter(present), None)


def strike_step(legs: list[LegRecord], index: str) -> float:
    """The chain's strike spacing from quoted strikes (smallest gap), else the index default."""
    strikes = sorted({leg.strike for leg in legs})
    gaps = [b - a for a, b in zip(strikes, strikes[1:], strict=False) if b - a > 0]
    if gaps:
        return min(gaps)
    spec = INDEX_SPECS.get(index)
    return float(spec.step) if spec else 1.0


class MarketRules:
    """Evaluates the market rules over successive snapshots (one instance per feed)."""

    def __init__(self, thresholds: Thresholds) -> None:
        self.t = thresholds
        self._day: date | None = None
        self._legs: dict[LegKey, _LegHistory] = {}
        self._indices: dict[str, _IndexHistory] = {}

    def evaluate(self, snap: Snapshot) -> list[Alert]:
        """Candidate alerts for one snapshot (before cooldowns), in rule order."""
        at = snap.timestamp
        day = at.astimezone(IST).date()
        if day != self._day:  # a new trading day: intraday history starts again
            self._day = day
            self._legs.clear()
            self._indices.clear()
        out: list[Alert] = []
        for key, idx in snap.indices.items():
            out += self._premium_flow(at, key, idx)
            out += self._legs_and_volume(at, key, idx)
            out += self._chain_shifts(at, key, idx)
            out += self._buildup_flips(at, key, idx)
        return out

    # ---- rules -------------------------------------------------------------------------

    def _premium_flow(self, at: datetime, key: str, idx: IndexSnapshot) -> list[Alert]:
        limit = self.t.single_flow_cr
        if limit <= 0:
            return []
        out = []
        flow = idx.overview.flow
        for side, value in (("bought", flow.inflow_cr), ("sold", flow.outflow_cr)):
            if value >= limit:
                out.append(_alert(
                    at, "premium_flow", f"{key} {side}",
                    f"{key}: {fmt_cr(value)} of option premium {side} in one cycle "
                    f"(threshold {fmt_cr(limit)})",
                    index=key, value=value, threshold=limit, unit="cr"))
        return out

    def _legs_and_volume(self, at: datetime, key: str, idx: IndexSnapshot) -> list[Alert]:
        t = self.t
        w = t.window_s
        out: list[Alert] = []
        seen: set[LegKey] = set()
        traded = 0.0
        hist = self._indices.setdefault(key, _IndexHistory())
        prev_at, hist.volume_at = hist.volume_at, at  # the index's previous snapshot
        for leg in idx.legs:
            lk: LegKey = (key, leg.expiry, leg.side, leg.strike)
            if lk in seen:  # an expiry in two buckets (this_week is also this_month): once
                continue
            seen.add(lk)
            h = self._legs.get(lk)
            if h is None:
                h = self._legs[lk] = _LegHistory()
            # volume traded since this leg's previous snapshot
            # (only a leg quoted in the previous snapshot too: one that comes back into the
            # window after a while brings the volume of all that time)
            if prev_at is not None and h.volume_at == prev_at and leg.volume >= h.volume >= 0 and at > prev_at:
                traded += leg.volume - h.volume
            h.volume, h.volume_at = leg.volume, at
            oi = leg.oi
            if not math.isfinite(oi):
                continue
            if h.samples and h.samples[-1][0] >= at:
                continue  # the same moment again: nothing new
            h.samples.append((at, oi))
            ref = _reference(h.samples, at, w, _leg_time) if w > 0 else None
            if ref is None or t.oi_change_pct <= 0:
                continue
            ref_oi = ref[1]
            stats = idx.overview.buckets.get(leg.bucket)
            side_total = (stats.ce_oi if leg.side == "CALL" else stats.pe_oi) if stats else 0.0
            if not ref_oi > 0 or (math.isfinite(side_total) and ref_oi < MIN_OI_SHARE * side_total):
                continue
            change = oi - ref_oi
            pct = change / ref_oi * 100.0
            if abs(pct) >= t.oi_change_pct:
                subject = _leg_subject(lk)
                out.append(_alert(
                    at, "oi_change", subject,
                    f"{subject}: OI {'up' if pct > 0 else 'down'} {abs(pct):.0f} % in "
                    f"{t.window_min:g} min ({ref_oi:,.0f} → {oi:,.0f}; threshold {t.oi_change_pct:g} %)",
                    index=key, value=pct, threshold=t.oi_change_pct, unit="%"))
        since = prev_at.timestamp() if prev_at is not None and at > prev_at else math.inf
        out += self._volume_spike(at, key, traded, since)
        return out

    def _volume_spike(self, at: datetime, key: str, traded: float, since: float) -> list[Alert]:
        """Add `traded` (contracts since the snapshot at epoch `since`, inf when none) to the
        minute bar holding `at`; judge the open bar once a snapshot closes it."""
        hist = self._indices.setdefault(key, _IndexHistory())
        now = at.timestamp()
        end = math.ceil(now / 60.0) * 60.0  # the minute mark closing the bar that holds `at`
        out: list[Alert] = []
        if hist.bar_end == hist.bar_end and end > hist.bar_end:  # a bar left open: closed now
            out += self._close_bar(at, key, hist)
        if math.isfinite(since):
            if hist.bar_end != end:
                hist.bar_end, hist.bar_volume, hist.bar_start = end, 0.0, since
            hist.bar_volume += traded
        if hist.bar_end == end and now >= end:  # on the mark: nothing more can join this bar
            out += self._close_bar(at, key, hist)
        return out

    def _close_bar(self, at: datetime, key: str, hist: _IndexHistory) -> list[Alert]:
        """Judge the open bar against the whole bars before it within the window, keep it when
        whole, and leave no bar open."""
        t = self.t
        # Whole: its volume runs from the last snapshot of the bar before (not a start, nor
        # a gap of a minute or more before it).
        end, volume = hist.bar_end, hist.bar_volume
        whole = end - 120.0 < hist.bar_start <= end - 60.0
        hist.bar_end, hist.bar_volume, hist.bar_start = math.nan, 0.0, math.nan
        bars = hist.bars
        while bars and end - bars[0][0] > t.window_s:
            bars.popleft()
        out: list[Alert] = []
        if not whole:
            return out
        if t.volume_spike_pct > 0 and len(bars) >= 3:
            mean = sum(v for _, v in bars) / len(bars)
            if mean > 0:
                excess = (volume / mean - 1.0) * 100.0
                if excess >= t.volume_spike_pct:
                    minute = datetime.fromtimestamp(end, IST).strftime("%H:%M")
                    out.append(_alert(
                        at, "volume_spike", key,
                        f"{key}: option volume {volume:,.0f} per minute, {excess:.0f} % above the "
                        f"{t.window_min:g}-minute average of {mean:,.0f} "
                        f"(the minute to {minute} IST; threshold {t.volume_spike_pct:g} %)",
                        index=key, value=excess, threshold=t.volume_spike_pct, unit="%"))
        bars.append((end, volume))
        return out

    def _chain_shifts(self, at: datetime, key: str, idx: IndexSnapshot) -> list[Alert]:
        t = self.t
        bucket = nearest_bucket(idx)
        if bucket is None:
            return []
        stats = idx.overview.buckets[bucket]
        hist = self._indices.setdefault(key, _IndexHistory())
        chain = hist.chain
        if chain and chain[-1].expiry != stats.expiry:
            chain.clear()  # the nearest expiry rolled: compare like with like
            hist.chain_first_at = None
        if chain and chain[-1].at >= at:
            return []
        last = chain[-1] if chain else None
        ce_cum = pe_cum = 0.0
        if last is not None:
            ce_cum = last.ce_cum + _step(stats.ce_oi, last.ce_oi)
            pe_cum = last.pe_cum + _step(stats.pe_oi, last.pe_oi)
        if hist.chain_first_at is None:
            hist.chain_first_at = at
        chain.append(_ChainSample(at, stats.expiry, stats.pcr_oi, stats.max_pain, stats.ce_oi,
                                  stats.pe_oi, ce_cum, pe_cum))
        ref = _reference(chain, at, t.window_s, _chain_time) if t.window_s > 0 else None
        if ref is None:
            return []
        expiry, pcr_then, pain_then = ref.expiry, ref.pcr, ref.max_pain
        out: list[Alert] = []
        subject = f"{key} {expiry.isoformat()}"
        window = f"{t.window_min:g} min"
        d_pcr = stats.pcr_oi - pcr_then
        if t.pcr_shift > 0 and math.isfinite(d_pcr) and abs(d_pcr) >= t.pcr_shift - 1e-9:
            out.append(_alert(
                at, "pcr_shift", subject,
                f"{key} {bucket}: PCR (OI) {pcr_then:.2f} → {stats.pcr_oi:.2f} in {window} "
                f"(threshold {t.pcr_shift:g})",
                index=key, value=d_pcr, threshold=t.pcr_shift))
        out += self._daily_oi(at, key, bucket, stats.ce_oi, stats.pe_oi, ref, hist.chain_first_at)
        d_pain = stats.max_pain - pain_then
        step = strike_step([leg for leg in idx.legs if leg.expiry == expiry], key)
        limit = t.max_pain_shift_steps * step
        if t.max_pain_shift_steps > 0 and math.isfinite(d_pain) and abs(d_pain) >= limit - 1e-9:
            out.append(_alert(
                at, "max_pain_shift", subject,
                f"{key} {bucket}: max pain {_strike(pain_then)} → {_strike(stats.max_pain)} in "
                f"{window} ({d_pain / step:+.0f} strikes; threshold {t.max_pain_shift_steps:g})",
                index=key, value=d_pain, threshold=limit, unit="points"))
        return out

    def _daily_oi(self, at: datetime, key: str, bucket: str, ce_oi: float, pe_oi: float,
                  ref: _ChainSample, first_at: datetime | None) -> list[Alert]:
        t = self.t
        covered = (ref.at - first_at).total_seconds() if first_at else 0.0
        if t.oi_change_daily_avg_pct <= 0 or covered < DAILY_MIN_WINDOWS * t.window_s:
            return []
        out: list[Alert] = []
        window = f"{t.window_min:g} min"
        for side, now, then, cum in (("CE", ce_oi, ref.ce_oi, ref.ce_cum), ("PE", pe_oi, ref.pe_oi, ref.pe_cum)):
            change = now - then
            avg = cum * t.window_s / covered
            if not (math.isfinite(change) and avg > 0):
                continue
            excess = (abs(change) / avg - 1.0) * 100.0
            if excess >= t.oi_change_daily_avg_pct - 1e-9:
                subject = f"{key} {ref.expiry.isoformat()} {side}"
                out.append(_alert(
                    at, "oi_change_daily", subject,
                    f"{key} {bucket} {side}: total OI changed {change:+,.0f} in {window}, {excess:.0f} % "
                    f"above the day's average of {avg:,.0f} per {window} "
                    f"(threshold {t.oi_change_daily_avg_pct:g} %)",
                    index=key, value=excess, threshold=t.oi_change_daily_avg_pct, unit="%"))
        return out

    def _buildup_flips(self, at: datetime, key: str, idx: IndexSnapshot) -> list[Alert]:
        if not self.t.buildup_flip:
            return []
        bucket = nearest_bucket(idx)
        if bucket is None:
            return []
        out: list[Alert] = []
        atm = idx.overview.buckets[bucket].atm_strike
        for leg in idx.legs:
            if leg.bucket != bucket or leg.strike != atm:
                continue
            lk: LegKey = (key, leg.expiry, leg.side, leg.strike)
            h = self._legs.get(lk)
            if h is None:
                h = self._legs[lk] = _LegHistory()
            before, now = h.buildup, leg.buildup
            if now:
                h.buildup = now
            if before and now and before != now:
                subject = _leg_subject(lk)
                out.append(_alert(
                    at, "buildup_flip", subject,
                    f"{subject} (ATM): {before.replace('_', ' ')} → {now.replace('_', ' ')}",
                    index=key))
        return out
