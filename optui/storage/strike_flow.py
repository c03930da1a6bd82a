"""The `flow_strike` measurement: one-minute premium-flow bars per index, expiry and strike.

Tags `index`, `expiry` (ISO date), `strike` (e.g. "24500"); fields `ce_net_cr`, `pe_net_cr`
(rupees crore bought minus sold in that minute). A minute's bar is the sum of the cycles that end
in it, each cycle kept by its market moment so collecting the same moment again replaces it
rather than adding to it. Bars are rewritten whole each cycle. Bounded by what the snapshot
carries (optui.collectors.strike_flow: a window around the money of the nearest expiries).
Unlike the index bars, a restart mid-minute does not read the minute's earlier cycles back:
that minute's strike bars then start at the restart.
"""

from __future__ import annotations

from optui.models import Snapshot
from optui.storage.base import ns_to_time, time_to_ns
from optui.storage.points import Point

STRIKE_FLOW = "flow_strike"
_MINUTE_NS = 60_000_000_000


class StrikeFlowBars:
    """Accumulates each snapshot's `IndexSnapshot.strike_flow` into minute bars (see module)."""

    def __init__(self, keep_minutes: int = 3) -> None:
        self.keep_minutes = max(1, keep_minutes)
        self._cycles: dict[tuple[str, int], dict[int, dict[tuple[str, float], tuple[float, float]]]] = {}
        # Per minute, the running sums of its cycles in the order they were added: a new cycle
        # adds onto them (the same additions in the same order as summing all cycles again).
        self._sums: dict[tuple[str, int], dict[tuple[str, float], list[float]]] = {}

    def points(self, snapshot: Snapshot) -> list[Point]:
        """The minute bars this snapshot's cycle belongs to, after adding it."""
        out: list[Point] = []
        for key, snap in snapshot.indices.items():
            if not snap.strike_flow:
                continue
            end = time_to_ns(snap.overview.timestamp)
            minute = end - end % _MINUTE_NS
            cycles = self._cycles.setdefault((key, minute), {})
            again = end in cycles  # the same moment collected again: it replaces its cycle
            cycles[end] = dict(snap.strike_flow)
            sums = self._sums.get((key, minute))
            if sums is None or again:
                sums = self._sums[(key, minute)] = {}
                added = list(cycles.values())
            else:
                added = [cycles[end]]
            for flows in added:
                for ident, (ce, pe) in flows.items():
                    acc = sums.setdefault(ident, [0.0, 0.0])
                    acc[0] += ce
                    acc[1] += pe
            at = ns_to_time(minute)
            out.extend(
                Point(STRIKE_FLOW, {"index": key, "expiry": expiry, "strike": f"{strike:g}"},
                      {"ce_net_cr": v[0], "pe_net_cr": v[1]}, at)
                for (expiry, strike), v in sums.items()
            )
            horizon = minute - self.keep_minutes * _MINUTE_NS
            for old in [k for k in self._cycles if k[0] == key and k[1] < horizon]:
                del self._cycles[old]
                self._sums.pop(old, None)
        return out
