"""The settings' shape: one dataclass per TOML section, with defaults, and the allowed values.

`optui.config` loads these from the TOML file and the OPTUI_* environment and checks them against
CHOICES, RANGES and INTERVALS; a unit is named in a field's comment where it is not in its name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from optui.indices import INDEX_KEYS


@dataclass
class GeneralSettings:
    """[general]: where data and logs go, and the log level."""

    data_dir: str = "data"
    log_dir: str = "logs"
    log_level: str = "INFO"


@dataclass
class SourceSettings:
    """[source]: which exchange feed, which indices and strikes, how often."""

    kind: str = "sim"  # sim | kite
    indices: list[str] = field(default_factory=lambda: list(INDEX_KEYS))
    interval_s: float = 30.0
    offsets: list[int] = field(default_factory=lambda: [-2, -1, 0, 1, 2])
    chain_strikes: int = 0  # 0: every listed strike quoted for PCR, max pain, OI and flow; N: N each side of ATM
    full_chain_expiries: int = 0  # > 0: legs for every listed strike of the first N expiries
    instruments_cache_dir: str = "data/instruments"
    slow_cycle_share: float = 0.8  # a cycle longer than this share of the interval is flagged
    simulated_fallback: bool = False  # while the live source fails, show simulated data (never stored)
    stream: bool = True  # quotes from the WebSocket ticker, REST polling as the fallback tier
    stream_instruments: int = 9000  # at most this many streamed (Kite: 3 connections x 3,000)
    stream_stall_s: float = 10.0  # a ticker connection silent this long (no heartbeat) is redialled
    snapshot_s: float = 1.0  # streamed: a snapshot per this many exchange seconds that ticked; 0: off


@dataclass
class AnalyticsSettings:
    """[analytics]: the IV model's inputs and the quote-quality thresholds."""

    rate: float = 0.065
    dividend_yield: float = 0.0
    iv_model: str = "black76"  # black76 | black_scholes
    skew_steps: int = 4  # skew = put IV - call IV this many strike steps from ATM
    stale_after_s: float = 120.0
    wide_spread_pct: float = 10.0


@dataclass
class SimulatorSettings:
    """[simulator]: the built-in simulated exchange (`optui simulate`, source.kind = sim)."""

    seed: int = 7
    speed: float = 1.0
    start: str = ""  # "YYYY-MM-DD HH:MM" IST; empty = now
    host: str = "127.0.0.1"
    port: int = 8765
    api_key: str = "sim_key"
    access_token: str = "sim_token"


@dataclass
class KiteSettings:
    """[kite]: Kite Connect endpoints and the API key (the secret lives in the secrets file)."""

    api_key: str = ""
    root: str = "https://api.kite.trade"
    login_url: str = "https://kite.zerodha.com/connect/login"
    redirect_url: str = "http://127.0.0.1:5000/success"


@dataclass
class StoreSettings:
    """[store]: where records are written and the spool that holds them while it is down."""

    url: str = "sqlite:///data/optui.db"  # or influxdb://HOST:PORT
    batch_size: int = 5000
    spool_dir: str = "data/spool"


@dataclass
class InfluxSettings:
    """[influxdb]: InfluxDB organisation, bucket (2.x) or database (1.x)."""

    url: str = ""
    org: str = "optui"
    bucket: str = "options-data"
    database: str = "options-data"  # InfluxDB 1.x


@dataclass
class CacheSettings:
    """[cache]: the live cache a collector publishes to and dashboards follow."""

    url: str = "memory://"  # or redis://127.0.0.1:6379/0
    lease_s: float = 30.0  # a collector's lease on its store in Redis; expires this long after a crash


@dataclass
class ExportSettings:
    """[export]: the JSON-per-leg files and CSV sidecar a collection writes."""

    out_dir: str = "data"
    write_json: bool = True
    write_csv: bool = True


@dataclass
class FlowSettings:
    """[flow]: premium flow retention and its default timeframe."""

    retention_days: int = 90
    timeframe: str = "5m"


@dataclass
class PositionSettings:
    """[positions]: the position-change intervals and how many rows to show."""

    intervals: list[str] = field(default_factory=lambda: ["1m", "5m", "15m", "30m", "1h"])
    top_n: int = 10


@dataclass
class AlertSettings:
    """[alerts]: rule thresholds in crore or percent, cooldowns, severities and webhooks."""

    fii_flow_cr: float = 500.0
    dii_flow_cr: float = 300.0
    pro_client_divergence_pct: float = 20.0
    volume_spike_pct: float = 200.0
    single_flow_cr: float = 1000.0
    oi_change_pct: float = 50.0
    oi_change_window_min: int = 15
    cooldown_s: float = 300.0
    webhook_url: str = ""
    oi_change_daily_avg_pct: float = 100.0
    pcr_shift: float = 0.2
    max_pain_shift_steps: float = 2.0
    buildup_flip: bool = True
    severities: list[str] = field(default_factory=list)  # ["rule=critical", ...]
    cooldowns: list[str] = field(default_factory=list)  # ["rule=SECONDS", ...]
    bell: bool = False
    webhook_format: str = "auto"  # auto | json | slack | telegram
    telegram_chat_id: str = ""
    webhook_min_severity: str = "warning"
    webhook_retries: int = 3


@dataclass
class ParticipantSettings:
    """[participants]: NSE participant OI/volume and FII/DII cash capture."""

    enabled: bool = True
    download_dir: str = "data/participants"  # NSE participant OI/volume and FII/DII cash files
    history_days: int = 30  # trading days the participants screen charts first
    url_template: str = (
        "https://nsearchives.nseindia.com/content/nsccl/fao_participant_{kind}_{ddmmyyyy}.csv"
    )
    cash_url: str = "https://www.nseindia.com/api/fiidiiTradeReact"  # FII/DII provisional
    capture_time: str = "08:00"  # IST, each trading day: store the previous day's files
    retry_min: float = 10.0  # minutes between capture retries until the open
    timeout_s: float = 15.0
    holidays: list[str] = field(default_factory=list)  # YYYY-MM-DD added to the NSE table
    special_sessions: list[str] = field(default_factory=list)  # weekend days that trade


@dataclass
class RecordSettings:
    """[record]: recording each collection's answers for `optui replay`."""

    enabled: bool = True  # record every collection's answers for `optui replay`
    dir: str = ""  # empty: data_dir/recordings (live) and data_dir/sim/recordings (simulated)


@dataclass
class UISettings:
    """[ui]: terminal behaviour and the dashboard's chain layout."""

    mouse: bool = True
    animations: bool = False
    theme: str = "textual-dark"
    chain_strikes: int = 10  # strikes each side of the ATM in the dashboard's chain
    oi_unit: str = "lakh"  # OI, OI change and volume in the chain: lakh (units / 100,000) | lots


@dataclass
class ApiSettings:
    """The read-only REST and WebSocket API (`optui serve`, `optui collect --serve`)."""

    host: str = "127.0.0.1"  # loopback; any other address needs a token set explicitly
    port: int = 8000
    cors_origins: list[str] = field(default_factory=list)  # empty: no cross-origin browser access
    rate_limit_per_min: int = 600  # requests per client address per minute (429 beyond)
    max_body_bytes: int = 16384  # larger request bodies are refused with 413
    ws_queue: int = 16  # messages a WebSocket client may fall behind before it is dropped


@dataclass
class Settings:
    """All settings, one attribute per TOML section; `path` is the file they came from."""

    general: GeneralSettings = field(default_factory=GeneralSettings)
    source: SourceSettings = field(default_factory=SourceSettings)
    analytics: AnalyticsSettings = field(default_factory=AnalyticsSettings)
    simulator: SimulatorSettings = field(default_factory=SimulatorSettings)
    kite: KiteSettings = field(default_factory=KiteSettings)
    store: StoreSettings = field(default_factory=StoreSettings)
    influxdb: InfluxSettings = field(default_factory=InfluxSettings)
    cache: CacheSettings = field(default_factory=CacheSettings)
    export: ExportSettings = field(default_factory=ExportSettings)
    flow: FlowSettings = field(default_factory=FlowSettings)
    positions: PositionSettings = field(default_factory=PositionSettings)
    alerts: AlertSettings = field(default_factory=AlertSettings)
    participants: ParticipantSettings = field(default_factory=ParticipantSettings)
    ui: UISettings = field(default_factory=UISettings)
    record: RecordSettings = field(default_factory=RecordSettings)
    api: ApiSettings = field(default_factory=ApiSettings)
    path: Path | None = None  # the TOML file these came from, if any


# Allowed values and ranges of `section.key`; a failed check's message names key, value and what is allowed.
CHOICES: dict[str, tuple[str, ...]] = {
    "general.log_level": ("DEBUG", "INFO", "WARNING", "ERROR"),
    "source.kind": ("sim", "kite"),
    "analytics.iv_model": ("black76", "black_scholes"),
    "flow.timeframe": ("1m", "5m", "15m", "30m", "1h", "1d", "1w"),
    "ui.oi_unit": ("lakh", "lots"),
    "alerts.webhook_format": ("auto", "json", "slack", "telegram"),
    "alerts.webhook_min_severity": ("info", "warning", "critical"),
}
RANGES: dict[str, tuple[float, float]] = {
    "source.interval_s": (1.0, 3600.0),
    "source.chain_strikes": (0, 200),
    "source.full_chain_expiries": (0, 20),
    "source.stream_instruments": (1, 9000),
    "source.stream_stall_s": (1.0, 600.0),
    "analytics.rate": (-0.05, 0.5),
    "analytics.dividend_yield": (0.0, 0.5),
    "analytics.skew_steps": (1, 50),
    "analytics.stale_after_s": (1.0, 86400.0),
    "analytics.wide_spread_pct": (0.1, 1000.0),
    "simulator.speed": (0.01, 10000.0),
    "simulator.port": (1, 65535),
    "store.batch_size": (1, 1_000_000),
    "flow.retention_days": (1, 36500),
    "positions.top_n": (1, 100),
    "alerts.fii_flow_cr": (0.0, 1e6),
    "alerts.dii_flow_cr": (0.0, 1e6),
    "alerts.pro_client_divergence_pct": (0.0, 100.0),
    "alerts.volume_spike_pct": (0.0, 1e5),
    "alerts.single_flow_cr": (0.0, 1e6),
    "alerts.oi_change_pct": (0.0, 1e4),
    "alerts.oi_change_window_min": (1, 375),
    "alerts.oi_change_daily_avg_pct": (0.0, 1e5),
    "alerts.pcr_shift": (0.0, 100.0),
    "alerts.max_pain_shift_steps": (0.0, 1000.0),
    "alerts.cooldown_s": (0.0, 86400.0),
    "alerts.webhook_retries": (0, 10),
    "participants.history_days": (1, 3650),
    "participants.retry_min": (1.0, 120.0),
    "participants.timeout_s": (1.0, 300.0),
    "ui.chain_strikes": (1, 100),
    "api.port": (1, 65535),
    "api.rate_limit_per_min": (1, 1_000_000),
    "api.max_body_bytes": (0, 10_000_000),
    "api.ws_queue": (1, 10_000),
}
# Timeframes a position-change interval may use.
INTERVALS = ("1m", "5m", "15m", "30m", "1h", "1d", "1w")
