"""The read-only API: a real uvicorn server on loopback, fed by a LocalFeed on the in-process
simulator, driven by httpx; every figure checked against the snapshot the feed produced."""

from __future__ import annotations

import json
import math
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from dashboard_pilot import sim_settings

from optui.analytics.positions import top_oi_changes
from optui.analytics.premium_flow import flow_window
from optui.api.auth import TokenInfo, check_bind, ensure_token
from optui.api.serialise import iso
from optui.api.serve import prepare_token, start_server
from optui.api.server import ApiServer
from optui.api.state import ApiState, Collector
from optui.collectors.engine import build_engine
from optui.config import Settings
from optui.errors import ConfigError
from optui.feed.local import LocalFeed
from optui.feed.model import FeedCycle
from optui.storage.flow_queries import query_flow_series

pytestmark = pytest.mark.integration

START = "2026-11-25 11:00"  # a Wednesday session: the simulator trades at once
TOKEN = "test-token-" + "x7Kq2" * 6
OPTUI = str(Path(sys.executable).with_name("optui"))


@dataclass
class Rig:
    """One simulated collector (LocalFeed) and the settings it runs with."""

    settings: Settings
    feed: LocalFeed
    responses: list[str]

    def cycle(self) -> FeedCycle:
        return self.feed.next_cycle()


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    tmp = tmp_path_factory.mktemp("api")
    settings = sim_settings(tmp)
    settings.simulator.start = START
    settings.simulator.speed = 60
    settings.source.indices = ["NIFTY", "SENSEX"]
    settings.source.chain_strikes = 5  # a short chain: quick cycles
    settings.alerts.single_flow_cr = 0.01  # premium-flow alerts from the second cycle on
    settings.alerts.cooldown_s = 0.0  # every cycle with flow raises them
    feed = LocalFeed(build_engine(settings))
    feed.start()
    try:
        yield Rig(settings, feed, [])
    finally:
        feed.close()


@dataclass
class Served:
    state: ApiState
    server: ApiServer
    client: httpx.Client


def serve(rig: Rig, token: str = TOKEN, **api: Any) -> Served:
    settings = rig.settings
    for key, value in api.items():
        setattr(settings.api, key, value)
    state = ApiState(settings, rig.feed.store)
    state.collector = Collector("local", "test", "collecting here")
    rig.feed.listeners.append(state.offer)
    server = start_server(state, "127.0.0.1", 0, TokenInfo(token, "environment"))
    client = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=10.0,
                          event_hooks={"response": [lambda r: _keep(rig, r)]})
    return Served(state, server, client)


def _keep(rig: Rig, response: httpx.Response) -> None:
    response.read()
    rig.responses.append("\n".join(f"{k}: {v}" for k, v in response.headers.items()) + "\n" + response.text)


def stop(rig: Rig, served: Served) -> None:
    served.client.close()
    served.server.stop()
    rig.feed.listeners.remove(served.state.offer)
    served.state.close()
    for key in ("rate_limit_per_min", "max_body_bytes", "ws_queue"):
        setattr(rig.settings.api, key, getattr(Settings().api, key))


@pytest.fixture
def served(rig: Rig) -> Iterator[Served]:
    s = serve(rig)
    try:
        yield s
    finally:
        stop(rig, s)


def wait_for(state: ApiState, cycle: FeedCycle) -> None:
    """Until the API holds `cycle` (the hub thread takes it a moment after the feed)."""
    deadline = time.monotonic() + 10
    while (state.latest is None or state.latest.cycle is not cycle) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert state.latest is not None and state.latest.cycle is cycle


def same(got: Any, want: float) -> bool:
    """JSON null for NaN, else the very number."""
    if isinstance(want, float) and not math.isfinite(want):
        return got is None
    return got == want


# ---------------------------------------------------------------- values = the feed's snapshot


def test_overview_and_chain_equal_the_snapshot_the_feed_produced(rig: Rig, served: Served) -> None:
    rig.cycle()
    cycle = rig.cycle()
    wait_for(served.state, cycle)
    snap = cycle.snapshot

    body = served.client.get("/api/overview/indices").json()
    assert body["as_of"] == iso(snap.timestamp) and body["as_of"].endswith("+05:30")
    assert body["source_badge"] == "SIMULATED" and body["stale"] is False
    assert body["data_age_s"] is not None and body["data_age_s"] >= 0
    assert [i["index"] for i in body["indices"]] == ["NIFTY", "SENSEX"]
    nifty = body["indices"][0]
    ov = snap.indices["NIFTY"].overview
    assert nifty["spot"] == ov.last_price and same(nifty["net_change_pct"], ov.net_change_percent)
    nearest = ov.buckets[nifty["buckets"][0]]
    assert nifty["nearest"]["atm_iv_pct"] == nearest.atm_iv and nifty["nearest"]["max_pain"] == nearest.max_pain

    detail = served.client.get("/api/overview/indices/nifty").json()  # any case
    assert detail["index"] == "NIFTY" and set(detail["buckets"]) == set(ov.buckets)
    for name, b in ov.buckets.items():
        got = detail["buckets"][name]
        assert got["expiry"] == b.expiry.isoformat()
        assert got["spot"] == ov.last_price
        assert same(got["atm_strike"], b.atm_strike)
        for key, want in (("atm_iv_pct", b.atm_iv), ("pcr_oi", b.pcr_oi), ("pcr_volume", b.pcr_volume),
                          ("max_pain", b.max_pain), ("straddle", b.straddle), ("skew_vol_pts", b.skew),
                          ("days_to_expiry", b.days_to_expiry), ("ce_oi", b.ce_oi), ("pe_oi", b.pe_oi)):
            assert same(got[key], want), (name, key, got[key], want)
    flow = ov.flow
    assert detail["flow"]["measured"] is flow.measured
    if flow.measured:
        assert detail["flow"]["buying_cr"] == flow.inflow_cr and detail["flow"]["net_cr"] == flow.net_cr

    bucket = next(iter(ov.buckets))
    chain = served.client.get(f"/api/chain/NIFTY/{bucket}").json()
    legs = [leg for leg in snap.indices["NIFTY"].legs if leg.bucket == bucket]
    got_legs = {(r["strike"], side): r[side] for r in chain["rows"] for side in ("call", "put") if r[side]}
    assert len(got_legs) == len(legs) > 0
    strikes = [r["strike"] for r in chain["rows"]]
    assert strikes == sorted(strikes)
    for leg in legs:
        got = got_legs[(leg.strike, "call" if leg.side == "CALL" else "put")]
        assert got["tradingsymbol"] == leg.tradingsymbol
        for key, want in (("last_price", leg.last_price), ("oi", leg.oi), ("oi_change", leg.oi_change),
                          ("iv_pct", leg.iv), ("delta", leg.delta), ("gamma", leg.gamma),
                          ("theta", leg.theta), ("vega", leg.vega)):
            assert same(got[key], want), (leg.tradingsymbol, key)
        assert got["buildup"] == (leg.buildup or None)
        assert got["flags"] == [f for f in leg.flags.split(",") if f]

    moved = served.client.get("/api/analytics/cash-flows/position-changes?index=NIFTY&n=5").json()
    want = top_oi_changes(snap.indices["NIFTY"].legs, 5)
    assert [(p["tradingsymbol"], p["oi_change"], p["buildup"]) for p in moved["indices"]["NIFTY"]] == \
        [(leg.tradingsymbol, leg.oi_change, leg.buildup or None) for leg in want]


def test_cash_flows_are_the_stored_bars_the_flow_panel_reads(rig: Rig, served: Served) -> None:
    for _ in range(2):
        cycle = rig.cycle()
    wait_for(served.state, cycle)
    body = served.client.get("/api/analytics/cash-flows/1m").json()
    start, end = flow_window(cycle.snapshot.timestamp, "1m", rig.settings.flow.retention_days)
    assert body["unit"] == "INR crore" and body["from"] == iso(start) and body["to"] == iso(end)
    for index in ("NIFTY", "SENSEX"):
        series = query_flow_series(rig.feed.store, index, "1m", start, end)
        bars = body["indices"][index]["bars"]
        assert series.bars and len(bars) == len(series.bars)
        for got, want in zip(bars, series.bars, strict=True):
            assert got["start"] == iso(want.start)
            assert (got["buying_cr"], got["selling_cr"], got["net_cr"]) == (want.inflow_cr, want.outflow_cr, want.net_cr)
            assert got["sentiment"] == want.sentiment
    coarse = served.client.get("/api/analytics/cash-flows/1W").json()
    assert coarse["timeframe"] == "1w"
    week = coarse["indices"]["NIFTY"]["bars"]
    assert len(week) == 1 and week[0]["start"] == "2026-11-23T00:00:00+05:30"  # Monday, IST


def test_alerts_and_health_follow_the_feed(rig: Rig, served: Served) -> None:
    raised: list[Any] = []
    for _ in range(4):
        cycle = rig.cycle()
        raised += cycle.snapshot.alerts
        if raised:
            break
    wait_for(served.state, cycle)
    assert raised, "a cycle with premium flow raises alerts at single_flow_cr = 0.01"
    body = served.client.get("/api/alerts", params={"since": iso(raised[0].at)}).json()
    got = {(a["time"], a["rule"], a["subject"]) for a in body["alerts"]}
    assert {(iso(a.at), a.rule, a.subject) for a in raised} <= got
    assert all(a["time"] >= body["since"] for a in body["alerts"])
    later = served.client.get("/api/alerts", params={"since": "2030-01-01"}).json()
    assert later["alerts"] == []

    health = served.client.get("/api/health").json()
    assert health["status"] == "ok" and health["collector"]["mode"] == "local"
    assert health["last_cycle"]["as_of"] == iso(cycle.snapshot.timestamp)
    assert health["last_cycle"]["legs"] == cycle.snapshot.leg_count
    assert health["store"]["reachable"] is True


def test_a_gap_keeps_the_newest_snapshot_and_health_says_why(rig: Rig, served: Served) -> None:
    cycle = rig.cycle()
    wait_for(served.state, cycle)
    rig.feed.publish_gap("the quote call timed out")
    deadline = time.monotonic() + 10
    while served.state.gap is None and time.monotonic() < deadline:
        time.sleep(0.01)
    health = served.client.get("/api/health").json()
    assert health["status"] == "gap" and health["gap"]["reason"] == "the quote call timed out"
    overview = served.client.get("/api/overview/indices").json()
    assert overview["as_of"] == iso(cycle.snapshot.timestamp)  # the newest snapshot, ageing
    after = rig.cycle()
    wait_for(served.state, after)
    assert served.client.get("/api/health").json()["status"] == "ok"


def test_history_reads_the_store(rig: Rig, served: Served) -> None:
    cycle = rig.cycle()
    wait_for(served.state, cycle)
    at = iso(cycle.snapshot.timestamp)
    rows = served.client.get("/api/history/index_overview", params={"index": "NIFTY"}).json()["rows"]
    assert rows[-1]["time"] == at and rows[-1]["tags"] == {"index": "NIFTY"}
    assert rows[-1]["fields"]["last_price"] == cycle.snapshot.indices["NIFTY"].overview.last_price
    rolled = served.client.get("/api/history/premium_flow",
                               params={"index": "NIFTY", "every": "1h"}).json()
    assert rolled["fn"] == "sum" and len(rolled["rows"]) == 1
    total = sum(b.inflow_cr for b in query_flow_series(
        rig.feed.store, "NIFTY", "1m", *flow_window(cycle.snapshot.timestamp, "1h", 90)).bars)
    assert rolled["rows"][0]["fields"]["inflow_cr"] == pytest.approx(total, rel=1e-9)
    few = served.client.get("/api/history/atm_options", params={"index": "NIFTY", "limit": 3}).json()
    assert len(few["rows"]) == 3 and few["truncated"] is True


def test_participants_are_the_stored_end_of_day_figures(rig: Rig, served: Served, fixtures_dir: Path) -> None:
    from datetime import date

    from optui.analytics.trading_calendar import TradingCalendar
    from optui.collectors.participants_import import import_paths
    from optui.storage.participants_store import participants_day

    report = import_paths(rig.feed.store, [fixtures_dir / "nse_participant", fixtures_dir / "nse_fiidii_cash"])
    assert report.rejected == []
    want = participants_day(rig.feed.store, TradingCalendar(), date(2026, 8, 17))
    assert want is not None
    body = served.client.get("/api/analytics/participants", params={"date": "2026-08-17"}).json()
    assert body["trade_date"] == "2026-08-17" and body["end_of_day"] is True
    fii = body["participants"]["FII"]
    assert fii["index_futures_net"] == want.participants["FII"].as_dict()["index_futures_net"] == -181587
    assert fii == {k: v for k, v in want.participants["FII"].as_dict().items()}
    assert body["volume"]["pro_share_pct"] == want.volume.pro_share_pct  # type: ignore[union-attr]
    one = served.client.get("/api/analytics/participants/fii", params={"date": "2026-08-17"}).json()
    assert one["participant"] == "FII" and one["positions"] == fii
    dii = served.client.get("/api/analytics/participants/dii", params={"date": "2026-08-17"}).json()
    assert dii["positions"] == want.participants["DII"].as_dict()
    pc = served.client.get("/api/analytics/participants/pro-vs-client", params={"date": "2026-08-17"}).json()
    assert pc["pro"] == want.participants["Pro"].as_dict() and pc["client"] == want.participants["Client"].as_dict()
    assert pc["pro_client_oi_divergence_pct"] == want.oi_divergence_pct
    # No cash figures are stored for 2026-08-17: said, not guessed.
    assert body["missing"] == one["missing"] == ["cash"] and body["cash"] == {} and one["cash"] is None
    assert "FII/DII cash (NSE's provisional cash figures)" in one["note"]
    assert pc["missing"] == [] and "note" not in pc
    newest = served.client.get("/api/analytics/participants/fii-dii-cash").json()  # newest stored
    assert newest["unit"] == "INR crore" and newest["provisional"] is True
    latest = participants_day(rig.feed.store, TradingCalendar())
    assert latest is not None and set(newest["cash"]) == set(latest.cash)
    for name, c in latest.cash.items():
        assert newest["cash"][name]["net_cr"] == c.net_cr and newest["cash"][name]["streak"] == c.streak
    assert newest["history"][-1]["trade_date"] == "2026-09-18"
    assert newest["history"][-1]["FII"]["net_cr"] == latest.cash["FII"].net_cr


def test_cash_flows_are_served_without_participant_oi(tmp_path: Path, fixtures_dir: Path) -> None:
    """FII/DII cash figures imported on their own (NSE's cash JSON, no participant OI file)
    are served by /fii-dii-cash and by the participants routes, which say the positions are
    not stored (not a 404 that reads like "no such date")."""
    from optui.collectors.participants_import import import_paths
    from optui.storage.sqlite_store import SQLiteStore

    settings = sim_settings(tmp_path)
    store = SQLiteStore(tmp_path / "cash.db")
    assert import_paths(store, [fixtures_dir / "nse_fiidii_cash"]).rejected == []
    state = ApiState(settings, store)
    server = start_server(state, "127.0.0.1", 0, TokenInfo(TOKEN, "environment"))
    try:
        with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {TOKEN}"}) as c:
            for query in ({}, {"date": "2026-09-18"}):
                got = c.get("/api/analytics/participants/fii-dii-cash", params=query)
                assert got.status_code == 200, got.text
                body = got.json()
                assert body["trade_date"] == "2026-09-18" and body["unit"] == "INR crore"
                assert body["cash"]["FII"]["trade_date"] == "2026-09-18"
                assert body["history"][-1]["FII"]["net_cr"] == body["cash"]["FII"]["net_cr"]
            missing = c.get("/api/analytics/participants/fii-dii-cash", params={"date": "2026-09-17"})
            assert missing.status_code == 404
            assert missing.json()["error"].startswith("no FII/DII cash figures stored for 2026-09-17")
            # The participants routes answer what is stored (the cash) and say what is not.
            for query in ({}, {"date": "2026-09-18"}):
                fii = c.get("/api/analytics/participants/fii", params=query)
                assert fii.status_code == 200, fii.text
                one = fii.json()
                assert one["trade_date"] == "2026-09-18" and one["positions"] is None
                assert one["cash"] == body["cash"]["FII"] and one["missing"] == ["positions"]
                assert one["note"].startswith("not stored for 2026-09-18: participant OI "
                                              "(NSE's fao_participant_oi file)")
            day = c.get("/api/analytics/participants", params={"date": "2026-09-18"}).json()
            assert day["participants"] == {} and day["volume"] is None and day["missing"] == ["positions", "volume"]
            assert day["cash"]["DII"]["net_cr"] == body["cash"]["DII"]["net_cr"]
            pc = c.get("/api/analytics/participants/pro-vs-client").json()
            assert pc["pro"] is None and pc["missing"] == ["positions", "volume"] and "fao_participant_vol" in pc["note"]
            from optui.api.hub import participants_message

            streamed = json.loads(participants_message(state) or "{}")  # the participants stream too
            assert streamed["trade_date"] == "2026-09-18" and streamed["missing"] == ["positions", "volume"]
            none = c.get("/api/analytics/participants/fii", params={"date": "2026-09-17"})
            assert none.status_code == 404
            assert none.json()["error"].startswith("no participant OI or FII/DII cash stored for 2026-09-17")
    finally:
        server.stop()
        state.close()
        store.close()


# ---------------------------------------------------------------- errors name the problem


def test_errors_are_json_naming_the_problem(rig: Rig, served: Served) -> None:
    cycle = rig.cycle()
    wait_for(served.state, cycle)
    c = served.client
    cases = {
        "/api/overview/indices/FOO": (404, "unknown index 'FOO'"),
        "/api/overview/indices/BANKNIFTY": (404, "BANKNIFTY is not collected"),
        "/api/chain/NIFTY/yearly": (404, "unknown expiry bucket 'yearly'"),
        "/api/chain/SENSEX/next_month": (None, None),
        "/api/analytics/cash-flows/7m": (404, "unknown timeframe '7m'"),
        "/api/history/trades": (404, "unknown measurement 'trades'"),
        "/api/history/atm_options?from=yesterday": (422, "from: 'yesterday' is not ISO 8601"),
        "/api/history/participants?index=NIFTY": (422, "participants has no index tag"),
        "/api/history/atm_options?every=2m": (422, "every: '2m'"),
        "/api/analytics/cash-flows/position-changes?n=0": (422, "n: "),
        "/api/analytics/participants?date=2026-13-01": (422, "date: '2026-13-01' is not YYYY-MM-DD"),
        "/api/analytics/participants?date=2026-11-22": (404, "not a trading day"),
        "/api/nowhere": (404, "no such route: GET /api/nowhere"),
    }
    for path, (status, text) in cases.items():
        r = c.get(path)
        if status is None:
            assert r.status_code in (200, 404)
            continue
        assert r.status_code == status, (path, r.text)
        assert r.headers["content-type"].startswith("application/json")
        assert text in r.json()["error"], (path, r.json())
    posted = c.post("/api/health", content=b"{}")
    assert posted.status_code == 405 and "read-only" in posted.json()["error"]


def test_a_crash_is_a_json_500_with_the_trace_in_the_log(rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    class Broken:
        def latest(self, *a: Any, **k: Any) -> Any:
            raise RuntimeError("disk says secret-detail-42")

        def describe(self) -> str:
            return "broken store"

    s = serve(rig)
    try:
        s.state.store = Broken()
        with caplog.at_level("ERROR", logger="optui.api"):
            r = s.client.get("/api/history/atm_options")
        assert r.status_code == 500
        assert r.json() == {"error": "internal error answering /api/history/atm_options: RuntimeError "
                                     "(details in the server's log)"}
        assert "secret-detail-42" not in r.text and "Traceback" not in r.text
        assert any(rec.exc_info and "secret-detail-42" in str(rec.exc_info[1]) for rec in caplog.records)
    finally:
        stop(rig, s)


def test_oversized_and_malformed_requests_are_refused_and_the_server_keeps_serving(rig: Rig) -> None:
    s = serve(rig, max_body_bytes=1000)
    try:
        big = s.client.request("GET", "/api/health", content=b"x" * 5000)
        assert big.status_code == 413 and "at most 1000 bytes" in big.json()["error"]
        chunked = s.client.request("GET", "/api/health", content=iter([b"x" * 800, b"y" * 800]))
        assert chunked.status_code in (200, 413)  # a GET route never reads its body
        with socket.create_connection((s.server.host, s.server.port), timeout=5) as raw:
            raw.sendall(b"\x16\x03\x01 not http at all\r\n\r\n")
            answer = raw.recv(4096)
        assert answer.startswith(b"HTTP/1.1 400")
        assert s.client.get("/api/health").status_code == 200
    finally:
        stop(rig, s)


def test_rate_limit_answers_429_with_retry_after(rig: Rig) -> None:
    s = serve(rig, rate_limit_per_min=5)
    try:
        codes = [s.client.get("/api/health").status_code for _ in range(6)]
        assert codes[:5] == [200] * 5 and codes[5] == 429
        r = s.client.get("/api/health")
        assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
        assert "at most 5 requests per minute" in r.json()["error"]
    finally:
        stop(rig, s)


# ---------------------------------------------------------------- the token


def test_every_route_needs_the_token(rig: Rig, served: Served) -> None:
    url = served.server.url
    for path in ("/api/health", "/api/overview/indices", "/docs", "/openapi.json", "/api/nowhere"):
        missing = httpx.get(url + path)
        wrong = httpx.get(url + path, headers={"Authorization": "Bearer not-the-token"})
        _keep(rig, missing)
        _keep(rig, wrong)
        assert missing.status_code == wrong.status_code == 401, path
        assert "token missing" in missing.json()["error"] and "token wrong" in wrong.json()["error"]
    assert httpx.get(url + "/docs").headers["WWW-Authenticate"].startswith("Basic")
    assert httpx.get(url + "/docs", auth=("any", TOKEN)).status_code == 200  # a browser's prompt
    assert served.client.get("/openapi.json").json()["info"]["title"] == "optui API"


def test_the_docs_page_needs_no_network(rig: Rig, served: Served) -> None:
    """/docs loads Swagger UI from this server (fastapi-offline's assets), never from a CDN:
    every script, stylesheet and icon it names is served here, behind the same token."""
    import re

    from optui.api.app import DOCS_ASSETS

    url = served.server.url
    page = httpx.get(url + "/docs", auth=("any", TOKEN))
    assert page.status_code == 200 and "SwaggerUIBundle" in page.text
    assets = re.findall(r'(?:src|href)=["\']([^"\']+)["\']', page.text)
    assert assets and not any("//" in a for a in assets), assets  # no other host
    assert f"{DOCS_ASSETS}/swagger-ui-bundle.js" in assets and f"{DOCS_ASSETS}/swagger-ui.css" in assets
    for asset in assets:
        got = httpx.get(url + asset, auth=("any", TOKEN))
        assert got.status_code == 200 and len(got.content) > 1000, asset
    script = httpx.get(url + f"{DOCS_ASSETS}/swagger-ui-bundle.js")
    _keep(rig, script)
    assert script.status_code == 401 and script.headers["WWW-Authenticate"].startswith("Basic")


def test_a_rotated_token_replaces_the_old_one_in_a_running_server(rig: Rig) -> None:
    first = prepare_token("127.0.0.1")
    assert first.origin == "generated" and first.path is not None
    assert oct(first.path.stat().st_mode & 0o777) == "0o600"
    assert prepare_token("127.0.0.1").token == first.token  # stored: the same next time
    s = serve(rig, token=first.token)
    try:
        assert s.client.get("/api/health").status_code == 200
        second = ensure_token(rotate=True)
        assert second.origin == "rotated" and second.token != first.token
        deadline = time.monotonic() + 10
        while s.client.get("/api/health").status_code != 401 and time.monotonic() < deadline:
            time.sleep(0.1)
        old = s.client.get("/api/health")
        assert old.status_code == 401
        new = httpx.get(s.server.url + "/api/health", headers={"Authorization": f"Bearer {second.token}"})
        assert new.status_code == 200
        rig.responses += [old.text, new.text]
        for text in (old.text, new.text):
            assert first.token not in text and second.token not in text
    finally:
        stop(rig, s)


def test_a_non_loopback_address_needs_a_token_set_beforehand(isolated_config: Path) -> None:
    with pytest.raises(ConfigError, match="refusing to serve on 0.0.0.0 without an API token"):
        prepare_token("0.0.0.0")
    assert not (isolated_config / "secrets.toml").exists()  # nothing generated unseen
    check_bind("127.0.0.1", TokenInfo("t", "generated"))
    check_bind("::1", TokenInfo("t", "generated"))
    check_bind("0.0.0.0", TokenInfo("t", "environment"))
    first = prepare_token("127.0.0.1")  # shown once on loopback
    assert prepare_token("0.0.0.0").token == first.token


def test_the_serve_command_refuses_a_public_address_without_a_token(tmp_path: Path) -> None:
    env = {**os.environ, "OPTUI_GENERAL_LOG_DIR": str(tmp_path / "logs"),
           "OPTUI_GENERAL_DATA_DIR": str(tmp_path / "data")}
    done = subprocess.run([OPTUI, "serve", "--host", "0.0.0.0", "--port", "0"], capture_output=True,
                          text=True, env=env, cwd=tmp_path, timeout=60)
    assert done.returncode == 2
    assert "refusing to serve on 0.0.0.0 without an API token" in done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr


def test_serve_without_a_collector_says_so_and_serves_history(tmp_path: Path) -> None:
    env = {**os.environ, "OPTUI_GENERAL_LOG_DIR": str(tmp_path / "logs"),
           "OPTUI_GENERAL_DATA_DIR": str(tmp_path / "data"), "OPTUI_API_TOKEN": TOKEN,
           "OPTUI_STORE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}", "OPTUI_CACHE_URL": "memory://"}
    proc = subprocess.Popen([OPTUI, "serve", "--port", "0"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env, cwd=tmp_path)
    try:
        lines = []
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if "optui API on" in line:
                break
        text = "".join(lines)
        assert "no collector is running" in text and "this server never collects" in text
        url = re.search(r"optui API on (http://\S+) ", text).group(1)  # type: ignore[union-attr]
        h = {"Authorization": f"Bearer {TOKEN}"}
        health = httpx.get(url + "/api/health", headers=h).json()
        assert health["status"] == "no_collector"
        r = httpx.get(url + "/api/overview/indices", headers=h)
        assert r.status_code == 503 and "no collector is running" in r.json()["error"]
        assert httpx.get(url + "/api/history/index_overview", headers=h).json()["rows"] == []
        assert TOKEN not in text
    finally:
        proc.terminate()
        assert proc.wait(30) == 0
    assert not list((tmp_path / "data").glob("**/*.lock"))  # it never took a collector lock


# ---------------------------------------------------------------- WebSocket streams


def ws_url(served: Served, path: str) -> str:
    return served.server.url.replace("http://", "ws://") + path


def test_streams_send_each_cycle_as_it_happens(rig: Rig, served: Served, caplog: pytest.LogCaptureFixture) -> None:
    from websockets.sync.client import connect

    caplog.set_level("INFO")

    auth = {"Authorization": f"Bearer {TOKEN}"}
    with connect(ws_url(served, "/ws/snapshots"), additional_headers=auth) as snaps, \
            connect(ws_url(served, f"/ws/cash-flows?token={TOKEN}")) as flows, \
            connect(ws_url(served, "/ws/alerts"), subprotocols=["optui", f"bearer.{TOKEN}"]) as alerts:  # type: ignore[list-item]
        assert alerts.subprotocol == "optui"  # the token is never echoed back
        deadline = time.monotonic() + 10
        while served.state.hub is not None and served.state.hub.client_count() < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        raised: list[Any] = []
        for _ in range(4):
            cycle = rig.cycle()
            raised = cycle.snapshot.alerts
            if raised:
                break
        assert raised
        at = iso(cycle.snapshot.timestamp)

        def until(ws: Any, kind: str) -> dict[str, Any]:
            while True:
                text = ws.recv(timeout=10)
                rig.responses.append(str(text))
                message = json.loads(text)
                assert message["type"] == kind
                if message["as_of"] == at:
                    return message

        snap = until(snaps, "snapshot")
        nifty = next(i for i in snap["indices"] if i["index"] == "NIFTY")
        ov = cycle.snapshot.indices["NIFTY"].overview
        assert nifty["spot"] == ov.last_price and snap["source_badge"] == "SIMULATED"
        for name, b in ov.buckets.items():
            assert same(nifty["buckets"][name]["atm_iv_pct"], b.atm_iv)
            assert same(nifty["buckets"][name]["pcr_oi"], b.pcr_oi)
        flow = until(flows, "cash_flows")
        assert flow["unit"] == "INR crore"
        assert flow["indices"]["NIFTY"]["measured"] is ov.flow.measured
        assert flow["indices"]["NIFTY"]["net_cr"] == (ov.flow.net_cr if ov.flow.measured else None)
        top = top_oi_changes(cycle.snapshot.indices["NIFTY"].legs, rig.settings.positions.top_n)
        assert [p["tradingsymbol"] for p in flow["positions"]["NIFTY"]] == [leg.tradingsymbol for leg in top]
        got = until(alerts, "alerts")["alerts"]
        assert [(a["rule"], a["subject"], a["time"]) for a in got] == \
            [(a.rule, a.subject, iso(a.at)) for a in raised]
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "/ws/cash-flows?token=***" in logged  # the server logs the path, never the token
    assert TOKEN not in logged


def test_a_stream_needs_the_token(rig: Rig, served: Served) -> None:
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    for url, kwargs in ((ws_url(served, "/ws/alerts"), {}),
                        (ws_url(served, "/ws/alerts?token=wrong"), {}),
                        (ws_url(served, "/ws/alerts"), {"subprotocols": ["optui", "bearer.wrong"]})):
        with pytest.raises(InvalidStatus) as refused:
            connect(url, **kwargs)  # type: ignore[arg-type]
        response = refused.value.response
        assert response.status_code == 401
        assert b"API token" in response.body and TOKEN.encode() not in response.body
    with connect(ws_url(served, f"/ws/nothing?token={TOKEN}")) as unknown:
        with pytest.raises(Exception) as closed:
            unknown.recv(timeout=10)
    assert getattr(closed.value, "rcvd", None) is not None and closed.value.rcvd.code == 1008  # type: ignore[attr-defined]
    assert "unknown stream 'nothing'" in closed.value.rcvd.reason  # type: ignore[attr-defined]


def test_participants_stream_starts_with_the_newest_stored_day(rig: Rig, served: Served, fixtures_dir: Path) -> None:
    from websockets.sync.client import connect

    from optui.collectors.participants_import import import_paths

    import_paths(rig.feed.store, [fixtures_dir / "nse_participant", fixtures_dir / "nse_fiidii_cash"])
    with connect(ws_url(served, f"/ws/participants?token={TOKEN}")) as ws:
        text = ws.recv(timeout=10)
    rig.responses.append(str(text))
    first = json.loads(text)
    assert first["type"] == "participants" and first["trade_date"] == "2026-08-18"
    assert first["participants"]["FII"]["index_futures_net"] is not None


def test_a_client_that_stops_reading_is_dropped_and_another_keeps_receiving(rig: Rig) -> None:
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    s = serve(rig, ws_queue=4)
    hub = s.state.hub
    assert hub is not None
    try:
        cycle = rig.cycle()
        wait_for(s.state, cycle)
        raw = socket.socket()
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a reader that stopped
        raw.connect((s.server.host, s.server.port))
        with connect(ws_url(s, f"/ws/snapshots?chain=true&token={TOKEN}"), sock=raw, max_queue=1) as slow, \
                connect(ws_url(s, f"/ws/snapshots?token={TOKEN}")) as good:
            received: list[str] = []
            done = threading.Event()

            def read() -> None:
                while not done.is_set():
                    try:
                        received.append(json.loads(good.recv(timeout=0.5))["as_of"])
                    except TimeoutError:
                        continue
                    except ConnectionClosed:
                        return

            reader = threading.Thread(target=read, daemon=True)
            reader.start()
            deadline = time.monotonic() + 60
            while hub.dropped == 0 and time.monotonic() < deadline:
                # The newest cycle again and again, as fast as the reading client takes it.
                seen = len(received)
                s.state.offer(cycle)
                paced = time.monotonic() + 5
                while len(received) == seen and hub.dropped == 0 and time.monotonic() < paced:
                    time.sleep(0.001)
            assert hub.dropped == 1
            assert hub.client_count() == 1  # the good one
            fresh = rig.cycle()
            at = iso(fresh.snapshot.timestamp)
            deadline = time.monotonic() + 10
            while at not in received and time.monotonic() < deadline:
                time.sleep(0.01)
            assert at in received  # the other client kept receiving
            health = s.client.get("/api/health").json()
            assert health["websocket_dropped"] == 1 and health["websocket_clients"] == 1
            with pytest.raises(ConnectionClosed) as closed:  # reading again: what was sent, then the close
                while True:
                    slow.recv(timeout=40)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013
            assert "client too slow" in closed.value.rcvd.reason
            done.set()
            reader.join(5)
    finally:
        stop(rig, s)


def _api_url(proc: subprocess.Popen, lines: list[str]) -> str:
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)
        found = re.search(r"optui API on (http://\S+) ", line)
        if found:
            return found.group(1)
    raise AssertionError("".join(lines))


def _collect_env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "OPTUI_GENERAL_LOG_DIR": str(tmp_path / "logs"),
            "OPTUI_GENERAL_DATA_DIR": str(tmp_path / "data"), "OPTUI_API_TOKEN": TOKEN,
            "OPTUI_STORE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}", "OPTUI_CACHE_URL": "memory://",
            "OPTUI_SIMULATOR_START": START, "OPTUI_SIMULATOR_SPEED": "60",
            "OPTUI_SOURCE_CHAIN_STRIKES": "5", "OPTUI_EXPORT_WRITE_JSON": "false",
            "OPTUI_EXPORT_WRITE_CSV": "false", "OPTUI_PARTICIPANTS_ENABLED": "false"}


def _collect_serve(tmp_path: Path, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([OPTUI, "collect", "--source", "sim", "--indices", "NIFTY", "--interval", "60",
                             "--serve", "--port", "0"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env, cwd=tmp_path)


def _children(pid: int) -> list[int]:
    """The live (not zombie) processes whose parent is `pid`."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2:].split()
            if fields[0] != "Z" and int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2:].split()[0] != "Z"


def _gone(pid: int, within_s: float = 30) -> bool:
    deadline = time.monotonic() + within_s
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not _alive(pid)


def _serves(url: str, within_s: float = 30) -> dict:
    h = {"Authorization": f"Bearer {TOKEN}"}
    deadline = time.monotonic() + within_s
    while True:
        try:
            reply = httpx.get(url + "/api/health", headers=h)
            if reply.status_code == 200:
                return reply.json()
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.1)


def test_collect_serve_and_an_attached_serve_show_the_same_cycle(tmp_path: Path) -> None:
    """collect --serve serves from a child process following this collector: the same cycle as
    an attached `optui serve`; a child that dies is restarted on the same address; the child is
    gone once the collector stops."""
    env = _collect_env(tmp_path)
    h = {"Authorization": f"Bearer {TOKEN}"}
    collect = _collect_serve(tmp_path, env)
    serve_proc: subprocess.Popen | None = None
    lines: list[str] = []
    try:
        local = _api_url(collect, lines)
        child = int(re.findall(r"process (\d+)\)", "".join(lines))[-1])
        assert child != collect.pid and _children(collect.pid) == [child]
        threading.Thread(target=lambda: [lines.append(x) for x in collect.stdout or []], daemon=True).start()
        serve_proc = subprocess.Popen([OPTUI, "serve", "--port", "0"], stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True, env=env, cwd=tmp_path)
        attached = _api_url(serve_proc, lines)
        assert "attached to" in "".join(lines)
        deadline = time.monotonic() + 60
        same_cycle = None
        while same_cycle is None and time.monotonic() < deadline:
            a = httpx.get(local + "/api/overview/indices/NIFTY", headers=h)
            b = httpx.get(attached + "/api/overview/indices/NIFTY", headers=h)
            if a.status_code == b.status_code == 200 and a.json()["as_of"] == b.json()["as_of"]:
                same_cycle = (a.json(), b.json())
            else:
                time.sleep(0.2)
        assert same_cycle is not None, "".join(lines)
        mine, theirs = same_cycle
        assert mine["buckets"] == theirs["buckets"] and mine["spot"] == theirs["spot"]
        assert httpx.get(local + "/api/health", headers=h).json()["collector"]["mode"] == "local"
        assert httpx.get(attached + "/api/health", headers=h).json()["collector"]["mode"] == "attached"

        os.kill(child, 9)  # the API process dies: the collector says so and starts another
        assert _gone(child)
        health = _serves(local)
        assert health["collector"]["mode"] == "local"
        again = _children(collect.pid)
        assert len(again) == 1 and again[0] != child
        assert f"the API process {child} exited (signal 9)" in "".join(lines)
        assert f"the API process {child} exited (signal 9)" in (tmp_path / "logs" / "optui.log").read_text()
        assert httpx.get(local + "/api/overview/indices/NIFTY", headers=h).json()["as_of"] >= mine["as_of"]
        child = again[0]
    finally:
        for proc in (serve_proc, collect):
            if proc is not None and proc.poll() is None:
                proc.terminate()
        assert collect.wait(60) == 0
        if serve_proc is not None:
            assert serve_proc.wait(30) == 0
    assert _gone(child, 10)  # stopped with the collector, nothing left listening
    with pytest.raises(httpx.ConnectError):
        httpx.get(local + "/api/health", headers=h)


def test_collect_serve_child_exits_when_the_collector_is_killed(tmp_path: Path) -> None:
    """SIGKILL of the collector closes the child's pipe: the API process exits too."""
    collect = _collect_serve(tmp_path, _collect_env(tmp_path))
    lines: list[str] = []
    try:
        local = _api_url(collect, lines)
        child = int(re.findall(r"process (\d+)\)", "".join(lines))[-1])
        assert _serves(local)["collector"]["mode"] == "local"
        collect.kill()
        collect.wait(30)
        assert _gone(child), "the API process outlived its collector"
        with pytest.raises(httpx.ConnectError):
            httpx.get(local + "/api/health", headers={"Authorization": f"Bearer {TOKEN}"})
    finally:
        if collect.poll() is None:
            collect.kill()
            collect.wait(30)
        for pid in re.findall(r"process (\d+)\)", "".join(lines)):
            if _alive(int(pid)):
                os.kill(int(pid), 9)


def test_attach_follows_a_collector_over_redis(tmp_path: Path, redis_server: str) -> None:
    """`optui serve --attach redis://...`: the API shows the cycle the remote collector published."""
    import redis

    from optui.api.serve import Follower

    redis_server = redis_server.rsplit("/", 1)[0] + "/7"  # a database of its own, emptied after
    settings = sim_settings(tmp_path)
    settings.simulator.start = START
    settings.simulator.speed = 60
    settings.source.indices = ["NIFTY"]
    settings.source.chain_strikes = 5
    settings.cache.url = redis_server
    feed = LocalFeed(build_engine(settings))
    feed.start()
    state = ApiState(Settings(), None)
    follower = Follower(Settings(), state, redis_server, lambda line, style="": None)
    try:
        state.start()
        assert follower.connect() and state.collector.mode == "attached"
        follower.start()
        published = feed.next_cycle()
        deadline = time.monotonic() + 20
        while (state.latest is None or state.latest.cycle.snapshot.timestamp != published.snapshot.timestamp) \
                and time.monotonic() < deadline:
            time.sleep(0.02)
        assert state.latest is not None
        got = state.latest.summary[0]
        ov = published.snapshot.indices["NIFTY"].overview
        assert got["index"] == "NIFTY" and got["spot"] == ov.last_price
        assert same(got["nearest"]["atm_iv_pct"], ov.buckets[got["buckets"][0]].atm_iv)
    finally:
        follower.stop()
        state.close()
        feed.close()
        redis.Redis.from_url(redis_server).flushdb()


def test_cors_is_closed_unless_origins_are_listed(rig: Rig) -> None:
    preflight = {"Origin": "https://grafana.example", "Access-Control-Request-Method": "GET",
                 "Access-Control-Request-Headers": "authorization"}
    closed = serve(rig)
    try:
        r = httpx.options(closed.server.url + "/api/health", headers=preflight)
        assert "access-control-allow-origin" not in r.headers
        r = closed.client.get("/api/health", headers={"Origin": "https://grafana.example"})
        assert "access-control-allow-origin" not in r.headers
    finally:
        stop(rig, closed)
    rig.settings.api.cors_origins = ["https://grafana.example"]
    opened = serve(rig)
    try:
        r = httpx.options(opened.server.url + "/api/health", headers=preflight)
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "https://grafana.example"
        other = httpx.options(opened.server.url + "/api/health", headers={**preflight, "Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers
    finally:
        rig.settings.api.cors_origins = []
        stop(rig, opened)


def test_no_secret_appears_in_any_response(rig: Rig) -> None:
    """Runs last in this module: every response recorded above, plus one of each route now."""
    s = serve(rig)
    try:
        rig.cycle()
        for path in ("/api/overview/indices", "/api/overview/indices/NIFTY", "/api/chain/NIFTY/this_week",
                     "/api/analytics/cash-flows/5m", "/api/analytics/participants", "/api/alerts",
                     "/api/health", "/api/history/collector_health", "/openapi.json", "/docs"):
            s.client.get(path)
    finally:
        stop(rig, s)
    secrets = [TOKEN, rig.settings.simulator.access_token, rig.settings.simulator.api_key]
    assert len(rig.responses) > 40
    for text in rig.responses:
        for secret in secrets:
            assert secret not in text
