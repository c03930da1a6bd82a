"""Alert rules with hand-computed values, cooldowns by exchange time (property-tested), sinks."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from optui.alerts import MEASUREMENT, AlertEngine, Cooldowns, ParticipantFigures, Thresholds
from optui.alerts.model import Alert
from optui.config import Settings
from optui.errors import ConfigError
from optui.models import (
    BucketStats,
    FlowSummary,
    IndexSnapshot,
    LegRecord,
    OverviewRecord,
    Snapshot,
)
from optui.storage.base import open_store
from optui.timeutil import IST, UTC

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=IST).astimezone(UTC)  # a Wednesday in the session
EXPIRY = date(2026, 12, 1)


@dataclass
class LegSpec:
    side: str = "CALL"
    strike: float = 24500.0
    oi: float = 10_000.0
    volume: int = 0
    buildup: str = ""
    bucket: str = "this_week"


def leg(at: datetime, spec: LegSpec) -> LegRecord:
    return LegRecord(
        timestamp=at, index="NIFTY", bucket=spec.bucket, side=spec.side, expiry=EXPIRY,
        atm_strike=24500.0, strike=spec.strike, strike_offset="atm", last_price=100.0,
        average_price=100.0, volume=spec.volume, oi=spec.oi, oi_open=spec.oi, oi_change=0.0,
        iv=12.0, days_to_expiry=5.0, ohlc_open=100.0, ohlc_high=100.0, ohlc_low=100.0,
        ohlc_close=100.0, net_change=0.0, net_change_percent=0.0, day_change=0.0,
        day_change_percent=0.0, buildup=spec.buildup,
    )


def snap(at: datetime, legs: list[LegSpec] | None = None, *, pcr: float = 1.0,
         max_pain: float = 24500.0, inflow: float = 0.0, outflow: float = 0.0,
         ce_oi: float = 1.0, pe_oi: float = 1.0) -> Snapshot:
    stats = BucketStats("this_week", EXPIRY, 5.0, 24500.0, 24500.0, 12.0, 12.0, 200.0, pcr, pcr,
                        max_pain, 0.0, ce_oi, pe_oi, 0.0, 0.0, 5)
    ov = OverviewRecord(at, "NIFTY", 24500.0, 24510.0, 24400.0, 24600.0, 24380.0, 24450.0, 60.0,
                        0.25, 110.0, 0.45, 220.0, 0.9, {"this_week": stats},
                        FlowSummary(inflow_cr=inflow, outflow_cr=outflow))
    return Snapshot(at, "sim", {"NIFTY": IndexSnapshot("NIFTY", ov, [leg(at, s) for s in legs or []])})


def only(thresholds: Thresholds | None = None, **kw: float | bool) -> AlertEngine:
    """An engine with every rule off except those named in kw (cooldown 0: cooldowns tested apart)."""
    off = dict(fii_flow_cr=0.0, dii_flow_cr=0.0, pro_client_divergence_pct=0.0, volume_spike_pct=0.0,
               single_flow_cr=0.0, oi_change_pct=0.0, oi_change_daily_avg_pct=0.0, pcr_shift=0.0,
               max_pain_shift_steps=0.0, buildup_flip=False)
    off.update(kw)
    return AlertEngine(Thresholds(**off), cooldown_s=0.0)  # type: ignore[arg-type]


def minutes(n: float) -> datetime:
    return T0 + timedelta(minutes=n)


# ---- market rules ------------------------------------------------------------------------


@pytest.mark.unit
def test_premium_flow_at_the_threshold() -> None:
    engine = only(single_flow_cr=1000.0)
    raised = engine.on_snapshot(snap(T0, inflow=1000.0, outflow=999.99))
    assert [(a.rule, a.subject, a.value, a.severity) for a in raised] == [
        ("premium_flow", "NIFTY bought", 1000.0, "warning")]
    assert raised[0].message == ("NIFTY: ₹1,000.0 cr of option premium bought in one cycle "
                                 "(threshold ₹1,000.0 cr)")


@pytest.mark.unit
def test_oi_change_over_the_window() -> None:
    engine = only(oi_change_pct=50.0)
    for n, oi in ((0, 10_000), (5, 11_000), (10, 13_000)):
        assert engine.on_snapshot(snap(minutes(n), [LegSpec(oi=oi)])) == []
    raised = engine.on_snapshot(snap(minutes(15), [LegSpec(oi=15_000)]))  # vs 10,000 at 10:00
    assert [(a.rule, a.subject, a.value) for a in raised] == [
        ("oi_change", "NIFTY 2026-12-01 CE 24500", 50.0)]
    assert "OI up 50 % in 15 min (10,000 → 15,000" in raised[0].message
    # 10:20 compares with 10:05 (11,000): 16,499 is +49.99 %, below the threshold
    assert engine.on_snapshot(snap(minutes(20), [LegSpec(oi=16_499)])) == []
    # a fall counts too: 10:25 vs 10:10 (13,000) → 6,500 is −50 %
    down = engine.on_snapshot(snap(minutes(25), [LegSpec(oi=6_500)]))
    assert [round(a.value, 6) for a in down] == [-50.0]


@pytest.mark.unit
def test_oi_change_needs_a_reference_inside_the_window() -> None:
    engine = only(oi_change_pct=50.0)
    engine.on_snapshot(snap(minutes(0), [LegSpec(oi=10_000)]))
    # 23 minutes later: older than 1.5 windows, not a 15-minute change
    assert engine.on_snapshot(snap(minutes(23), [LegSpec(oi=30_000)])) == []


@pytest.mark.unit
def test_small_legs_are_left_out_of_the_oi_change_rule() -> None:
    engine = only(oi_change_pct=50.0)
    # 10,000 is 0.5 % of the expiry's 2,000,000 call OI: below the 1 % floor
    engine.on_snapshot(snap(minutes(0), [LegSpec(oi=10_000)], ce_oi=2_000_000))
    assert engine.on_snapshot(snap(minutes(15), [LegSpec(oi=20_000)], ce_oi=2_000_000)) == []
    engine = only(oi_change_pct=50.0)  # at 1 % it counts
    engine.on_snapshot(snap(minutes(0), [LegSpec(oi=20_000)], ce_oi=2_000_000))
    assert len(engine.on_snapshot(snap(minutes(15), [LegSpec(oi=40_000)], ce_oi=2_000_000))) == 1


@pytest.mark.unit
def test_total_oi_change_against_the_daily_average() -> None:
    engine = only(oi_change_daily_avg_pct=100.0)
    # call OI moves 100 per 15 minutes from 10:00 to 10:45; puts stay flat
    for n, ce in ((0, 1000), (15, 1100), (30, 1200), (45, 1300)):
        assert engine.on_snapshot(snap(minutes(n), ce_oi=ce, pe_oi=500)) == []
    # 11:00 vs 10:45 (1,300): change 300; 10:00-10:45 moved 300 in 45 min = 100 per window
    raised = engine.on_snapshot(snap(minutes(60), ce_oi=1600, pe_oi=500))
    assert [(a.rule, a.subject, round(a.value, 6), a.severity) for a in raised] == [
        ("oi_change_daily", "NIFTY 2026-12-01 CE", 200.0, "info")]
    assert raised[0].message == ("NIFTY this_week CE: total OI changed +300 in 15 min, 200 % above the "
                                 "day's average of 100 per 15 min (threshold 100 %)")
    # with less than three windows of history there is no average to compare with
    engine = only(oi_change_daily_avg_pct=100.0)
    for n, ce in ((0, 1000), (15, 1100), (30, 1200)):
        engine.on_snapshot(snap(minutes(n), ce_oi=ce, pe_oi=500))
    assert engine.on_snapshot(snap(minutes(45), ce_oi=2000, pe_oi=500)) == []


@pytest.mark.unit
def test_volume_spike_against_the_window_average() -> None:
    engine = only(volume_spike_pct=200.0)
    for n, vol in enumerate((0, 100, 200, 300, 400)):  # 100 contracts a minute
        assert engine.on_snapshot(snap(minutes(n), [LegSpec(volume=vol)])) == []
    raised = engine.on_snapshot(snap(minutes(5), [LegSpec(volume=700)]))  # 300 a minute
    assert [(a.rule, a.subject, round(a.value, 6)) for a in raised] == [("volume_spike", "NIFTY", 200.0)]
    assert "option volume 300 per minute, 200 % above the 15-minute average of 100" in raised[0].message
    engine = only(volume_spike_pct=200.0)
    for n, vol in enumerate((0, 100, 200, 300, 400, 699)):  # 299 a minute: 199 %
        assert engine.on_snapshot(snap(minutes(n), [LegSpec(volume=vol)])) == []


@pytest.mark.unit
def test_pcr_and_max_pain_shifts() -> None:
    strikes = [LegSpec(strike=k) for k in (24400.0, 24450.0, 24500.0, 24550.0, 24600.0)]
    engine = only(pcr_shift=0.2, max_pain_shift_steps=2.0)
    assert engine.on_snapshot(snap(minutes(0), strikes, pcr=0.8, max_pain=24500.0)) == []
    raised = engine.on_snapshot(snap(minutes(15), strikes, pcr=1.0, max_pain=24600.0))
    assert sorted((a.rule, round(a.value, 9), a.threshold) for a in raised) == [
        ("max_pain_shift", 100.0, 100.0), ("pcr_shift", 0.2, 0.2)]
    assert {a.subject for a in raised} == {"NIFTY 2026-12-01"}
    engine = only(pcr_shift=0.2, max_pain_shift_steps=2.0)
    engine.on_snapshot(snap(minutes(0), strikes, pcr=0.8, max_pain=24500.0))
    assert engine.on_snapshot(snap(minutes(15), strikes, pcr=0.99, max_pain=24550.0)) == []


@pytest.mark.unit
def test_buildup_flip_at_the_atm_only() -> None:
    engine = only(buildup_flip=True)
    atm, wing = LegSpec(buildup="long_buildup"), LegSpec(strike=24600.0, buildup="long_buildup")
    assert engine.on_snapshot(snap(minutes(0), [atm, wing])) == []
    # a neutral cycle in between keeps the last kind
    assert engine.on_snapshot(snap(minutes(1), [LegSpec(), LegSpec(strike=24600.0)])) == []
    raised = engine.on_snapshot(snap(minutes(2), [LegSpec(buildup="short_buildup"),
                                                  LegSpec(strike=24600.0, buildup="short_buildup")]))
    assert [(a.rule, a.subject) for a in raised] == [("buildup_flip", "NIFTY 2026-12-01 CE 24500")]
    assert raised[0].message == "NIFTY 2026-12-01 CE 24500 (ATM): long buildup → short buildup"


@pytest.mark.unit
def test_a_new_day_starts_the_windows_again() -> None:
    engine = only(oi_change_pct=50.0)
    engine.on_snapshot(snap(minutes(0), [LegSpec(oi=10_000)]))
    next_day = minutes(24 * 60 + 15)
    assert engine.on_snapshot(snap(next_day, [LegSpec(oi=20_000)])) == []


# ---- participant figures and captures -----------------------------------------------------


@pytest.mark.unit
def test_participant_rules_and_once_per_trade_date() -> None:
    engine = AlertEngine(Thresholds(), cooldown_s=300.0)
    fig = ParticipantFigures(date(2026, 11, 24), fii_cash_net_cr=-612.5, dii_cash_net_cr=299.9,
                             pro_client_divergence_pct=-20.0)
    at = datetime(2026, 11, 25, 8, 0, tzinfo=IST)
    raised = engine.on_participants(fig, at)
    assert [(a.rule, a.value, a.subject) for a in raised] == [
        ("fii_flow", -612.5, "2026-11-24"), ("pro_client_divergence", -20.0, "2026-11-24")]
    assert raised[0].message == ("FII/FPI net sold ₹612.5 cr in the cash market on 2026-11-24 "
                                 "(end of day, provisional; threshold ₹500.0 cr)")
    # captured again an hour later (past the cooldown): the same day does not alert twice
    assert engine.on_participants(fig, at + timedelta(hours=1)) == []
    # unknown figures raise nothing
    assert engine.on_participants(ParticipantFigures(date(2026, 11, 25)), at + timedelta(days=1)) == []
    # a snapshot after the capture carries the capture's alerts to the screen
    assert [a.rule for a in engine.on_snapshot(snap(minutes(0)))] == ["fii_flow", "pro_client_divergence"]
    assert engine.on_snapshot(snap(minutes(1))) == []


@dataclass(frozen=True)
class CaptureFailedLike:
    at: datetime
    trade_date: date
    severity: str

    def message(self) -> str:
        return "participant data for 2026-11-24 missing oi after attempt 1: HTTP 403"


@pytest.mark.unit
def test_capture_failures_alert_per_cooldown() -> None:
    engine = AlertEngine(Thresholds(), cooldown_s=300.0)
    at = datetime(2026, 11, 25, 8, 0, tzinfo=IST)
    engine.on_capture_event(CaptureFailedLike(at, date(2026, 11, 24), "warning"))
    engine.on_capture_event(CaptureFailedLike(at + timedelta(minutes=4), date(2026, 11, 24), "warning"))
    engine.on_capture_event(CaptureFailedLike(at + timedelta(minutes=10), date(2026, 11, 24), "critical"))
    raised = engine.on_snapshot(snap(minutes(0)))
    assert [(a.rule, a.severity, a.at) for a in raised] == [
        ("capture_failed", "warning", at), ("capture_failed", "critical", at + timedelta(minutes=10))]
    assert raised[0].message.startswith("pre-market capture of 2026-11-24 failed: participant data")


# ---- cooldowns ---------------------------------------------------------------------------


def _alert(at: datetime, rule: str = "pcr_shift", subject: str = "NIFTY") -> Alert:
    return Alert(at, rule, "info", subject, "m")


@pytest.mark.property
@settings(max_examples=200, deadline=None)
@given(gaps=st.lists(st.integers(0, 900), min_size=1, max_size=60), cooldown=st.integers(0, 1200))
def test_cooldown_lets_one_alert_through_per_cooldown(gaps: list[int], cooldown: int) -> None:
    gate = Cooldowns(float(cooldown))
    times, at = [], T0
    for gap in gaps:
        at += timedelta(seconds=gap)
        times.append(at)
    passed = [t for t in times if gate.allow(_alert(t))]
    assert passed and passed[0] == times[0]
    for a, b in zip(passed, passed[1:], strict=False):
        assert (b - a).total_seconds() >= cooldown
    for t in times:  # every held-back alert was within the cooldown of the last one let through
        if t not in passed:
            last = max(p for p in passed if p <= t)
            assert (t - last).total_seconds() < cooldown


@pytest.mark.property
@settings(max_examples=50, deadline=None)
@given(gaps=st.lists(st.integers(1, 400), min_size=1, max_size=30))
def test_engine_cooldown_is_per_rule_and_subject_on_snapshot_time(gaps: list[int]) -> None:
    engine = AlertEngine(Thresholds(single_flow_cr=1.0, volume_spike_pct=0.0, oi_change_pct=0.0,
                                    oi_change_daily_avg_pct=0.0, pcr_shift=0.0, max_pain_shift_steps=0.0,
                                    buildup_flip=False), cooldown_s=300.0,
                         cooldowns={"premium_flow": 300.0})
    at, expected_last = T0, None
    bought = 0
    want = 0
    for gap in gaps:
        at += timedelta(seconds=gap)
        raised = engine.on_snapshot(snap(at, inflow=5.0, outflow=5.0))
        assert {a.subject for a in raised} in ({"NIFTY bought", "NIFTY sold"}, set())
        bought += len(raised) // 2
        if expected_last is None or (at - expected_last).total_seconds() >= 300:
            expected_last = at
            want += 1
    assert bought == want


@pytest.mark.unit
def test_time_going_back_starts_the_cooldown_again() -> None:
    gate = Cooldowns(300.0)
    assert gate.allow(_alert(minutes(10)))
    assert gate.allow(_alert(minutes(0)))  # a replayed or restarted day
    assert not gate.allow(_alert(minutes(1)))
    assert gate.allow(_alert(minutes(1), subject="BANKNIFTY"))  # another subject, its own cooldown


# ---- settings ----------------------------------------------------------------------------


@pytest.mark.unit
def test_engine_reads_every_alert_setting() -> None:
    s = Settings()
    a = s.alerts
    a.fii_flow_cr, a.dii_flow_cr, a.pro_client_divergence_pct = 1.0, 2.0, 3.0
    a.volume_spike_pct, a.single_flow_cr, a.oi_change_pct, a.oi_change_window_min = 4.0, 5.0, 6.0, 7
    a.oi_change_daily_avg_pct, a.pcr_shift, a.max_pain_shift_steps, a.buildup_flip = 8.0, 0.9, 3.0, False
    a.cooldown_s, a.cooldowns, a.severities = 11.0, ["pcr_shift=900"], ["oi_change=critical"]
    engine = AlertEngine.from_settings(s)
    assert engine.thresholds == Thresholds(1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 0.9, 3.0, False)
    assert engine.cooldowns.cooldown_s("pcr_shift") == 900.0 and engine.cooldowns.cooldown_s("x") == 11.0
    assert engine.severities == {"oi_change": "critical"} and engine.webhooks is None
    a.webhook_url, a.webhook_format = "https://api.telegram.org/bot123:ABC/sendMessage", "auto"
    with pytest.raises(ConfigError, match="telegram_chat_id"):
        AlertEngine.from_settings(s)
    a.webhook_url = "ftp://files.example.org/hook/TOKEN"
    with pytest.raises(ConfigError, match="not an http") as err:
        AlertEngine.from_settings(s)
    assert "TOKEN" not in str(err.value)


@pytest.mark.unit
def test_severity_override_applies() -> None:
    engine = AlertEngine(Thresholds(single_flow_cr=1.0), severities={"premium_flow": "critical"})
    assert {a.severity for a in engine.on_snapshot(snap(T0, inflow=2.0))} == {"critical"}


# ---- the store ---------------------------------------------------------------------------


def _stored(store: object) -> list[tuple[str, str, str, str, float]]:
    rows = store.query(MEASUREMENT, T0 - timedelta(days=1), T0 + timedelta(days=1))  # type: ignore[attr-defined]
    return sorted((r.tags["rule"], r.tags["severity"], r.tags["subject"], str(r.fields["message"]),
                   float(r.fields["value"])) for r in rows)


def _feed_and_check(store: object) -> None:
    engine = AlertEngine(Thresholds(single_flow_cr=10.0), cooldown_s=300.0, store=store)
    engine.on_snapshot(snap(T0, inflow=12.5, outflow=10.0))
    engine.on_snapshot(snap(T0 + timedelta(seconds=30), inflow=50.0))  # within the cooldown
    assert engine.warnings == []
    rows = _stored(store)
    assert rows == [
        ("premium_flow", "warning", "NIFTY bought",
         "NIFTY: ₹12.5 cr of option premium bought in one cycle (threshold ₹10.0 cr)", 12.5),
        ("premium_flow", "warning", "NIFTY sold",
         "NIFTY: ₹10.0 cr of option premium sold in one cycle (threshold ₹10.0 cr)", 10.0),
    ]
    row = store.latest(MEASUREMENT, {"subject": "NIFTY bought"})  # type: ignore[attr-defined]
    assert row is not None and row.time == T0 and row.tags["index"] == "NIFTY"
    assert row.fields["threshold"] == 10.0 and row.fields["unit"] == "cr"
    assert not math.isnan(float(row.fields["value"]))


@pytest.mark.unit
def test_alerts_stored_in_sqlite(tmp_path: Path) -> None:
    with open_store(f"sqlite:///{tmp_path / 'a.db'}") as store:
        _feed_and_check(store)


@pytest.mark.integration
def test_alerts_stored_in_influxdb(influx_server: str, tmp_path: Path) -> None:
    from optui.storage.influx_store import InfluxStore

    store = InfluxStore(influx_server, database="optui_alerts_test", spool_dir=tmp_path / "spool")
    store.init_database()
    try:
        _feed_and_check(store)
    finally:
        store.close()


@pytest.mark.integration
def test_collection_keeps_its_cycle_when_a_rule_fails(tmp_path: Path) -> None:
    from optui.collectors.engine import build_engine

    s = Settings()
    s.general.data_dir = str(tmp_path / "data")
    s.simulator.start = "2026-11-25 11:00"
    s.source.indices = ["NIFTY"]
    s.export.write_json = s.export.write_csv = False
    engine = build_engine(s, store_url=f"sqlite:///{tmp_path / 'x.db'}")
    try:
        assert engine.alerts is not None
        engine.alerts.market.evaluate = None  # type: ignore[assignment,method-assign]  # calling it raises
        snap = engine.collect_once()
        assert snap.leg_count > 0 and snap.alerts == []
        assert "alerts: the rules failed on this cycle (details in the log)" in snap.warnings
        assert [w.kind.value for w in snap.warnings if w.subject == "alerts"] == ["alert_rule"]
    finally:
        engine.close()


PARTICIPANT_FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.mark.integration
@pytest.mark.participants
def test_pre_market_capture_feeds_the_participant_rules(tmp_path: Path) -> None:
    """A simulated 08:00 IST on Monday 21 Sep 2026 captures Friday's files from the download
    folder; the stored cash figures (FII/FPI net +599.54, DII net +1,019.69 ₹ crore) raise the
    FII and DII flow alerts, which the next snapshot carries to the screen."""
    from optui.analytics.participants import parse_participant_csv, pro_client_volume
    from optui.collectors.engine import build_engine

    friday, src = date(2026, 9, 18), date(2026, 8, 18)
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    for kind in ("oi", "vol"):
        name = f"fao_participant_{kind}_{src:%d%m%Y}.csv"
        text = (PARTICIPANT_FIXTURES / "nse_participant" / name).read_text()
        text = text.replace(f"as on {src:%b} {src.day}, {src.year}", f"as on {friday:%b} {friday.day}, {friday.year}")
        (downloads / f"fao_participant_{kind}_{friday:%d%m%Y}.csv").write_text(text)
    cash = PARTICIPANT_FIXTURES / "nse_fiidii_cash" / "fii_dii_cash_18-Sep-2026.json"
    (downloads / cash.name).write_text(cash.read_text())
    vol_path = downloads / f"fao_participant_vol_{friday:%d%m%Y}.csv"
    divergence = pro_client_volume(parse_participant_csv(vol_path.read_text(), vol_path.name)).divergence_pct

    s = Settings()
    s.general.data_dir = str(tmp_path / "data")
    s.simulator.start = "2026-09-21 08:00"
    s.participants.download_dir = str(downloads)
    s.source.indices = ["NIFTY"]
    s.export.write_json = s.export.write_csv = False
    engine = build_engine(s, "sim", f"sqlite:///{tmp_path / 'sim.db'}")
    try:
        raised = engine.collect_once().alerts
        eod = [(a.rule, a.subject, a.value) for a in raised if a.rule != "buildup_flip"]
        expected = [("fii_flow", "2026-09-18", 599.54), ("dii_flow", "2026-09-18", 1019.69)]
        if divergence is not None and abs(divergence) >= 20.0:
            expected.append(("pro_client_divergence", "2026-09-18", divergence))
        assert eod == expected
        later = engine.collect_once().alerts  # the same day's figures do not alert again
        assert not [a for a in later if a.rule in ("fii_flow", "dii_flow", "pro_client_divergence")]
        stored = engine.store.query(MEASUREMENT, datetime(2026, 9, 20, tzinfo=UTC),
                                    datetime(2026, 9, 22, tzinfo=UTC), tags={"rule": "fii_flow"})
        assert [r.fields["value"] for r in stored] == [599.54]
    finally:
        engine.close()


@pytest.mark.unit
def test_volume_spikes_are_judged_per_minute_the_same_at_1_s_and_5_s_snapshots() -> None:
    """The simulator's volumes of six NIFTY legs each second from 14:00 IST, traded in lumps
    (each leg's volume moves only every 7th second, as trades come in bursts), and a real
    spike in the minute to 14:06 (one leg trades three times the six legs' minute more). Snapshots every
    second and every fifth second raise the same one alert, for the minute to 14:06; the
    bursts raise none."""
    from optui.collectors.sim_source import SimulatedSource

    start = datetime(2026, 11, 25, 14, 0, tzinfo=IST)
    clock = [1000.0]
    sim = SimulatedSource(seed=7, start=start, clock=lambda: clock[0])
    ex = sim.exchange
    rows = sorted((r for r in ex.instruments() if r.index_key == "NIFTY"
                   and r.instrument_type in ("CE", "PE")), key=lambda r: (r.expiry, r.strike))
    expiry = rows[0].expiry
    near = sorted((r for r in rows if r.expiry == expiry), key=lambda r: abs(r.strike - 26_100))[:6]
    seconds = 7 * 60
    series = []
    for k in range(seconds + 1):
        clock[0] = 1000.0 + k
        quoted = ex.quote([r.key for r in near])
        series.append([int(quoted[r.key]["volume"]) for r in near])
    extra = 3 * (sum(series[360]) - sum(series[300]))

    def volumes(k: int) -> list[LegSpec]:
        lump = series[k - k % 7]  # each leg's trades land every 7th second
        bump = extra * min(max(k - 300, 0), 60) // 60  # the spike: 14:05 to 14:06
        return [LegSpec(side="CALL" if r.instrument_type == "CE" else "PUT", strike=float(r.strike),
                        volume=lump[j] + (bump if j == 0 else 0)) for j, r in enumerate(near)]

    def alerts(cadence: int) -> list[tuple[datetime, str, float]]:
        engine = only(volume_spike_pct=200.0)
        out = []
        for k in range(0, seconds + 1, cadence):
            at = (start + timedelta(seconds=k)).astimezone(UTC)
            out += [(a.at, a.subject, round(a.value, 6)) for a in engine.on_snapshot(snap(at, volumes(k)))]
        return out

    every_second = alerts(1)
    assert every_second == alerts(5)
    assert [(at.astimezone(IST).strftime("%H:%M:%S"), subject) for at, subject, _ in every_second] == [
        ("14:06:00", "NIFTY")]
    assert every_second[0][2] > 200.0
