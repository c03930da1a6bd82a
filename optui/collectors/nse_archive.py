"""Download NSE's participant files and FII/DII cash figures over HTTPS (httpx).

NSE serves its archive to browsers: requests carry browser-like headers, a timeout, and are retried
with exponential backoff (tenacity) on network errors and 5xx answers. What a retry cannot fix
gets one clear message each: 403 (the exchange blocks this address: import the files instead),
404 (not published yet, or not a trading day) and a body that is not the data (an HTML page).
"""

from __future__ import annotations

import logging
from datetime import date
from pathlib import Path

import httpx
from tenacity import (
    retry,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from optui.analytics.participants import (
    CashFlow,
    NotCsvError,
    ParticipantFile,
    file_name,
    looks_like_html,
    parse_cash_json,
    parse_participant_csv,
)
from optui.errors import NetworkError, SourceError

log = logging.getLogger(__name__)

DEFAULT_PARTICIPANT_URL = (
    "https://nsearchives.nseindia.com/content/nsccl/fao_participant_{kind}_{ddmmyyyy}.csv"
)
DEFAULT_CASH_URL = "https://www.nseindia.com/api/fiidiiTradeReact"

BROWSER_HEADERS = {
    "User-Agent": ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                   "Chrome/126.0 Safari/537.36"),
    "Accept": "text/csv,application/json,text/plain,*/*;q=0.8",
    "Accept-Language": "en-US,en;q=0.9",
    "Referer": "https://www.nseindia.com/",
    "Connection": "keep-alive",
}


class ArchiveBlockedError(SourceError):
    """HTTP 403: the exchange refuses this address (common for cloud servers)."""


class NotPublishedError(SourceError):
    """HTTP 404: the file is not published yet, or the date was not a trading day."""


class _Retryable(Exception):
    """A 5xx answer or a network failure: worth another attempt."""


def participant_url(template: str, kind: str, trade_date: date) -> str:
    """The URL of one file: `{kind}` (oi, vol), `{ddmmyyyy}`, `{date}` (ISO) are substituted."""
    return template.format(kind=kind, ddmmyyyy=f"{trade_date:%d%m%Y}", date=trade_date.isoformat())


class NseArchive:
    """Fetches participant files and cash figures; `client` may be given (tests, shared pools).

    `attempts` tries per request with exponential backoff starting at `backoff_s` seconds.
    """

    def __init__(self, participant_url_template: str = DEFAULT_PARTICIPANT_URL,
                 cash_url: str = DEFAULT_CASH_URL, *, timeout_s: float = 15.0,
                 attempts: int = 3, backoff_s: float = 1.0,
                 client: httpx.Client | None = None, save_dir: Path | None = None) -> None:
        self.template = participant_url_template
        self.cash_url = cash_url
        self.attempts = max(1, attempts)
        self.backoff_s = backoff_s
        self.save_dir = save_dir
        self._own = client is None
        self.client = client or httpx.Client(
            headers=BROWSER_HEADERS, timeout=httpx.Timeout(timeout_s), follow_redirects=True)

    def close(self) -> None:
        """Release connections (only those this object opened)."""
        if self._own:
            self.client.close()

    def __enter__(self) -> NseArchive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _get(self, url: str, what: str) -> str:
        @retry(retry=retry_if_exception_type(_Retryable), stop=stop_after_attempt(self.attempts),
               wait=wait_exponential(multiplier=self.backoff_s, max=30), reraise=True)
        def attempt() -> httpx.Response:
            try:
                response = self.client.get(url)
            except httpx.HTTPError as exc:
                raise _Retryable(f"{type(exc).__name__}: {exc}") from exc
            if response.status_code >= 500:
                raise _Retryable(f"HTTP {response.status_code}")
            return response

        try:
            response = attempt()
        except _Retryable as exc:
            raise NetworkError(f"{what}: the exchange did not answer after {self.attempts} "
                               f"attempts ({exc}) at {url}") from None
        if response.status_code == 403:
            raise ArchiveBlockedError(
                f"{what}: the exchange refused this address (HTTP 403) at {url}; download the "
                "file in a browser and load it with `optui participants import PATH`")
        if response.status_code == 404:
            raise NotPublishedError(
                f"{what}: not found (HTTP 404) at {url}: not published yet (NSE posts it in "
                "the evening) or not a trading day")
        if response.status_code != 200:
            raise SourceError(f"{what}: HTTP {response.status_code} from {url}")
        text = response.text
        if looks_like_html(text):
            raise NotCsvError(url, 0, f"{what}: the exchange sent an HTML page instead of the "
                                      "data (a block or error page); nothing was stored")
        return text

    def participant_file(self, kind: str, trade_date: date) -> ParticipantFile:
        """Download and parse one file; raises the errors above or ParticipantFileError. The
        raw text is saved to `save_dir` under NSE's name only after it parsed."""
        name = file_name(kind, trade_date)
        text = self._get(participant_url(self.template, kind, trade_date), name)
        parsed = parse_participant_csv(text, name)
        if self.save_dir is not None:
            self._save(name, text)
        return parsed

    def cash(self, trade_date: date) -> list[CashFlow]:
        """Download today's FII/DII provisional figures; SourceError when they are not for
        `trade_date` (NSE serves only the latest day)."""
        name = f"fii_dii_cash_{trade_date:%d-%b-%Y}.json"
        text = self._get(self.cash_url, "FII/DII cash figures")
        flows = parse_cash_json(text, name)
        if flows[0].trade_date != trade_date:
            raise NotPublishedError(
                f"FII/DII cash figures are for {flows[0].trade_date:%Y-%m-%d}, not "
                f"{trade_date:%Y-%m-%d} (NSE serves only the latest day)")
        if self.save_dir is not None:
            self._save(name, text)
        return flows

    def _save(self, name: str, text: str) -> None:
        assert self.save_dir is not None
        try:
            self.save_dir.mkdir(parents=True, exist_ok=True)
            (self.save_dir / name).write_text(text, encoding="utf-8")
        except OSError as exc:
            log.warning("cannot keep a copy of %s in %s: %s", name, self.save_dir, exc.strerror)
