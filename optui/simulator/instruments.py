"""The simulated exchange's listed contracts and their dump in Kite's exact instrument CSV.

Which expiries, strikes and lot sizes exist follows the current exchange rules (NSE Tuesday,
BSE Thursday, weekly NIFTY and SENSEX, monthly for the rest, holiday shifts), because the app
reads all of that from the dump and must be exercised on the real shapes.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

from optui.simulator import calendar as cal
from optui.simulator.symbols import format_strike, future_symbol, option_symbol

# Low byte of instrument_token: instrument_token = exchange_token * 256 + segment code.
SEGMENT_CODES: dict[str, int] = {"NSE": 1, "NFO": 2, "CDS": 3, "BSE": 4, "BFO": 5, "INDICES": 9}

CSV_HEADER = (
    "instrument_token,exchange_token,tradingsymbol,name,last_price,expiry,strike,"
    "tick_size,lot_size,instrument_type,segment,exchange"
)

OPTION_TICK = 0.05


@dataclass(frozen=True, slots=True)
class IndexContract:
    """How one index's spot, futures and options are listed."""

    key: str
    spot_exchange: str
    spot_symbol: str
    spot_exchange_token: int
    deriv_exchange: str
    lot_size: int
    expiry_weekday: int
    weeklies: int
    monthlies: int
    quarterlies: int
    futures_tick: float
    near_step: int
    near_count: int
    far_step: int
    far_count: int

    @property
    def spot_token(self) -> int:
        return self.spot_exchange_token * 256 + SEGMENT_CODES["INDICES"]


CONTRACTS: dict[str, IndexContract] = {
    "NIFTY": IndexContract("NIFTY", "NSE", "NIFTY 50", 1001, "NFO", 65, cal.TUESDAY, 5, 3, 3,
                           0.1, 50, 40, 100, 20),
    "BANKNIFTY": IndexContract("BANKNIFTY", "NSE", "NIFTY BANK", 1016, "NFO", 30, cal.TUESDAY,
                               0, 3, 2, 0.2, 100, 40, 500, 12),
    "FINNIFTY": IndexContract("FINNIFTY", "NSE", "NIFTY FIN SERVICE", 1007, "NFO", 60,
                              cal.TUESDAY, 0, 3, 0, 0.1, 50, 30, 100, 15),
    "MIDCPNIFTY": IndexContract("MIDCPNIFTY", "NSE", "NIFTY MID SELECT", 1125, "NFO", 120,
                                cal.TUESDAY, 0, 3, 0, 0.05, 25, 30, 100, 10),
    "SENSEX": IndexContract("SENSEX", "BSE", "SENSEX", 1, "BFO", 20, cal.THURSDAY, 5, 3, 0,
                            0.05, 100, 50, 500, 12),
}

# Exchange tokens of derivatives start here, like the real NFO and BFO ranges.
_TOKEN_BASE = {"NFO": 35_000, "BFO": 800_000}
_TOKEN_SPAN = 2_000_000


@dataclass(frozen=True, slots=True)
class Listing:
    """One row of the instrument dump, plus the index it belongs to."""

    instrument_token: int
    exchange_token: int
    tradingsymbol: str
    name: str
    expiry: date | None
    strike: float
    tick_size: float
    lot_size: int
    instrument_type: str
    segment: str
    exchange: str
    index_key: str
    monthly: bool = False

    @property
    def key(self) -> str:
        """Kite's quote key, EXCHANGE:TRADINGSYMBOL."""
        return f"{self.exchange}:{self.tradingsymbol}"

    @property
    def is_index(self) -> bool:
        return self.segment == "INDICES"


def option_expiries(contract: IndexContract, on: date) -> list[tuple[date, bool]]:
    """Option expiries listed on `on`, each with whether it is the month's expiry."""
    exch = contract.deriv_exchange
    wd = contract.expiry_weekday
    expiries: set[date] = set(cal.weekly_expiries(on, contract.weeklies, wd, exch))
    monthlies = cal.monthly_expiries(on, contract.monthlies, wd, exch)
    expiries.update(monthlies)
    if contract.quarterlies and monthlies:
        after = monthlies[-1]
        year, month = after.year, after.month
        found = 0
        while found < contract.quarterlies:
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
            if month % 3 == 0:
                expiries.add(cal.monthly_expiry(year, month, wd, exch))
                found += 1
    return [(e, cal.is_monthly_expiry(e, wd, exch)) for e in sorted(expiries)]


def future_expiries(contract: IndexContract, on: date) -> list[date]:
    """The three monthly futures listed on `on`."""
    return cal.monthly_expiries(on, 3, contract.expiry_weekday, contract.deriv_exchange)


def strike_grid(contract: IndexContract, reference: float) -> list[float]:
    """Strikes around `reference`: fine spacing near the money, coarser far out."""
    atm = round(reference / contract.near_step) * contract.near_step
    near_lo = atm - contract.near_count * contract.near_step
    near_hi = atm + contract.near_count * contract.near_step
    strikes = set(range(near_lo, near_hi + 1, contract.near_step))
    lo = (near_lo // contract.far_step) * contract.far_step
    hi = -(-near_hi // contract.far_step) * contract.far_step
    for i in range(contract.far_count + 1):
        strikes.add(lo - i * contract.far_step)
        strikes.add(hi + i * contract.far_step)
    return [float(k) for k in sorted(strikes) if k > 0]


def _spot_listing(contract: IndexContract) -> Listing:
    return Listing(
        instrument_token=contract.spot_token,
        exchange_token=contract.spot_exchange_token,
        tradingsymbol=contract.spot_symbol,
        name=contract.spot_symbol,
        expiry=None,
        strike=0.0,
        tick_size=0.0,
        lot_size=0,
        instrument_type="EQ",
        segment="INDICES",
        exchange=contract.spot_exchange,
        index_key=contract.key,
    )


def _assign_tokens(rows: Sequence[tuple], exchange: str, used: set[int]) -> list[int]:
    """Stable exchange tokens from a hash of the symbol, probing past the rare collision."""
    tokens = []
    for row in rows:
        symbol = row[0]
        token = _TOKEN_BASE[exchange] + zlib.crc32(symbol.encode()) % _TOKEN_SPAN
        while token in used:
            token += 1
        used.add(token)
        tokens.append(token)
    return tokens


def build_listings(on: date, references: dict[str, float]) -> list[Listing]:
    """Every contract listed on trading day `on`; strikes centred on each index's reference."""
    out: list[Listing] = []
    used: dict[str, set[int]] = {"NFO": set(), "BFO": set()}
    for key, contract in CONTRACTS.items():
        out.append(_spot_listing(contract))
        exch = contract.deriv_exchange
        pending: list[tuple] = []
        for expiry in future_expiries(contract, on):
            pending.append((future_symbol(key, expiry), expiry, 0.0, "FUT", True))
        strikes = strike_grid(contract, references[key])
        for expiry, monthly in option_expiries(contract, on):
            for strike in strikes:
                for kind in ("CE", "PE"):
                    symbol = option_symbol(key, expiry, strike, kind, monthly)
                    pending.append((symbol, expiry, strike, kind, monthly))
        pending.sort(key=lambda row: row[0])
        tokens = _assign_tokens(pending, exch, used[exch])
        code = SEGMENT_CODES[exch]
        for (symbol, expiry, strike, kind, monthly), token in zip(pending, tokens, strict=True):
            is_fut = kind == "FUT"
            out.append(Listing(
                instrument_token=token * 256 + code,
                exchange_token=token,
                tradingsymbol=symbol,
                name=key,
                expiry=expiry,
                strike=strike,
                tick_size=contract.futures_tick if is_fut else OPTION_TICK,
                lot_size=contract.lot_size,
                instrument_type=kind,
                segment=f"{exch}-{'FUT' if is_fut else 'OPT'}",
                exchange=exch,
                index_key=key,
                monthly=monthly,
            ))
    return out


def _fmt_tick(tick: float) -> str:
    return "0" if tick == 0 else f"{tick:g}"


def csv_row(row: Listing) -> str:
    """One dump line; Kite quotes the name column."""
    return ",".join((
        str(row.instrument_token),
        str(row.exchange_token),
        row.tradingsymbol,
        '"' + row.name.replace('"', '""') + '"',
        "0",
        row.expiry.isoformat() if row.expiry else "",
        format_strike(row.strike),
        _fmt_tick(row.tick_size),
        str(row.lot_size),
        row.instrument_type,
        row.segment,
        row.exchange,
    ))


def to_csv(rows: Iterable[Listing]) -> str:
    """The dump as Kite serves it: header, one line per contract, LF line ends."""
    return "\n".join([CSV_HEADER, *(csv_row(r) for r in rows)]) + "\n"
