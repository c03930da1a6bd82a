"""Premium flow of streamed legs per trade, handed over cleanly between the ticker and REST.

A streaming source (optui.collectors.stream_source) and the replay of a streamed day
(optui.collectors.replay_source) both own one `TickFlow` and drive it identically, on the thread
that applies ticks, in the order the ticks and quote calls happened (the recording keeps that
order), so a replay measures the live run's flow value for value:

- `fold(batch)`: every parsed tick frame, into a TickAggregator (vectorised, per-instrument
  arrays: memory grows with the instruments seen, a day's subscriptions, never with ticks);
- `answered(streamed_tokens, polled)`: one quote call. Legs answered from the ticks take the
  aggregator's per-trade flow since their previous answer (`leg_flow` per full tick against the
  mids around it: the REST definition applied trade by trade); legs answered by a
  polled quote are measured by the engine's REST path (optui.collectors.bucket_analytics
  against its previous quote), and that quote becomes their tick flow reference, so when they
  stream again the ticks count from it. A leg that moves stream -> REST -> stream is counted
  once by one tier or the other, never twice and never skipped.

`take_table()` hands the engine the flow of the legs streamed since the previous take as columns
(`FlowTable`), `take()` the same as token -> (inflow, outflow) in rupees; NaN when not measured
(no flow reference when the interval began).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from itertools import chain
from typing import Any

import numpy as np

from optui.analytics.premium_flow import prevailing_mid
from optui.collectors.tick_aggregator import TickAggregator
from optui.tick_packets import TickBatch
from optui.timeutil import IST

NAN = float("nan")
INDEX_SEGMENT = 9
"""Kite's segment code of indices in an instrument token's low byte: an index has no flow."""


def _stamp_s(value: object) -> float:
    """Unix seconds of a Kite quote's `timestamp` (naive IST datetime, or its ISO text)."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return NAN
    if not isinstance(value, datetime):
        return NAN
    if value.tzinfo is None:
        value = value.replace(tzinfo=IST)
    return value.timestamp()


def _best(side: object) -> float:
    if isinstance(side, list) and side and isinstance(side[0], dict):
        try:
            return float(side[0].get("price") or 0.0)
        except (TypeError, ValueError):
            return 0.0
    return 0.0


class TickFlow:
    """Per-trade flow of the streamed legs (see the module docstring); one owner thread.

    `max_gap_s`: a flow reference older than this (exchange seconds) gives no flow, as the
    REST path's previous quote (the engine sets it to its `max_flow_gap_s`).
    """

    def __init__(self, max_gap_s: float = 180.0) -> None:
        self.aggregator = TickAggregator(np.zeros(0, dtype=np.int64), max_gap_s=max_gap_s)
        self._flow: dict[int, tuple[float, float]] = {}
        # The usual call's flow, kept as columns until `take` (tokens, inflow, outflow; each
        # token once across them and not in `_flow`); `_held`: the tokens of both.
        self._chunks: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._held: set[int] = set()
        self._answered: set[int] = set()  # tokens answered (streamed or polled) since `take`

    @property
    def max_gap_s(self) -> float:
        return self.aggregator.max_gap_s

    @max_gap_s.setter
    def max_gap_s(self, seconds: float) -> None:
        self.aggregator.max_gap_s = float(seconds)

    def fold(self, batch: TickBatch | None) -> None:
        """Apply one frame's ticks; a tradable instrument's first tick starts tracking it (the
        live run and its replay see the same frames, so they track the same instruments)."""
        if batch is None or not len(batch):
            return
        agg = self.aggregator
        new = (agg.slots(batch.instrument_token) < 0) & batch.tradable
        if new.any():
            agg.track(batch.instrument_token[new])
        agg.fold(batch)

    def answered(self, streamed: Iterable[int], polled: Mapping[str, dict]) -> None:
        """One quote call: `streamed` tokens answered from the ticks, `polled` the Kite-shaped
        answers (key -> quote dict with `instrument_token`) the REST tier gave."""
        tokens = (streamed.astype(np.int64, copy=False) if isinstance(streamed, np.ndarray)
                  else np.fromiter(streamed, dtype=np.int64))
        token_list = tokens.tolist()
        self._answered.update(token_list)
        if tokens.size:
            inflow, outflow, measured = self.aggregator.take(tokens)
            held = len(self._held)
            self._held.update(token_list)
            if len(self._held) == held + len(token_list):
                # The usual call: no flow held yet for these legs this take (each once).
                self._chunks.append((tokens, np.where(measured, inflow, NAN),
                                     np.where(measured, outflow, NAN)))
            else:
                self._settle()
                self._add_flow(token_list, inflow, outflow, measured)
        rows = [q for q in polled.values() if isinstance(q, dict)
                and isinstance(q.get("instrument_token"), int)]
        if not rows:
            return
        rows = [q for q in rows if q["instrument_token"] & 0xFF != INDEX_SEGMENT]
        if not rows:
            return
        handed = np.array([q["instrument_token"] for q in rows], dtype=np.int64)
        self.aggregator.track(handed)  # a leg polled before its first tick starts from this quote
        volume = np.array([float(q.get("volume") or 0.0) for q in rows])
        value = np.array([float(q.get("average_price") or 0.0) for q in rows]) * volume
        last = np.array([float(q.get("last_price") or 0.0) for q in rows])
        depth: list[dict] = [d if isinstance(d := q.get("depth"), dict) else {} for q in rows]
        bid = np.array([_best(d.get("buy")) for d in depth])
        ask = np.array([_best(d.get("sell")) for d in depth])
        at = np.array([_stamp_s(q.get("timestamp")) for q in rows])
        at = np.where(np.isfinite(at), at, self.aggregator.exchange_time)
        self.aggregator.hand_over(handed, value, volume, prevailing_mid(bid, ask, last), last, at)
        self._settle()
        for tok in handed.tolist():
            self._flow.pop(tok, None)  # the REST tier measures it this cycle
        self._answered.update(handed.tolist())

    def _add_flow(self, tokens: list[int], inflow: np.ndarray, outflow: np.ndarray,
                  measured: np.ndarray) -> None:
        """Add one call's measured flow to what this take holds, leg by leg."""
        for tok, i, o, ok in zip(tokens, inflow.tolist(), outflow.tolist(), measured.tolist(),
                                 strict=True):
            held = self._flow.get(tok)
            if held is not None and held[0] == held[0] and ok:  # several calls, one take
                i, o = held[0] + i, held[1] + o
            elif held is not None and held[0] == held[0]:
                i, o, ok = held[0], held[1], True
            self._flow[tok] = (i, o) if ok else (NAN, NAN)

    def _settle(self) -> None:
        """Move the flow kept as columns into `_flow` (a call that adds to or drops a leg's
        flow of this take)."""
        for tokens, inflow, outflow in self._chunks:
            self._flow.update(zip(tokens.tolist(), zip(inflow.tolist(), outflow.tolist(),
                                                       strict=True), strict=True))
        self._chunks = []

    def take(self) -> dict[int, tuple[float, float]]:
        """`take_table` as token -> (inflow, outflow)."""
        table = self.take_table()
        return dict(zip(table.tokens.tolist(), zip(table.inflow.tolist(),
                                                   table.outflow.tolist(), strict=True),
                        strict=True))

    def take_table(self) -> FlowTable:
        """The flow of the legs streamed since the previous take (one take per cycle) as a
        FlowTable: tokens ascending, inflow and outflow in rupees, NaN when not measured (no
        flow reference when the interval began). A tracked leg the cycle did not answer (the chain window moved away
        from it) goes back to its last answer's flow reference: the ticks that reached it after
        that answer, before its unsubscription applied, are not counted, and when a later cycle
        answers it again its flow is one interval from its last answer, as the REST tier's."""
        agg = self.aggregator
        if agg.tokens.size:
            answered = np.fromiter(self._answered, dtype=np.int64, count=len(self._answered))
            agg.rewind(agg.tokens[~np.isin(agg.tokens, answered)])
        self._answered = set()
        chunks, flow = self._chunks, self._flow
        self._chunks, self._flow, self._held = [], {}, set()
        if flow:
            self._chunks = chunks
            self._flow = flow
            self._settle()
            flow, self._flow = self._flow, {}
            return FlowTable.of(flow)
        if not chunks:
            return FlowTable.of({})
        tokens = np.concatenate([c[0] for c in chunks])
        order = np.argsort(tokens)
        return FlowTable(tokens[order], np.concatenate([c[1] for c in chunks])[order],
                         np.concatenate([c[2] for c in chunks])[order])

    def slots(self) -> int:
        """Instruments tracked (the size of every per-instrument array)."""
        return int(self.aggregator.tokens.size)


@dataclass(frozen=True, slots=True)
class FlowTable:
    """A cycle's per-trade flow (`TickFlow.take`) as columns: tokens ascending (int64) and
    their inflow and outflow in rupees (NaN: not measured). Built once a cycle, read by every
    bucket's `per_trade`."""

    tokens: np.ndarray
    inflow: np.ndarray
    outflow: np.ndarray

    def __len__(self) -> int:
        return int(self.tokens.size)

    @classmethod
    def of(cls, flow: Mapping[int, tuple[float, float]] | FlowTable) -> FlowTable:
        """The table of token -> (inflow, outflow) (a table: itself)."""
        if isinstance(flow, FlowTable):
            return flow
        n = len(flow)
        tokens = np.fromiter(flow.keys(), dtype=np.int64, count=n)
        values = np.fromiter(chain.from_iterable(flow.values()), dtype=float,
                             count=2 * n).reshape(n, 2)
        order = np.argsort(tokens)
        return cls(tokens[order], values[order, 0], values[order, 1])


def per_trade(res: Any, flow: Mapping[int, tuple[float, float]] | FlowTable) -> None:
    """Replace, in a bucket's result (optui.collectors.bucket_analytics.BucketResult), the flow
    of the legs answered from ticks by their per-trade flow (token -> (inflow, outflow) rupees,
    NaN: not measured, or that as a FlowTable); legs polled keep the REST definition's."""
    table = flow if isinstance(flow, FlowTable) else FlowTable.of(flow)
    tokens = np.asarray(res.tokens, dtype=np.int64)
    if not (table.tokens.size and tokens.size):
        return
    at = np.minimum(np.searchsorted(table.tokens, tokens), table.tokens.size - 1)
    rows = np.flatnonzero(table.tokens[at] == tokens)
    if not rows.size:
        return
    res.inflow = res.inflow.astype(float, copy=True)
    res.outflow = res.outflow.astype(float, copy=True)
    res.inflow[rows] = table.inflow[at[rows]]
    res.outflow[rows] = table.outflow[at[rows]]
