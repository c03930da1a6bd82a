"""Through a hang of a real influxd (SIGSTOP): the store's counts stay honest (stored, spooled and
in flight never go backwards and add up to what was written), and a bar written twice around the
hang reads back its newer value (a write that outlived its budget never lands after a newer one)."""

from __future__ import annotations

import signal
from datetime import UTC, datetime
from pathlib import Path

import pytest

from optui.storage.base import Point
from optui.storage.influx_store import InfluxStore
from tests.servers import InfluxServer


def _bar(value: float, at: datetime, strike: int = 0) -> Point:
    return Point("flow_bar", {"index": "BANKNIFTY", "strike": str(strike)}, {"net_cr": value}, at)


@pytest.mark.chaos
@pytest.mark.integration
def test_counts_through_a_hang_never_go_negative_and_add_up(influx_process: InfluxServer,
                                                           tmp_path: Path) -> None:
    store = InfluxStore(influx_process.url, spool_dir=tmp_path / "spool", timeout_s=1.0, retry_after_s=0.2)
    at = datetime(2026, 11, 30, 4, 2, tzinfo=UTC)
    assert influx_process.proc is not None
    store.write_budget_s = 0.2
    written = 0
    lines: list[tuple[int, int, int]] = []
    try:
        for cycle in range(9):
            if cycle == 2:
                influx_process.proc.send_signal(signal.SIGSTOP)
            if cycle == 5:  # the write in flight times out (and spools) while the server hangs
                assert store._inflight is not None
                store._inflight.result()
            if cycle == 6:
                influx_process.proc.send_signal(signal.SIGCONT)
            stored, spooled = store.stored_total, store.spooled_total
            written += store.write([_bar(float(cycle), at, strike) for strike in range(5)])
            assert store.stored_total is not None
            lines.append((store.stored_total - stored, store.spooled_total - spooled, store.inflight_points))
    finally:
        influx_process.proc.send_signal(signal.SIGCONT)
    stored_before_close = store.stored_total
    store.flush()
    store.close()
    assert store.stored_total is not None and stored_before_close is not None
    closing = store.stored_total - stored_before_close
    pending, _ = store.pending()
    assert all(s >= 0 and sp >= 0 and f >= 0 for s, sp, f in lines), lines
    assert written == 45
    assert sum(s for s, _, _ in lines) + closing + pending == written, (lines, closing, pending)
    assert any(f > 0 for _, _, f in lines) and sum(sp for _, sp, _ in lines) > 0


@pytest.mark.chaos
@pytest.mark.integration
def test_a_bar_written_again_during_a_hang_keeps_its_newer_value(influx_process: InfluxServer,
                                                                 tmp_path: Path) -> None:
    """BANKNIFTY's 09:32 bar: -5.08 written while the server hangs (the write outlives its budget
    and spools when it times out), then the newer -2.93 while it is still in flight: after the
    server is back and the spool replayed, the bar reads -2.93."""
    store = InfluxStore(influx_process.url, spool_dir=tmp_path / "spool", timeout_s=1.0, retry_after_s=0.2)
    at = datetime(2026, 11, 30, 4, 2, tzinfo=UTC)  # 09:32 IST
    assert influx_process.proc is not None
    store.write([_bar(-1.0, at)])
    store.write_budget_s = 0.2
    try:
        influx_process.proc.send_signal(signal.SIGSTOP)
        store.write([_bar(-5.08, at)])  # outlives its budget: times out, then spools
        store.write([_bar(-2.93, at)])  # newer value of the same bar, arrives meanwhile
        assert store._inflight is not None
        store._inflight.result()  # the first times out while the server still hangs, and spools
    finally:
        # Killed, not continued: a continued server may still apply the timed-out POST sitting
        # in its socket after the replay (a stale request no client can recall); a restarted
        # one starts from what it had acknowledged.
        influx_process.proc.kill()
        influx_process.proc.wait()
        influx_process.start()
    store.close()  # the write in flight settles, then the spool is replayed
    reopened = InfluxStore(influx_process.url, spool_dir=tmp_path / "spool", timeout_s=3.0)
    try:
        reopened.flush()
        row = reopened.latest("flow_bar", {"index": "BANKNIFTY", "strike": "0"})
    finally:
        reopened.close()
    assert row is not None and row.fields["net_cr"] == pytest.approx(-2.93)


_HUNG_WRITER = """
import sys
from datetime import UTC, datetime
from optui.storage.base import Point
from optui.storage.influx_store import InfluxStore

url, spool = sys.argv[1], sys.argv[2]
at = datetime(2026, 11, 30, 4, 2, tzinfo=UTC)
def bar(value):
    return Point("flow_bar", {"index": "BANKNIFTY", "strike": "0"}, {"net_cr": value}, at)
store = InfluxStore(url, spool_dir=spool, timeout_s=60.0, retry_after_s=0.2)
store.write_budget_s = 0.2
print("ready", flush=True)
sys.stdin.readline()  # the server hangs now
store.write([bar(-5.08)])  # outlives its budget: in flight for the rest of this process's life
store.write([bar(-2.93)])  # held behind it
store.write([bar(-2.50)])
print("held", flush=True)
sys.stdin.readline()  # killed here
"""


@pytest.mark.chaos
@pytest.mark.integration
def test_writes_held_behind_a_hung_write_survive_a_crash_in_order(influx_process: InfluxServer,
                                                                   tmp_path: Path) -> None:
    """A collector killed during a long hang: the bar's two newer values held behind the write
    in flight are on disk (pending counts them); the next store on the spool moves them behind
    what was spooled before and ahead of anything newer, and the bar reads its newest value."""
    import subprocess
    import sys

    assert influx_process.proc is not None
    spool = tmp_path / "spool"
    at = datetime(2026, 11, 30, 4, 2, tzinfo=UTC)
    first = InfluxStore(influx_process.url, spool_dir=spool, timeout_s=3.0)
    first.write([_bar(-1.0, at)])
    first.close()
    writer = subprocess.Popen([sys.executable, "-c", _HUNG_WRITER, influx_process.url, str(spool)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert writer.stdin is not None and writer.stdout is not None
    try:
        assert writer.stdout.readline().strip() == "ready"
        influx_process.proc.send_signal(signal.SIGSTOP)
        writer.stdin.write("go\n")
        writer.stdin.flush()
        assert writer.stdout.readline().strip() == "held"
        other = InfluxStore(influx_process.url, spool_dir=spool, timeout_s=3.0)
        other._recover_held()  # the writer lives: what it holds is its own, left where it is
        assert other.pending()[0] == 2 and other.spool is not None and other.spool.status().points == 0
        writer.kill()  # a crash: the write in flight never settles, nothing is closed
        writer.wait()
        seen = InfluxStore(influx_process.url, spool_dir=spool, timeout_s=3.0)
        assert seen.pending()[0] == 2  # the held points, read from disk
    finally:
        writer.kill()
        influx_process.proc.kill()  # no stale POST from the killed writer lands later
        influx_process.proc.wait()
        influx_process.start()
    reopened = InfluxStore(influx_process.url, spool_dir=spool, timeout_s=3.0)
    try:
        reopened.write([_bar(7.0, at, strike=1)])  # the first write spools the held ones and flushes
        assert reopened.pending()[0] == 0
        row = reopened.latest("flow_bar", {"index": "BANKNIFTY", "strike": "0"})
    finally:
        reopened.close()
    assert row is not None and row.fields["net_cr"] == pytest.approx(-2.50)
