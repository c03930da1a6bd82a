"""What a collector remembers between cycles: previous quotes, reference OI, the day's first IV.

Reference OI (for `oi_change`) is the previous trading day's closing OI: the stored 08:00 IST
capture (optui.collectors.closing_oi) for every leg it holds, else the last OI of the previous
trading day's state file, else the first OI seen today. The state is a small JSON file per IST day so a
restart mid-session keeps the same references and the last quotes (flow across the restart).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass(slots=True)
class PrevQuote:
    """The last quote seen of one instrument, as flow and OI-change analytics need it."""

    value: float  # average_price * volume, rupees
    volume: float
    mid: float
    last: float
    oi: float
    at_s: float = 0.0  # quote time, epoch seconds: flow across a long gap is not attributable


@dataclass
class DayState:
    """Per-day memory of one collector."""

    day: date
    directory: Path | None = None
    prev: dict[int, PrevQuote] = field(default_factory=dict)
    oi_first: dict[int, float] = field(default_factory=dict)
    oi_prev_close: dict[int, float] = field(default_factory=dict)
    iv_open: dict[str, tuple[float, float]] = field(default_factory=dict)  # key -> (iv, at_s)

    @classmethod
    def load(cls, day: date, directory: Path | None, *, previous_day: date | None = None,
             closing_oi: Callable[[], dict[int, float]] | None = None) -> DayState:
        """Today's state (after a restart) and the previous close's OI as references.

        `previous_day` (the trading day before `day`) limits the state file read for `oi_last`
        to that day's: an older file's last OI is not the previous close. `closing_oi` reads the
        stored closing OI by instrument token (called once here); it wins over `oi_last`.
        """
        state = cls(day, directory)
        if closing_oi is not None:
            state.oi_prev_close = dict(closing_oi())
        if directory is None or not directory.exists():
            return state
        files = sorted(directory.glob("state_*.json"))
        earlier = [f for f in files if f.stem[6:] < day.isoformat()
                   and (previous_day is None or f.stem[6:] >= previous_day.isoformat())]
        if earlier:
            data = _read(earlier[-1])
            last = {int(k): float(v) for k, v in data.get("oi_last", {}).items()}
            state.oi_prev_close = {**last, **state.oi_prev_close}
        today = directory / f"state_{day.isoformat()}.json"
        if today.exists():
            data = _read(today)
            state.oi_first = {int(k): float(v) for k, v in data.get("oi_first", {}).items()}
            state.iv_open = {str(k): _iv_anchor(v) for k, v in data.get("iv_open", {}).items()}
            try:
                state.prev = {int(k): PrevQuote(*map(float, v)) for k, v in data.get("prev", {}).items()}
            except (TypeError, ValueError):
                log.warning("ignoring unreadable previous quotes in %s", today)
        return state

    def reference_oi(self, token: int, oi: float) -> float:
        """Previous close OI when known, else the day's first OI (remembered from now on)."""
        if token in self.oi_prev_close:
            return self.oi_prev_close[token]
        return self.oi_first.setdefault(token, oi)

    def first_iv(self, key: str, iv: float, at_s: float) -> float:
        """The day's first finite IV for `key` (index/bucket/expiry) as seen at `at_s` (epoch s).

        The anchor is the IV of the earliest moment that gave one: re-collecting an earlier moment
        (a restart over the same minutes) moves it earlier, and a moment before the anchor has no
        opening IV yet (NaN), so a rerun stores what the first run stored.
        """
        held = self.iv_open.get(key)
        if iv == iv and (held is None or at_s < held[1]):  # NaN != NaN
            held = self.iv_open[key] = (iv, at_s)
        if held is None or at_s < held[1]:
            return float("nan")
        return held[0]

    def save(self) -> None:
        """Write today's references atomically; failures are logged, never fatal."""
        if self.directory is None:
            return
        data = {
            "oi_first": self.oi_first,
            "oi_last": {t: p.oi for t, p in self.prev.items()},
            "iv_open": self.iv_open,
            # [value, volume, mid, last, oi, at_s]: a restart's first cycle still has flow.
            "prev": {t: [p.value, p.volume, p.mid, p.last, p.oi, p.at_s] for t, p in self.prev.items()},
        }
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            target = self.directory / f"state_{self.day.isoformat()}.json"
            tmp = target.with_suffix(".tmp")
            tmp.write_text(json.dumps(data), encoding="utf-8")
            os.replace(tmp, target)
        except OSError as exc:
            log.warning("cannot save collector state in %s: %s", self.directory, exc)


def _iv_anchor(value: object) -> tuple[float, float]:
    """A stored opening IV: `[iv, at_s]`, or a bare IV from older state files (valid all day)."""
    if isinstance(value, list | tuple) and len(value) == 2:
        return float(value[0]), float(value[1])
    return float(value), float("-inf")  # type: ignore[arg-type]


def _read(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError) as exc:
        log.warning("ignoring unreadable collector state %s: %s", path, exc)
        return {}
