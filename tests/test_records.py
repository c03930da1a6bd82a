"""Snapshot -> points: measurement names, tags, fields, UTC times and minute flow bars."""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta

import pytest

from optui.models import (
    BucketStats,
    FlowSummary,
    IndexSnapshot,
    LegRecord,
    OverviewRecord,
    Snapshot,
)
from optui.storage.records import (
    FLOW_FIELDS,
    LEG_FIELDS,
    FlowBarAccumulator,
    leg_columns,
    snapshot_points,
    write_snapshot,
)
from optui.storage.sqlite_store import SQLiteStore
from optui.timeutil import IST, UTC

AT = datetime(2026, 11, 24, 9, 20, 15, tzinfo=IST).astimezone(UTC)


def make_leg(at: datetime = AT, side: str = "CALL", offset: str = "atm", strike: float = 24150.0,
             index: str = "NIFTY", iv: float = 12.5) -> LegRecord:
    return LegRecord(
        timestamp=at, index=index, bucket="this_week", side=side, expiry=date(2026, 11, 25),
        atm_strike=24100.0, strike=strike, strike_offset=offset, last_price=101.5,
        average_price=100.0, volume=1200, oi=50000.0, oi_open=45000.0, oi_change=5000.0, iv=iv,
        days_to_expiry=1.25, ohlc_open=90.0, ohlc_high=110.0, ohlc_low=85.0, ohlc_close=95.0,
        net_change=6.5, net_change_percent=6.84, day_change=11.5, day_change_percent=12.78,
        tradingsymbol="NIFTY25N2524150CE", instrument_token=12345, bid=101.4, ask=101.6,
        delta=0.45, gamma=0.001, theta=-12.0, vega=8.0, buildup="long_buildup", flags="",
    )


def make_snapshot(at: datetime = AT, flow: FlowSummary | None = None,
                  legs: list[LegRecord] | None = None) -> Snapshot:
    stats = BucketStats("this_week", date(2026, 11, 25), 1.25, 24110.0, 24100.0, 12.0, 11.0,
                        210.0, 0.9, 1.1, 24000.0, 1.5, 1e6, 9e5, 1e4, -2e3, 21)
    ov = OverviewRecord(at, "NIFTY", 24100.0, 24112.0, 24000.0, 24200.0, 23950.0, 24050.0,
                        62.0, 0.26, 112.0, 0.47, 250.0, 1.04, {"this_week": stats},
                        flow or FlowSummary())
    legs = legs if legs is not None else [make_leg(at), make_leg(at, "PUT", strike=24100.0)]
    return Snapshot(at, "sim", {"NIFTY": IndexSnapshot("NIFTY", ov, legs)})


@pytest.mark.unit
def test_leg_points_carry_the_compatibility_tags_and_own_strike() -> None:
    points = snapshot_points(make_snapshot())
    legs = [p for p in points if p.measurement == "atm_options"]
    assert len(legs) == 2
    call = legs[0]
    assert call.tags == {"index": "NIFTY", "bucket": "this_week", "side": "CALL",
                         "expiry": "2026-11-25", "strike_offset": "atm"}
    assert call.fields["strike"] == 24150.0 and call.fields["atm_strike"] == 24100.0
    assert call.fields["buildup"] == "long_buildup" and call.fields["flags"] == ""
    assert call.fields["tradingsymbol"] == "NIFTY25N2524150CE" and call.fields["iv"] == 12.5
    assert call.time.utcoffset() == timedelta(0) and call.time == AT
    assert set(call.fields) == set(LEG_FIELDS)


@pytest.mark.unit
def test_nan_fields_are_left_out_of_points() -> None:
    snap = make_snapshot(legs=[make_leg(iv=math.nan)])
    leg = next(p for p in snapshot_points(snap) if p.measurement == "atm_options")
    assert "iv" not in leg.fields and "delta" in leg.fields


@pytest.mark.unit
def test_overview_point_has_legacy_and_extra_fields() -> None:
    flow = FlowSummary(inflow_cr=3.0, outflow_cr=1.0, ce_inflow_cr=2.0, pe_inflow_cr=1.0)
    ov = next(p for p in snapshot_points(make_snapshot(flow=flow)) if p.measurement == "index_overview")
    assert ov.tags == {"index": "NIFTY"}
    f = ov.fields
    for key in ("symbol", "atm_strike", "day_width_percent", "this_week_TP", "this_week_OI_CALL",
                "this_week_OI_PUT", "PCR_this_week", "this_week_atm_iv", "this_week_iv_open",
                "this_week_iv_day_change", "this_week_days_to_expiry"):
        assert key in f, key
    assert f["this_week_pcr_volume"] == 1.1 and f["this_week_max_pain"] == 24000.0
    assert f["this_week_skew"] == 1.5 and f["this_week_forward"] == 24110.0
    assert f["flow_net_cr"] == 2.0 and f["flow_bullish_cr"] == pytest.approx(1.0)
    assert f["this_week_iv_day_change"] == pytest.approx(1.0)


@pytest.mark.unit
def test_leg_columns_match_points() -> None:
    snap = make_snapshot()
    batch = leg_columns(snap)
    points = [p for p in snapshot_points(snap) if p.measurement == "atm_options"]
    assert batch.measurement == "atm_options" and len(batch) == len(points)
    for i, p in enumerate(points):
        assert batch.tags_list[i] == p.tags and batch.times_ns[i] == p.time_ns
        assert {k: v[i] for k, v in batch.columns.items()} == p.fields


@pytest.mark.unit
def test_flow_bars_add_within_a_minute_and_restart_per_minute() -> None:
    acc = FlowBarAccumulator(keep_minutes=2)
    minute = AT.replace(second=0)
    a = acc.add("NIFTY", minute + timedelta(seconds=5), FlowSummary(inflow_cr=1.0, ce_inflow_cr=1.0))
    b = acc.add("NIFTY", minute + timedelta(seconds=35), FlowSummary(inflow_cr=2.0, outflow_cr=0.5))
    c = acc.add("NIFTY", minute + timedelta(seconds=65), FlowSummary(inflow_cr=4.0))
    other = acc.add("SENSEX", minute + timedelta(seconds=40), FlowSummary(outflow_cr=7.0))
    assert a.time == b.time == minute and c.time == minute + timedelta(minutes=1)
    assert b.fields["inflow_cr"] == 3.0 and b.fields["outflow_cr"] == 0.5
    assert b.fields["ce_inflow_cr"] == 1.0 and set(b.fields) == set(FLOW_FIELDS)
    assert c.fields["inflow_cr"] == 4.0
    assert other.tags == {"index": "SENSEX"} and other.fields["outflow_cr"] == 7.0
    acc.add("NIFTY", minute + timedelta(minutes=10), FlowSummary())
    assert len(acc._bars) == 1  # minutes older than keep_minutes are forgotten


@pytest.mark.unit
def test_rewritten_bars_hold_the_running_total_in_the_store() -> None:
    with SQLiteStore(":memory:") as store:
        acc = FlowBarAccumulator(store)
        minute = AT.replace(second=0)
        for s, inflow in ((0, 1.0), (20, 2.0), (40, 3.5)):
            write_snapshot(store, make_snapshot(minute + timedelta(seconds=s),
                                                FlowSummary(inflow_cr=inflow)), acc)
        bars = store.query("premium_flow", minute, minute + timedelta(minutes=1))
        assert len(bars) == 1 and bars[0].fields["inflow_cr"] == 6.5
        # A restarted collector continues the stored minute instead of overwriting it.
        fresh = FlowBarAccumulator(store)
        write_snapshot(store, make_snapshot(minute + timedelta(seconds=50),
                                            FlowSummary(inflow_cr=0.5)), fresh)
        bars = store.query("premium_flow", minute, minute + timedelta(minutes=1))
        assert bars[0].fields["inflow_cr"] == 7.0
        assert len(store.query("atm_options", minute, minute + timedelta(minutes=1))) == 8
        assert len(store.query("index_overview", minute, minute + timedelta(minutes=1))) == 4


@pytest.mark.unit
def test_naive_timestamps_are_refused() -> None:
    naive = datetime(2026, 11, 24, 9, 20)
    with pytest.raises(ValueError, match="timezone-aware"):
        snapshot_points(make_snapshot(at=naive, legs=[]))


@pytest.mark.unit
def test_leg_tag_sets_are_shared_immutable_and_picklable() -> None:
    import pickle

    from optui.storage.base import FrozenTags

    a = leg_columns(make_snapshot()).tags_list
    b = leg_columns(make_snapshot(AT + timedelta(seconds=5))).tags_list
    assert a[0] is b[0] and isinstance(a[0], FrozenTags)  # one object per series across cycles
    with pytest.raises(TypeError, match="cannot change"):
        a[0]["index"] = "SENSEX"  # type: ignore[index]
    back = pickle.loads(pickle.dumps(a[0]))
    assert back == a[0] and hash(back) == hash(a[0]) and dict(back) == dict(a[0])


@pytest.mark.unit
def test_flow_bars_keep_counting_when_the_store_cannot_be_read() -> None:
    from optui.errors import StoreError

    class DownStore:
        def query(self, *args: object, **kwargs: object) -> list:
            raise StoreError("InfluxDB at 127.0.0.1:8086 is unreachable")

    acc = FlowBarAccumulator(DownStore())  # type: ignore[arg-type]
    bar = acc.add("NIFTY", AT, FlowSummary(inflow_cr=2.0))
    bar = acc.add("NIFTY", AT + timedelta(seconds=1), FlowSummary(inflow_cr=1.0))
    assert bar.fields["inflow_cr"] == 3.0
