"""Kite Connect as a market source: the official client, rate limited, with typed errors."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from datetime import date
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from optui.collectors.instruments import (
    instruments_from_kite_rows,
    instruments_to_csv,
    parse_instruments_csv,
)
from optui.collectors.rate_limit import KITE_RATES, RateLimiter
from optui.collectors.source import MAX_QUOTE_INSTRUMENTS, MarketSource
from optui.errors import (
    BadInputError,
    ConfigError,
    NetworkError,
    RateLimitedError,
    SourceError,
    TokenExpiredError,
)
from optui.models import Instrument
from optui.timeutil import IST, now_utc

log = logging.getLogger(__name__)

T = TypeVar("T")

OPTION_EXCHANGES = ("NFO", "BFO")

TOKEN_FIX = (
    "Kite access token is invalid or expired (tokens expire every morning at about 06:00 IST): "
    "log in again (optui → 3 Production → 2 Kite Connect authentication) or set "
    "OPTUI_KITE_ACCESS_TOKEN"
)


def map_kite_error(exc: Exception, what: str) -> SourceError:
    """Turn a kiteconnect or requests exception into our typed error with a message naming the fix."""
    from kiteconnect import exceptions as kex

    code = getattr(exc, "code", None)
    message = str(exc) or exc.__class__.__name__
    if isinstance(exc, kex.TokenException):
        return TokenExpiredError(f"{what}: {TOKEN_FIX}")
    if isinstance(exc, kex.PermissionException):
        return TokenExpiredError(f"{what}: Kite refused permission ({message}): check the app's API permissions")
    if isinstance(exc, kex.NetworkException) and code == 429:
        return RateLimitedError(f"{what}: Kite rate limit hit ({message}); the next cycle retries")
    if isinstance(exc, kex.InputException):
        return BadInputError(f"{what}: Kite rejected the request ({message})")
    if isinstance(exc, kex.KiteException):
        return NetworkError(f"{what}: Kite answered an error ({message}, HTTP {code})")
    # requests' ConnectionError, Timeout and friends: the host is unreachable.
    return NetworkError(f"{what}: cannot reach Kite ({exc.__class__.__name__}); check the network and kite.root")


def is_loopback(root: str) -> bool:
    """Whether a Kite root points at this machine (`optui simulate`), not at Zerodha."""
    from urllib.parse import urlsplit

    host = urlsplit(root).hostname or ""
    return host == "localhost" or host == "::1" or host.startswith("127.")


class KiteSource(MarketSource):
    """Reads instruments and quotes through `kiteconnect.KiteConnect` (sync; run it off the event loop)."""

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
    ) -> None:
        if not api_key:
            raise ConfigError("kite.api_key is not set: run the configuration wizard (Kite credentials) or set OPTUI_KITE_API_KEY")
        if not access_token:
            raise ConfigError("no Kite access token: log in (optui → 3 Production → 2) or set OPTUI_KITE_ACCESS_TOKEN")
        from kiteconnect import KiteConnect

        self._kite = KiteConnect(api_key, access_token=access_token, root=root.rstrip("/"), timeout=timeout)
        self._limiter = limiter or RateLimiter(KITE_RATES)
        self._cache_dir = cache_dir
        self.root = root
        if is_loopback(root):
            # A loopback root is our simulated exchange: the badge must not say LIVE.
            self.label = "SIMULATED"

    def __repr__(self) -> str:  # never show the token
        return f"KiteSource(root={self.root!r})"

    def _call(self, kind: str, what: str, fn: Callable[[], T]) -> T:
        self._limiter.acquire(kind)
        try:
            return fn()
        except Exception as exc:  # noqa: BLE001 - every client failure becomes a typed error
            raise map_kite_error(exc, what) from exc

    def _cache_file(self, exchange: str, day: date) -> Path | None:
        if self._cache_dir is None:
            return None
        # Keyed by the API host too: a dump from `optui simulate` must never stand in for Zerodha's.
        from urllib.parse import urlsplit

        host = re.sub(r"[^A-Za-z0-9.-]", "_", urlsplit(self.root).netloc) or "kite"
        return self._cache_dir / f"instruments_{host}_{exchange}_{day.isoformat()}.csv"

    def instruments(self) -> list[Instrument]:
        """NFO and BFO dumps, cached on disk per trading day (the dump changes once a day)."""
        today = now_utc().astimezone(IST).date()
        out: list[Instrument] = []
        notes: list[str] = []
        for exchange in OPTION_EXCHANGES:
            cache = self._cache_file(exchange, today)
            if cache is not None and cache.exists():
                parsed = parse_instruments_csv(cache.read_text(encoding="utf-8"), str(cache))
                if parsed.instruments:
                    out.extend(parsed.instruments)
                    continue
            rows: list[dict[str, Any]] = self._call(
                "default", f"instrument dump {exchange}", partial(self._kite.instruments, exchange)
            )
            parsed = instruments_from_kite_rows(rows, f"{exchange} instrument dump")
            if parsed.skipped:
                notes.append(f"{exchange} instrument dump: {parsed.warning}")
            out.extend(parsed.instruments)
            if cache is not None and parsed.instruments:
                cache.parent.mkdir(parents=True, exist_ok=True)
                cache.write_text(instruments_to_csv(parsed.instruments), encoding="utf-8")
        self.dump_warnings = notes
        return out

    def quote_batch(self, keys: Sequence[str]) -> dict[str, dict]:
        if len(keys) > MAX_QUOTE_INSTRUMENTS:
            raise BadInputError(f"{len(keys)} instruments in one quote call: Kite allows {MAX_QUOTE_INSTRUMENTS}")
        return self._call("quote", "quote", lambda: self._kite.quote(list(keys)))

    def profile(self) -> dict:
        """The logged-in user's profile (validates the token)."""
        return self._call("default", "profile", self._kite.profile)
