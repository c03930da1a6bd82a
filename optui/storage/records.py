"""Snapshot to stored points: the `atm_options`, `index_overview` and `premium_flow` measurements.

Why here: every backend stores the same shapes, and the measurement, tag and field names are the
original collectors' (dashboards and queries keep working); legs also go through a column path
because converting thousands of legs per cycle into objects first is the slow part of ingest.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import chain
from operator import attrgetter
from typing import Any

import numpy as np

from optui.errors import OptuiError
from optui.leg_rows import LegRows
from optui.models import FlowSummary, LegRecord, OverviewRecord, Snapshot
from optui.storage.base import FieldValue, FrozenTags, Store, clean_fields, ns_to_time, time_to_ns
from optui.storage.iv_history import iv_daily_points
from optui.storage.points import Point
from optui.timeutil import UTC

LEGS = "atm_options"
OVERVIEW = "index_overview"
FLOW = "premium_flow"

LEG_TAGS: tuple[str, ...] = ("index", "bucket", "side", "expiry", "strike_offset")
LEG_FIELDS: tuple[str, ...] = (
    "atm_strike", "strike", "last_price", "average_price", "volume", "oi", "oi_open",
    "oi_change", "iv", "days_to_expiry", "ohlc_open", "ohlc_high", "ohlc_low", "ohlc_close",
    "net_change", "net_change_percent", "day_change", "day_change_percent", "bid", "ask",
    "delta", "gamma", "theta", "vega", "oi_change_snapshot", "instrument_token",
    "tradingsymbol", "buildup", "flags",
)
"""Fields of an `atm_options` point: every LegRecord field that is not a tag or the time."""

FLOW_FIELDS: tuple[str, ...] = (
    "inflow_cr", "outflow_cr", "ce_inflow_cr", "ce_outflow_cr", "pe_inflow_cr", "pe_outflow_cr",
)
_MINUTE_NS = 60_000_000_000
# BucketStats and FlowSummary attributes stored beyond the legacy fields, under their own names.
_BUCKET_EXTRAS = (
    "pcr_volume", "max_pain", "skew", "forward", "atm_strike", "ce_oi_change", "pe_oi_change",
    "strikes", "listed_strikes", "oi_coverage", "flags",
)
_FLOW_EXTRAS = ("inflow_cr", "outflow_cr", "net_cr", "bullish_cr", "ce_inflow_cr",
                "ce_outflow_cr", "pe_inflow_cr", "pe_outflow_cr")


def leg_tags(leg: LegRecord) -> dict[str, str]:
    """The series identity of a leg (the `strike` is a field: the ATM moves, the series stays)."""
    return {
        "index": leg.index,
        "bucket": leg.bucket,
        "side": leg.side,
        "expiry": leg.expiry.isoformat(),
        "strike_offset": leg.strike_offset,
    }


def leg_fields(leg: LegRecord) -> dict[str, Any]:
    """A leg's stored fields (NaN kept here; stores drop it)."""
    return {name: getattr(leg, name) for name in LEG_FIELDS}


def overview_fields(ov: OverviewRecord) -> dict[str, Any]:
    """The original overview fields plus per-bucket extras and this cycle's premium flow.

    Extras per bucket: `{b}_pcr_volume`, `{b}_max_pain`, `{b}_skew`, `{b}_forward`,
    `{b}_atm_strike`, `{b}_ce_oi_change`, `{b}_pe_oi_change`, `{b}_strikes`,
    `{b}_listed_strikes`, `{b}_oi_coverage` (0..1 of the chain's OI), `{b}_flags`; this cycle's
    flow: `flow_inflow_cr`, `flow_outflow_cr`, `flow_net_cr`, `flow_bullish_cr`,
    `flow_ce_inflow_cr`, `flow_ce_outflow_cr`, `flow_pe_inflow_cr`, `flow_pe_outflow_cr` and
    `flow_since_s` (epoch seconds the flow is measured from; a minute's premium_flow bar sums its
    cycles' flow).
    """
    out: dict[str, Any] = dict(ov.legacy_fields())
    for name, b in ov.buckets.items():
        out.update((f"{name}_{attr}", getattr(b, attr)) for attr in _BUCKET_EXTRAS)
    measured = ov.flow.measured  # unknown flow is left out: a rewrite keeps what was measured
    out.update((f"flow_{attr}", getattr(ov.flow, attr) if measured else math.nan)
               for attr in _FLOW_EXTRAS)
    since = ov.flow.since
    out["flow_since_s"] = since.timestamp() if measured and since is not None else math.nan
    return out


def _utc(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise ValueError("snapshot timestamps must be timezone-aware")
    return at.astimezone(UTC)


def _overview_point(index: str, ov: OverviewRecord, source: str = "") -> Point:
    fields = overview_fields(ov)
    if source:
        fields["source"] = source  # a field, not a tag: existing series and queries stay as they were
    return Point(OVERVIEW, {"index": index}, clean_fields(fields), _utc(ov.timestamp))


def snapshot_points(snapshot: Snapshot) -> list[Point]:
    """Every leg and overview of a snapshot as points (flow bars come from FlowBarAccumulator)."""
    points: list[Point] = []
    for key, snap in snapshot.indices.items():
        points.append(_overview_point(key, snap.overview, snapshot.source))
        for leg in snap.legs:
            points.append(
                Point(LEGS, leg_tags(leg), clean_fields(leg_fields(leg)), _utc(leg.timestamp))
            )
    return points


@dataclass(slots=True)
class ColumnBatch:
    """Many points of one measurement in columns, for `Store.write_columns`."""

    measurement: str
    tags_list: list[dict[str, str]]  # FrozenTags from leg_columns: extend, never mutate
    times_ns: list[int]
    columns: dict[str, Any]  # name -> list or 1-D numpy array

    def write_to(self, store: Store) -> int:
        return store.write_columns(self.measurement, self.tags_list, self.times_ns, self.columns)

    def extend(self, other: ColumnBatch) -> None:
        """Append another batch of the same measurement and fields (to write in one call)."""
        if other.measurement != self.measurement or other.columns.keys() != self.columns.keys():
            raise ValueError("ColumnBatch.extend needs the same measurement and fields")
        self.tags_list.extend(other.tags_list)
        self.times_ns.extend(other.times_ns)
        for name, col in other.columns.items():
            mine = self.columns[name]
            if isinstance(mine, np.ndarray) or isinstance(col, np.ndarray):
                self.columns[name] = np.concatenate([np.asarray(mine), np.asarray(col)])
            else:
                mine.extend(col)

    def __len__(self) -> int:
        return len(self.times_ns)


def leg_columns(snapshot: Snapshot) -> ColumnBatch:
    """All legs of a snapshot as one column batch (the fast ingest path): legs held as
    columns (LegRows) by `leg_batch`, others read from their LegRecords."""
    held = [snap.legs for snap in snapshot.indices.values()]
    if all(isinstance(legs, LegRows) for legs in held):  # one cycle's: one block of columns
        return leg_batch([LegRows.concat(held).columns])
    legs = [leg for part in held for leg in part]
    times: list[int] = []
    memo: dict[datetime, int] = {}
    for leg in legs:
        t = memo.get(leg.timestamp)
        if t is None:
            t = memo[leg.timestamp] = time_to_ns(leg.timestamp)
        times.append(t)
    # One C pass builds the float matrix: per-field Python loops are the slow part of ingest.
    try:
        flat = np.fromiter(chain.from_iterable(map(_GET_FLOATS, legs)), dtype=np.float64,
                           count=len(legs) * len(_FLOAT_FIELDS))
    except (TypeError, ValueError):  # a None somewhere: the slow path maps it to NaN
        flat = np.array([_GET_FLOATS(leg) for leg in legs], dtype=np.float64)
    matrix = flat.reshape(len(legs), len(_FLOAT_FIELDS))
    float_at = {name: j for j, name in enumerate(_FLOAT_FIELDS)}
    columns: dict[str, Any] = {
        name: matrix[:, float_at[name]] if name in float_at else [getattr(leg, name) for leg in legs]
        for name in LEG_FIELDS
    }
    return ColumnBatch(LEGS, _leg_tags(map(_GET_TAGS, legs)), times, columns)


_TAGS_CACHE: dict[tuple[Any, ...], FrozenTags] = {}  # one shared tag set per leg series


def _leg_tags(idents: Iterable[tuple[Any, ...]]) -> list[dict[str, str]]:
    """One shared FrozenTags per leg series for (index, bucket, side, expiry, strike_offset)
    tuples, in order."""
    cache = _TAGS_CACHE
    if len(cache) > 50_000:  # expiries roll: drop old series now and then
        cache.clear()
    idents = list(idents)
    out: list[dict[str, str] | None] = list(map(cache.get, idents))  # known series, in C
    if None in out:  # series met for the first time
        for j, ident in enumerate(idents):
            if out[j] is None:
                tags = cache.get(ident)
                if tags is None:
                    index, bucket, side, expiry, offset = ident
                    tags = cache[ident] = FrozenTags(index=index, bucket=bucket, side=side,
                                                     expiry=expiry.isoformat(),
                                                     strike_offset=offset)
                out[j] = tags
    return out  # type: ignore[return-value]


def leg_batch(blocks: Sequence[Mapping[str, Any]]) -> ColumnBatch:
    """Legs given as columns (blocks, each a column per LegRecord field, arrays or lists, as
    `optui.leg_rows.LegRows.columns` holds them) as one column batch: the values `leg_columns`
    gives for the same LegRecords, without the objects."""
    blocks = [b for b in blocks if len(b["timestamp"])]
    times: list[int] = []
    memo: dict[datetime, int] = {}
    for block in blocks:  # a block's legs share a few stamps (one, the cycle's): each once
        stamps = block["timestamp"]
        for stamp in dict.fromkeys(stamps):
            if stamp not in memo:
                memo[stamp] = time_to_ns(stamp)
        times.extend(map(memo.__getitem__, stamps))
    columns: dict[str, Any] = {}
    for name in LEG_FIELDS:
        parts = [block[name] for block in blocks]
        if name in _FLOAT_AT:
            columns[name] = (np.concatenate([np.asarray(p, dtype=np.float64) for p in parts])
                             if parts else np.zeros(0))
        else:
            columns[name] = list(chain.from_iterable(
                p.tolist() if isinstance(p, np.ndarray) else p for p in parts))
    idents = chain.from_iterable(zip(*(block[name] for name in LEG_TAGS), strict=True)
                                 for block in blocks)
    return ColumnBatch(LEGS, _leg_tags(idents), times, columns)


_OTHER_FIELDS = ("volume", "instrument_token", "tradingsymbol", "buildup", "flags")
_FLOAT_FIELDS = tuple(f for f in LEG_FIELDS if f not in _OTHER_FIELDS)
_GET_FLOATS = attrgetter(*_FLOAT_FIELDS)
_GET_TAGS = attrgetter(*LEG_TAGS)
_FLOAT_AT = frozenset(_FLOAT_FIELDS)


@dataclass(slots=True)
class _Cycle:
    """One cycle's flow inside a bar: it covers (since_ns, end_ns] of market time."""

    since_ns: int
    values: dict[str, float]


_LINK_NS = 1_000_000
"""A stored `flow_since_s` (float seconds) within this of a cycle's end is measured from it."""


class FlowBarAccumulator:
    """One-minute premium-flow bars per index, each the sum of the cycles that end in it.

    A cycle's flow covers the market time since the previous quotes it was measured against
    (`FlowSummary.since`) up to its own timestamp. Recording a cycle first drops every kept
    cycle whose span overlaps it: collecting the same moments again (a restart over the same
    minutes, a second collector) replaces what was there instead of adding to it, so a bar
    always equals one pass over its minute and never counts a traded rupee twice; cycles read
    back from the store off the chain the collector continues (each cycle measured from the
    previous one's end) and inside the span it covers are another pass's, and dropped too. Bars are
    written as replacements. On the first touch of a minute, with a `store`, the cycles already
    stored for it (the `flow_*` fields of `index_overview`) are read back, so a restart
    mid-minute keeps the earlier cycles. A cycle whose flow could not be measured
    (`FlowSummary.measured` False, or a NaN field) keeps the stored value at its timestamp and
    replaces nothing else. Minutes older than `keep_minutes` are forgotten.
    """

    def __init__(self, store: Store | None = None, keep_minutes: int = 5) -> None:
        self.store = store
        self.keep_minutes = max(1, keep_minutes)
        self._bars: dict[tuple[str, int], dict[int, _Cycle]] = {}
        self._touched: list[tuple[str, int]] = []

    def add(self, index: str, at: datetime, flow: FlowSummary) -> Point:
        """Record one cycle's flow for `index` at market instant `at`; return its minute's bar.

        Earlier minutes whose cycles it replaced are re-emitted by `points` (see `touched`)."""
        end = time_to_ns(at)
        minute = end - end % _MINUTE_NS
        since = end
        if flow.measured and flow.since is not None:
            since = min(time_to_ns(flow.since), end)
        first = since - since % _MINUTE_NS
        self._touched = []
        if since < end:
            self._drop_other_passes(index, since, minute)
        for m in range(max(first, minute - self.keep_minutes * _MINUTE_NS), minute + 1, _MINUTE_NS):
            cycles = self._cycles(index, m)
            gone = [e for e, c in cycles.items() if e != end and c.since_ns < end and e > since]
            for e in gone:
                del cycles[e]
            if gone and m != minute:
                self._touched.append((index, m))
        cycles = self._cycles(index, minute)
        if flow.measured:
            known = {name: float(getattr(flow, name)) for name in FLOW_FIELDS}
            old = cycles.get(end)
            values = {**(old.values if old else {}), **{k: v for k, v in known.items() if v == v}}
            cycles[end] = _Cycle(since, values)
        else:
            cycles.setdefault(end, _Cycle(end, {}))
        self._forget(minute)
        return self._bar(index, minute)

    def _drop_other_passes(self, index: str, since: int, minute: int) -> None:
        """Drop kept cycles of another pass over the moments this cycle continues from.

        The collector's own cycles form a chain (each measured from the previous one's end);
        walking it back from `since` gives the span [start, since] it covers. A kept cycle off
        that chain ending inside the span was collected by another pass over the same moments
        (a restart re-collecting minutes the store holds, read back on the first touch) and
        would count them twice."""
        horizon = minute - self.keep_minutes * _MINUTE_NS
        chain: set[int] = set()
        start = since
        while start >= horizon:
            cycles = self._cycles(index, start - start % _MINUTE_NS)
            end = next((e for e in cycles if abs(e - start) <= _LINK_NS), None)
            if end is None or end in chain or cycles[end].since_ns >= end:
                break
            chain.add(end)
            start = cycles[end].since_ns
        if not chain:
            return
        for m in range(max(start - start % _MINUTE_NS, horizon), minute + 1, _MINUTE_NS):
            cycles = self._cycles(index, m)
            gone = [e for e in cycles if e not in chain and start < e <= since + _LINK_NS]
            for e in gone:
                del cycles[e]
            if gone and m != minute:
                self._touched.append((index, m))

    @property
    def touched(self) -> list[Point]:
        """Bars of earlier minutes the last `add` changed (a replaced cycle straddled them)."""
        return [self._bar(index, m) for index, m in self._touched if (index, m) in self._bars]

    def points(self, snapshot: Snapshot) -> list[Point]:
        """The bars of every index in a snapshot after recording this cycle's flow."""
        out: list[Point] = []
        for key, snap in snapshot.indices.items():
            bar = self.add(key, snap.overview.timestamp, snap.overview.flow)
            out.extend(self.touched)
            out.append(bar)
        return out

    def _bar(self, index: str, minute: int) -> Point:
        cycles = self._bars[(index, minute)].values()
        bar: dict[str, FieldValue] = {
            name: math.fsum(c.values.get(name, 0.0) for c in cycles) for name in FLOW_FIELDS
        }
        return Point(FLOW, {"index": index}, bar, ns_to_time(minute))

    def _cycles(self, index: str, minute: int) -> dict[int, _Cycle]:
        cycles = self._bars.get((index, minute))
        if cycles is None:
            cycles = self._bars[(index, minute)] = self._stored(index, minute)
        return cycles

    def _stored(self, index: str, minute: int) -> dict[int, _Cycle]:
        cycles: dict[int, _Cycle] = {}
        if self.store is None or getattr(self.store, "spooling", False):
            return cycles  # no store, or one down or hung: count this process's cycles only
        start = ns_to_time(minute)
        names = [f"flow_{name}" for name in FLOW_FIELDS]
        try:
            rows = self.store.query(OVERVIEW, start, start + timedelta(minutes=1), {"index": index},
                                    fields=[*names, "flow_since_s"])
        except OptuiError:
            rows = []  # store down (points are spooled): count this process's cycles only
        for row in rows:
            end = time_to_ns(row.time)
            values = {name: float(value) for name, stored in zip(FLOW_FIELDS, names, strict=True)
                      if isinstance(value := row.fields.get(stored), int | float)}
            since_s = row.fields.get("flow_since_s")
            since = round(float(since_s) * 1e9) if isinstance(since_s, int | float) else end
            cycles[end] = _Cycle(min(since, end), values)
        return cycles

    def _forget(self, newest: int) -> None:
        horizon = newest - self.keep_minutes * _MINUTE_NS
        for key in [k for k in self._bars if k[1] < horizon]:
            del self._bars[key]


def write_snapshot(store: Store, snapshot: Snapshot, flow: FlowBarAccumulator | None = None,
                   legs: ColumnBatch | None = None, store_legs: bool = True) -> int:
    """Write a snapshot's legs (column path; none without `store_legs`), overviews, the day's
    `iv_daily` close so far and, with `flow`, its minute bars. `legs`: the snapshot's legs
    already as a column batch, else `leg_columns` of the snapshot."""
    if legs is None and store_legs:
        legs = leg_columns(snapshot) if snapshot.leg_count else None
    written = legs.write_to(store) if store_legs and legs is not None and len(legs) else 0
    points = [_overview_point(key, s.overview, snapshot.source) for key, s in snapshot.indices.items()]
    points.extend(iv_daily_points(snapshot))  # the day's running ATM IV close (iv_daily)
    if flow is not None:
        points.extend(flow.points(snapshot))
    return written + (store.write(points) if points else 0)

