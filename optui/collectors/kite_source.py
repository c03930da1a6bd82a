"""Kite Connect as a market source: the official client, rate limited, with typed errors."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Sequence
from datetime import date, datetime
from email.utils import parsedate_to_datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from optui.collectors.instrument_cache import read_instrument_cache, write_instrument_cache
from optui.collectors.instruments import instruments_from_kite_rows
from optui.collectors.rate_limit import KITE_RATES, RateLimiter
from optui.collectors.source import MAX_QUOTE_INSTRUMENTS, ExchangeClock, MarketSource
from optui.errors import (
    BadInputError,
    ConfigError,
    NetworkError,
    RateLimitedError,
    SourceError,
    TokenExpiredError,
)
from optui.indices import INDEX_SPECS
from optui.models import Instrument, SnapshotWarning, WarningKind
from optui.timeutil import IST

log = logging.getLogger(__name__)

T = TypeVar("T")

OPTION_EXCHANGES = ("NFO", "BFO")

LOGIN_FIX = "log in: `optui login` (or in the app, optui → 3 Production → 2 Kite Connect authentication)"
TOKEN_REASON = "Kite access token is invalid or expired (tokens expire every morning at about 06:00 IST)"
# No "set OPTUI_KITE_ACCESS_TOKEN": a token in the environment overrides the one a login
# stores, so a running collector would never see the next morning's login.
RELOGIN = "log in again (`optui login`, or in the app, optui → 3 Production → 2 Kite Connect authentication)"
TOKEN_FIX = f"{TOKEN_REASON}: {RELOGIN}"
NO_TOKEN = "no Kite access token is stored"
CLOCK_PROBES = 8
"""Timed requests one `tighten_clock` may send to bound the exchange clock (each halves the
bounds, from the header's whole second to within the round trip)."""


TRANSIENT_ATTEMPTS = 4
"""Tries of one REST call whose failures are transient (see `transient_fault`) before it fails."""
TRANSIENT_BACKOFF_S = (0.25, 0.5, 1.0)
"""Exchange seconds waited before the 2nd, 3rd and 4th try (exponential, bounded: 1.75 s in all,
on top of the limiter's spacing, so a retried quote call still keeps Kite's 1 call/s)."""


def transient_fault(exc: BaseException, timeout_s: float | None = None) -> str | None:
    """The precise name of a transient fault a retry may cure, or None for any other failure.

    Kinds: HTTP 429 (rate limited), HTTP 5xx (Kite's GeneralException/NetworkException), a
    timeout, a refused or dropped connection, a 200 answer whose body is not JSON (kiteconnect's
    DataException, which it files under HTTP 502) and a body cut before its Content-Length
    (requests' ChunkedEncodingError / urllib3's IncompleteRead). Names never carry the body."""
    import requests
    from kiteconnect import exceptions as kex

    if isinstance(exc, kex.DataException):
        return "malformed response (not JSON)"
    if isinstance(exc, kex.KiteException):
        code = getattr(exc, "code", None)
        if code == 429:
            return "rate limited (HTTP 429)"
        if isinstance(code, int) and 500 <= code < 600 and not isinstance(
                exc, (kex.TokenException, kex.PermissionException, kex.InputException)):
            return f"server error (HTTP {code})"
        return None
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return "truncated response (body cut)"
    if isinstance(exc, requests.exceptions.Timeout):
        limit = f" in {timeout_s:g} s" if timeout_s else ""
        return f"timeout (no answer{limit})"
    if isinstance(exc, requests.exceptions.ConnectionError):
        return f"connection failed ({exc.__class__.__name__})"
    return None


def map_kite_error(exc: Exception, what: str, timeout_s: float | None = None) -> SourceError:
    """Turn a kiteconnect or requests exception into our typed error with a message naming the
    fault (`transient_fault`'s name where it is one) and the fix; never the body or a secret."""
    from kiteconnect import exceptions as kex

    code = getattr(exc, "code", None)
    message = str(exc) or exc.__class__.__name__
    if isinstance(exc, kex.TokenException):
        return TokenExpiredError(f"{what}: {TOKEN_FIX}")
    if isinstance(exc, kex.PermissionException):
        return TokenExpiredError(f"{what}: Kite refused permission ({message}): check the app's API permissions")
    fault = transient_fault(exc, timeout_s)
    if isinstance(exc, kex.NetworkException) and code == 429:
        return RateLimitedError(f"{what}: Kite rate limit hit ({message}, HTTP 429); the next cycle retries")
    if isinstance(exc, kex.InputException):
        return BadInputError(f"{what}: Kite rejected the request ({message})")
    if isinstance(exc, kex.DataException):
        return NetworkError(f"{what}: Kite answered a {fault}")
    if isinstance(exc, kex.KiteException):
        if fault is not None:
            return NetworkError(f"{what}: Kite answered an error: {fault}: {message}")
        return NetworkError(f"{what}: Kite answered an error ({message}, HTTP {code})")
    if fault is not None and not fault.startswith("connection failed"):
        return NetworkError(f"{what}: Kite answered with a {fault}" if fault.startswith("truncated")
                            else f"{what}: {fault} from Kite; check the network and kite.root")
    # requests' ConnectionError and friends: the host is unreachable.
    return NetworkError(f"{what}: cannot reach Kite ({exc.__class__.__name__}); check the network and kite.root")


def is_loopback(root: str) -> bool:
    """Whether a Kite root points at this machine (`optui simulate`), not at Zerodha."""
    from urllib.parse import urlsplit

    host = urlsplit(root).hostname or ""
    return host == "localhost" or host == "::1" or host.startswith("127.")


class KiteSource(MarketSource):
    """Reads instruments and quotes through `kiteconnect.KiteConnect` (sync; run it off the event loop).

    Built without an access token it is pending: every call raises TokenExpiredError naming the
    login (nothing is requested but the clock read of `sync_clock`) until `set_access_token`
    gives it one, so a collector started before the morning login waits for it instead of
    exiting. A missing API key is a ConfigError.
    """

    name = "kite"
    label = "LIVE"

    def __init__(
        self,
        api_key: str,
        access_token: str,
        root: str = "https://api.kite.trade",
        cache_dir: Path | None = None,
        limiter: RateLimiter | None = None,
        timeout: float = 7.0,
        indices: Sequence[str] | None = None,
    ) -> None:
        if not api_key:
            raise ConfigError("kite.api_key is not set: run the configuration wizard (Kite credentials) or set OPTUI_KITE_API_KEY")
        from kiteconnect import KiteConnect

        self._kite = KiteConnect(api_key, access_token=access_token or None, root=root.rstrip("/"), timeout=timeout)
        self._has_token = bool(access_token)
        self._timeout = timeout
        self._limiter = limiter or RateLimiter(KITE_RATES)
        self._cache_dir = cache_dir
        self._indices = tuple(indices) if indices else tuple(INDEX_SPECS)
        self.root = root
        # Every answer's `Date` header is the server's clock: the exchange time "now" follows it.
        self.clock = ExchangeClock()
        self._kite.reqsession.hooks["response"].append(self._observe_date)
        if is_loopback(root):
            # A loopback root is our simulated exchange: the badge must not say LIVE.
            self.label = "SIMULATED"

    def __repr__(self) -> str:  # never show the token
        return f"KiteSource(root={self.root!r})"

    def _observe_date(self, response: Any, *args: object, **kwargs: object) -> None:
        """requests response hook: take the server's `Date` header as an exchange-clock reading."""
        stamp = response.headers.get("Date") if response is not None else None
        if not stamp:
            return
        try:
            at = parsedate_to_datetime(stamp)
        except (TypeError, ValueError, IndexError):
            log.debug("unreadable Date header %r from %s", stamp, self.root)
            return
        if at.tzinfo is None:
            return
        received = self.clock._mono()
        elapsed = getattr(response, "elapsed", None)  # request sent to headers parsed (requests)
        trip = elapsed.total_seconds() if elapsed is not None else 0.0
        self.clock.observe(at, sent=received - max(trip, 0.0), received=received)

    def now(self) -> datetime:
        """Kite's clock: the last answer's `Date` header carried forward (the machine's before any)."""
        return self.clock.now()

    @property
    def clock_offset_s(self) -> float | None:
        """Local clock minus Kite's at the last answer, seconds; None before any answer."""
        return self.clock.offset_s

    def sync_clock(self) -> None:
        """One cheap request (the profile) to re-read the server's clock (`tighten_clock` then
        narrows it with timed probes, where a wait leaves the time).

        A rejected token raises TokenExpiredError (nothing else can work either); other failures
        are logged and leave the clock as it was. Pending (no token), the same request goes
        without credentials: Kite's refusal still carries its `Date`, so the exchange clock is
        read all the same, and TokenExpiredError names the login."""
        self._read_clock()

    def tighten_clock(self, budget_s: float) -> None:
        """Send the probes `ExchangeClock.probe_at` asks for (each waits for its moment, at most
        a second) while they fit in `budget_s` real seconds and the bounds are wider than the
        round trip allows; nothing when they are tight already. Failures as `sync_clock`."""
        clock = self.clock
        if not self._has_token or clock.sleep is None:
            return  # pending: each request is refused (sync_clock reads the clock meanwhile)
        end = clock._mono() + budget_s
        for _ in range(CLOCK_PROBES):
            due = clock.probe_at()
            if due is None or due > end:
                return
            wait = due - clock._mono()
            if wait > 0:
                clock.sleep(wait)  # the probe's moment, on the clock the bounds are kept on
            before = clock.error_s
            self._read_clock()
            after = clock.error_s
            if before is None or after is None or after > 0.9 * before:
                return  # the probe did not narrow the bounds (a slow trip): try another time
        log.debug("exchange clock within %.3f s after probes", clock.error_s or 0.0)

    def _read_clock(self) -> None:
        """One request for its `Date` header (the response hook reads it); see `sync_clock`."""
        if not self._has_token:
            self._limiter.acquire("default")
            try:  # the response hook reads the Date header of the refusal
                self._kite.reqsession.get(f"{self.root.rstrip('/')}/user/profile",
                                          headers={"X-Kite-Version": "3"}, timeout=self._timeout)
            except Exception as exc:  # noqa: BLE001 - unreachable: the clock stays as it was
                log.debug("clock read from %s failed: %s", self.root, exc)
            raise TokenExpiredError(f"clock sync: {NO_TOKEN}: {LOGIN_FIX}")
        try:
            self.profile()
        except TokenExpiredError:
            raise
        except SourceError as exc:
            log.debug("clock sync with %s failed: %s", self.root, exc)

    @property
    def has_token(self) -> bool:
        """False while pending: built without an access token and none given since."""
        return self._has_token

    def _call(self, kind: str, what: str, fn: Callable[[], T], tries: int = TRANSIENT_ATTEMPTS) -> T:
        """`fn()` through the limiter; a transient fault (`transient_fault`) is retried within
        the call, up to TRANSIENT_ATTEMPTS tries with TRANSIENT_BACKOFF_S between them (each try
        waits its turn at the limiter too; after a 429 one whole extra interval; `tries` 1 for a
        probe, which only asks whether the source answers; no new try once two client timeouts
        of real time, at least 5 s, are spent, so unanswered calls cannot hold a cycle long);
        anything else,
        or the last try's fault, raises its typed error (`map_kite_error`)."""
        if not self._has_token:
            raise TokenExpiredError(f"{what}: {NO_TOKEN}: {LOGIN_FIX}")
        from tenacity import (
            RetryCallState,
            Retrying,
            retry_if_exception,
            stop_after_attempt,
            stop_after_delay,
        )

        def transient(exc: BaseException) -> bool:
            return transient_fault(exc, self._timeout) is not None

        def wait(state: RetryCallState) -> float:
            return TRANSIENT_BACKOFF_S[min(state.attempt_number, len(TRANSIENT_BACKOFF_S)) - 1]

        def before_sleep(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome is not None else None
            assert exc is not None
            fault = transient_fault(exc, self._timeout)
            if getattr(exc, "code", None) == 429:
                self._limiter.penalise(kind)  # the exchange counts arrival times, which jitter
            log.info("%s: %s; retrying (try %d of %d)", what, fault, state.attempt_number + 1,
                     TRANSIENT_ATTEMPTS)

        def attempt() -> T:
            self._limiter.acquire(kind)
            return fn()

        stop = stop_after_attempt(tries) | stop_after_delay(max(2 * self._timeout, 5.0))
        retrying = Retrying(retry=retry_if_exception(transient), stop=stop,
                            wait=wait, before_sleep=before_sleep, sleep=self._backoff_sleep, reraise=True)
        try:
            return retrying(attempt)
        except Exception as exc:  # noqa: BLE001 - every client failure becomes a typed error
            raise map_kite_error(exc, what, self._timeout) from exc

    def _backoff_sleep(self, seconds: float) -> None:
        """Wait `seconds` of exchange time between tries (the clock's own sleep: a simulated
        clock's in tests, else the machine's)."""
        (self.clock.sleep or time.sleep)(seconds)

    def _cache_file(self, exchange: str, day: date) -> Path | None:
        if self._cache_dir is None:
            return None
        # Keyed by the API host too: a dump from `optui simulate` must never stand in for Zerodha's.
        from urllib.parse import urlsplit

        host = re.sub(r"[^A-Za-z0-9.-]", "_", urlsplit(self.root).netloc) or "kite"
        return self._cache_dir / f"instruments_{host}_{exchange}_{day.isoformat()}.csv"

    def instruments(self) -> list[Instrument]:
        """NFO and BFO dumps, cached on disk per exchange day (the dump changes once a day).

        A cache file is used only when it passes `check_instrument_cache` (complete, UTF-8, every
        configured index of that exchange listed); otherwise the dump is fetched again and the
        cache rewritten atomically.
        """
        if self.clock.offset_s is None:
            self.sync_clock()  # the cache is keyed by the exchange's day, not the machine's
        if self.clock.offset_s is None:  # no answer carried a Date: the day is unknown
            raise NetworkError(f"instrument dump: the exchange clock is not read yet (no answer "
                               f"from {self.root} carried its time): the dump's day is the exchange's")
        today = self.now().astimezone(IST).date()
        out: list[Instrument] = []
        notes: list[SnapshotWarning] = []
        for exchange in OPTION_EXCHANGES:
            cache = self._cache_file(exchange, today)
            wanted = [k for k in self._indices if INDEX_SPECS[k].options_exchange == exchange]
            if cache is not None and cache.exists():
                cached, problem = read_instrument_cache(cache, wanted)
                if cached is not None:
                    out.extend(cached)
                    continue
                log.warning("instrument cache %s is not usable (%s): fetching the %s dump again",
                            cache, problem, exchange)
            rows: list[dict[str, Any]] = self._call(
                "default", f"instrument dump {exchange}", partial(self._kite.instruments, exchange)
            )
            parsed = instruments_from_kite_rows(rows, f"{exchange} instrument dump")
            if parsed.skipped:
                notes.append(SnapshotWarning(WarningKind.DUMP_MALFORMED, f"{exchange} instrument dump",
                                             parsed.warning))
            out.extend(parsed.instruments)
            if cache is not None and parsed.instruments:
                try:
                    write_instrument_cache(cache, parsed.instruments)
                except OSError as exc:
                    log.warning("cannot write instrument cache %s (%s): the dump is fetched again next start",
                                cache, exc.strerror or exc)
        self.dump_warnings = notes
        return out

    def quote_batch(self, keys: Sequence[str]) -> dict[str, dict]:
        if len(keys) > MAX_QUOTE_INSTRUMENTS:
            raise BadInputError(f"{len(keys)} instruments in one quote call: Kite allows {MAX_QUOTE_INSTRUMENTS}")
        return self._call("quote", "quote", lambda: self._kite.quote(list(keys)))

    accepts_token = True

    def set_access_token(self, token: str) -> None:
        """Use a new access token (a re-login stored it) without rebuilding the client."""
        if not token:
            raise ValueError("empty access token")
        self._kite.set_access_token(token)
        self._has_token = True

    def probe(self) -> None:
        """The profile call, tried once: cheap (not counted against the quote limit) and checks
        the token."""
        self._call("default", "profile", self._kite.profile, tries=1)

    def profile(self) -> dict:
        """The logged-in user's profile (validates the token)."""
        return self._call("default", "profile", self._kite.profile)
