"""The five option indices: labels, Kite spot symbols and configured strike steps.

Expiries, lot sizes and the real strike spacing come from the instrument dump at run time;
the steps here are only the fallback when too few strikes are listed to infer spacing.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class IndexSpec:
    """One option index as configured."""

    key: str
    label: str
    spot_symbol: str
    options_segment: str
    options_exchange: str
    step: int


INDEX_SPECS: dict[str, IndexSpec] = {
    "NIFTY": IndexSpec("NIFTY", "NIFTY 50", "NSE:NIFTY 50", "NFO-OPT", "NFO", 50),
    "BANKNIFTY": IndexSpec("BANKNIFTY", "BANK NIFTY", "NSE:NIFTY BANK", "NFO-OPT", "NFO", 100),
    "FINNIFTY": IndexSpec("FINNIFTY", "FINNIFTY", "NSE:NIFTY FIN SERVICE", "NFO-OPT", "NFO", 50),
    "MIDCPNIFTY": IndexSpec("MIDCPNIFTY", "MIDCPNIFTY", "NSE:NIFTY MID SELECT", "NFO-OPT", "NFO", 25),
    "SENSEX": IndexSpec("SENSEX", "SENSEX", "BSE:SENSEX", "BFO-OPT", "BFO", 100),
}

INDEX_KEYS: tuple[str, ...] = tuple(INDEX_SPECS)

# Names the original collectors exported; dashboards and scripts import them.
SPOT_SYMBOL: dict[str, str] = {k: s.spot_symbol for k, s in INDEX_SPECS.items()}
STEP_SIZES: dict[str, int] = {k: s.step for k, s in INDEX_SPECS.items()}
SYMBOL_LABEL: dict[str, str] = {k: s.label for k, s in INDEX_SPECS.items()}
BASE_OFFSETS: list[int] = [-2, -1, 0, 1, 2]

BUCKETS: tuple[str, ...] = ("this_week", "next_week", "this_month", "next_month")


def offset_label(offset: int) -> str:
    """Original collectors' label for a strike offset: atm_m2, atm_m1, atm, atm_p1, atm_p2."""
    if offset == 0:
        return "atm"
    return f"atm_{'p' if offset > 0 else 'm'}{abs(offset)}"


def parse_indices(text: str) -> list[str]:
    """Parse a comma list such as 'NIFTY,BANKNIFTY'; raise ValueError naming the unknown key."""
    keys = [part.strip().upper() for part in text.split(",") if part.strip()]
    unknown = [k for k in keys if k not in INDEX_SPECS]
    if unknown:
        raise ValueError(
            f"unknown index {', '.join(unknown)}: choose from {', '.join(INDEX_KEYS)}"
        )
    if not keys:
        raise ValueError(f"no index given: choose from {', '.join(INDEX_KEYS)}")
    return keys
