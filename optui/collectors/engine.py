"""One collection cycle: quote the planned chains, run analytics, persist, return a Snapshot.

Blocking by design (the Kite client is synchronous): the TUI runs it in a thread worker, the
headless collector in its own loop.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from optui.analytics.chain import atm_strike
from optui.analytics.premium_flow import flow_totals
from optui.collectors import cycle_store
from optui.collectors.bucket_analytics import (
    BucketResult,
    PrevUpdate,
    analyse_buckets,
    session_open,
)
from optui.collectors.chain_plan import BucketPlan, plan_index, quote_batches
from optui.collectors.cycle_stats import (
    CLOCK_OFFSET_WARN_S,
    ClockOffsetEpisodes,
    CycleStats,
    describe_offset,
)
from optui.collectors.day_state import DayState
from optui.collectors.instruments import IndexCatalog, build_catalogs
from optui.collectors.make_source import is_simulated, make_source, store_url_for, with_stream
from optui.collectors.quote_table import QuoteTable
from optui.collectors.record_writer import record_said
from optui.collectors.source import (
    MAX_QUOTE_INSTRUMENTS,
    MarketSource,
    exchange_time,
    reads_local_clock,
)
from optui.collectors.strike_flow import EXPIRIES as STRIKE_EXPIRIES
from optui.collectors.strike_flow import strike_flow
from optui.collectors.tick_flow import FlowTable, per_trade
from optui.config import ExportSettings, Settings
from optui.errors import ConfigError, SourceError, StoreError
from optui.indices import INDEX_SPECS
from optui.leg_rows import LegRows
from optui.models import (
    FlowSummary,
    IndexSnapshot,
    LegRecord,
    OverviewRecord,
    Quote,
    Snapshot,
    SnapshotWarning,
    WarningKind,
)
from optui.storage.strike_flow import StrikeFlowBars
from optui.timeutil import IST, UTC

if TYPE_CHECKING:
    from optui.alerts import AlertEngine
    from optui.storage.records import FlowBarAccumulator

log = logging.getLogger(__name__)


def _pct(change: float, base: float) -> float:
    return change / base * 100.0 if base and math.isfinite(base) else float("nan")


@dataclass(slots=True)
class _Pending:
    """A snapshot `collect_shown` returned, to store: its counters, whether its legs are kept,
    and where its store warnings go among its own when stored at once."""

    snapshot: Snapshot
    stats: CycleStats
    legs: bool
    sinks_at: int
    prev: list[PrevUpdate]  # the previous quotes to replace in the day's state, first


class CollectionEngine:
    """Runs collection cycles over one source and writes each snapshot to the store and files."""

    def __init__(
        self,
        settings: Settings,
        source: MarketSource,
        store=None,  # optui.storage.base.Store | None
        out_dir: Path | None = None,
        state_dir: Path | None = None,
        cache=None,  # optui.storage.cache.Cache | None
    ) -> None:
        self.settings = settings
        self.source = source
        self.store = store
        self.cache = cache
        self.out_dir = out_dir
        self.state_dir = state_dir
        self.indices = list(settings.source.indices)
        self._catalogs: dict[str, IndexCatalog] = {}
        self._catalog_day: date | None = None
        self._state: DayState | None = None
        self._flow_bars: FlowBarAccumulator | None = None
        self._strike_bars = StrikeFlowBars()
        self.last = CycleStats()
        self.premarket: Any = None  # optui.collectors.premarket.PremarketCapture | None
        self.alerts: AlertEngine | None = None  # fed every cycle when set (build_engine does)
        self._tick_flow: FlowTable | None = None  # this cycle's per-trade flow of streamed legs
        self._legs_slot: int | None = None  # interval slot of the last snapshot whose legs were kept
        self._offset_episodes = ClockOffsetEpisodes()
        self._pending: _Pending | None = None  # collected and shown, not yet stored
        self._files_reconciled = False  # leg files caught up with the store this run
        self._late_warnings: list[SnapshotWarning] = []  # of a store after its snapshot was shown
        tick_flow = getattr(source, "flow", None)  # a streamed or replayed source's TickFlow
        if tick_flow is not None:  # per-trade flow from ticks ages out as REST flow does
            tick_flow.max_gap_s = self.max_flow_gap_s
        if hasattr(source, "token_check_s"):  # at the tick cadence, the login once an interval
            source.token_check_s = settings.source.interval_s  # type: ignore[attr-defined]
        if store is not None and hasattr(store, "write_budget_s"):
            # Store writes get half an interval; a hung server's writes spool (InfluxStore._submit).
            # At the tick cadence a second (or half a snapshot): a hung server cannot hold the
            # snapshots up for half an interval each.
            budget = max(0.25, 0.5 * source.real_seconds(settings.source.interval_s))
            if self.snapshot_s is not None:
                budget = min(budget, max(1.0, 0.5 * source.real_seconds(self.snapshot_s)))
            store.write_budget_s = budget

    @property
    def max_flow_gap_s(self) -> float:
        """Older previous quotes give no flow: three intervals, at least three minutes."""
        return max(3.0 * self.settings.source.interval_s, 180.0)

    @property
    def snapshot_s(self) -> float | None:
        """The tick cadence of a streaming source (or of the streamed day a replay plays), in
        exchange seconds; None when cycles run every `interval_s`."""
        cadence = getattr(self.source, "snapshot_s", None)
        return float(cadence) if isinstance(cadence, int | float) else None

    def legs_due(self, at: datetime) -> bool:
        """Whether the snapshot at exchange time `at` stores its leg rows (and leg files): every
        cycle at the interval; at the tick cadence the first snapshot of each `interval_s` slot
        of exchange time (overview, flow and alerts are stored every snapshot)."""
        if self.snapshot_s is None:
            return True
        slot = int(at.timestamp() // self.settings.source.interval_s)
        return slot != self._legs_slot

    @property
    def source_name(self) -> str:
        return self.source.name

    @property
    def source_label(self) -> str:
        return self.source.label

    def _ensure_catalogs(self, at: datetime) -> list[SnapshotWarning]:
        day = at.astimezone(IST).date()
        warnings = self._ensure_listing(at)
        if self._state is None or self._state.day != day:
            self._state = self._load_day(day, at)
        return warnings

    def _ensure_listing(self, at: datetime) -> list[SnapshotWarning]:
        day = at.astimezone(IST).date()
        warnings: list[SnapshotWarning] = []
        if self._catalog_day != day:
            instruments = self.source.instruments()
            warnings.extend(self.source.dump_warnings)
            self._catalogs = build_catalogs(instruments, self.indices)
            self._catalog_day = day
            for key, cat in self._catalogs.items():
                if not cat.chains:
                    warnings.append(SnapshotWarning(WarningKind.NO_OPTIONS, key, "no options listed in the instrument dump"))
        return warnings

    def _load_day(self, day: date, at: datetime) -> DayState:
        """The day's state, OI change anchored on the previous close: captured now when the day
        starts before the open and the store holds no closes of the previous trading day."""
        previous = self._calendar().previous(day)
        closes = self._stored_closes(previous)
        if self.store is not None and not closes:
            result = self.capture_closes(at)
            if result is not None and result.complete:
                closes = self._stored_closes(previous)
        return DayState.load(day, self.state_dir, previous_day=previous,
                             closing_oi=lambda: closes)

    def _calendar(self) -> Any:  # optui.analytics.trading_calendar.TradingCalendar
        from optui.analytics.trading_calendar import TradingCalendar

        if getattr(self, "_trading_calendar", None) is None:
            self._trading_calendar = TradingCalendar.from_settings(self.settings)
        return self._trading_calendar

    def _stored_closes(self, trade_date: date) -> dict[int, float]:
        from optui.collectors.closing_oi import load_closing_oi

        try:
            return load_closing_oi(self.store, trade_date) if self.store is not None else {}
        except StoreError as exc:
            log.warning("cannot read the stored closing OI of %s: %s", trade_date, exc)
            return {}

    def capture_closes(self, at: datetime) -> Any:  # optui.collectors.closing_oi.ClosesResult | None
        """Store the previous trading day's index closes and the tracked options' closing OI
        from quotes taken at exchange time `at`; None (nothing taken) unless `at` is before the
        open of a trading day and a store is set. A rejected capture becomes a CaptureFailed
        event of the pre-market capture (or a log line without one); nothing is raised."""
        from optui.collectors.closing_oi import capture_closes
        from optui.collectors.premarket import CaptureFailed, CaptureStored
        from optui.timeutil import MARKET_OPEN

        local = at.astimezone(IST)
        day = local.date()
        cal = self._calendar()
        if self.store is None or not cal.is_trading_day(day) or local.time() >= MARKET_OPEN:
            return None
        self._ensure_listing(at)
        src = self.settings.source
        result = capture_closes(self.source, self.store, self._catalogs, self.indices,
                                cal.previous(day), at, each_side=src.chain_strikes,
                                offsets=src.offsets, full_chain_expiries=src.full_chain_expiries)
        premarket = self.premarket
        self._closes_attempts = getattr(self, "_closes_attempts", 0) + 1
        if result.complete:
            if self._state is not None and self._state.day == day:  # loaded before the capture
                self._state.oi_prev_close.update(self._stored_closes(result.trade_date))
            event: Any = CaptureStored(result.trade_date, day, at.astimezone(UTC), ("closes",), True)
        else:
            event = CaptureFailed(result.trade_date, day, at.astimezone(UTC), self._closes_attempts,
                                  ("closes",), tuple(f"closes: {e}" for e in result.errors),
                                  None, True)
        if premarket is not None:
            premarket._emit(event)
        else:
            (log.info if result.complete else log.warning)("closing capture: %s", event.message())
        return result

    def source_notices(self) -> list[SnapshotWarning]:
        """The source's health lines since the last call (the stream's, the recording's, a
        replay's), the stream's recorded as said now when the source records (a replay of the
        day says them with the same cycle)."""
        notices = list(getattr(self.source, "take_notices", list)())
        record_said(self.source, notices)
        return notices

    def collect_once(self) -> Snapshot:
        """Run one cycle and store it (`collect_shown`, then `store_pending`); raises SourceError
        subclasses when the source fails. Store, file and cache failures are among the
        snapshot's warnings, before those of its alerts."""
        snap = self.collect_shown()
        self.store_pending(late=False)
        return snap

    def collect_shown(self) -> Snapshot:
        """One cycle up to the snapshot a screen shows (quotes, analytics, alerts), its storing
        left pending: `store_pending` stores it (the day's state, store, files, cache, in that
        order) and must follow before the next cycle, which otherwise stores it first. Raises
        SourceError subclasses when the source fails (nothing is then pending).

        The cycle's market moment is the exchange's: the newest timestamp on the index quotes
        (whole seconds, so a rewrite of the same moment lands on the same stored rows), else the
        source's clock. Expiry, buckets and the day's state all follow it.
        """
        if self._pending is not None:
            self.store_pending()
        started = time.perf_counter()
        # By the source's clock (before the open quotes are stale); never by this machine's,
        # before a remote exchange has answered with its clock (the capture would be another day's).
        if self.premarket is not None and not reads_local_clock(self.source):
            self._tick_premarket(self.source.now())
        stats = CycleStats()
        spot_keys = {k: INDEX_SPECS[k].spot_symbol for k in self.indices}
        spots = self.source.quotes(list(spot_keys.values()))
        stats.quote_calls += 1
        at = exchange_time(spots.values()) or self.source.now().astimezone(UTC)
        warnings = self._ensure_catalogs(at)
        state = self._state
        assert state is not None
        stats.clock_offset_s = self.source.clock_offset_s
        offset_note = self._offset_episodes.note(stats.clock_offset_s)  # once per episode
        if offset_note is not None:
            warnings.append(offset_note)

        src = self.settings.source
        plans: dict[str, list[BucketPlan]] = {}
        for key in self.indices:
            spot_q = spots.get(spot_keys[key])
            if spot_q is None or not math.isfinite(spot_q.last_price) or spot_q.last_price <= 0:
                warnings.append(SnapshotWarning(WarningKind.NO_SPOT, key, f"no spot quote for {spot_keys[key]}"))
                continue
            plans[key] = plan_index(
                self._catalogs[key], spot_q.last_price, at, src.chain_strikes, src.offsets,
                src.full_chain_expiries,
            )
        follow = getattr(self.source, "follow_plan", None)
        if follow is not None:  # a streaming source subscribes what the plan quotes
            follow(plans, {k: spots[spot_keys[k]] for k in plans})
        # Whole chains, packed so that each expiry is quoted in one call wherever it fits.
        groups = [plan.call_keys() + plan.put_keys() for ps in plans.values() for plan in ps]
        batches = quote_batches(groups, MAX_QUOTE_INSTRUMENTS)
        quotes = self._quote_legs(batches)
        stats.quote_calls += len(batches)
        stats.instruments = sum(len(b) for b in batches) + len(spot_keys)
        take_feed = getattr(self.source, "take_feed", None)
        if take_feed is not None:  # a streaming source: which tier answered the cycle
            stats.feed, stats.streamed, _ = take_feed()
        take_flow = getattr(self.source, "take_tick_flow", None)
        tick_flow = take_flow() if take_flow is not None else {}
        self._tick_flow = FlowTable.of(tick_flow) if tick_flow else None
        # Kite serves one quote call a second: a cycle of more calls than interval seconds overruns.
        if self.source.name == "kite" and stats.quote_calls > src.interval_s and stats.feed != "stream":
            warnings.append(SnapshotWarning(
                WarningKind.QUOTE_PACE, "",
                f"{stats.quote_calls} quote calls ({stats.instruments} instruments) take about "
                f"{stats.quote_calls} s at Kite's 1 call/s, longer than the {src.interval_s:g} s "
                "interval: raise source.interval_s, collect fewer indices, or set "
                "source.chain_strikes to quote a window"
            ))

        warnings.extend(self.source_notices())
        snap = Snapshot(timestamp=at.astimezone(UTC), source=self.source.name, label=self.source.label)
        prev_view = dict(state.prev)
        # Every bucket of every index in one vectorised pass, then each index's snapshot.
        jobs = [(plan, spots[spot_keys[key]].last_price)
                for key, index_plans in plans.items() for plan in index_plans if plan.strikes.size]
        prev_later: list[PrevUpdate] = []  # the previous quotes, replaced once shown
        results = iter(analyse_buckets(
            jobs, quotes, at, self.settings.analytics, self.settings.source.offsets, state,
            prev_view, max_gap_s=self.max_flow_gap_s, prev_later=prev_later,
        ))
        try:
            for key, index_plans in plans.items():
                done = [(plan, next(results)) for plan in index_plans if plan.strikes.size]
                snap.indices[key] = self._index_snapshot(
                    key, spots[spot_keys[key]], index_plans, done, at, warnings, prev_view
                )
        except BaseException:
            for update in prev_later:  # as analysed: the next cycle compares with these
                update.apply(state)
            raise
        keep_legs = stats.legs_stored = self.legs_due(at)
        if keep_legs:  # at the tick cadence, leg rows, leg files and the day's state per interval
            self._legs_slot = int(at.timestamp() // src.interval_s)
        warnings.extend(self._late_warnings)  # of the previous cycle's store, stored after shown
        self._late_warnings = []
        snap.warnings = warnings
        sinks_at = len(warnings)  # the store's own warnings go here, before the alerts'
        if self.alerts is not None:
            try:
                snap.alerts = self.alerts.on_snapshot(snap)
                snap.warnings += self.alerts.warnings
            except Exception:  # noqa: BLE001 - a rule's fault must not cost the collected cycle
                log.exception("alert rules failed")
                snap.warnings.append(SnapshotWarning(WarningKind.ALERT_RULE, "alerts",
                                                     "the rules failed on this cycle (details in the log)"))
        snap.duration_s = time.perf_counter() - started
        stats.warnings = warnings
        self.last = stats
        self._pending = _Pending(snap, stats, keep_legs, sinks_at, prev_later)
        return snap

    @property
    def store_is_pending(self) -> bool:
        """A snapshot from `collect_shown` is not yet stored."""
        return self._pending is not None

    def store_pending(self, late: bool = True) -> None:
        """Store the snapshot `collect_shown` returned: the day's state file (when its legs are
        due), then store rows, leg files and cache exactly as one `collect_once` does. A failing
        sink becomes a warning, never a lost snapshot: with `late` (the snapshot was already
        handed on) the warnings ride on the next snapshot, else they join this one's, before
        its alerts' warnings. The snapshot's `duration_s` is not changed. Nothing pending:
        nothing done."""
        cycle_store.store_pending(self, late)

    def premarket_due(self, after: datetime, before: datetime) -> datetime | None:
        """The pre-market capture time on `before`'s IST date when it falls in [after, before)
        (a closed-market wait wakes for it), else None; None without a capture."""
        capture_at = getattr(self.premarket, "capture_at", None)
        if capture_at is None:
            return None
        due = datetime.combine(before.astimezone(IST).date(), capture_at, tzinfo=IST)
        return max(due, after) if due < before else None

    def tick_premarket(self, at: datetime) -> None:
        """Give the pre-market capture a chance to run at exchange time `at` (no quotes taken)."""
        if self.premarket is not None:
            self._tick_premarket(at)

    def _tick_premarket(self, at: datetime) -> None:
        """The 08:00 IST participant capture on the exchange clock; its failures become
        CaptureFailed events and log lines, never a failed cycle."""
        try:
            self.premarket.tick(at)
            local = at.astimezone(IST)
            if local.time() >= self.premarket.capture_at and self._closes_due(local):
                result = self.capture_closes(at)
                if result is not None and result.complete:
                    self._closes_day = local.date()
                else:
                    self._closes_next = at + self.premarket.retry
        except Exception:  # noqa: BLE001 - the capture must never stop collection
            log.exception("pre-market capture failed")

    def _closes_due(self, local: datetime) -> bool:
        """The closes of the day before `local` are not yet captured and no retry is pending."""
        if getattr(self, "_closes_day", None) == local.date():
            return False
        following = getattr(self, "_closes_next", None)
        return (following is None or following.astimezone(IST).date() != local.date()
                or local >= following)

    def _quote_legs(self, batches: list[list[str]]) -> QuoteTable:
        """The planned legs' quotes, one quote call per batch, as one table of columns."""
        return QuoteTable.concat(self.source.quote_tables(batches))

    def _index_snapshot(
        self,
        key: str,
        spot_q: Quote,
        plans: list[BucketPlan],
        analysed: list[tuple[BucketPlan, BucketResult]],
        at: datetime,
        warnings: list[SnapshotWarning],
        prev_view: dict,
    ) -> IndexSnapshot:
        """One index's snapshot from its analysed buckets (every plan with strikes, in order)."""
        spot = spot_q.last_price
        legs: list[Sequence[LegRecord]] = []  # each bucket's
        buckets = {}
        results = []
        strike_flows: dict[tuple[str, float], tuple[float, float]] = {}
        flow_expiries: set[str] = set()  # the expiries in strike_flows
        for plan, res in analysed:
            if res.missing:
                warnings.append(SnapshotWarning(
                    WarningKind.MISSING_QUOTES, f"{key} {plan.bucket}",
                    f"{res.missing} of {plan.strikes.size} strikes missing a call or put quote"
                ))
            if self._tick_flow is not None:
                per_trade(res, self._tick_flow)
            legs.append(res.legs)
            results.append(res)
            buckets[plan.bucket] = res.stats
            expiry = plan.expiry.isoformat()
            if len(flow_expiries | {expiry}) <= STRIKE_EXPIRIES:
                by_strike = strike_flow(plan, res)
                if by_strike:
                    flow_expiries.add(expiry)
                strike_flows.update(((expiry, k), v) for k, v in by_strike.items())
        tokens = np.concatenate([r.tokens for r in results]) if results else np.zeros(0, np.int64)
        if tokens.size:
            # An expiry can sit in two buckets (this_week is also this_month): count its flow
            # once, from the first bucket that quoted it, in the order first seen.
            once = np.sort(np.unique(tokens, return_index=True)[1])
            inflow = np.concatenate([r.inflow for r in results])[once]
            outflow = np.concatenate([r.outflow for r in results])[once]
            flow = flow_totals(inflow, outflow, np.concatenate([r.is_call for r in results])[once])
            # No leg with a usable previous quote (first cycle, or after a gap): unknown, not 0.
            measured = np.isfinite(inflow) | np.isfinite(outflow)
            flow.measured = bool(measured.any())
            starts = np.concatenate([r.prev_at_s for r in results])[once][measured]
            starts = starts[np.isfinite(starts)]
            if starts.size:  # the flow covers the market time since the previous cycle's quotes
                flow.since = datetime.fromtimestamp(float(starts.max()), UTC)
        else:
            flow = FlowSummary(measured=False)
        first = plans[0] if plans else None
        # The listed strike nearest spot, as every bucket's ATM is: never the quotes that arrived.
        if first is not None and first.chain.strikes.size:
            atm = atm_strike(spot, first.chain.strikes)
        else:
            step = INDEX_SPECS[key].step
            atm = float(round(spot / step) * step)
        close = spot_q.close
        # Nothing anchors the day before 09:15 IST; an ohlc of 0 (no trade yet) arrives as NaN.
        opened = session_open(at)
        day_open = spot_q.open if opened else float("nan")
        day_width = spot_q.high - spot_q.low if opened else float("nan")
        overview = OverviewRecord(
            timestamp=at.astimezone(UTC), symbol=key, atm_strike=atm, last_price=spot,
            open=spot_q.open, high=spot_q.high, low=spot_q.low, close=close,
            net_change=spot - close, net_change_percent=_pct(spot - close, close),
            day_change=spot - day_open, day_change_percent=_pct(spot - day_open, day_open),
            day_width=day_width, day_width_percent=_pct(day_width, close),
            buckets=buckets, flow=flow,
        )
        lots = {p.bucket: p.chain.lot_size for p in plans if p.chain.lot_size > 0}
        return IndexSnapshot(key, overview, LegRows.concat(legs), lots, strike_flows)

    def close(self) -> None:
        """Store what is pending (its warnings to the log), then close every part."""
        try:
            self.store_pending()
        except Exception:  # noqa: BLE001 - closing must not hide the real error
            log.exception("storing the last snapshot failed")
        for warning in self._late_warnings:
            log.warning("%s", warning)
        self._late_warnings = []
        for part in (self.alerts, self.source, self.store, self.cache):
            if part is not None:
                try:
                    part.close()
                except Exception:  # noqa: BLE001 - closing must not hide the real error
                    log.debug("error while closing %r", part, exc_info=True)


def _stored_until(store) -> datetime | None:  # store: optui.storage.base.Store
    """The newest market moment in a store's overview rows, or None (empty or unreadable)."""
    from optui.storage.records import OVERVIEW

    try:
        row = store.latest(OVERVIEW)
    except StoreError as exc:
        log.warning("cannot read the newest stored moment: %s", exc)
        return None
    return row.time if row is not None else None


def build_engine(
    settings: Settings,
    source_kind: str | None = None,
    store_url: str | None = None,
    out_dir: Path | None = None,
) -> CollectionEngine:
    """Source, store, cache and output directory from the settings (overrides for the CLI)."""
    from optui.storage.base import open_store

    kind = source_kind or settings.source.kind
    simulated = is_simulated(settings, kind)
    data_dir = Path(settings.general.data_dir)
    url = store_url_for(settings, simulated, store_url)
    store = open_store(url, settings)
    try:
        stored_until = _stored_until(store) if kind == "sim" else None
        source = make_source(settings, kind, stored_until)
        source = with_stream(settings, source, simulated)
    except BaseException:
        store.close()
        raise
    files = out_dir if out_dir is not None else Path(settings.export.out_dir)
    if simulated and out_dir is None and files == Path(ExportSettings().out_dir):
        files = data_dir / "sim"
    cache = None
    if settings.cache.url != "memory://":
        from optui.storage.cache import open_cache

        cache = open_cache(settings.cache.url)
    engine = CollectionEngine(
        settings, source, store, out_dir=files,
        state_dir=data_dir / "state" / ("sim" if simulated else source.name), cache=cache,
    )
    if settings.participants.enabled:
        from optui.collectors.premarket import build_premarket

        engine.premarket = build_premarket(settings, store, offline=simulated)
    from optui.alerts import AlertEngine

    try:
        engine.alerts = AlertEngine.from_settings(settings, store)
    except ConfigError:
        engine.close()
        raise
    premarket = getattr(engine, "premarket", None)  # the 08:00 IST capture, when built
    if premarket is not None:
        alerts = engine.alerts
        if premarket.archive_factory is None:
            # Offline (a simulated market) nothing is downloaded: files missing from the download
            # folder are expected and stay in the health log; files that are there still alert.
            def on_event(event: Any) -> None:
                if getattr(event, "kind", "") == "participants_captured":
                    alerts.on_capture_event(event)

            premarket.listeners.append(on_event)
        else:
            premarket.listeners.append(alerts.on_capture_event)
    return engine


__all__ = ["CLOCK_OFFSET_WARN_S", "CollectionEngine", "CycleStats", "SourceError", "build_engine",
           "describe_offset", "is_simulated", "make_source", "store_url_for"]
