"""What a collector remembers between cycles: previous quotes, reference OI, the day's first IV.

Reference OI (for `oi_change`) is the previous trading day's closing OI: the stored 08:00 IST
capture (optui.collectors.closing_oi) for every leg it holds, else the last OI of the previous
trading day's state file, else the first OI seen today. The state is a small JSON file per IST day so a
restart mid-session keeps the same references and the last quotes (flow across the restart).
"""

from __future__ import annotations

import base64
import json
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from functools import partial
from itertools import chain, compress, repeat
from pathlib import Path
from typing import NamedTuple

import numpy as np

log = logging.getLogger(__name__)

NAN = float("nan")


class PrevQuote(NamedTuple):
    """The last quote seen of one instrument, as flow and OI-change analytics need it.

    A named tuple: a cycle makes thousands (`PrevQuote.of`, in C) and reads them back as rows
    of six floats (optui.collectors.bucket_analytics.prev_columns)."""

    value: float  # average_price * volume, rupees
    volume: float
    mid: float
    last: float
    oi: float
    at_s: float = 0.0  # quote time, epoch seconds: flow across a long gap is not attributable

    @classmethod
    def of(cls, fields: Iterable[tuple[float, float, float, float, float, float]]
           ) -> Iterator[PrevQuote]:
        """A PrevQuote of each (value, volume, mid, last, oi, at_s), made without a Python call
        each (the tuple constructor, mapped)."""
        return map(partial(tuple.__new__, cls), fields)  # type: ignore[arg-type]


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
            try:
                last = _floats(data.get("oi_last", {}))
                if "prev_columns" in data:  # the last OI of each previous quote
                    last = {t: p.oi for t, p in _unpack_prev(data["prev_columns"]).items()}
            except (TypeError, ValueError, KeyError):
                log.warning("ignoring unreadable last OI in %s", earlier[-1])
                last = {}
            state.oi_prev_close = {**last, **state.oi_prev_close}
        today = directory / f"state_{day.isoformat()}.json"
        if today.exists():
            data = _read(today)
            try:
                state.oi_first = _floats(data.get("oi_first", {}))
            except (TypeError, ValueError, KeyError):
                log.warning("ignoring unreadable first OI in %s", today)
            state.iv_open = {str(k): _iv_anchor(v) for k, v in data.get("iv_open", {}).items()}
            try:
                if "prev_columns" in data:
                    state.prev = _unpack_prev(data["prev_columns"])
                else:
                    state.prev = {int(k): PrevQuote(*map(float, v))
                                  for k, v in data.get("prev", {}).items()}
            except (TypeError, ValueError, KeyError):
                log.warning("ignoring unreadable previous quotes in %s", today)
        return state

    def reference_oi(self, token: int, oi: float) -> float:
        """Previous close OI when known, else the day's first OI (remembered from now on)."""
        if token in self.oi_prev_close:
            return self.oi_prev_close[token]
        return self.oi_first.setdefault(token, oi)

    def reference_oi_many(self, tokens: list[int], oi: np.ndarray, quoted: np.ndarray) -> np.ndarray:
        """`reference_oi` of each quoted leg, NaN where not quoted (float64, `tokens` order):
        `tokens` (Python ints), their OI this cycle and whether each quoted. The day's first OI
        is remembered for the legs without a previous close in the same order as calling
        `reference_oi` leg by leg, with the same values; the dictionaries are read in C
        (map), not by a Python call per leg."""
        n = len(tokens)
        close = self.oi_prev_close
        if close:
            out = np.fromiter(map(close.get, tokens, repeat(NAN, n)), dtype=float, count=n)
            need = quoted & ~np.fromiter(map(close.__contains__, tokens), dtype=bool, count=n)
        else:
            out, need = np.full(n, NAN), quoted.copy()
        count = int(np.count_nonzero(need))
        if count:
            out[need] = np.fromiter(
                map(self.oi_first.setdefault, compress(tokens, need.tolist()), oi[need].tolist()),
                dtype=float, count=count)
        out[~quoted] = NAN
        return out

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
            "oi_first": _pack_floats(self.oi_first),
            "iv_open": self.iv_open,
            # Every previous quote (its `oi` is the last OI a next day's references read): a
            # restart's first cycle still has flow.
            "prev_columns": _pack_prev(self.prev),
        }
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            target = self.directory / f"state_{self.day.isoformat()}.json"
            tmp = target.with_suffix(".tmp")
            tmp.write_text(json.dumps(data), encoding="utf-8")
            os.replace(tmp, target)
        except OSError as exc:
            log.warning("cannot save collector state in %s: %s", self.directory, exc)


# Token -> number maps and the previous quotes are stored as little-endian int64 tokens and
# float64 values, base64 in the JSON: writing tens of thousands of floats as decimal text took
# tens of milliseconds every cycle, the binary form well under one. Files written before
# ("oi_first" and "prev" as JSON objects, "oi_last") are still read.
_PREV_FIELDS = PrevQuote._fields


def _b64(array: np.ndarray) -> str:
    return base64.b64encode(array.tobytes()).decode("ascii")


def _unb64(text: str, dtype: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text.encode("ascii"), validate=True), dtype=dtype)


def _pack_floats(values: dict[int, float]) -> dict[str, str]:
    """{"tokens", "values"} of a token -> number map."""
    n = len(values)
    return {"tokens": _b64(np.fromiter(values, dtype="<i8", count=n)),
            "values": _b64(np.fromiter(values.values(), dtype="<f8", count=n))}


def _floats(value: object) -> dict[int, float]:
    """A token -> number map as stored: packed (`_pack_floats`) or a JSON object."""
    if isinstance(value, dict) and set(value) == {"tokens", "values"} \
            and all(isinstance(v, str) for v in value.values()):
        tokens, values = _unb64(value["tokens"], "<i8"), _unb64(value["values"], "<f8")
        if tokens.size != values.size:
            raise ValueError("tokens and values differ in length")
        return dict(zip(tokens.tolist(), values.tolist(), strict=True))
    if not isinstance(value, dict):
        raise TypeError("not a map of numbers")
    return {int(k): float(v) for k, v in value.items()}


def _pack_prev(prev: dict[int, PrevQuote]) -> dict[str, object]:
    """{"fields", "tokens", "values" (tokens x fields, row-major)} of the previous quotes."""
    # A PrevQuote is a tuple of its fields in _PREV_FIELDS order: read as it is, no getter.
    rows = np.fromiter(chain.from_iterable(prev.values()), dtype="<f8",
                       count=len(prev) * len(_PREV_FIELDS))
    return {"fields": list(_PREV_FIELDS),
            "tokens": _b64(np.fromiter(prev, dtype="<i8", count=len(prev))),
            "values": _b64(np.ascontiguousarray(rows))}


def _unpack_prev(value: dict) -> dict[int, PrevQuote]:
    names = [str(n) for n in value["fields"]]
    tokens = _unb64(value["tokens"], "<i8")
    rows = _unb64(value["values"], "<f8").reshape(tokens.size, len(names))
    known = [j for j, n in enumerate(names) if n in _PREV_FIELDS]
    return {t: PrevQuote(**{names[j]: row[j] for j in known})
            for t, row in zip(tokens.tolist(), rows.tolist(), strict=True)}


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
