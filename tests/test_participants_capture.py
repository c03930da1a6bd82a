"""NSE archive downloads on a loopback HTTP server, and the 08:00 IST pre-market capture.

The server is a real http.server on 127.0.0.1 answering with the real fixture files, 403, 404,
an HTML page or a 503; the clock is set to exchange times (a trading day, a holiday, after a
long weekend), never the machine's.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from typer.testing import CliRunner

from optui.analytics.participants import NotCsvError, file_name
from optui.analytics.trading_calendar import TradingCalendar
from optui.cli import app
from optui.collectors.nse_archive import (
    ArchiveBlockedError,
    NotPublishedError,
    NseArchive,
)
from optui.collectors.premarket import (
    CaptureEvent,
    CaptureFailed,
    CaptureStored,
    PremarketCapture,
    cash_file_name,
    stored_parts,
)
from optui.storage.base import Store, open_store
from optui.timeutil import IST

pytestmark = pytest.mark.participants

FIXTURES = Path(__file__).resolve().parent / "fixtures"
HTML = b"<!DOCTYPE html><html><body><h1>Access Denied</h1></body></html>"


def _retitled(kind: str, src: date, dst: date) -> str:
    """A fixture file re-dated to `dst` (title line and name), for days the fixtures lack."""
    text = (FIXTURES / "nse_participant" / file_name(kind, src)).read_text()
    return text.replace(f"as on {src:%b} {src.day}, {src.year}", f"as on {dst:%b} {dst.day}, {dst.year}")


class Archive:
    """A loopback NSE archive: `routes` maps a path to (status, body, content type)."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[int, bytes, str]] = {}
        self.hits: list[str] = []
        self.flaky: dict[str, int] = {}  # path -> how many 503s before the real answer
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                owner.hits.append(self.path)
                if owner.flaky.get(self.path, 0) > 0:
                    owner.flaky[self.path] -= 1
                    status, body, ctype = 503, b"busy", "text/plain"
                else:
                    status, body, ctype = owner.routes.get(self.path, (404, b"Not Found", "text/plain"))
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    @property
    def template(self) -> str:
        return self.url + "/content/nsccl/fao_participant_{kind}_{ddmmyyyy}.csv"

    def put_day(self, day: date, src: date | None = None) -> None:
        for kind in ("oi", "vol"):
            body = _retitled(kind, src or day, day).encode()
            self.routes[f"/content/nsccl/{file_name(kind, day)}"] = (200, body, "text/csv")

    def put_cash(self, day: date) -> None:
        text = (FIXTURES / "nse_fiidii_cash" / "fii_dii_cash_18-Sep-2026.json").read_text()
        self.routes["/api/fiidiiTradeReact"] = (
            200, text.replace("18-Sep-2026", f"{day:%d-%b-%Y}").encode(), "application/json")

    def client(self, **kw: object) -> NseArchive:
        return NseArchive(self.template, self.url + "/api/fiidiiTradeReact", timeout_s=5,
                          backoff_s=0.01, **kw)  # type: ignore[arg-type]


@pytest.fixture
def archive() -> Iterator[Archive]:
    a = Archive()
    a.thread.start()
    yield a
    a.server.shutdown()
    a.server.server_close()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = open_store(f"sqlite:///{tmp_path / 'p.db'}")
    yield s
    s.close()


def ist(day: date, hh: int, mm: int) -> datetime:
    return datetime.combine(day, time(hh, mm), tzinfo=IST)


# ---- downloads ----------------------------------------------------------------------------

def test_download_parses_the_real_file_and_keeps_a_copy(archive: Archive, tmp_path: Path) -> None:
    day = date(2026, 8, 17)
    archive.put_day(day)
    with archive.client(save_dir=tmp_path) as nse:
        parsed = nse.participant_file("oi", day)
    assert parsed.rows["FII"]["future_index_short"] == 206886
    assert (tmp_path / file_name("oi", day)).read_text() == _retitled("oi", day, day)
    assert archive.hits == ["/content/nsccl/fao_participant_oi_17082026.csv"]


@pytest.mark.parametrize(("status", "body", "error", "words"), [
    (403, b"Forbidden", ArchiveBlockedError, "optui participants import"),
    (404, b"Not Found", NotPublishedError, "not published yet"),
    (200, HTML, NotCsvError, "HTML page instead of the data"),
])
def test_each_failure_has_its_own_message(archive: Archive, tmp_path: Path, status: int,
                                          body: bytes, error: type[Exception], words: str) -> None:
    day = date(2026, 8, 17)
    archive.routes[f"/content/nsccl/{file_name('oi', day)}"] = (status, body, "text/html")
    with archive.client(save_dir=tmp_path) as nse, pytest.raises(error, match=words):
        nse.participant_file("oi", day)
    assert list(tmp_path.iterdir()) == []  # nothing kept of a failed download


def test_server_errors_are_retried_with_backoff(archive: Archive) -> None:
    day = date(2026, 8, 17)
    archive.put_day(day)
    path = f"/content/nsccl/{file_name('vol', day)}"
    archive.flaky[path] = 2
    with archive.client() as nse:
        assert nse.participant_file("vol", day).kind == "vol"
    assert archive.hits.count(path) == 3
    archive.flaky[path] = 5
    from optui.errors import NetworkError

    with archive.client() as nse, pytest.raises(NetworkError, match="after 3 attempts"):
        nse.participant_file("vol", day)


def test_cash_for_another_day_is_not_published_yet(archive: Archive) -> None:
    archive.put_cash(date(2026, 9, 17))
    with archive.client() as nse, pytest.raises(NotPublishedError, match="2026-09-17"):
        nse.cash(date(2026, 9, 18))


# ---- the 08:00 IST scheduler --------------------------------------------------------------

def _capture(store: Store, archive: Archive, calendar: TradingCalendar | None = None,
             events: list[CaptureEvent] | None = None, folder: Path | None = None) -> PremarketCapture:
    return PremarketCapture(
        store, calendar or TradingCalendar(), archive_factory=archive.client,
        download_dir=folder, retry=timedelta(minutes=10),
        listeners=[events.append] if events is not None else [],
    )


def test_trading_day_at_0800_captures_the_previous_trading_day(store: Store, archive: Archive) -> None:
    archive.put_day(date(2026, 8, 17))
    archive.put_cash(date(2026, 8, 17))
    events: list[CaptureEvent] = []
    cap = _capture(store, archive, events=events)
    tuesday = date(2026, 8, 18)
    assert cap.tick(ist(tuesday, 7, 59)) is None  # before 08:00: nothing
    result = cap.tick(ist(tuesday, 8, 0))
    assert result is not None and result.complete and result.trade_date == date(2026, 8, 17)
    assert sorted(result.stored) == ["cash", "oi", "vol"]
    assert stored_parts(store, date(2026, 8, 17)) == {"oi", "vol", "cash"}
    hits = len(archive.hits)
    assert cap.tick(ist(tuesday, 8, 30)) is None and len(archive.hits) == hits  # done for today
    assert len(events) == 1 and isinstance(events[0], CaptureStored)
    assert events[0].complete and sorted(events[0].parts) == ["cash", "oi", "vol"]


def test_holiday_captures_nothing(store: Store, archive: Archive) -> None:
    cap = _capture(store, archive)
    gandhi_jayanti = date(2026, 10, 2)  # a Friday holiday
    assert cap.tick(ist(gandhi_jayanti, 8, 0)) is None
    assert cap.tick(ist(date(2026, 10, 3), 8, 0)) is None  # Saturday
    assert archive.hits == []


def test_after_a_long_weekend_the_friday_is_captured(store: Store, archive: Archive) -> None:
    # Monday 17 Aug declared a holiday in configuration: Tuesday's capture wants Friday 14 Aug.
    calendar = TradingCalendar(TradingCalendar().holidays | {date(2026, 8, 17)})
    archive.put_day(date(2026, 8, 14))
    archive.put_cash(date(2026, 8, 14))
    cap = _capture(store, archive, calendar)
    assert cap.tick(ist(date(2026, 8, 17), 8, 0)) is None
    result = cap.tick(ist(date(2026, 8, 18), 8, 5))
    assert result is not None and result.complete and result.trade_date == date(2026, 8, 14)
    assert "/content/nsccl/fao_participant_oi_14082026.csv" in archive.hits


def test_failures_retry_until_the_open_then_give_up(store: Store, archive: Archive) -> None:
    archive.put_day(date(2026, 8, 17))  # participant files published, cash endpoint blocked
    archive.routes["/api/fiidiiTradeReact"] = (403, b"Forbidden", "text/html")
    seen: list[CaptureEvent] = []
    cap = _capture(store, archive, events=seen)
    day = date(2026, 8, 18)
    first = cap.tick(ist(day, 8, 0))
    stored = [e for e in seen if isinstance(e, CaptureStored)]
    assert len(stored) == 1 and stored[0].parts == ("oi", "vol") and not stored[0].complete
    events = [e for e in seen if isinstance(e, CaptureFailed)]
    assert first is not None and sorted(first.stored) == ["oi", "vol"] and "cash" in first.errors
    assert len(events) == 1 and events[0].missing == ("cash",) and not events[0].final
    assert events[0].severity == "warning" and "HTTP 403" in events[0].reasons[0]
    assert events[0].next_retry_at == ist(day, 8, 10)
    assert cap.tick(ist(day, 8, 5)) is None  # not yet time to retry
    minute = 10
    while cap.tick(ist(day, 8 + minute // 60, minute % 60)) is not None:
        minute += 10
        assert minute < 120
    events = [e for e in seen if isinstance(e, CaptureFailed)]
    # Retries at 08:10 ... 09:10; the 09:10 attempt is the last before the 09:15 open.
    assert [e.attempt for e in events] == list(range(1, 9))
    assert events[-1].final and events[-1].severity == "critical" and events[-1].next_retry_at is None
    oi_hits = [h for h in archive.hits if "_oi_" in h]
    assert len(oi_hits) == 1  # a stored part is never fetched again


def test_files_in_the_download_folder_need_no_network(store: Store, archive: Archive,
                                                      tmp_path: Path) -> None:
    day = date(2026, 9, 18)
    for kind in ("oi", "vol"):
        (tmp_path / file_name(kind, day)).write_text(_retitled(kind, date(2026, 8, 18), day))
    (tmp_path / cash_file_name(day)).write_text(
        (FIXTURES / "nse_fiidii_cash" / "fii_dii_cash_18-Sep-2026.json").read_text())
    cap = _capture(store, archive, folder=tmp_path)
    result = cap.tick(ist(date(2026, 9, 21), 8, 0))  # Monday after Friday 18 Sep
    assert result is not None and result.complete and archive.hits == []


def test_cli_premarket_and_show_json(archive: Archive, tmp_path: Path) -> None:
    archive.put_day(date(2026, 8, 17))
    archive.put_day(date(2026, 8, 14))
    archive.put_cash(date(2026, 8, 17))
    cfg = tmp_path / "optui.toml"
    cfg.write_text(
        "[participants]\n"
        f'url_template = "{archive.template}"\n'
        f'cash_url = "{archive.url}/api/fiidiiTradeReact"\n'
        f'download_dir = "{tmp_path / "downloads"}"\n'
        "[general]\n"
        f'log_dir = "{tmp_path / "logs"}"\n'
    )
    db = f"sqlite:///{tmp_path / 'p.db'}"
    runner = CliRunner()
    out = runner.invoke(app, ["premarket", "--date", "2026-08-18", "--store", db, "-c", str(cfg)])
    assert out.exit_code == 0, out.output
    assert "trade date 2026-08-17" in out.output
    out = runner.invoke(app, ["participants", "backfill", "--from", "2026-08-14", "--to",
                              "2026-08-16", "--store", db, "-c", str(cfg)])
    assert out.exit_code == 0, out.output
    assert "2026-08-14  oi, vol" in out.output and "1 trading day(s)" in out.output
    out = runner.invoke(app, ["participants", "show", "--json", "--store", db, "-c", str(cfg)])
    assert out.exit_code == 0, out.output
    import json

    data = json.loads(out.output)
    assert data["trade_date"] == "2026-08-17"
    assert set(data["participants"]) == {"FII", "DII", "Pro", "Client"}
    fii = data["participants"]["FII"]
    assert (fii["index_futures_long"], fii["index_futures_short"], fii["index_futures_net"],
            fii["index_calls_net"], fii["index_puts_net"], fii["options_bias"],
            fii["index_futures_net_change_1d"]) == (
        25299, 206886, -181587, -228525, 502455, -730980, -181587 + 176698)
    assert data["cash"]["FII"]["net_cr"] == 599.54
    out = runner.invoke(app, ["premarket", "--date", "2026-10-02", "--store", db, "-c", str(cfg)])
    assert out.exit_code == 2 and "not a trading day" in out.output


def test_collect_cycle_runs_the_capture_on_the_simulator_clock(tmp_path: Path) -> None:
    """`optui collect` and the app share CollectionEngine.collect_once, which ticks the capture
    with the source's exchange time: a simulated 08:00 IST on Tuesday 18 Aug 2026 stores Monday's
    files from the download folder (a simulated source never downloads)."""
    from optui.collectors.engine import build_engine
    from optui.config import load_settings

    downloads = tmp_path / "downloads"
    downloads.mkdir()
    monday = date(2026, 8, 17)
    for kind in ("oi", "vol"):
        (downloads / file_name(kind, monday)).write_text(_retitled(kind, monday, monday))
    settings = load_settings(environ={})
    settings.general.data_dir = str(tmp_path / "data")
    settings.simulator.start = "2026-08-18 08:00"
    settings.participants.download_dir = str(downloads)
    settings.source.indices = ["NIFTY"]
    engine = build_engine(settings, "sim", f"sqlite:///{tmp_path / 'sim.db'}", tmp_path / "out")
    try:
        assert engine.premarket is not None and engine.premarket.archive_factory is None
        snap = engine.collect_once()
        assert snap.timestamp.astimezone(IST).time() < time(8, 1)
        assert stored_parts(engine.store, monday) == {"oi", "vol"}
        events = [e for e in engine.premarket.events if isinstance(e, CaptureFailed)]
        assert len(events) == 1 and events[0].missing == ("cash",)
        assert "downloads are off" in events[0].reasons[0]
    finally:
        engine.close()


def test_cli_import_of_an_html_page_stores_nothing(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPTUI_GENERAL_LOG_DIR", str(tmp_path / "logs"))
    page = tmp_path / "fao_participant_oi_18082026.csv"
    page.write_bytes(HTML)
    db = f"sqlite:///{tmp_path / 'p.db'}"
    out = CliRunner().invoke(app, ["participants", "import", str(page), "--store", db])
    assert out.exit_code == 1
    assert "fao_participant_oi_18082026.csv: this is an HTML page, not NSE's CSV" in out.output
    assert "0 file(s) stored, 1 rejected" in out.output
    out = CliRunner().invoke(app, ["participants", "show", "--store", db])
    assert out.exit_code == 1 and "no participant OI stored" in out.output


def test_cli_show_with_only_cash_stored_shows_the_cash_and_names_the_missing_oi(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """NSE's FII/DII cash JSON imported without a participant OI file: `participants show`
    prints the cash figures (FII +599.54, DII +1,019.69 crore on 18 Sep 2026) and says on stderr
    that the participant OI is missing; exit 1 as for any missing part."""
    import json

    monkeypatch.setenv("OPTUI_GENERAL_LOG_DIR", str(tmp_path / "logs"))
    db = f"sqlite:///{tmp_path / 'p.db'}"
    runner = CliRunner()
    out = runner.invoke(app, ["participants", "import", str(FIXTURES / "nse_fiidii_cash"), "--store", db])
    assert out.exit_code == 0, out.output
    for args in ((), ("--date", "2026-09-18")):
        out = runner.invoke(app, ["participants", "show", "--store", db, *args])
        assert out.exit_code == 1, out.output
        assert out.stdout.splitlines()[0] == (
            f"Participants (index derivatives OI): not stored for {'2026-09-18' if args else 'any date'}")
        cash = {ln.split()[0]: ln.split()[1:] for ln in out.stdout.splitlines()[2:]}
        assert "trade date 2026-09-18" in out.stdout
        assert cash["FII"][:2] == ["+₹599.54", "cr"] and cash["DII"][:2] == ["+₹1,019.69", "cr"]
        assert "no participant OI stored for" in out.stderr and "participants backfill" in out.stderr
    out = runner.invoke(app, ["participants", "show", "--json", "--store", db])
    assert out.exit_code == 1
    data = json.loads(out.stdout)
    assert data["participants"] is None and data["trade_date"] == "2026-09-18"
    assert data["cash"]["FII"]["net_cr"] == 599.54 and data["cash"]["DII"]["net_cr"] == 1019.69
    # A day with neither stored is still a plain "not stored" error.
    out = runner.invoke(app, ["participants", "show", "--store", db, "--date", "2026-09-17"])
    assert out.exit_code == 1 and out.stdout == ""
    assert "no participant OI stored for 2026-09-17" in out.stderr
