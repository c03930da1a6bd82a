"""Pre-market capture: at 08:00 IST each trading day, store the previous trading day's NSE
participant files (OI and volume) and FII/DII cash figures.

The scheduler follows the source's exchange clock (`tick(now)` with the quote or simulator time),
so a simulated day at any speed exercises it. A part already stored is never fetched again; a
part not yet published is retried every `retry` until the open (09:15 IST). Each failed attempt
raises a `CaptureFailed` event (logged, and handed to every listener, e.g. the alerts engine);
the last attempt before the open is `final`.

Files are taken from the download folder first (`fao_participant_oi_DDMMYYYY.csv`,
`fao_participant_vol_DDMMYYYY.csv`, `fii_dii_cash_DD-Mon-YYYY.json`), so a server the exchange
blocks can be fed by copying files there; otherwise they are downloaded (when an archive is set).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import ClassVar

from optui.analytics.participants import (
    CashFlow,
    ParticipantFile,
    ParticipantFileError,
    file_name,
    parse_cash_json,
    parse_participant_csv,
)
from optui.analytics.trading_calendar import TradingCalendar
from optui.errors import OptuiError
from optui.storage.base import Store
from optui.storage.participants_store import (
    load_cash,
    load_participant_files,
    save_cash,
    save_participant_file,
)
from optui.timeutil import IST, MARKET_OPEN

log = logging.getLogger(__name__)

PARTS: tuple[str, ...] = ("oi", "vol", "cash")
"""What a capture stores for a trade date: participant OI, participant volume, FII/DII cash."""
CAPTURE_AT = time(8, 0)


def cash_file_name(trade_date: date) -> str:
    """Name under which the FII/DII cash JSON of a day is kept: fii_dii_cash_18-Sep-2026.json."""
    return f"fii_dii_cash_{trade_date:%d-%b-%Y}.json"


@dataclass(frozen=True, slots=True)
class CaptureFailed:
    """A capture attempt left parts missing. For the alerts engine: `severity` is "warning"
    while retries remain and "critical" once `final` (no retry before the open).

    `trade_date` is the day whose files were wanted, `session_date` the trading day the capture
    ran for, `at` the exchange time of the attempt (aware UTC), `reasons` one line per missing
    part, `next_retry_at` None when final.
    """

    kind: ClassVar[str] = "participants_capture_failed"
    trade_date: date
    session_date: date
    at: datetime
    attempt: int
    missing: tuple[str, ...]
    reasons: tuple[str, ...]
    next_retry_at: datetime | None
    final: bool

    @property
    def severity(self) -> str:
        return "critical" if self.final else "warning"

    def message(self) -> str:
        """One line for logs and screens."""
        retry = ("no retry before the open" if self.next_retry_at is None
                 else f"retry at {self.next_retry_at.astimezone(IST):%H:%M} IST")
        return (f"{_what(self.missing)} for {self.trade_date:%Y-%m-%d} missing "
                f"{', '.join(self.missing)} after attempt {self.attempt} ({retry}): "
                + "; ".join(self.reasons))


@dataclass(frozen=True, slots=True)
class CaptureStored:
    """A capture stored new parts for `trade_date` (the alerts engine evaluates the FII/DII flow
    and Pro-Client rules on it: read the day with participants_store.participants_day)."""

    kind: ClassVar[str] = "participants_captured"
    trade_date: date
    session_date: date
    at: datetime  # exchange time of the attempt, aware UTC
    parts: tuple[str, ...]
    complete: bool  # every part of PARTS is now stored

    def message(self) -> str:
        """One line for logs and screens."""
        return f"{_what(self.parts)} for {self.trade_date:%Y-%m-%d} stored: {', '.join(self.parts)}"


def _what(parts: tuple[str, ...]) -> str:
    """What a capture event is about: the previous session's closes, or NSE's participant data."""
    return "closing OI and index closes" if parts and set(parts) == {"closes"} else "participant data"


CaptureEvent = CaptureFailed | CaptureStored


@dataclass
class CaptureResult:
    """One capture attempt: parts stored now, parts already stored, and errors by part."""

    trade_date: date
    stored: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.errors


def stored_parts(store: Store, trade_date: date) -> set[str]:
    """Which of PARTS are stored for a trade date."""
    out: set[str] = set()
    for kind in ("oi", "vol"):
        if trade_date in load_participant_files(store, trade_date, trade_date, kind):
            out.add(kind)
    cash = load_cash(store, trade_date, trade_date).get(trade_date, {})
    if "FII" in cash and "DII" in cash:
        out.add("cash")
    return out


def _local_participant(folder: Path | None, kind: str, day: date) -> ParticipantFile | None:
    if folder is None:
        return None
    path = folder / file_name(kind, day)
    if not path.is_file():
        return None
    return parse_participant_csv(path.read_text(encoding="utf-8-sig", errors="replace"), str(path))


def _local_cash(folder: Path | None, day: date) -> list[CashFlow] | None:
    if folder is None:
        return None
    path = folder / cash_file_name(day)
    if not path.is_file():
        return None
    flows = parse_cash_json(path.read_text(encoding="utf-8-sig", errors="replace"), str(path))
    if flows[0].trade_date != day:
        raise ParticipantFileError(str(path), 0, f"figures are for {flows[0].trade_date}, "
                                                 f"not {day}")
    return flows


def capture_day(store: Store, trade_date: date, *, archive: object | None = None,
                download_dir: Path | None = None,
                parts: Sequence[str] = PARTS) -> CaptureResult:
    """Fetch (download folder first, then `archive`, an NseArchive) and store `parts` for one
    trade date. Each part is validated whole before it is stored; errors are collected per
    part, never raised (the message names the file, line and reason, or the HTTP problem)."""
    result = CaptureResult(trade_date)
    have = stored_parts(store, trade_date)
    for part in parts:
        if part in have:
            result.already.append(part)
            continue
        try:
            if part == "cash":
                flows = _local_cash(download_dir, trade_date)
                if flows is None and archive is not None:
                    flows = archive.cash(trade_date)  # type: ignore[attr-defined]
                if flows is None:
                    raise OptuiError(f"no {cash_file_name(trade_date)} in {download_dir} "
                                     "(downloads are off)")
                save_cash(store, flows)
            else:
                parsed = _local_participant(download_dir, part, trade_date)
                if parsed is None and archive is not None:
                    parsed = archive.participant_file(part, trade_date)  # type: ignore[attr-defined]
                if parsed is None:
                    raise OptuiError(f"no {file_name(part, trade_date)} in {download_dir} "
                                     "(downloads are off)")
                save_participant_file(store, parsed)
                result.warnings.extend(parsed.warnings)
        except OptuiError as exc:
            result.errors[part] = str(exc)
            continue
        except OSError as exc:
            result.errors[part] = f"cannot read the download folder: {exc.strerror}"
            continue
        result.stored.append(part)
    return result


ArchiveFactory = Callable[[], object]
Listener = Callable[[CaptureEvent], None]


class PremarketCapture:
    """The 08:00 IST capture, driven by `tick(now)` from every collection cycle.

    `archive_factory` returns a fresh NseArchive per attempt (None = local files only, e.g. for
    a simulated source). Listeners receive each CaptureStored (new parts stored) and each
    CaptureFailed; `events` keeps the last 50 of both.
    """

    def __init__(self, store: Store, calendar: TradingCalendar, *,
                 archive_factory: ArchiveFactory | None = None,
                 download_dir: Path | None = None, capture_at: time = CAPTURE_AT,
                 retry: timedelta = timedelta(minutes=10), open_at: time = MARKET_OPEN,
                 listeners: Sequence[Listener] = ()) -> None:
        self.store = store
        self.calendar = calendar
        self.archive_factory = archive_factory
        self.download_dir = download_dir
        self.capture_at = capture_at
        self.retry = retry
        self.open_at = open_at
        self.listeners: list[Listener] = list(listeners)
        self.events: list[CaptureEvent] = []
        self.event_count = 0  # events ever emitted (the list keeps the last 50)
        self.last_result: CaptureResult | None = None
        self._session: date | None = None
        self._attempts = 0
        self._next_at: datetime | None = None
        self._finished = False

    def events_since(self, seen: int) -> tuple[list[CaptureEvent], int]:
        """Events emitted after the first `seen` ones (at most the last 50), and the new count:
        a screen polling each cycle passes back the count it got."""
        new = max(0, min(self.event_count - seen, len(self.events)))
        return (self.events[len(self.events) - new:] if new else []), self.event_count

    def status(self) -> str:
        """One line: what the scheduler did or will do for the current session."""
        if self._session is None:
            return "pre-market capture: waiting for a trading day at 08:00 IST"
        if self._finished and self.last_result is not None and self.last_result.complete:
            return f"pre-market capture: {self.last_result.trade_date:%Y-%m-%d} stored"
        if self._finished:
            return f"pre-market capture for {self._session:%Y-%m-%d} gave up at the open"
        if self._next_at is not None:
            return f"pre-market capture: next try {self._next_at.astimezone(IST):%H:%M} IST"
        return f"pre-market capture: due at {self.capture_at:%H:%M} IST"

    def tick(self, now: datetime) -> CaptureResult | None:
        """Run a capture when one is due at exchange time `now` (aware); None otherwise.

        Due: on a trading day, at or after capture time, not yet complete for that day, and past
        the next retry time. Attempts after the open are not retried.
        """
        local = now.astimezone(IST)
        today = local.date()
        if not self.calendar.is_trading_day(today):
            return None
        if self._session != today:
            self._session, self._attempts, self._next_at = today, 0, None
            self._finished = False
        if self._finished or local.time() < self.capture_at:
            return None
        if self._next_at is not None and now < self._next_at:
            return None
        return self._attempt(today, now)

    def run(self, session_date: date, now: datetime | None = None) -> CaptureResult:
        """Capture for `session_date` by hand (optui premarket): the trading day before it."""
        if not self.calendar.is_trading_day(session_date):
            raise OptuiError(f"{session_date:%Y-%m-%d} is not a trading day: give the trading "
                             "day whose pre-market capture to run")
        self._session, self._attempts, self._next_at = session_date, 0, None
        self._finished = False
        at = now or datetime.combine(session_date, self.capture_at, tzinfo=IST)
        return self._attempt(session_date, at, final=True)

    def _attempt(self, session: date, now: datetime, final: bool = False) -> CaptureResult:
        trade_date = self.calendar.previous(session)
        archive = self.archive_factory() if self.archive_factory is not None else None
        try:
            result = capture_day(self.store, trade_date, archive=archive,
                                 download_dir=self.download_dir)
        finally:
            close = getattr(archive, "close", None)
            if callable(close):
                close()
        self._attempts += 1
        self.last_result = result
        for warning in result.warnings:
            log.info("pre-market capture: %s", warning)
        if result.stored:
            self._emit(CaptureStored(trade_date, session, now.astimezone(UTC),
                                     tuple(result.stored), result.complete))
        if result.complete:
            self._finished = True
            self._next_at = None
            return result
        open_at = datetime.combine(session, self.open_at, tzinfo=IST)
        next_at = now + self.retry
        if final or next_at >= open_at:
            self._finished = True
            self._next_at = None
        else:
            self._next_at = next_at
        event = CaptureFailed(
            trade_date, session, now.astimezone(UTC), self._attempts,
            tuple(p for p in PARTS if p in result.errors),
            tuple(f"{p}: {m}" for p, m in result.errors.items()),
            self._next_at.astimezone(UTC) if self._next_at else None, self._next_at is None,
        )
        self._emit(event)
        return result

    def _emit(self, event: CaptureEvent) -> None:
        if isinstance(event, CaptureStored) or self.archive_factory is None:
            # Offline (a simulated market): files absent from the download folder are expected,
            # so the event reaches the health log without an error on the collector's terminal.
            log.info("pre-market capture: %s", event.message())
        else:
            (log.error if event.final else log.warning)("pre-market capture: %s", event.message())
        self.events.append(event)
        self.event_count += 1
        del self.events[:-50]
        for listener in self.listeners:
            try:
                listener(event)
            except Exception:  # noqa: BLE001 - a listener must not stop the capture
                log.exception("pre-market capture listener failed")


def build_premarket(settings: object, store: Store, *, offline: bool = False) -> PremarketCapture:
    """The scheduler from `[participants]` settings; `offline` (simulated sources) reads the
    download folder only, never the exchange."""
    from optui.collectors.nse_archive import NseArchive

    p = settings.participants  # type: ignore[attr-defined]
    folder = Path(p.download_dir).expanduser()
    hour, minute = (int(x) for x in str(p.capture_time).split(":"))

    def factory() -> NseArchive:
        return NseArchive(p.url_template, p.cash_url, timeout_s=p.timeout_s, save_dir=folder)

    return PremarketCapture(
        store, TradingCalendar.from_settings(settings),
        archive_factory=None if offline else factory, download_dir=folder,
        capture_at=time(hour, minute), retry=timedelta(minutes=p.retry_min),
    )
