"""Kite instrument dumps: parsing (raw and pykiteconnect-written), expiry buckets, strike spacing."""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime

import numpy as np

from optui.indices import INDEX_SPECS
from optui.models import Instrument
from optui.timeutil import expiry_datetime

log = logging.getLogger(__name__)

INSTRUMENT_COLUMNS = (
    "instrument_token", "exchange_token", "tradingsymbol", "name", "last_price", "expiry",
    "strike", "tick_size", "lot_size", "instrument_type", "segment", "exchange",
)


@dataclass(slots=True)
class ParseResult:
    """Parsed instruments and how many malformed rows were skipped."""

    instruments: list[Instrument]
    skipped: int = 0
    first_error: str = ""
    no_expiry: int = 0  # of the skipped: options and futures listed without an expiry

    @property
    def warning(self) -> str:
        """One line naming how many rows were skipped and why ("" when none were)."""
        if not self.skipped:
            return ""
        detail = f"{self.no_expiry} options or futures without an expiry; " if self.no_expiry else ""
        return f"skipped {self.skipped} malformed instrument rows ({detail}first: {self.first_error})"


class MissingExpiryError(ValueError):
    """An option or future row of the dump has no expiry: it cannot be placed in any chain."""


# Derivative rows need an expiry; an index or equity row has none.
_DATED_TYPES = frozenset({"CE", "PE", "FUT"})


def _check_expiry(instrument_type: str, expiry: date | None) -> None:
    if expiry is None and instrument_type in _DATED_TYPES:
        raise MissingExpiryError(f"{instrument_type} row without an expiry")


def _num(text: str) -> float:
    return float(text) if text.strip() else 0.0


def _int(text: str) -> int:
    # pykiteconnect writes integers back as floats ("65.0"); the raw dump has "65".
    return int(float(text)) if text.strip() else 0


def _row_to_instrument(row: dict[str, str]) -> Instrument:
    expiry_text = (row.get("expiry") or "").strip()
    expiry = date.fromisoformat(expiry_text[:10]) if expiry_text else None
    _check_expiry(row["instrument_type"].strip(), expiry)
    return Instrument(
        instrument_token=_int(row["instrument_token"]),
        exchange_token=_int(row["exchange_token"]),
        tradingsymbol=row["tradingsymbol"].strip(),
        name=(row.get("name") or "").strip().strip('"'),
        last_price=_num(row.get("last_price") or ""),
        expiry=expiry,
        strike=_num(row.get("strike") or ""),
        tick_size=_num(row.get("tick_size") or ""),
        lot_size=_int(row.get("lot_size") or ""),
        instrument_type=row["instrument_type"].strip(),
        segment=row["segment"].strip(),
        exchange=row["exchange"].strip(),
    )


def parse_instruments_csv(text: str, source: str = "instrument dump") -> ParseResult:
    """Parse Kite's instrument CSV (LF or CRLF, '#' comment lines allowed); skip bad rows."""
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines:
        return ParseResult([], 0, f"{source}: empty")
    reader = csv.DictReader(io.StringIO("\n".join(lines)))
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in INSTRUMENT_COLUMNS if c not in header]
    if missing:
        return ParseResult([], len(lines) - 1, f"{source}: missing columns {', '.join(missing)}")
    reader.fieldnames = header
    result = ParseResult([])
    for number, row in enumerate(reader, start=2):
        try:
            if None in row or any(row.get(c) is None for c in INSTRUMENT_COLUMNS):
                raise ValueError("wrong number of columns")
            result.instruments.append(_row_to_instrument(row))
        except (ValueError, KeyError) as exc:
            _skip(result, f"{source} line {number}: {exc}", exc)
    if result.skipped:
        log.warning("%s: %s", source, result.warning)
    return result


def _skip(result: ParseResult, where: str, exc: Exception) -> None:
    result.skipped += 1
    result.no_expiry += isinstance(exc, MissingExpiryError)
    result.first_error = result.first_error or where


def instruments_to_csv(instruments: Iterable[Instrument]) -> str:
    """Write instruments back in Kite's CSV layout (for the per-day cache)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(INSTRUMENT_COLUMNS)
    for i in instruments:
        writer.writerow([
            i.instrument_token, i.exchange_token, i.tradingsymbol, i.name, i.last_price,
            i.expiry.isoformat() if i.expiry else "", i.strike, i.tick_size, i.lot_size,
            i.instrument_type, i.segment, i.exchange,
        ])
    return buf.getvalue()


def instruments_from_kite_rows(rows: Iterable[dict], source: str = "instrument dump") -> ParseResult:
    """Convert the dicts `KiteConnect.instruments()` returns (dates already parsed).

    pykiteconnect leaves an empty expiry as "": on an option or future that is a malformed row.
    """
    result = ParseResult([])
    for row in rows:
        try:
            expiry = row.get("expiry")
            if isinstance(expiry, datetime):
                expiry = expiry.date()
            elif isinstance(expiry, str):
                expiry = date.fromisoformat(expiry[:10]) if expiry else None
            _check_expiry(str(row["instrument_type"]), expiry or None)
            result.instruments.append(Instrument(
                instrument_token=int(row["instrument_token"]),
                exchange_token=int(row["exchange_token"]),
                tradingsymbol=str(row["tradingsymbol"]),
                name=str(row.get("name") or ""),
                last_price=float(row.get("last_price") or 0.0),
                expiry=expiry or None,
                strike=float(row.get("strike") or 0.0),
                tick_size=float(row.get("tick_size") or 0.0),
                lot_size=int(float(row.get("lot_size") or 0)),
                instrument_type=str(row["instrument_type"]),
                segment=str(row["segment"]),
                exchange=str(row["exchange"]),
            ))
        except (KeyError, TypeError, ValueError) as exc:
            _skip(result, f"row {row!r:.80}: {exc}", exc)
    if result.skipped:
        log.warning("%s: %s", source, result.warning)
    return result


@dataclass(frozen=True, slots=True)
class ChainColumns:
    """An expiry chain's instruments per listed strike, in `ExpiryChain.strikes` order: what a
    cycle reads for every strike without touching an Instrument."""

    call_keys: list[str]  # 'EXCHANGE:TRADINGSYMBOL'
    put_keys: list[str]
    call_symbols: list[str]  # the keys' tradingsymbols
    put_symbols: list[str]
    call_tokens: np.ndarray  # int64 instrument tokens
    put_tokens: np.ndarray
    call_ticks: np.ndarray  # float64 tick sizes of the calls


@dataclass(slots=True)
class ExpiryChain:
    """Listed options of one index and one expiry, by strike."""

    expiry: date
    strikes: np.ndarray  # sorted unique listed strikes having both a CE and a PE
    calls: dict[float, Instrument] = field(default_factory=dict)
    puts: dict[float, Instrument] = field(default_factory=dict)
    _columns: ChainColumns | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def lot_size(self) -> int:
        for inst in self.calls.values():
            return inst.lot_size
        return 0

    def columns(self) -> ChainColumns:
        """Keys, tradingsymbols, tokens and call tick sizes per listed strike (built once; a
        chain's instruments do not change). KeyError when a listed strike lacks a call or put."""
        cols = self._columns
        if cols is None:
            calls = [self.calls[float(k)] for k in self.strikes]
            puts = [self.puts[float(k)] for k in self.strikes]
            call_keys = [i.key for i in calls]
            put_keys = [i.key for i in puts]
            cols = self._columns = ChainColumns(
                call_keys, put_keys,
                [k.split(":", 1)[1] for k in call_keys], [k.split(":", 1)[1] for k in put_keys],
                np.array([i.instrument_token for i in calls], dtype=np.int64),
                np.array([i.instrument_token for i in puts], dtype=np.int64),
                np.array([i.tick_size for i in calls], dtype=float),
            )
        return cols


@dataclass(slots=True)
class IndexCatalog:
    """What the dump lists for one index: option chains per expiry."""

    index: str
    chains: dict[date, ExpiryChain]
    future_expiries: list[date] = field(default_factory=list)

    def expiries(self, at: datetime) -> list[date]:
        """Listed expiries not yet settled at `at` (an expiry lives until 15:30 IST), soonest first."""
        return sorted(e for e in self.chains if expiry_datetime(e) > at)


def build_catalogs(instruments: Iterable[Instrument], indices: Iterable[str]) -> dict[str, IndexCatalog]:
    """Group the dump's index options by index and expiry; only strikes with both sides listed."""
    wanted = {k: INDEX_SPECS[k] for k in indices}
    calls: dict[tuple[str, date], dict[float, Instrument]] = {}
    puts: dict[tuple[str, date], dict[float, Instrument]] = {}
    futures: dict[str, set[date]] = {}
    for inst in instruments:
        spec = wanted.get(inst.name)
        if spec is None or inst.expiry is None:
            continue
        if inst.instrument_type == "FUT":
            futures.setdefault(inst.name, set()).add(inst.expiry)
            continue
        if inst.segment != spec.options_segment:
            continue
        if inst.instrument_type == "CE":
            calls.setdefault((inst.name, inst.expiry), {})[inst.strike] = inst
        elif inst.instrument_type == "PE":
            puts.setdefault((inst.name, inst.expiry), {})[inst.strike] = inst
    catalogs = {k: IndexCatalog(k, {}, sorted(futures.get(k, ()))) for k in wanted}
    for (name, expiry), ce in calls.items():
        pe = puts.get((name, expiry), {})
        both = sorted(set(ce) & set(pe))
        if not both:
            continue
        catalogs[name].chains[expiry] = ExpiryChain(
            expiry, np.asarray(both, dtype=float),
            {k: ce[k] for k in both}, {k: pe[k] for k in both},
        )
    return catalogs


def expiry_buckets(expiries: list[date], future_expiries: Iterable[date] = ()) -> dict[str, date]:
    """Map listed expiries (soonest first) to this_week/next_week/this_month/next_month.

    Monthly expiries are the option expiries that coincide with a futures expiry (futures are
    monthly only); without futures in the dump, the last listed expiry of each month. An index is weekly when
    some month among its first listed expiries has more than one expiry; a monthly-only index gets
    only the two monthly buckets. Never assumes a weekday: holidays and rule changes come through
    the dump.
    """
    if not expiries:
        return {}
    ordered = sorted(expiries)
    by_month: dict[tuple[int, int], list[date]] = {}
    for e in ordered:
        by_month.setdefault((e.year, e.month), []).append(e)
    fut = set(future_expiries)
    monthly = [e for e in ordered if e in fut] if fut & set(ordered) else []
    if not monthly:
        monthly = [max(v) for _, v in sorted(by_month.items())]
    near_months = sorted(by_month)[:2]
    weekly = any(len(by_month[m]) > 1 for m in near_months)
    out: dict[str, date] = {}
    if weekly:
        out["this_week"] = ordered[0]
        if len(ordered) > 1:
            out["next_week"] = ordered[1]
    out["this_month"] = monthly[0]
    if len(monthly) > 1:
        out["next_month"] = monthly[1]
    return out


def strike_spacing(strikes: np.ndarray, spot: float, fallback: float, near: int = 10) -> float:
    """Spacing of listed strikes near the money (most common gap of the `near` closest strikes).

    Far strikes are listed wider apart, so only the ones around the spot count; with fewer than
    three strikes the configured step is used.
    """
    s = np.asarray(strikes, dtype=float).ravel()
    if not (s.size < 2 or bool((s[1:] > s[:-1]).all())):  # a chain's are sorted and unique
        s = np.unique(s)
    if s.size < 3 or not np.isfinite(spot):
        return float(fallback)
    nearest = np.sort(s[np.argsort(np.abs(s - spot))[: max(near, 3)]])
    gaps = np.diff(nearest)
    gaps = gaps[gaps > 0]
    if gaps.size == 0:
        return float(fallback)
    # The most common rounded gap, the smallest of those as common (np.unique's order).
    counts: dict[float, int] = {}
    for gap in np.round(gaps, 6).tolist():
        counts[gap] = counts.get(gap, 0) + 1
    most = max(counts.values())
    return float(min(g for g, c in counts.items() if c == most) if most > 1 else gaps.min())
