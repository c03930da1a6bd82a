"""The streaming client against the simulator's ticker: sharding, reconnects, gaps and bad input."""

from __future__ import annotations

import asyncio
import random
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest
from kiteconnect import KiteConnect

from optui.collectors.ticker_source import (
    FrameSkipped,
    TickerAuthFailed,
    TickerConnected,
    TickerDisconnected,
    TickerError,
    TickerEvent,
    TickerGap,
    TickerSource,
    TickerStalled,
    backoff_delay,
    health_line,
    plan_shards,
)
from optui.simulator.exchange import SimulatedExchange
from optui.simulator.server import SimulatorServer, serve
from optui.tick_packets import TickBatch, pack_frame
from optui.timeutil import IST

START = datetime(2026, 11, 17, 11, 0, tzinfo=IST)


# -- sharding and backoff (unit) ----------------------------------------------------------------

@pytest.mark.unit
def test_shards_respect_kite_limits_and_keep_instruments_in_place() -> None:
    modes = {t: "full" if t % 3 == 0 else "quote" for t in range(1, 7001)}
    shards = plan_shards(modes)
    assert len(shards) == 3 and all(len(s) <= 3000 for s in shards)
    assert sum(len(s) for s in shards) == 7000
    assert {t: m for s in shards for t, m in s.items()} == modes
    # The ATM moves: 500 instruments leave, 500 new ones arrive; the rest stay where they were.
    moved = {t: m for t, m in modes.items() if t > 500} | {t: "full" for t in range(8001, 8501)}
    again = plan_shards(moved, shards)
    for old, new in zip(shards, again, strict=True):
        assert all(new.get(t) == m for t, m in old.items() if t > 500)
    assert sum(len(s) for s in again) == 7000
    with pytest.raises(ValueError, match="9001 instruments exceed the ticker's 9000"):
        plan_shards(dict.fromkeys(range(9001), "ltp"))
    with pytest.raises(ValueError, match="unknown ticker mode"):
        plan_shards({1: "fast"})


@pytest.mark.unit
def test_backoff_grows_exponentially_with_jitter_and_a_cap() -> None:
    rng = random.Random(1)
    delays = [backoff_delay(n, 1.0, 60.0, rng) for n in range(10)]
    for n, d in enumerate(delays):
        cap = min(60.0, 2.0**n)
        assert cap * 0.5 <= d <= cap
    assert len({round(d / min(60.0, 2.0**n), 6) for n, d in enumerate(delays)}) > 1  # jittered


# -- against the simulator (integration) ------------------------------------------------------

@pytest.fixture
def exchange() -> SimulatedExchange:
    return SimulatedExchange(seed=7, start=START, speed=20.0)


@pytest.fixture
def server(exchange: SimulatedExchange) -> Iterator[SimulatorServer]:
    srv = serve(exchange, "127.0.0.1", 0)
    srv.tick_interval = 0.1
    yield srv
    srv.close()


def _legs(exchange: SimulatedExchange, n: int) -> list[int]:
    rows = [r for r in exchange.instruments("NFO") if r.index_key == "NIFTY"
            and r.instrument_type in ("CE", "PE")]
    expiry = min(r.expiry for r in rows if r.expiry)
    near = sorted((r for r in rows if r.expiry == expiry), key=lambda r: abs(r.strike - 26_000))
    return [r.instrument_token for r in near[:n]]


class Recorder:
    def __init__(self) -> None:
        self.events: list[TickerEvent] = []
        self.batches: list[tuple[int, TickBatch]] = []

    def ticks(self, shard: int, batch: TickBatch) -> None:
        self.batches.append((shard, batch))

    def event(self, event: TickerEvent) -> None:
        self.events.append(event)

    def of(self, kind: type) -> list:
        return [e for e in self.events if isinstance(e, kind)]


def _latest_modes(batches: list[tuple[int, TickBatch]]) -> dict[int, int]:
    """Token -> mode of its latest tick."""
    out: dict[int, int] = {}
    for _, b in batches:
        out.update(zip(b.instrument_token.tolist(), b.mode.tolist(), strict=True))
    return out


async def _until(cond: Callable[[], bool], what: str, limit_s: float = 30.0) -> None:
    for _ in range(int(limit_s / 0.02)):
        if cond():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def _source(server: SimulatorServer, modes: dict[int, str], rec: Recorder,
            token: str = "sim_token", **kw: float) -> TickerSource:
    return TickerSource("sim_key", token, modes, rec.ticks, rec.event,
                        root=server.url.replace("http://", "ws://", 1),
                        backoff_base_s=0.05, backoff_max_s=0.5, seed=3, **kw)  # type: ignore[arg-type]


@pytest.mark.integration
@pytest.mark.mock
@pytest.mark.chaos
async def test_server_killed_and_restarted_mid_stream(exchange: SimulatedExchange,
                                                     server: SimulatorServer) -> None:
    legs = _legs(exchange, 6)
    modes = {t: ("full" if i % 2 == 0 else "quote") for i, t in enumerate(legs)}
    expected = {t: (2 if m == "full" else 1) for t, m in modes.items()}
    rec = Recorder()
    source = _source(server, modes, rec)
    runner = asyncio.create_task(source.run())
    try:
        await _until(lambda: sum(len(b) for _, b in rec.batches) >= 12, "ticks")
        got = {int(t) for _, b in rec.batches for t in b.instrument_token}
        assert got == set(legs)
        assert len(rec.of(TickerConnected)) == 3  # six instruments spread over three connections
        port = server.port
        # The exchange dies: connections cut without a closing handshake, port closed.
        for session in server.sessions():
            session.drop()
        server.close()
        await _until(lambda: len(rec.of(TickerDisconnected)) >= 3, "disconnects")
        await asyncio.sleep(0.5)  # down long enough for several failed attempts
        n_before = len(rec.batches)
        before = max(int(b.exchange_timestamp.max()) for _, b in rec.batches)
        restarted = serve(exchange, "127.0.0.1", port)
        restarted.tick_interval = 0.1
        try:
            await _until(lambda: len(rec.of(TickerGap)) == 3, "gaps after reconnect")
            await _until(lambda: _latest_modes(rec.batches[n_before:]) == expected,
                         "resubscribed in the same modes")
        finally:
            await source.stop()
            await runner
            restarted.close()
    finally:
        if not runner.done():
            runner.cancel()
    gaps = rec.of(TickerGap)
    assert sorted(g.shard for g in gaps) == [0, 1, 2]
    for gap in gaps:
        # Shards with full-mode legs know the exchange time on both sides of the outage.
        if gap.start is not None and gap.end is not None:
            assert gap.start.timestamp() <= before < gap.end.timestamp()
        assert gap.down_s > 0 and gap.instruments == 2
    assert any(g.start is not None and g.end is not None for g in gaps)
    line = health_line(next(g for g in gaps if g.start is not None))
    assert line.startswith("ticker connection ") and "flow in the gap not classified" in line
    reconnects = [e for e in rec.of(TickerConnected) if e.reconnect]
    assert len(reconnects) == 3
    retries = rec.of(TickerDisconnected)
    assert len(retries) > 3  # the closed port refused some attempts before the restart
    assert all(0 < e.retry_in_s <= 0.5 for e in retries)


@pytest.mark.integration
@pytest.mark.mock
@pytest.mark.chaos
async def test_bad_frames_errors_unknown_tokens_and_a_stall(exchange: SimulatedExchange,
                                                            server: SimulatorServer) -> None:
    legs = _legs(exchange, 1)  # one instrument: one connection
    rec = Recorder()
    source = _source(server, dict.fromkeys(legs, "full"), rec, stall_after_s=1.5)
    runner = asyncio.create_task(source.run())
    try:
        await _until(lambda: len(rec.batches) >= 2, "ticks")
        shard = rec.batches[0][0]
        (session,) = server.sessions()
        stranger = TickBatch.empty(1)
        stranger.instrument_token[:] = 999_999 * 256 + 2
        stranger.mode[:] = 1
        stranger.last_price[:] = 10.0
        session.send_raw(b"\x00\x02\x00\xb8\x01\x02")  # claims two full packets, holds 2 bytes
        session.send_raw(pack_frame(stranger))
        session.send_text({"type": "error", "data": "Invalid instrument token"})
        await _until(lambda: source.stats[shard].unknown_ticks == 1 and rec.of(TickerError),
                     "bad input counted")
        assert source.stats[shard].malformed_frames == 1
        (skipped,) = rec.of(FrameSkipped)
        assert "claims 184 bytes" in skipped.reason
        assert health_line(skipped).endswith("; 1 so far")
        assert rec.of(TickerError)[0].message == "Invalid instrument token"
        assert all(999_999 * 256 + 2 not in b.instrument_token for _, b in rec.batches)
        # The exchange goes silent without closing: no ticks, no heartbeats.
        session.paused.set()
        await _until(lambda: bool(rec.of(TickerStalled)), "stall detected")
        n = len(rec.batches)
        await _until(lambda: len(rec.batches) > n and bool(rec.of(TickerGap)), "resumed")
        assert source.stats[shard].stalls == 1 and source.stats[shard].connects == 2
        assert health_line(rec.of(TickerStalled)[0]) == (
            "ticker connection 1 stalled: no data or heartbeat for 1.5 s; reconnecting")
    finally:
        await source.stop()
        await runner


@pytest.mark.integration
@pytest.mark.mock
async def test_update_moves_subscriptions_on_the_open_connection(
        exchange: SimulatedExchange, server: SimulatorServer) -> None:
    first, second = _legs(exchange, 2)
    rec = Recorder()
    source = _source(server, {first: "full"}, rec)
    runner = asyncio.create_task(source.run())
    try:
        await _until(lambda: bool(rec.batches), "ticks")
        # The ATM moved: the first leg leaves, the second arrives in quote mode on shard 0.
        await source.update({second: "quote"})
        n = len(rec.batches)
        # Frames already on the wire may still carry the first leg; then only the second.
        await _until(lambda: len(rec.batches) > n + 3 and all(
            _latest_modes([b]) == {second: 1} for b in rec.batches[-3:]),
            "only the new subscription streaming")
        assert source.stats[0].connects == 1 and len(server.sessions()) == 1
    finally:
        await source.stop()
        await runner


@pytest.mark.integration
@pytest.mark.mock
async def test_refused_token_stops_without_retrying(exchange: SimulatedExchange,
                                                    server: SimulatorServer) -> None:
    rec = Recorder()
    source = _source(server, dict.fromkeys(_legs(exchange, 1), "full"), rec, token="stale")
    await asyncio.wait_for(source.run(), timeout=30)
    assert rec.of(TickerAuthFailed) == [TickerAuthFailed(0, 403)]
    assert not rec.batches and not rec.of(TickerDisconnected)
    assert "stale" not in repr(source)
    assert health_line(rec.of(TickerAuthFailed)[0]) == (
        "ticker connection 1: access token refused (HTTP 403); streaming stopped until a new login")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _simulate(port: int, start: str) -> subprocess.Popen[str]:
    """`optui simulate` in its own process, returned once it serves."""
    optui = Path(sys.executable).with_name("optui")
    proc = subprocess.Popen([str(optui), "simulate", "--port", str(port), "--start", start],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert "Simulated Kite Connect at" in line and f'root="ws://127.0.0.1:{port}"' in line, line
    return proc


@pytest.mark.integration
@pytest.mark.mock
@pytest.mark.chaos
async def test_optui_simulate_process_killed_and_restarted(tmp_path: Path) -> None:
    """`optui simulate` serves REST and the ticker on one port; kill -9 it mid-stream, restart it
    a simulated minute later: the source reconnects, resubscribes and records the gap."""
    port = _free_port()
    proc = _simulate(port, "2026-11-17 11:00")
    try:
        kite = KiteConnect("sim_key", access_token="sim_token", root=f"http://127.0.0.1:{port}")
        rows = [r for r in kite.instruments("NFO") if r["name"] == "NIFTY"
                and r["instrument_type"] == "CE"]
        token = int(rows[0]["instrument_token"])
        rec = Recorder()
        source = TickerSource("sim_key", "sim_token", {token: "full"}, rec.ticks, rec.event,
                              root=f"ws://127.0.0.1:{port}", backoff_base_s=0.1,
                              backoff_max_s=0.5, seed=1)
        runner = asyncio.create_task(source.run())
        await _until(lambda: len(rec.batches) >= 2, "ticks from the simulator process")
        proc.kill()
        proc.wait(timeout=30)
        await _until(lambda: bool(rec.of(TickerDisconnected)), "the drop noticed")
        proc = _simulate(port, "2026-11-17 11:01")
        await _until(lambda: bool(rec.of(TickerGap)), "the gap recorded")
        n = len(rec.batches)
        await _until(lambda: len(rec.batches) > n, "ticks after the restart")
        await source.stop()
        await runner
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    (gap,) = rec.of(TickerGap)
    assert gap.start is not None and gap.end is not None
    assert gap.start.astimezone(IST).strftime("%H:%M") == "11:00"
    assert gap.end.astimezone(IST).strftime("%H:%M") == "11:01"
    assert rec.batches[-1][1].instrument_token.tolist() == [token]
    assert [e.reconnect for e in rec.of(TickerConnected)] == [False, True]
