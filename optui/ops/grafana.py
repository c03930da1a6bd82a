"""Grafana provisioning for the docker-compose stack: the InfluxDB 2 datasource and six dashboards.

One source of truth: `config/grafana/` in the repository is this module's output for the default
settings (a test keeps them equal), and `optui setup` deploy writes the same files for the
configured org and bucket. Dashboards are Grafana's JSON model (schemaVersion 39) with Flux queries
against the measurements in optui.storage.records (`index_overview`, `atm_options`,
`premium_flow`), optui.alerts.engine (`alerts`), optui.storage.participants_store
(`participants`, `fii_dii_cash`) and the collector's own `collector_health`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from optui.indices import BUCKETS, INDEX_KEYS

DATASOURCE_UID = "optui-influxdb"
TIMEFRAMES = ("1m", "3m", "5m", "15m", "30m", "1h")


def datasource_yaml(org: str, bucket: str) -> str:
    """provisioning/datasources/optui.yml: InfluxDB 2 over Flux, token from the container env."""
    return f"""# optui: InfluxDB 2 (Flux). The token comes from OPTUI_INFLUXDB_TOKEN in the compose env file.
apiVersion: 1
datasources:
  - name: optui InfluxDB
    uid: {DATASOURCE_UID}
    type: influxdb
    access: proxy
    url: http://influxdb:8086
    isDefault: true
    jsonData:
      version: Flux
      organization: {org}
      defaultBucket: {bucket}
      timeInterval: 5s
    secureJsonData:
      token: $OPTUI_INFLUXDB_TOKEN
"""


def provider_yaml() -> str:
    """provisioning/dashboards/optui.yml: load every JSON file in /var/lib/grafana/dashboards."""
    return """apiVersion: 1
providers:
  - name: optui
    folder: optui
    type: file
    disableDeletion: false
    allowUiUpdates: true
    options:
      path: /var/lib/grafana/dashboards
"""


def _flux(bucket: str, measurement: str, fields: list[str], where: str = "",
          agg: str = "last", every: str = "v.windowPeriod", tail: str = "") -> str:
    field_test = " or ".join(f'r._field == "{f}"' for f in fields)
    extra = f" and {where}" if where else ""
    return (
        f'from(bucket: "{bucket}")\n'
        "  |> range(start: v.timeRangeStart, stop: v.timeRangeStop)\n"
        f'  |> filter(fn: (r) => r._measurement == "{measurement}"{extra})\n'
        f"  |> filter(fn: (r) => {field_test})\n"
        f"  |> aggregateWindow(every: {every}, fn: {agg}, createEmpty: false)" + tail
    )


def _panel(title: str, queries: list[str], x: int, y: int, w: int = 12, h: int = 8,
           unit: str = "short", kind: str = "timeseries",
           thresholds: list[tuple[str, float | None]] | None = None) -> dict[str, Any]:
    steps = [{"color": c, "value": v} for c, v in (thresholds or [("green", None)])]
    return {
        "type": kind,
        "title": title,
        "datasource": {"type": "influxdb", "uid": DATASOURCE_UID},
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "fieldConfig": {"defaults": {"unit": unit,
                                     "thresholds": {"mode": "absolute", "steps": steps}},
                        "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}},
        "targets": [{"refId": chr(ord("A") + i), "query": q, "datasource":
                     {"type": "influxdb", "uid": DATASOURCE_UID}} for i, q in enumerate(queries)],
    }


def _index_var() -> dict[str, Any]:
    return {"name": "index", "label": "Index", "type": "custom", "query": ",".join(INDEX_KEYS),
            "current": {"text": INDEX_KEYS[0], "value": INDEX_KEYS[0]},
            "options": [{"text": k, "value": k, "selected": i == 0} for i, k in enumerate(INDEX_KEYS)]}


def _timeframe_var() -> dict[str, Any]:
    return {"name": "timeframe", "label": "Timeframe", "type": "custom", "query": ",".join(TIMEFRAMES),
            "current": {"text": "5m", "value": "5m"},
            "options": [{"text": t, "value": t, "selected": t == "5m"} for t in TIMEFRAMES]}


def _dashboard(uid: str, title: str, panels: list[dict[str, Any]],
               variables: list[dict[str, Any]]) -> dict[str, Any]:
    for number, panel in enumerate(panels, 1):
        panel["id"] = number
    return {
        "uid": uid, "title": title, "tags": ["optui"], "timezone": "Asia/Kolkata",
        "schemaVersion": 39, "version": 1, "refresh": "30s", "editable": True,
        "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": variables}, "panels": panels,
    }


def dashboards(bucket: str) -> dict[str, dict[str, Any]]:
    """File name -> dashboard JSON model for every optui dashboard."""
    idx = 'r.index == "${index}"'
    ov = "index_overview"
    week = BUCKETS[0]
    out: dict[str, dict[str, Any]] = {}
    out["index-overview.json"] = _dashboard("optui-index-overview", "optui · Index overview", [
        _panel("Spot", [_flux(bucket, ov, ["last_price"], idx)], 0, 0, 24),
        _panel("Day change %", [_flux(bucket, ov, ["day_change_percent", "net_change_percent"], idx)], 0, 8, unit="percent"),
        _panel("Day width %", [_flux(bucket, ov, ["day_width_percent"], idx)], 12, 8, unit="percent"),
        _panel("PCR (OI) by expiry", [_flux(bucket, ov, [f"PCR_{b}" for b in BUCKETS], idx)], 0, 16),
        _panel("Max pain by expiry", [_flux(bucket, ov, [f"{b}_max_pain" for b in BUCKETS], idx)], 12, 16),
    ], [_index_var()])
    out["atm-iv-straddle.json"] = _dashboard("optui-atm-iv", "optui · ATM IV and straddle", [
        _panel("ATM IV by expiry", [_flux(bucket, ov, [f"{b}_atm_iv" for b in BUCKETS], idx)], 0, 0, 24),
        _panel("IV change since open", [_flux(bucket, ov, [f"{b}_iv_day_change" for b in BUCKETS], idx)], 0, 8),
        _panel("ATM straddle (CE + PE premium)", [_flux(bucket, ov, [f"{b}_TP" for b in BUCKETS], idx)], 12, 8),
        _panel("Skew (put IV − call IV)", [_flux(bucket, ov, [f"{b}_skew" for b in BUCKETS], idx)], 0, 16, 24),
    ], [_index_var()])
    flow_fields = ["inflow_cr", "outflow_cr"]
    side_fields = ["ce_inflow_cr", "ce_outflow_cr", "pe_inflow_cr", "pe_outflow_cr"]
    net = ('\n  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")'
           '\n  |> map(fn: (r) => ({_time: r._time, _value: r.inflow_cr - r.outflow_cr}))')
    out["premium-flow.json"] = _dashboard("optui-premium-flow", "optui · Premium flow by timeframe", [
        _panel("Inflow and outflow (₹ cr per ${timeframe})",
               [_flux(bucket, "premium_flow", flow_fields, idx, "sum", "${timeframe}")], 0, 0, 24, kind="barchart"),
        _panel("Net flow (₹ cr per ${timeframe})",
               [_flux(bucket, "premium_flow", flow_fields, idx, "sum", "${timeframe}", net)], 0, 8),
        _panel("Cumulative net flow today (₹ cr)",
               [_flux(bucket, "premium_flow", flow_fields, idx, "sum", "${timeframe}",
                      net + "\n  |> cumulativeSum()")], 12, 8),
        _panel("Calls and puts (₹ cr per ${timeframe})",
               [_flux(bucket, "premium_flow", side_fields, idx, "sum", "${timeframe}")], 0, 16, 24),
    ], [_index_var(), _timeframe_var()])
    part = 'r.kind == "oi" and r.participant != "TOTAL"'
    out["participants.json"] = _dashboard("optui-participants", "optui · Participants (F&O open interest)", [
        _panel("Index futures net (long − short)", [_flux(
            bucket, "participants", ["future_index_long", "future_index_short"], part, "last", "1d",
            '\n  |> pivot(rowKey: ["_time", "participant"], columnKey: ["_field"], valueColumn: "_value")'
            '\n  |> map(fn: (r) => ({_time: r._time, participant: r.participant, '
            "_value: r.future_index_long - r.future_index_short}))")], 0, 0, 24),
        _panel("Index calls long / short", [_flux(bucket, "participants", ["option_index_call_long", "option_index_call_short"], part, "last", "1d")], 0, 8),
        _panel("Index puts long / short", [_flux(bucket, "participants", ["option_index_put_long", "option_index_put_short"], part, "last", "1d")], 12, 8),
        _panel("FII / DII cash (₹ cr net)", [_flux(bucket, "fii_dii_cash", ["net_cr"], "", "last", "1d")], 0, 16, 24, kind="barchart"),
    ], [])
    out["alerts.json"] = _dashboard("optui-alerts", "optui · Alerts", [
        _panel("Alerts raised per 5 minutes, by rule (measurement alerts)", [_flux(
            bucket, "alerts", ["value"], "", "count", "5m",
            '\n  |> group(columns: ["rule"])')], 0, 16, 24, kind="barchart"),
        _panel("Alert log", [
            f'from(bucket: "{bucket}")\n'
            "  |> range(start: v.timeRangeStart, stop: v.timeRangeStop)\n"
            '  |> filter(fn: (r) => r._measurement == "alerts" and r._field == "message")\n'
            '  |> group()\n  |> sort(columns: ["_time"], desc: true)\n  |> limit(n: 200)'],
               0, 24, 24, 10, kind="table"),
        _panel("Net premium flow per minute (₹ cr): red beyond ±50", [_flux(
            bucket, "premium_flow", flow_fields, idx, "sum", "1m", net)], 0, 0, 24,
            thresholds=[("red", None), ("green", -50.0), ("red", 50.0)]),
        _panel(f"ATM IV change since open ({week})", [_flux(bucket, ov, [f"{week}_iv_day_change"], idx)],
               0, 8, kind="stat", thresholds=[("green", None), ("orange", 2.0), ("red", 4.0)]),
        _panel(f"PCR ({week}): outside 0.7–1.3", [_flux(bucket, ov, [f"PCR_{week}"], idx)], 12, 8,
               kind="stat", thresholds=[("red", None), ("green", 0.7), ("red", 1.3)]),
    ], [_index_var()])
    out["collector-health.json"] = _dashboard("optui-collector-health", "optui · Collector health", [
        _panel("Cycles stored per minute", [_flux(bucket, ov, ["last_price"], "", "count", "1m")], 0, 0,
               kind="barchart"),
        _panel("Gaps per minute (source down, paused, rate limited)",
               [_flux(bucket, "collector_health", ["gap"], "", "sum", "1m")], 12, 0, kind="barchart",
               thresholds=[("green", None), ("red", 1.0)]),
        _panel("Cycle duration (s)", [_flux(bucket, "collector_health", ["duration_s"], "", "max")], 0, 8,
               unit="s"),
        _panel("Open faults", [_flux(bucket, "collector_health", ["open_faults"], "", "last")], 12, 8,
               kind="stat", thresholds=[("green", None), ("red", 1.0)]),
        _panel("Age of the shown data (s, cached tier)",
               [_flux(bucket, "collector_health", ["cached_age_s"], "", "max")], 0, 16, 24, unit="s",
               thresholds=[("green", None), ("orange", 60.0), ("red", 300.0)]),
    ], [])
    return out


def write_grafana(directory: Path, org: str, bucket: str) -> list[Path]:
    """Write provisioning/ and dashboards/ under `directory`; returns the files written."""
    files = {
        "provisioning/datasources/optui.yml": datasource_yaml(org, bucket),
        "provisioning/dashboards/optui.yml": provider_yaml(),
    }
    for name, model in dashboards(bucket).items():
        files[f"dashboards/{name}"] = json.dumps(model, indent=2, ensure_ascii=False) + "\n"
    written = []
    for rel, text in files.items():
        path = directory / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
