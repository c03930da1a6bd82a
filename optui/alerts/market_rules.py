"""Rules over collection snapshots: premium flow, volume spikes, OI changes, PCR, max pain, buildup.

`MarketRules` keeps the little history the windowed rules need (per leg and per index, inside
one IST trading day) and turns each snapshot into candidate alerts; the engine then applies
cooldowns. Every time here is the snapshot's exchange timestamp, never the machine clock.

Definitions (thresholds in optui.alerts.thresholds.Thresholds, window W = oi_change_window_min):
- premium_flow: one cycle's premium bought (or sold) for an index, `FlowSummary.inflow_cr`
  (`outflow_cr`), at or above `single_flow_cr`.
- volume_spike: an index's option volume traded in one exchange minute (the bar from mm:00
  exclusive to the next mm:00 inclusive; between two snapshots, legs quoted in both, each
  instrument once, the volume counts in the bar holding the later snapshot) compared with the
  mean of the whole minute bars before it within W; fires when the bar is above that mean by
  `volume_spike_pct` percent (200 % = three times the mean). The bar is judged at the snapshot
  that closes it (the one on the minute mark, else the first after it) and needs three earlier
  whole bars; a bar is whole when the snapshots before its first trades reach back to its start
  (not the first bar after a start or a gap). Per-minute bars, not per-snapshot rates: volume
  comes in bursts second to second (whole lots), and a 1 s and a 5 s snapshot cadence over the
  same market judge the same bars.
- oi_change: a leg's OI now versus its OI at the latest snapshot at least W earlier (and no more
  than 1.5 W earlier); fires when |change| / earlier OI ≥ `oi_change_pct` percent. Legs whose
  earlier OI is below MIN_OI_SHARE of their expiry's total OI on that side (BucketStats.ce_oi or
  pe_oi) are left out: a far strike going from 40 to 80 contracts is not a position change.
- oi_change_daily: the nearest expiry's total call (put) OI, the chain's `ce_oi` (`pe_oi`), over
  the window, compared with its average absolute change per W over the day before that window
  (sum of |OI steps| × W / time covered, at least DAILY_MIN_WINDOWS windows); fires when |change|
  is above that average by `oi_change_daily_avg_pct` percent.
- pcr_shift / max_pain_shift: the nearest expiry's PCR (OI) and max pain now versus the same
  expiry at least W earlier; PCR by `pcr_shift` (absolute), max pain by `max_pain_shift_steps`
  strike steps (the chain's spacing).
- buildup_flip: the ATM call or put of the nearest expiry (same strike) changes from one
  buildup kind to another (long buildup, short buildup, short covering, long unwinding).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import reduce
from itertools import repeat
from operator import add, eq
from typing import TypeVar

import numpy as np

from optui.alerts.model import RULES, Alert
from optui.alerts.thresholds import Thresholds
from optui.indices import BUCKETS, INDEX_SPECS
from optui.leg_rows import leg_values
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


@dataclass(frozen=True, slots=True)
class _LegFields:
    """The fields of an index's legs the rules read, one list each, in leg order."""

    expiry: list[date]
    side: list[str]
    strike: list[float]
    volume: list[int]
    oi: list[float]
    bucket: list[str]

    @classmethod
    def of(cls, legs: Sequence[LegRecord]) -> _LegFields:
        """Read from the legs' columns (optui.leg_rows), not leg by leg."""
        return cls(*(leg_values(legs, name) for name in _LEG_FIELDS))

    def strike_step(self, expiry: date, index: str) -> float:
        """`strike_step` of the legs of `expiry`."""
        n = len(self.strike)
        mine = np.fromiter(map(eq, self.expiry, repeat(expiry, n)), dtype=bool, count=n)
        strikes = np.unique(np.asarray(self.strike, dtype=float)[mine])
        gaps = np.diff(strikes)
        gaps = gaps[gaps > 0]
        if gaps.size:
            return float(gaps.min())
        spec = INDEX_SPECS.get(index)
        return float(spec.step) if spec else 1.0

    def rows_at(self, bucket: str, strike: float) -> list[int]:
        """The legs of `bucket` at `strike`, in leg order."""
        n = len(self.strike)
        if not n:
            return []
        hit = np.fromiter(map(eq, self.bucket, repeat(bucket, n)), dtype=bool, count=n)
        hit &= np.asarray(self.strike, dtype=float) == strike
        return np.flatnonzero(hit).tolist()


_NEVER = np.iinfo(np.int64).min  # a time (epoch microseconds) that has not been
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_LEG_FIELDS = ("expiry", "side", "strike", "volume", "oi", "bucket")


def _micros(at: datetime) -> int:
    """Epoch microseconds of an aware datetime, exactly (a difference of two of these is the
    difference of the datetimes in microseconds)."""
    return (at - _EPOCH) // _US


class _LegWindow:
    """The legs of one index seen today (one slot each, by expiry, side and strike) as columns:
    each leg's last volume and the snapshot it is of, and each leg's OI samples within the
    window, oldest first: row `slot` of `times` (epoch microseconds) and `ois` from column
    `tail` up to, not including, `head` (the samples a deque per leg would hold, dropped as
    that deque would drop them)."""

    def __init__(self) -> None:
        self.slot_of: dict[tuple[date, str, float], int] = {}
        self.volume = np.zeros(0)  # -1: never seen
        self.volume_at = np.zeros(0, dtype=np.int64)  # _NEVER: never seen
        self.times = np.zeros((0, 8), dtype=np.int64)
        self.ois = np.zeros((0, 8))
        self.tail = np.zeros(0, dtype=np.intp)
        self.head = np.zeros(0, dtype=np.intp)

    def slots(self, keys: list[tuple[date, str, float]]) -> np.ndarray:
        """The slot of each key (intp), new keys given new slots in order."""
        got = list(map(self.slot_of.get, keys))
        if None in got:
            for i, slot in enumerate(got):
                if slot is None:
                    got[i] = self.slot_of.setdefault(keys[i], len(self.slot_of))
            self._grow(len(self.slot_of))
        return np.fromiter(got, dtype=np.intp, count=len(got))

    def _grow(self, n: int) -> None:
        old = self.volume.size
        if n <= old:
            return
        extra = n - old
        self.volume = np.concatenate([self.volume, np.full(extra, -1.0)])
        self.volume_at = np.concatenate([self.volume_at, np.full(extra, _NEVER, dtype=np.int64)])
        width = self.times.shape[1]
        self.times = np.concatenate([self.times, np.zeros((extra, width), dtype=np.int64)])
        self.ois = np.concatenate([self.ois, np.zeros((extra, width))])
        self.tail = np.concatenate([self.tail, np.zeros(extra, dtype=np.intp)])
        self.head = np.concatenate([self.head, np.zeros(extra, dtype=np.intp)])

    def append(self, slots: np.ndarray, at_us: int, oi: np.ndarray) -> None:
        """Add one sample (time `at_us`, OI) to each of `slots` (distinct)."""
        if slots.size and int(self.head[slots].max()) >= self.times.shape[1]:
            self._make_room()
        self.times[slots, self.head[slots]] = at_us
        self.ois[slots, self.head[slots]] = oi
        self.head[slots] += 1

    def _make_room(self) -> None:
        """Move every leg's samples to the start of its row, and widen the rows when a row
        is still full."""
        width = self.times.shape[1]
        live = self.head - self.tail
        wide = width if 2 * int(live.max()) <= width else 2 * width  # room for as many again
        cols = np.minimum(self.tail[:, None] + np.arange(wide), width - 1)
        self.times = np.take_along_axis(self.times, cols, axis=1)
        self.ois = np.take_along_axis(self.ois, cols, axis=1)
        self.tail = np.zeros_like(self.tail)
        self.head = live

    def reference(self, slots: np.ndarray, at_us: int, window_s: float
                  ) -> tuple[np.ndarray, np.ndarray]:
        """Each of `slots`' OI sample at least `window_s` before `at_us` and no older than
        1.5 windows (the newest such; NaN when there is none) and whether there is one; drops
        the samples older than it, as `_reference` does for one leg."""
        tail, head, times = self.tail, self.head, self.times
        rows = slots
        while rows.size:
            rows = rows[tail[rows] + 1 < head[rows]]
            if not rows.size:
                break
            # (at - t).total_seconds(): the microseconds over 10**6, rounded once.
            rows = rows[(at_us - times[rows, tail[rows] + 1]) / 1e6 >= window_s]
            tail[rows] += 1
        first = tail[slots]
        age = (at_us - times[slots, first]) / 1e6
        ok = (head[slots] > first) & ~((age < window_s) | (age > 1.5 * window_s))
        return np.where(ok, self.ois[slots, first], math.nan), ok


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


def strike_step(legs: Sequence[LegRecord], index: str) -> float:
    """The chain's strike spacing from quoted strikes (smallest gap), else the index default."""
    strikes = sorted(set(leg_values(legs, "strike")))
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
        self._legs: dict[str, _LegWindow] = {}  # per index
        self._buildups: dict[LegKey, str] = {}  # each ATM leg's last buildup
        self._indices: dict[str, _IndexHistory] = {}

    def evaluate(self, snap: Snapshot) -> list[Alert]:
        """Candidate alerts for one snapshot (before cooldowns), in rule order."""
        at = snap.timestamp
        day = at.astimezone(IST).date()
        if day != self._day:  # a new trading day: intraday history starts again
            self._day = day
            self._legs.clear()
            self._buildups.clear()
            self._indices.clear()
        out: list[Alert] = []
        for key, idx in snap.indices.items():
            legs = _LegFields.of(idx.legs)
            out += self._premium_flow(at, key, idx)
            out += self._legs_and_volume(at, key, idx, legs)
            out += self._chain_shifts(at, key, idx, legs)
            out += self._buildup_flips(at, key, idx, legs)
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

    def _legs_and_volume(self, at: datetime, key: str, idx: IndexSnapshot,
                         fields: _LegFields | None = None) -> list[Alert]:
        """The OI change rule over the index's legs and the volume traded since its previous
        snapshot (to `_volume_spike`), over the legs as columns: each leg (once, where an
        expiry sits in two buckets) as the per-leg definition in the module docstring reads
        it, alerts in leg order."""
        t = self.t
        w = t.window_s
        out: list[Alert] = []
        traded = 0.0
        hist = self._indices.setdefault(key, _IndexHistory())
        prev_at, hist.volume_at = hist.volume_at, at  # the index's previous snapshot
        legs = idx.legs
        if legs:
            cols = self._legs.get(key)
            if cols is None:
                cols = self._legs[key] = _LegWindow()
            if fields is None:
                fields = _LegFields.of(legs)
            expiry, side, strike = fields.expiry, fields.side, fields.strike
            volume_l, oi_l, bucket = fields.volume, fields.oi, fields.bucket
            all_slots = cols.slots(list(zip(expiry, side, strike, strict=True)))
            # An expiry in two buckets (this_week is also this_month): each leg once, first seen.
            _, first = np.unique(all_slots, return_index=True)
            rows = np.sort(first)
            slots = all_slots[rows]
            at_us = _micros(at)
            volume = np.asarray(volume_l, dtype=float)[rows]
            # volume traded since this leg's previous snapshot (only a leg quoted in the
            # previous snapshot too: one that comes back into the window after a while brings
            # the volume of all that time)
            if prev_at is not None and at > prev_at:
                held = cols.volume[slots]
                with np.errstate(invalid="ignore"):
                    counted = ((cols.volume_at[slots] == _micros(prev_at)) & (volume >= held)
                               & (held >= 0))
                traded = reduce(add, (volume[counted] - held[counted]).tolist(), traded)
            cols.volume[slots] = volume
            cols.volume_at[slots] = at_us
            oi = np.asarray(oi_l, dtype=float)[rows]
            sampled = np.isfinite(oi)
            held_at = cols.times[slots, np.maximum(cols.head[slots] - 1, 0)]
            sampled &= ~((cols.head[slots] > cols.tail[slots]) & (held_at >= at_us))
            take = np.flatnonzero(sampled)  # a new moment with a known OI (else: nothing new)
            cols.append(slots[take], at_us, oi[take])
            if w > 0 and take.size:
                ref_oi, has_ref = cols.reference(slots[take], at_us, w)
                picked = rows[take]
                groups = list(zip(np.asarray(bucket, dtype=object)[picked].tolist(),
                                  np.asarray(side, dtype=object)[picked].tolist(), strict=True))
                out += self._oi_changes(at, key, idx, picked, groups, oi[take], ref_oi,
                                        has_ref, legs)
        since = prev_at.timestamp() if prev_at is not None and at > prev_at else math.inf
        out += self._volume_spike(at, key, traded, since)
        return out

    def _oi_changes(self, at: datetime, key: str, idx: IndexSnapshot, rows: np.ndarray,
                    groups: list[tuple[str, str]], oi: np.ndarray, ref_oi: np.ndarray,
                    has_ref: np.ndarray, legs: Sequence[LegRecord]) -> list[Alert]:
        """oi_change alerts of the legs at `rows` of `legs` ((bucket, side) of each in
        `groups`, their OI now and at the reference)."""
        t = self.t
        if t.oi_change_pct <= 0 or not has_ref.any():
            return []
        buckets = idx.overview.buckets
        totals: dict[tuple[str, str], float] = {}
        for bucket, side in set(groups):
            stats = buckets.get(bucket)
            totals[bucket, side] = ((stats.ce_oi if side == "CALL" else stats.pe_oi)
                                    if stats else 0.0)
        side_total = np.fromiter(map(totals.__getitem__, groups), dtype=float, count=len(groups))
        with np.errstate(invalid="ignore", divide="ignore"):
            small = np.isfinite(side_total) & (ref_oi < MIN_OI_SHARE * side_total)
            pct = (oi - ref_oi) / ref_oi * 100.0
            fire = has_ref & (ref_oi > 0) & ~small & (np.abs(pct) >= t.oi_change_pct)
        out: list[Alert] = []
        for j in np.flatnonzero(fire).tolist():
            leg = legs[int(rows[j])]
            now, ref, change = float(oi[j]), float(ref_oi[j]), float(pct[j])
            subject = _leg_subject((key, leg.expiry, leg.side, leg.strike))
            out.append(_alert(
                at, "oi_change", subject,
                f"{subject}: OI {'up' if change > 0 else 'down'} {abs(change):.0f} % in "
                f"{t.window_min:g} min ({ref:,.0f} → {now:,.0f}; threshold {t.oi_change_pct:g} %)",
                index=key, value=change, threshold=t.oi_change_pct, unit="%"))
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

    def _chain_shifts(self, at: datetime, key: str, idx: IndexSnapshot,
                      fields: _LegFields | None = None) -> list[Alert]:
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
        step = (fields or _LegFields.of(idx.legs)).strike_step(expiry, key)
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

    def _buildup_flips(self, at: datetime, key: str, idx: IndexSnapshot,
                       fields: _LegFields | None = None) -> list[Alert]:
        if not self.t.buildup_flip:
            return []
        bucket = nearest_bucket(idx)
        if bucket is None:
            return []
        out: list[Alert] = []
        atm = idx.overview.buckets[bucket].atm_strike
        fields = fields or _LegFields.of(idx.legs)
        for row in fields.rows_at(bucket, atm):  # the bucket's legs at its ATM strike
            leg = idx.legs[row]
            lk: LegKey = (key, leg.expiry, leg.side, leg.strike)
            before, now = self._buildups.get(lk, ""), leg.buildup
            if now:
                self._buildups[lk] = now
            if before and now and before != now:
                subject = _leg_subject(lk)
                out.append(_alert(
                    at, "buildup_flip", subject,
                    f"{subject} (ATM): {before.replace('_', ' ')} → {now.replace('_', ' ')}",
                    index=key))
        return out
