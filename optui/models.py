"""Typed records that flow from sources through analytics to stores, exports and widgets."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from optui.alerts.model import Alert


@dataclass(frozen=True, slots=True)
class Instrument:
    """One row of Kite's instrument dump."""

    instrument_token: int
    exchange_token: int
    tradingsymbol: str
    name: str
    last_price: float
    expiry: date | None
    strike: float
    tick_size: float
    lot_size: int
    instrument_type: str  # CE, PE, FUT, EQ
    segment: str  # NFO-OPT, BFO-OPT, NFO-FUT, INDICES, ...
    exchange: str  # NFO, BFO, NSE, BSE

    @property
    def key(self) -> str:
        """The 'EXCHANGE:TRADINGSYMBOL' form Kite's quote calls take."""
        return f"{self.exchange}:{self.tradingsymbol}"


@dataclass(slots=True)
class Quote:
    """One instrument's full quote, as Kite's /quote returns it, with times made IST-aware."""

    instrument_token: int
    timestamp: datetime | None
    last_trade_time: datetime | None
    last_price: float
    last_quantity: int
    buy_quantity: int
    sell_quantity: int
    volume: int
    average_price: float
    oi: float
    oi_day_high: float
    oi_day_low: float
    net_change: float
    open: float  # NaN before the day's first trade (Kite sends 0)
    high: float
    low: float
    close: float  # previous session's close, NaN when there is none
    bid: float  # best bid, 0 when the book side is empty
    ask: float  # best offer, 0 when the book side is empty
    bid_quantity: int = 0
    ask_quantity: int = 0

    @property
    def mid(self) -> float:
        """Mid of the best bid and offer, or last price when either side is empty."""
        if self.bid > 0 and self.ask > 0:
            return (self.bid + self.ask) / 2.0
        return self.last_price

    @property
    def traded_value(self) -> float:
        """Day's traded value in rupees: Kite's day VWAP times day volume."""
        return self.average_price * self.volume


# Field order of the original collectors' CSV sidecar (24 columns). Dashboards parse it.
LEG_CSV_COLUMNS: tuple[str, ...] = (
    "timestamp", "index", "bucket", "expiry", "side", "atm_strike", "strike", "strike_offset",
    "last_price", "average_price", "volume", "oi", "oi_open", "oi_change", "iv",
    "ohlc_open", "ohlc_high", "ohlc_low", "ohlc_close", "net_change", "net_change_percent",
    "day_change", "day_change_percent", "days_to_expiry",
)


@dataclass(slots=True)
class LegRecord:
    """One option leg (index x bucket x side x strike) in one snapshot.

    The first fields keep the original collectors' names; the rest are additions.
    `oi_change` is OI minus the reference OI (`oi_open`: previous close when known, else the
    day's first OI), positive when open interest grew.
    """

    timestamp: datetime  # aware, UTC
    index: str
    bucket: str
    side: str  # CALL or PUT
    expiry: date
    atm_strike: float
    strike: float  # the leg's own strike
    strike_offset: str  # atm_m2 ... atm_p2, or e.g. atm_p7 in full-chain mode
    last_price: float
    average_price: float
    volume: int
    oi: float
    oi_open: float
    oi_change: float
    iv: float  # annualised, percent (e.g. 12.5), NaN when undetermined
    days_to_expiry: float
    ohlc_open: float
    ohlc_high: float
    ohlc_low: float
    ohlc_close: float
    net_change: float
    net_change_percent: float
    day_change: float
    day_change_percent: float
    tradingsymbol: str = ""
    instrument_token: int = 0
    bid: float = 0.0
    ask: float = 0.0
    delta: float = float("nan")
    gamma: float = float("nan")
    theta: float = float("nan")  # rupees per calendar day
    vega: float = float("nan")  # rupees per volatility point
    oi_change_snapshot: float = 0.0  # vs the previous snapshot
    buildup: str = ""  # long_buildup, short_buildup, short_covering, long_unwinding, or ""
    flags: str = ""  # comma list of data-quality flags, "" when clean


@dataclass(slots=True)
class BucketStats:
    """Chain aggregates for one index and expiry bucket.

    PCR, max pain and the OI totals cover every listed strike of the expiry that quoted this
    cycle; `oi_coverage` says how much of the chain's open interest that is (1.0 when every
    listed instrument quoted) and `flags` says which figures rest on incomplete or untraded
    legs. The ATM strike is the listed strike nearest spot, whatever quotes arrived. `gex_cr`
    is the same strikes' net gamma exposure (optui.analytics.exposure: calls +, puts −), not
    only the recorded legs'.
    """

    bucket: str
    expiry: date
    days_to_expiry: float
    forward: float
    atm_strike: float
    atm_iv: float  # percent
    iv_open: float  # first ATM IV of the day, percent
    straddle: float  # ATM call + put premium
    pcr_oi: float
    pcr_volume: float
    max_pain: float
    skew: float  # put IV minus call IV at the configured wing, volatility points
    ce_oi: float
    pe_oi: float
    ce_oi_change: float
    pe_oi_change: float
    strikes: int  # listed strikes whose call and put both quoted this cycle
    listed_strikes: int = 0  # strikes the instrument dump lists for the expiry
    oi_coverage: float = float("nan")  # share of the chain's OI the aggregates include, 0..1
    flags: str = ""  # comma list of BUCKET_FLAGS (optui.analytics.quality), "" when whole
    gex_cr: float = float("nan")  # net gamma exposure of the quoted chain, ₹ crore per 1 % move

    @property
    def iv_day_change(self) -> float:
        """ATM IV minus the day's opening ATM IV, volatility points; NaN before the anchor."""
        return self.atm_iv - self.iv_open


@dataclass(slots=True)
class FlowSummary:
    """Premium flow for one index between two snapshots, rupees crore."""

    inflow_cr: float = 0.0
    outflow_cr: float = 0.0
    ce_inflow_cr: float = 0.0
    ce_outflow_cr: float = 0.0
    pe_inflow_cr: float = 0.0
    pe_outflow_cr: float = 0.0
    measured: bool = True
    """False when no leg had a usable previous quote: the cycle's flow is unknown, not zero."""
    since: datetime | None = None
    """The market moment of the previous quotes the flow is measured from (aware), if known."""

    @property
    def net_cr(self) -> float:
        return self.inflow_cr - self.outflow_cr

    @property
    def buying_pressure(self) -> float:
        """inflow / (inflow + outflow); NaN when nothing traded."""
        total = self.inflow_cr + self.outflow_cr
        return self.inflow_cr / total if total > 0 else float("nan")

    @property
    def pressure_ratio(self) -> float:
        """inflow / outflow; NaN when nothing was sold."""
        return self.inflow_cr / self.outflow_cr if self.outflow_cr > 0 else float("nan")

    @property
    def bullish_cr(self) -> float:
        """CE net inflow minus PE net inflow."""
        return (self.ce_inflow_cr - self.ce_outflow_cr) - (self.pe_inflow_cr - self.pe_outflow_cr)


@dataclass(slots=True)
class OverviewRecord:
    """One index's overview in one snapshot (the original `index_overview` record)."""

    timestamp: datetime  # aware, UTC
    symbol: str
    atm_strike: float
    last_price: float
    open: float
    high: float
    low: float
    close: float
    net_change: float  # vs previous close
    net_change_percent: float
    day_change: float  # vs today's open
    day_change_percent: float
    day_width: float  # high - low
    day_width_percent: float  # of the previous close
    buckets: dict[str, BucketStats] = field(default_factory=dict)
    flow: FlowSummary = field(default_factory=FlowSummary)

    def legacy_fields(self) -> dict[str, float | str]:
        """The flat field set of the original collectors, including per-bucket keys."""
        out: dict[str, float | str] = {
            "symbol": self.symbol,
            "atm_strike": self.atm_strike,
            "last_price": self.last_price,
            "open": self.open,
            "high": self.high,
            "low": self.low,
            "close": self.close,
            "net_change": self.net_change,
            "net_change_percent": self.net_change_percent,
            "day_change": self.day_change,
            "day_change_percent": self.day_change_percent,
            "day_width": self.day_width,
            "day_width_percent": self.day_width_percent,
        }
        for name, b in self.buckets.items():
            out[f"{name}_TP"] = b.straddle
            out[f"{name}_OI_CALL"] = b.ce_oi
            out[f"{name}_OI_PUT"] = b.pe_oi
            out[f"PCR_{name}"] = b.pcr_oi
            out[f"{name}_atm_iv"] = b.atm_iv
            out[f"{name}_iv_open"] = b.iv_open
            out[f"{name}_iv_day_change"] = b.iv_day_change
            out[f"{name}_days_to_expiry"] = b.days_to_expiry
        return out


@dataclass(slots=True)
class IndexSnapshot:
    """Everything collected for one index in one cycle."""

    index: str
    overview: OverviewRecord
    legs: Sequence[LegRecord] = field(default_factory=list)
    """The recorded legs: from the collector a LegRows (optui.leg_rows: columns, a LegRecord
    built where a row is read), else any sequence of LegRecords."""
    lot_sizes: dict[str, int] = field(default_factory=dict)
    """Contract lot size per expiry bucket, from the instrument dump; absent when unknown."""
    strike_flow: dict[tuple[str, float], tuple[float, float]] = field(default_factory=dict)
    """This cycle's premium flow near the money: (expiry ISO, strike) -> (CE net, PE net),
    rupees crore (optui.collectors.strike_flow)."""


class WarningKind(StrEnum):
    """What a snapshot warning is about; consumers decide by kind, never by the text."""

    DUMP_MALFORMED = "dump_malformed"  # rows of an instrument dump skipped as unreadable
    NO_OPTIONS = "no_options"  # the instrument dump lists no options for an index
    NO_SPOT = "no_spot"  # an index's spot quote is missing: the index is not collected
    MISSING_QUOTES = "missing_quotes"  # strikes of a chain without a call or put quote
    CLOCK_OFFSET = "clock_offset"  # the local clock is off the exchange's
    QUOTE_PACE = "quote_pace"  # quote calls at Kite's 1 call/s take longer than the interval
    STORE = "store"  # the store did not take the cycle, or reported a notice
    FILES = "files"  # the original-format JSON/CSV files could not be written
    CACHE = "cache"  # the cache (Redis) did not take the cycle's summaries
    ALERT_RULE = "alert_rule"  # the alert rules failed on this cycle
    ALERT_STORE = "alert_store"  # raised alerts could not be stored
    RECORDING = "recording"  # the session recording: a repaired cut file, a write failure
    REPLAY = "replay"  # a replayed recording: cut mid-write, corrupt frames skipped
    STREAM = "stream"  # the WebSocket ticker: feed tier, drops, gaps, stalls, bad frames


LOSS_KINDS: frozenset[WarningKind] = frozenset({WarningKind.STORE, WarningKind.FILES})
"""Kinds that mean the cycle was not persisted in full (a one-shot collect then exits 1)."""


class SnapshotWarning(str):
    """One warning of a collection cycle: its `kind`, `subject` (an index, "NIFTY this_week",
    or the sink: "store", "files", "cache", "alerts"; empty when about the whole cycle) and
    `message`.

    The value is the text shown in status lines and the health log: "subject: message", or the
    message alone without a subject. A `str`, so it prints, logs, compares and serialises as
    that text.
    """

    kind: WarningKind
    subject: str
    message: str

    def __new__(cls, kind: WarningKind, subject: str, message: str) -> SnapshotWarning:
        self = super().__new__(cls, f"{subject}: {message}" if subject else message)
        self.kind = WarningKind(kind)
        self.subject = subject
        self.message = message
        return self

    def __getnewargs__(self) -> tuple[WarningKind, str, str]:  # type: ignore[override]
        return (self.kind, self.subject, self.message)

    def __repr__(self) -> str:
        return f"SnapshotWarning({self.kind.value}, {self.subject!r}, {self.message!r})"

    def as_dict(self) -> dict[str, str]:
        """{"kind", "subject", "message"} for JSON (a feed's channel, a summary file)."""
        return {"kind": self.kind.value, "subject": self.subject, "message": self.message}

    @classmethod
    def from_dict(cls, data: dict[str, str]) -> SnapshotWarning:
        """The inverse of `as_dict`; raises ValueError for an unknown kind, KeyError for a
        missing key."""
        return cls(WarningKind(data["kind"]), data["subject"], data["message"])


SOURCE_BADGES: dict[str, str] = {
    "kite": "LIVE",
    "sim": "SIMULATED",
    "cached": "CACHED",
    "cache": "CACHED",
    "replay": "REPLAY",
}
"""Badge per Snapshot.source: the UI never shows simulated or cached data without saying so."""


def source_badge(source: str) -> str:
    """The badge shown for a Snapshot.source: LIVE, SIMULATED, CACHED, REPLAY (else its name)."""
    return SOURCE_BADGES.get(source.lower(), source.upper() or "UNKNOWN")


@dataclass(slots=True)
class Snapshot:
    """One collection cycle over all configured indices; says which source made it."""

    timestamp: datetime  # aware, UTC
    source: str  # kite, sim, replay
    indices: dict[str, IndexSnapshot] = field(default_factory=dict)
    duration_s: float = 0.0
    warnings: list[SnapshotWarning] = field(default_factory=list)
    label: str = ""  # badge: LIVE, SIMULATED (also Kite's API on loopback), CACHED, REPLAY
    alerts: list[Alert] = field(default_factory=list)  # raised by this cycle (optui.alerts)

    @property
    def leg_count(self) -> int:
        return sum(len(s.legs) for s in self.indices.values())

    @property
    def flagged_count(self) -> int:
        """Legs with a data-quality flag, over every index."""
        from optui.leg_rows import leg_column

        return sum(sum(map(bool, leg_column(s.legs, "flags"))) for s in self.indices.values())
