"""The built-in simulated exchange as an in-process source (no port, no account)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from optui.collectors.instruments import parse_instruments_csv
from optui.collectors.kite_source import OPTION_EXCHANGES
from optui.collectors.source import MAX_QUOTE_INSTRUMENTS, MarketSource
from optui.errors import BadInputError
from optui.models import Instrument, SnapshotWarning, WarningKind
from optui.timeutil import IST, MARKET_CLOSE, MARKET_OPEN, now_utc


def demo_start(at: datetime | None = None) -> datetime | None:
    """Where an unconfigured simulator starts its clock: now during a session, else the next open.

    Outside market hours a real-time clock would show a frozen market; a newcomer should see
    prices, volume and flow move, so the clock starts at the next session's 09:15 IST instead.
    """
    from optui.simulator.calendar import is_trading_day, trading_day_on_or_after

    local = (at or now_utc()).astimezone(IST)
    if is_trading_day(local.date()) and MARKET_OPEN <= local.time() < MARKET_CLOSE:
        return None
    day = local.date() if local.time() < MARKET_OPEN else local.date() + timedelta(days=1)
    day = trading_day_on_or_after(day)
    return datetime.combine(day, MARKET_OPEN, tzinfo=IST)


def resume_start(stored_until: datetime | None, at: datetime | None = None) -> datetime | None:
    """Where the simulator's clock starts so it never runs back over stored simulated history.

    `stored_until` is the newest stored market moment. The clock starts at the later of the
    demo start (`demo_start(at)`, None meaning the real time now) and the second after the stored
    history; a history that reaches the close continues at the next session's 09:15 IST (a new
    simulated day). Returns None when the real time now is right.
    """
    from optui.simulator.calendar import is_trading_day, trading_day_on_or_after

    fresh = demo_start(at)
    if stored_until is None:
        return fresh
    after = stored_until.astimezone(IST) + timedelta(seconds=1)
    day = after.date()
    if is_trading_day(day) and after.time() < MARKET_OPEN:
        after = datetime.combine(day, MARKET_OPEN, tzinfo=IST)
    elif not is_trading_day(day) or after.time() >= MARKET_CLOSE:
        after = datetime.combine(trading_day_on_or_after(day + timedelta(days=1)), MARKET_OPEN,
                                 tzinfo=IST)
    begin = fresh or (at or now_utc()).astimezone(IST)
    return after if after > begin else fresh


class SimulatedSource(MarketSource):
    """Reads the seeded market model directly, in the same shapes Kite's API returns."""

    name = "sim"
    label = "SIMULATED"

    def __init__(self, seed: int = 7, speed: float = 1.0, start: datetime | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        from optui.simulator.exchange import SimulatedExchange

        self.exchange = SimulatedExchange(seed=seed, speed=speed, start=start or demo_start(),
                                          clock=clock)

    def instruments(self) -> list[Instrument]:
        out: list[Instrument] = []
        notes: list[SnapshotWarning] = []
        for exchange in OPTION_EXCHANGES:
            what = f"simulated {exchange} dump"
            parsed = parse_instruments_csv(self.exchange.instruments_csv(exchange), what)
            if parsed.skipped:
                notes.append(SnapshotWarning(WarningKind.DUMP_MALFORMED, what, parsed.warning))
            out.extend(parsed.instruments)
        self.dump_warnings = notes
        return out

    def quote_batch(self, keys: Sequence[str]) -> dict[str, dict]:
        if len(keys) > MAX_QUOTE_INSTRUMENTS:
            raise BadInputError(f"{len(keys)} instruments in one quote call: Kite allows {MAX_QUOTE_INSTRUMENTS}")
        return self.exchange.quote(list(keys))

    def now(self) -> datetime:
        """The simulated exchange's clock."""
        return self.exchange.now()

    def real_seconds(self, exchange_seconds: float) -> float:
        """The simulated clock runs `speed` times real time."""
        return exchange_seconds / self.exchange.speed
