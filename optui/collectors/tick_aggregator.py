"""Per-instrument state from ticker ticks: last quote, premium flow per trade, OI buildup, snapshots.

Memory is bounded by the instruments it was built for: fixed state arrays, one slot per token;
ticks of any other token are counted (`unknown_ticks`) and dropped. All updates are vectorised
over a TickBatch; a batch holding several ticks of one instrument is applied in rounds, each
round at most one tick per instrument, in frame order.

Premium flow uses exactly the REST path's definition (optui.analytics.premium_flow): between two
full-mode ticks of an instrument, the traded value (average_price x volume) that changed is
classified by `leg_flow` against the prevailing mids of the previous tick and this one
(`prevailing_mid`: the middle of the best bid and ask, the last price when one side is empty). Quote and ltp ticks carry no
depth, so they update the displayed quote but not the flow reference: flow is always measured
full tick to full tick. A previous full tick older than `max_gap_s` (exchange time) gives no
flow, and `forget_flow_reference()` (after a disconnection) makes the next tick a fresh start:
what traded while nothing was seen is not classified.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from numpy.typing import ArrayLike

from optui.analytics.buildup import classify_buildup
from optui.analytics.premium_flow import leg_flow, prevailing_mid
from optui.tick_packets import MODE_FULL, MODE_LTP, TickBatch

_RECENT_ORDERS = 8  # token orders remembered: a few per connection (modes, re-subscriptions)

DEFAULT_SNAPSHOT_S = 1.0
"""Default snapshot cadence, seconds of exchange time."""


@dataclass(frozen=True, slots=True)
class TickSnapshot:
    """Per-instrument state at one exchange time, arrays aligned with `instrument_token`.

    Prices in rupees; `inflow`/`outflow` are rupees since the aggregator started,
    `interval_inflow`/`interval_outflow` since the previous snapshot; `oi_change` is OI minus the
    reference OI (previous close's when given, else the first seen); `buildup` holds
    optui.analytics.buildup codes; `seen` is False for instruments with no tick yet (their values
    are NaN/0). `ticks` counts ticks applied per instrument.
    """

    at: datetime
    instrument_token: np.ndarray
    last_price: np.ndarray
    volume: np.ndarray
    average_price: np.ndarray
    bid: np.ndarray
    ask: np.ndarray
    mid: np.ndarray
    oi: np.ndarray
    oi_change: np.ndarray
    buildup: np.ndarray
    close: np.ndarray
    inflow: np.ndarray
    outflow: np.ndarray
    interval_inflow: np.ndarray
    interval_outflow: np.ndarray
    ticks: np.ndarray
    seen: np.ndarray
    unknown_ticks: int


class TickAggregator:
    """Fold TickBatches into per-instrument state; emit a snapshot every `snapshot_every_s`.

    `tokens`: the instruments tracked (duplicates ignored). `reference_oi`: previous close OI by
    token, for OI change and buildup (else the first OI seen is the reference). `max_gap_s`: a
    previous full tick older than this (exchange seconds) gives no flow, as on the REST path.
    """

    def __init__(self, tokens: ArrayLike, reference_oi: Mapping[int, float] | None = None,
                 snapshot_every_s: float = DEFAULT_SNAPSHOT_S,
                 max_gap_s: float = float("inf")) -> None:
        if not snapshot_every_s > 0:
            raise ValueError(f"snapshot cadence must be positive seconds, got {snapshot_every_s}")
        self.tokens = np.unique(np.asarray(tokens, dtype=np.int64))
        n = self.tokens.size
        self.snapshot_every_s = float(snapshot_every_s)
        self.max_gap_s = float(max_gap_s)
        nan = np.full(n, np.nan)
        self.last_price = nan.copy()
        self.volume = np.zeros(n)
        self.average_price = nan.copy()
        self.bid = nan.copy()
        self.ask = nan.copy()
        self.oi = nan.copy()
        self.close = nan.copy()
        ref = reference_oi or {}
        self.reference_oi = np.array([float(ref.get(int(t), np.nan)) for t in self.tokens])
        # Flow reference: the previous full tick's value, volume, mid, last and time.
        self.ref_value = nan.copy()
        self.ref_volume = nan.copy()
        self.ref_mid = nan.copy()
        self.ref_last = nan.copy()
        self.ref_at = nan.copy()
        # The flow reference when the instrument was last answered (`take`, `hand_over`).
        self.ans_value = nan.copy()
        self.ans_volume = nan.copy()
        self.ans_mid = nan.copy()
        self.ans_last = nan.copy()
        self.ans_at = nan.copy()
        self.inflow = np.zeros(n)
        self.outflow = np.zeros(n)
        self._snap_inflow = np.zeros(n)
        self._snap_outflow = np.zeros(n)
        self.ticks = np.zeros(n, dtype=np.int64)
        self._had_ref = np.zeros(n, dtype=bool)  # a flow reference when the interval began
        self._take_in = np.zeros(n)  # flow since the slot's last take / hand-over
        self._take_out = np.zeros(n)
        self._gap_seen = np.zeros(n, dtype=bool)  # a tick of the interval found a stale reference
        self.unknown_ticks = 0
        self.exchange_time = 0.0
        self._next_snapshot = -np.inf
        self._recent: list[tuple[np.ndarray, np.ndarray]] = []

    def slots(self, tokens: ArrayLike) -> np.ndarray:
        """Slot of each token (-1 for an instrument not tracked).

        A connection sends its instruments in the same order frame after frame, so the lookups
        of the last few token sequences are kept and reused when a frame repeats one.
        """
        tok = np.asarray(tokens, dtype=np.int64)
        for seen, slots in self._recent:
            if seen.size == tok.size and np.array_equal(seen, tok):
                return slots
        if self.tokens.size == 0:
            return np.full(tok.shape, -1, dtype=np.int64)
        pos = np.searchsorted(self.tokens, tok)
        pos = np.minimum(pos, self.tokens.size - 1)
        slots = np.where(self.tokens[pos] == tok, pos, -1)
        self._recent = [(tok.copy(), slots), *self._recent[:_RECENT_ORDERS - 1]]
        return slots

    def forget_flow_reference(self, tokens: ArrayLike | None = None) -> None:
        """Start flow afresh on the next full tick of `tokens` (all when None), after a gap.

        Call it on a TickerGap with the instruments of the connection that was down.
        """
        if tokens is None:
            rows: np.ndarray | slice = slice(None)
        else:
            found = self.slots(tokens)
            rows = found[found >= 0]
        for ref in (self.ref_value, self.ref_volume, self.ref_mid, self.ref_last, self.ref_at):
            ref[rows] = np.nan

    # Per-slot arrays and their fill for a new slot (see `track`).
    _SLOT_ARRAYS = (("last_price", np.nan), ("volume", 0.0), ("average_price", np.nan),
                    ("bid", np.nan), ("ask", np.nan), ("oi", np.nan), ("close", np.nan),
                    ("reference_oi", np.nan), ("ref_value", np.nan), ("ref_volume", np.nan),
                    ("ref_mid", np.nan), ("ref_last", np.nan), ("ref_at", np.nan),
                    ("ans_value", np.nan), ("ans_volume", np.nan), ("ans_mid", np.nan),
                    ("ans_last", np.nan), ("ans_at", np.nan),
                    ("inflow", 0.0), ("outflow", 0.0), ("_snap_inflow", 0.0),
                    ("_snap_outflow", 0.0), ("_take_in", 0.0), ("_take_out", 0.0), ("ticks", 0),
                    ("_had_ref", False), ("_gap_seen", False))

    # The answered flow reference and the live one it keeps (see `take`, `rewind`).
    _ANSWERED = (("ans_value", "ref_value"), ("ans_volume", "ref_volume"), ("ans_mid", "ref_mid"),
                 ("ans_last", "ref_last"), ("ans_at", "ref_at"))

    def track(self, tokens: ArrayLike) -> int:
        """Add slots for the `tokens` not yet tracked (their state starts empty); the tracked
        keep theirs. Returns how many were added. Memory grows only with new instruments (a
        day's subscriptions), never with ticks."""
        new = np.setdiff1d(np.asarray(tokens, dtype=np.int64), self.tokens)
        if new.size == 0:
            return 0
        merged = np.union1d(self.tokens, new)
        old_at = np.searchsorted(merged, self.tokens)
        for name, fill in self._SLOT_ARRAYS:
            old = getattr(self, name)
            grown = np.full(merged.size, fill, dtype=old.dtype)
            grown[old_at] = old
            setattr(self, name, grown)
        self.tokens = merged
        self._recent = []
        return int(new.size)

    def take(self, tokens: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per-trade flow of `tokens` since their previous `take` or `hand_over` (rupees), and
        whether it was measured: the instrument had a flow reference when that interval began
        and no tick in it found its reference older than `max_gap_s` (else its flow is unknown,
        as a REST leg's without a usable previous quote). Tokens not tracked give NaN. Their
        interval starts afresh."""
        slot = self.slots(tokens)
        ok = slot >= 0
        s = slot[ok]
        inflow = np.full(slot.shape, np.nan)
        outflow = np.full(slot.shape, np.nan)
        inflow[ok] = self._take_in[s]
        outflow[ok] = self._take_out[s]
        measured = np.zeros(slot.shape, dtype=bool)
        measured[ok] = self._had_ref[s] & ~self._gap_seen[s]
        self._gap_seen[s] = False
        self._take_in[s] = 0.0
        self._take_out[s] = 0.0
        self._had_ref[s] = np.isfinite(self.ref_at[s])
        self._keep_answered(s)
        return inflow, outflow, measured

    def _keep_answered(self, s: np.ndarray) -> None:
        """The flow reference of slots `s` is their answered state (see `rewind`)."""
        for ans, ref in self._ANSWERED:
            getattr(self, ans)[s] = getattr(self, ref)[s]

    def rewind(self, tokens: ArrayLike) -> None:
        """`tokens` were not answered for a while (a chain window moved away from them): what
        their ticks counted since their last `take` or `hand_over` is dropped and their flow
        reference goes back to the state answered then, so when they are answered again their
        flow is one interval from that answer, as the REST tier's against its previous quote,
        whichever ticks happened to arrive before their unsubscription and after their
        resubscription. Untracked tokens are ignored."""
        slot = self.slots(tokens)
        s = slot[slot >= 0]
        for ans, ref in self._ANSWERED:
            getattr(self, ref)[s] = getattr(self, ans)[s]
        self._take_in[s] = 0.0
        self._take_out[s] = 0.0
        self._gap_seen[s] = False

    def hand_over(self, tokens: ArrayLike, value: ArrayLike, volume: ArrayLike, mid: ArrayLike,
                  last: ArrayLike, at: ArrayLike) -> None:
        """A polled quote answered `tokens` instead of the ticks (the REST tier measured their
        flow up to it): it becomes their flow reference (value = average_price x volume in
        rupees, mid, last price, exchange time in Unix seconds) and what the ticks counted in
        the interval is dropped, so no rupee is counted by both tiers. Untracked tokens are
        ignored."""
        slot = self.slots(tokens)
        ok = slot >= 0
        s = slot[ok]
        for ref, new in ((self.ref_value, value), (self.ref_volume, volume), (self.ref_mid, mid),
                         (self.ref_last, last), (self.ref_at, at)):
            ref[s] = np.asarray(new, dtype=float)[ok]
        self._take_in[s] = 0.0
        self._take_out[s] = 0.0
        self._gap_seen[s] = False
        self._had_ref[s] = np.isfinite(self.ref_at[s])
        self._keep_answered(s)

    def fold(self, batch: TickBatch) -> None:
        """Apply a batch (vectorised; several ticks of one instrument in rounds, frame order)."""
        if len(batch):
            slot = self.slots(batch.instrument_token)
            known = slot >= 0
            unknown = slot.size - int(np.count_nonzero(known))
            self.unknown_ticks += unknown
            rows = np.flatnonzero(known) if unknown else np.arange(slot.size)
            slot = slot[rows] if unknown else slot
            once = rows.size == 0 or np.bincount(slot, minlength=1).max() <= 1
            if once:
                self._apply(batch, rows, slot)
            elif rows.size:
                # Occurrence rank of each tick among the ticks of its instrument, in frame order.
                order = np.argsort(slot, kind="stable")
                ss = slot[order]
                first = np.r_[True, ss[1:] != ss[:-1]]
                starts = np.maximum.accumulate(np.where(first, np.arange(ss.size), 0))
                rank = np.empty(ss.size, dtype=np.int64)
                rank[order] = np.arange(ss.size) - starts
                for r in range(int(rank.max()) + 1):
                    sel = rank == r
                    self._apply(batch, rows[sel], slot[sel])
            stamps = batch.exchange_timestamp
            if stamps.size and stamps.max() > self.exchange_time:
                self.exchange_time = float(stamps.max())

    def add(self, batch: TickBatch) -> TickSnapshot | None:
        """Apply a batch; return a snapshot when the exchange clock crossed the next cadence mark."""
        self.fold(batch)
        if self.exchange_time >= self._next_snapshot and self.exchange_time > 0:
            snap = self.snapshot()
            step = self.snapshot_every_s
            self._next_snapshot = (np.floor(self.exchange_time / step) + 1) * step
            return snap
        return None

    def _apply(self, b: TickBatch, rows: np.ndarray, slot: np.ndarray) -> None:
        """Apply ticks `rows` of `b` to distinct instrument `slot`s."""
        mode = b.mode[rows]
        self.last_price[slot] = b.last_price[rows]
        self.ticks[slot] += 1
        q = mode != MODE_LTP
        qs, qr = slot[q], rows[q]
        self.volume[qs] = b.volume[qr]
        self.average_price[qs] = b.average_price[qr]
        self.close[qs] = b.close[qr]
        f = mode == MODE_FULL
        fs, fr = slot[f], rows[f]
        if fs.size == 0:
            return
        bid, ask, last = b.bid[fr], b.ask[fr], b.last_price[fr]
        self.bid[fs] = bid
        self.ask[fs] = ask
        oi = b.oi[fr].astype(float)
        self.oi[fs] = oi
        unset = np.isnan(self.reference_oi[fs])
        self.reference_oi[fs[unset]] = oi[unset]
        value = b.average_price[fr] * b.volume[fr]
        volume = b.volume[fr].astype(float)
        at = b.exchange_timestamp[fr].astype(float)
        mid = prevailing_mid(bid, ask, last)
        refs = (self.ref_value[fs], self.ref_volume[fs], self.ref_mid[fs], self.ref_last[fs])
        if np.isfinite(self.max_gap_s):
            stale = ~((at - self.ref_at[fs]) <= self.max_gap_s)
            self._gap_seen[fs[stale & np.isfinite(self.ref_at[fs])]] = True
            refs = tuple(np.where(stale, np.nan, r) for r in refs)  # type: ignore[assignment]
        inflow, outflow = leg_flow(*refs, value, volume, last, mid=mid)
        self.inflow[fs] += inflow
        self.outflow[fs] += outflow
        self._take_in[fs] += inflow  # summed per interval (not a difference of running sums)
        self._take_out[fs] += outflow
        self.ref_value[fs] = value
        self.ref_volume[fs] = volume
        self.ref_mid[fs] = mid
        self.ref_last[fs] = last
        self.ref_at[fs] = at

    def snapshot(self) -> TickSnapshot:
        """The state now (copies), stamped with the latest exchange timestamp seen (UTC)."""
        oi_change = self.oi - self.reference_oi
        with np.errstate(invalid="ignore"):
            buildup = classify_buildup(self.last_price - self.close, oi_change)
        interval_in = self.inflow - self._snap_inflow
        interval_out = self.outflow - self._snap_outflow
        self._snap_inflow = self.inflow.copy()
        self._snap_outflow = self.outflow.copy()
        return TickSnapshot(
            at=datetime.fromtimestamp(self.exchange_time, tz=UTC),
            instrument_token=self.tokens.copy(),
            last_price=self.last_price.copy(),
            volume=self.volume.copy(),
            average_price=self.average_price.copy(),
            bid=self.bid.copy(),
            ask=self.ask.copy(),
            mid=prevailing_mid(self.bid, self.ask, self.last_price),
            oi=self.oi.copy(),
            oi_change=oi_change,
            buildup=buildup,
            close=self.close.copy(),
            inflow=self.inflow.copy(),
            outflow=self.outflow.copy(),
            interval_inflow=interval_in,
            interval_outflow=interval_out,
            ticks=self.ticks.copy(),
            seen=self.ticks > 0,
            unknown_ticks=self.unknown_ticks,
        )
