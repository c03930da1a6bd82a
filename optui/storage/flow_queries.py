"""Premium-flow history from the store: timeframe bars of the `premium_flow` measurement.

The collector writes one-minute bars (optui.storage.records.FlowBarAccumulator); a query sums
them into the chosen timeframe with `Store.aggregate`, so every backend answers alike.
"""

from __future__ import annotations

from datetime import datetime

from optui.analytics.premium_flow import FlowBar, FlowSeries
from optui.storage.base import Row, Store
from optui.storage.records import FLOW, FLOW_FIELDS

__all__ = ["FLOW_FIELDS", "flow_series_from_rows", "query_flow_series"]


def flow_series_from_rows(index: str, timeframe: str, rows: list[Row]) -> FlowSeries:
    """Turn `Store.aggregate` rows of measurement premium_flow into a FlowSeries (a missing or
    non-numeric field counts 0)."""

    def num(row: Row, name: str) -> float:
        value = row.fields.get(name, 0.0)
        return float(value) if isinstance(value, (int, float)) else 0.0

    bars = [
        FlowBar(
            start=row.time,
            inflow_cr=num(row, "inflow_cr"),
            outflow_cr=num(row, "outflow_cr"),
            ce_net_cr=num(row, "ce_inflow_cr") - num(row, "ce_outflow_cr"),
            pe_net_cr=num(row, "pe_inflow_cr") - num(row, "pe_outflow_cr"),
        )
        for row in rows
    ]
    return FlowSeries(index, timeframe, bars)


def query_flow_series(store: Store, index: str, timeframe: str, start: datetime,
                      end: datetime) -> FlowSeries:
    """One index's premium flow summed into `timeframe` bars over [start, end) (see
    `optui.analytics.premium_flow.flow_window`). Raises StoreError when the store cannot answer,
    ValueError for an unknown timeframe."""
    rows = store.aggregate(FLOW, list(FLOW_FIELDS), start, end, every=timeframe,
                           tags={"index": index})
    return flow_series_from_rows(index, timeframe, rows)
