"""Kite rate limiting (fake clock, no sleeping) and the mapping of Kite errors to typed errors."""

from __future__ import annotations

import pytest
import requests
from kiteconnect import exceptions as kex

from optui.collectors.kite_source import KiteSource, map_kite_error
from optui.collectors.rate_limit import KITE_RATES, RateLimiter
from optui.errors import (
    BadInputError,
    ConfigError,
    NetworkError,
    RateLimitedError,
    TokenExpiredError,
)

pytestmark = pytest.mark.unit


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.t += seconds


def test_quote_calls_spaced_one_second_others_tenth() -> None:
    clock = FakeClock()
    limiter = RateLimiter(KITE_RATES, clock=clock, sleep=clock.sleep)
    assert limiter.acquire("quote") == 0
    assert limiter.acquire("quote") == pytest.approx(1.05)
    assert limiter.acquire("default") == 0
    assert limiter.acquire("default") == pytest.approx(0.105)
    clock.t += 5
    assert limiter.acquire("quote") == 0
    assert clock.slept == [pytest.approx(1.05), pytest.approx(0.105)]


@pytest.mark.parametrize(
    ("exc", "kind", "words"),
    [
        (kex.TokenException("Incorrect `api_key` or `access_token`.", code=403), TokenExpiredError, ["06:00 IST", "log in again"]),
        (kex.NetworkException("Too many requests", code=429), RateLimitedError, ["rate limit"]),
        (kex.InputException("invalid instrument", code=400), BadInputError, ["invalid instrument"]),
        (kex.GeneralException("boom", code=500), NetworkError, ["HTTP 500"]),
        (requests.ConnectionError("refused"), NetworkError, ["cannot reach Kite", "kite.root"]),
    ],
)
def test_kite_errors_become_typed_messages(exc: Exception, kind: type, words: list[str]) -> None:
    err = map_kite_error(exc, "quote")
    assert isinstance(err, kind)
    for word in words:
        assert word in str(err)


def test_missing_credentials_name_the_fix() -> None:
    with pytest.raises(ConfigError, match="kite.api_key"):
        KiteSource("", "token")
    # Without a token the source is pending: every call names the login, nothing is sent.
    pending = KiteSource("key", "", root="http://127.0.0.1:1")
    assert pending.has_token is False
    with pytest.raises(TokenExpiredError, match="no Kite access token is stored: log in: `optui login`"):
        pending.quote_batch(["NSE:NIFTY 50"])
    with pytest.raises(TokenExpiredError, match="no Kite access token"):
        pending.probe()
    pending.set_access_token("fresh")
    assert pending.has_token is True


def test_repr_hides_token() -> None:
    src = KiteSource("key", "very-secret-token", root="http://127.0.0.1:1")
    assert "very-secret-token" not in repr(src) and "very-secret-token" not in str(vars(src).get("root"))
    assert src.label == "SIMULATED"
