"""A hung InfluxDB never holds up a collection cycle beyond the write budget: what a cycle asks of
the store after its writes (the refused-line notices) does not wait for a write still in flight."""

from __future__ import annotations

import signal
from datetime import UTC, datetime
from pathlib import Path

import pytest

from optui.storage.base import Point
from optui.storage.influx_store import InfluxStore
from tests.servers import InfluxServer


@pytest.mark.chaos
@pytest.mark.integration
def test_notices_do_not_wait_for_a_write_stuck_on_a_hung_server(influx_process: InfluxServer,
                                                              tmp_path: Path) -> None:
    store = InfluxStore(influx_process.url, spool_dir=tmp_path / "spool", timeout_s=3.0, retry_after_s=0.5)
    at = datetime(2026, 11, 30, 4, 0, tzinfo=UTC)
    assert influx_process.proc is not None
    try:
        store.write([Point("index_overview", {"index": "NIFTY"}, {"last_price": 1.0}, at)])
        store.write_budget_s = 0.2
        influx_process.proc.send_signal(signal.SIGSTOP)  # hung: connections open, no answers
        accepted = store.write([Point("index_overview", {"index": "NIFTY"}, {"last_price": 2.0}, at)])
        inflight = store._inflight
        assert accepted == 1 and inflight is not None and not inflight.done()
        assert store.take_notices() == []
        still_in_flight = not inflight.done()  # the POST waits out its 3 s timeout
    finally:
        influx_process.proc.send_signal(signal.SIGCONT)
        store.close()
    assert still_in_flight


@pytest.mark.chaos
@pytest.mark.integration
def test_a_new_minutes_flow_bar_does_not_wait_for_a_hung_server(influx_process: InfluxServer,
                                                               tmp_path: Path) -> None:
    """The first cycle of a minute reads the minute's stored cycles back; on a hung server (a
    write still in flight) it counts this process's cycles instead of waiting out two timeouts."""
    from optui.models import FlowSummary
    from optui.storage.records import FlowBarAccumulator

    store = InfluxStore(influx_process.url, spool_dir=tmp_path / "spool", timeout_s=3.0, retry_after_s=0.5)
    at = datetime(2026, 11, 30, 4, 0, 30, tzinfo=UTC)
    assert influx_process.proc is not None
    try:
        store.write([Point("index_overview", {"index": "NIFTY"}, {"last_price": 1.0}, at)])
        store.write_budget_s = 0.2
        influx_process.proc.send_signal(signal.SIGSTOP)
        store.write([Point("index_overview", {"index": "NIFTY"}, {"last_price": 2.0}, at)])
        inflight = store._inflight
        assert inflight is not None and not inflight.done()
        bar = FlowBarAccumulator(store).add("NIFTY", at, FlowSummary(inflow_cr=2.5))
        still_in_flight = not inflight.done()
    finally:
        influx_process.proc.send_signal(signal.SIGCONT)
        store.close()
    assert bar.fields["inflow_cr"] == 2.5 and still_in_flight
