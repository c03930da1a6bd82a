"""Typed errors a user can act on: each carries a message that names the problem and the fix."""

from __future__ import annotations


class OptuiError(Exception):
    """Base for errors shown to a user as one line, never as a traceback."""


class ConfigError(OptuiError):
    """A configuration value is missing or invalid."""


class SourceError(OptuiError):
    """A market-data source failed."""


class TokenExpiredError(SourceError):
    """The Kite access token is invalid or expired (HTTP 403 TokenException)."""


class RateLimitedError(SourceError):
    """The source refused a request for exceeding its rate limit (HTTP 429)."""


class NetworkError(SourceError):
    """The source could not be reached."""


class BadInputError(SourceError):
    """The source rejected the request's parameters (HTTP 400 InputException)."""


class StoreError(OptuiError):
    """The store could not be written or read."""
