"""A replay that starts later in the day (`--from`, a jump) with the live run's day references.

The live collector's figures at a minute depend on what it met earlier that day: OI change is
measured from the reference OI (the previous close's OI captured before the open, else the first
OI it saw of each instrument), IV change from the opening ATM IV (the first cycle after 09:15
IST whose ATM legs both traded), flow from the previous cycle's quotes, a minute's flow bar from
the earlier cycles of that minute, and the alert rules from their windows of history. A replay
from a later moment primes the same engine from the recording before its first cycle there,
storing and showing nothing of it (`prime`):

1. the day's first collection cycle (the day state: the closes captured before the open, or the
   first OI of every instrument the cycle quoted), then the cycles from the open on until every
   expiry bucket's opening ATM IV is anchored (at most `OPENING_CYCLES`);
2. with a windowed chain (`source.chain_strikes` > 0), instruments that enter the window later
   are first seen between the open and the warm-up, and those that left it keep their last
   quote (the chain's OI coverage counts it): the recorded answers in between are read, not
   analysed, for both (`ReplaySource.read_through`);
3. the warm-up: the cycles just before the start (the previous cycle gives flow and the
   snapshot OI change; more of them give the alert rules their window): `optui replay` runs an
   alert window of them (`window_cycles`), so what it stores does not depend on the machine;
   a dashboard jump as many as fit `WARMUP_BUDGET_S` of real time measured on the opening
   cycles, at most one alert window.

Only the closing OI and index closes a pre-open capture takes reach the replay's store (as the
replay from the first record stores them); everything else the priming cycles produce is
dropped. A jump to 14:00 of a full-chain day costs the opening cycles, the warm-up and reading
the hour before the start, not the morning's analytics.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from optui.analytics.premium_flow import prevailing_mid
from optui.collectors.bucket_analytics import session_open
from optui.collectors.closing_oi import CLOSING_OI, INDEX_CLOSE
from optui.collectors.day_state import PrevQuote
from optui.collectors.headless import next_cycle_at
from optui.collectors.session import in_collection_hours, next_pre_open
from optui.collectors.source import quote_from_kite
from optui.errors import SourceError
from optui.indices import INDEX_SPECS
from optui.models import Snapshot
from optui.storage.strike_flow import StrikeFlowBars
from optui.timeutil import IST, MARKET_OPEN, UTC

if TYPE_CHECKING:
    from optui.collectors.engine import CollectionEngine
    from optui.collectors.replay_source import ReplaySource
    from optui.storage.points import Point

log = logging.getLogger(__name__)

OPENING_CYCLES = 20
"""Cycles from the open on that may anchor the opening ATM IVs; a bucket whose ATM legs had not
both traded by then is anchored by the first replayed cycle that has them."""

MAX_CATCH_UP = 10
"""Extra warm-up cycles at most, for live cycles recorded between the schedule's slots."""

WARMUP_BUDGET_S = 1.0
"""Real seconds the warm-up cycles before the start may take (estimated from the opening
cycles): a full-chain day gets the previous cycle or two, a small chain a whole alert window."""


class MutedStore:
    """A store that keeps only the closes a pre-open capture takes (`closing_oi`,
    `index_close`) and drops every other point written; reads and the rest go to `store`."""

    KEPT = (CLOSING_OI, INDEX_CLOSE)

    def __init__(self, store: Any) -> None:
        self.store = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    def write(self, points: Sequence[Point]) -> int:
        kept = [p for p in points if p.measurement in self.KEPT]
        if kept:
            self.store.write(kept)
        return len(points)

    def write_columns(self, measurement: str, tags_list: Sequence[dict[str, str]],
                      times_ns: Any, columns: Any) -> int:
        return len(tags_list)

    def transaction(self) -> AbstractContextManager[None]:
        """No transaction: nothing a priming cycle writes is kept but the closes."""
        return nullcontext()


@dataclass
class Primed:
    """What priming took: cycles run (opening and warm-up, none stored), whether the recorded
    answers between them were read for first OIs, and the real seconds it all took."""

    opening_cycles: int = 0
    warmup_cycles: int = 0
    scanned: bool = False
    seconds: float = 0.0

    def describe(self) -> str:
        if not (self.opening_cycles or self.warmup_cycles):
            return "no earlier cycle to prime from"
        return (f"primed from {self.opening_cycles} opening and {self.warmup_cycles} warm-up "
                f"cycle(s){', first OIs read' if self.scanned else ''} in {self.seconds:.1f} s")


def _anchored(snap: Snapshot | None) -> bool:
    """Every expiry bucket of the cycle has its opening ATM IV."""
    if snap is None or not snap.indices:
        return False
    return all(math.isfinite(stats.iv_open) for idx in snap.indices.values()
               for stats in idx.overview.buckets.values())


def _slot_at_or_after(at: datetime, interval_s: float) -> datetime:
    """The first multiple of the interval at or after `at` (the collector's schedule)."""
    return next_cycle_at(at - timedelta(microseconds=1), interval_s)


class _Run:
    """Drives an engine's cycles on a replay source as `optui collect`'s Collector does: one
    now, then each on the next multiple of the interval, none outside collection hours."""

    def __init__(self, engine: CollectionEngine, interval_s: float, start: datetime) -> None:
        self.engine = engine
        self.interval_s = interval_s
        self.start = start
        self.slot: datetime | None = None
        self.durations: list[float] = []

    @property
    def source(self) -> ReplaySource:
        return self.engine.source  # type: ignore[return-value]

    def move_to(self, at: datetime) -> None:
        now = self.source.now()
        if at > now:
            self.source.advance((at - now).total_seconds())

    def due(self) -> datetime | None:
        """The moment of the next cycle before the start (past a closed market: the next
        pre-open), or None when it falls at or after the start."""
        now = self.source.now() if self.slot is None else max(self.slot, self.source.now())
        if not in_collection_hours(now, self.source.is_trading_day):
            now = next_pre_open(now, self.source.is_trading_day)
        return now if now < self.start else None

    def cycle(self, at: datetime) -> Snapshot | None:
        """One cycle at `at` (a failed one, as live, collects nothing)."""
        self.move_to(at)
        began = time.perf_counter()
        try:
            snap = self.engine.collect_once()
        except SourceError as exc:
            log.debug("priming cycle at %s failed: %s", at, exc)
            snap = None
        if snap is not None:  # a failed cycle is quick: it says nothing of the pace
            self.durations.append(time.perf_counter() - began)
        # At a recorded tick cadence the next cycle is the live run's next snapshot (as the
        # collector's wait_snapshot), so the priming cycles are the live run's, one for one:
        # the flow bar of the minute before the start and the alert windows hold all of them.
        following = self.source.next_snapshot_at() if snap is not None else None
        self.slot = (max(following, self.source.now()) if following is not None
                     else next_cycle_at(max(self.source.now(), at), self.interval_s))
        return snap


def prime(engine: CollectionEngine, start: datetime | None,
          open_source: Callable[[datetime | None], ReplaySource], *,
          warmup_cycles: int | None = None, alerts: Callable[[Any], Any] | None = None) -> Primed:
    """Run the engine silently over the recording up to `start` so its first cycle there has
    the live run's day references (see the module). The engine's source must be a
    ReplaySource started at the day's first record; on return `engine.source` is the one to go
    on with (maybe a new one, opened by `open_source(at)` at the warm-up), its clock at
    `start` (or at the first record when `start` is None or before it).

    `warmup_cycles` fixes the number of warm-up cycles (None: as many as `WARMUP_BUDGET_S`
    allows, at most an alert window); `alerts(store)` builds the alert engine the warm-up feeds
    (None: the engine's own). Cycle failures are skipped as the live run skipped them; reading
    errors raise what the source raises.
    """
    primed = Primed()
    source: ReplaySource = engine.source  # type: ignore[assignment]
    if start is None or start.astimezone(UTC) <= source.now():
        return primed
    began = time.perf_counter()
    settings = engine.settings
    interval = float(settings.source.interval_s)
    store, out_dir, alert_engine = engine.store, engine.out_dir, engine.alerts
    muted = MutedStore(store) if store is not None else None
    engine.store, engine.out_dir = muted, None
    if alert_engine is not None:
        alert_engine.store = muted
    run = _Run(engine, interval, start)
    try:
        _opening(run, primed)
        due = run.due()
        if due is not None:
            window = float(settings.alerts.oi_change_window_min) * 60.0
            n = warmup_cycles if warmup_cycles is not None else _budget(run.durations, interval, window)
            # `warmup_cycles` counts intervals of the schedule (an alert window of them); the
            # budget counts cycles, at a recorded tick cadence one a snapshot.
            step = interval if warmup_cycles is not None or not source.snapshot_s \
                else float(source.snapshot_s)
            warm = _slot_at_or_after(start - timedelta(seconds=max(n, 1) * step), interval)
            if warm > due:  # a gap: go on from a source opened at the warm-up
                _skip_to(engine, run, warm, open_source, primed)
                if alerts is not None and alert_engine is not None:
                    alert_engine = engine.alerts = alerts(muted)  # no history across the gap
                due = run.due()
            while due is not None:
                run.cycle(due)
                primed.warmup_cycles += 1
                due = run.due()
        # The live run's cycles before the start are all taken here (a slow live cycle can fall
        # between the schedule's slots): the first cycle shown is the live run's first at or
        # after the start, as in a replay from the first record.
        spots = [INDEX_SPECS[k].spot_symbol for k in engine.indices]
        for _ in range(MAX_CATCH_UP):
            if not engine.source.unanswered(spots, start):  # type: ignore[attr-defined]
                break
            run.cycle(engine.source.now())
            primed.warmup_cycles += 1
        run.move_to(start)
    finally:
        engine.store, engine.out_dir = store, out_dir
        if engine.alerts is not None:
            engine.alerts.store = store
        bars = getattr(engine, "_flow_bars", None)
        if bars is not None:
            bars.store = store
    rearm = getattr(engine.source, "rearm_notices", None)
    if callable(rearm):
        rearm()  # the file's health lines are said with the first shown cycle
    primed.seconds = time.perf_counter() - began
    log.info("replay from %s: %s", start.astimezone(IST).strftime("%H:%M:%S"), primed.describe())
    return primed


def _opening(run: _Run, primed: Primed) -> None:
    """The day's first cycle, then the cycles from the open until the opening IVs are anchored
    (or OPENING_CYCLES, or the start)."""
    due = run.due()
    if due is None:
        return
    snap = run.cycle(due)
    primed.opening_cycles += 1
    opened = 0
    while not (snap is not None and session_open(snap.timestamp) and _anchored(snap)):
        due = run.due()
        if due is None or opened >= OPENING_CYCLES:
            return
        local = due.astimezone(IST)
        if local.time() < MARKET_OPEN:  # the pre-open anchors nothing: on to the live run's
            at_open = datetime.combine(local.date(), MARKET_OPEN, tzinfo=IST)  # first cycle after
            spots = [INDEX_SPECS[k].spot_symbol for k in run.engine.indices]
            called = run.source.next_call_at(spots, at_open)
            if called is None or called >= run.start:
                return
            due = max(called, due)
        snap = run.cycle(due)
        primed.opening_cycles += 1
        opened += session_open(due)


def window_cycles(settings: Any) -> int:
    """Warm-up cycles that give the windowed alert rules the live run's history at the start:
    an alert window (`alerts.oi_change_window_min`) of cycles and one more."""
    interval = float(settings.source.interval_s)
    return math.ceil(float(settings.alerts.oi_change_window_min) * 60.0 / interval) + 1


def _budget(durations: list[float], interval_s: float, window_s: float) -> int:
    """Warm-up cycles that fit WARMUP_BUDGET_S at the opening cycles' pace, 1 to an alert
    window's worth."""
    per = sorted(durations)[len(durations) // 2] if durations else 0.0
    most = max(1, math.ceil(window_s * 1.5 / interval_s))
    return most if per <= 0 else max(1, min(most, int(WARMUP_BUDGET_S / per)))


def _prev_quote(raw: dict, at_s: float) -> PrevQuote:
    """A recorded Kite quote as the day state keeps an instrument's last quote (as
    optui.collectors.bucket_analytics.analyse_bucket stores it at the cycle moment `at_s`)."""
    q = quote_from_kite(raw)
    mid = float(prevailing_mid(q.bid, q.ask, q.last_price))
    return PrevQuote(q.average_price * q.volume, q.volume, mid, q.last_price, q.oi, at_s)


def _skip_to(engine: CollectionEngine, run: _Run, warm: datetime,
             open_source: Callable[[datetime | None], ReplaySource], primed: Primed) -> None:
    """Leave the opening's source for one opened at the warm-up (it seeks there by the file's
    index); with a windowed chain, first read the answers in between for the first OI of the
    instruments that entered the window. Flow and OI-since-last-cycle do not reach across
    the gap, as live they come from the previous cycle only."""
    old: ReplaySource = engine.source  # type: ignore[assignment]
    state = getattr(engine, "_state", None)
    windowed = engine.settings.source.chain_strikes > 0
    if state is not None and windowed:
        seen = old.read_through(warm, [INDEX_SPECS[k].spot_symbol for k in engine.indices])
        primed.scanned = True
        for token, oi in seen.first.items():
            if token not in state.oi_prev_close:
                state.oi_first.setdefault(token, oi)
        state.prev.update({token: _prev_quote(quote, at_s)
                           for token, (at_s, quote) in seen.last.items()})
    fresh = open_source(warm)
    engine.source = fresh
    old.close()
    if state is not None and not windowed:
        # Every strike is quoted every cycle: the warm-up's first cycle has no previous one
        # (no flow across the gap), and its quotes replace the opening's.
        state.prev.clear()
    engine._flow_bars = None  # type: ignore[attr-defined]  # re-made on the warm-up's store
    engine._strike_bars = StrikeFlowBars()  # type: ignore[attr-defined]
    run.slot = None
    run.move_to(warm)


__all__ = ["MAX_CATCH_UP", "MutedStore", "OPENING_CYCLES", "Primed", "WARMUP_BUDGET_S", "prime",
           "window_cycles"]
