"""Fault injection for the simulated Kite API: the failures a trading day brings, at chosen rates.

A `FaultPlan` draws, for each request, at most one fault from its rates (seeded, so a run repeats):

| kind        | what the client sees                                                    |
|-------------|-------------------------------------------------------------------------|
| `429`       | HTTP 429 NetworkException "Too many requests" (Kite's rate-limit answer) |
| `5xx`       | HTTP 500/502/503 GeneralException or NetworkException                  |
| `timeout`   | no answer for `timeout_s` seconds (the client's read timeout fires)      |
| `token`     | HTTP 403 TokenException for this request                                |
| `malformed` | HTTP 200 with a body that is not JSON                                   |
| `slow`      | the right answer, `slow_s` seconds late                                 |
| `truncated` | the right headers, half the body, then the connection closes            |

`rotate=N` changes the accepted access token after N authorised requests (Kite's 06:00 IST
expiry): every request with the old token then gets a TokenException until the client uses the
new one (`rotated_token`). Spec strings read `"429=0.05,5xx=0.05,timeout=0.02,rotate=500"`.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from dataclasses import dataclass, field

from optui.errors import ConfigError

FAULT_KINDS = ("429", "5xx", "timeout", "token", "malformed", "slow", "truncated")


@dataclass
class FaultPlan:
    """Per-request fault rates (0..1, summing to at most 1) and the token rotation point."""

    rates: dict[str, float] = field(default_factory=dict)
    seed: int = 0
    slow_s: float = 1.0
    timeout_s: float = 10.0
    rotate_after: int | None = None
    counts: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        unknown = sorted(set(self.rates) - set(FAULT_KINDS))
        if unknown:
            raise ConfigError(f"unknown fault kind(s) {', '.join(unknown)}: use {', '.join(FAULT_KINDS)}")
        for kind, rate in self.rates.items():
            if not 0.0 <= rate <= 1.0:
                raise ConfigError(f"fault rate {kind}={rate}: a rate is between 0 and 1")
        if sum(self.rates.values()) > 1.0 + 1e-9:
            raise ConfigError(f"fault rates add up to {sum(self.rates.values()):.2f}: at most 1")
        self._rng = random.Random(self.seed)
        self._lock = threading.Lock()
        self._authorised = 0
        self.rotations = 0

    @classmethod
    def parse(cls, spec: str, seed: int = 0) -> FaultPlan:
        """`"429=0.05,5xx=0.05,slow=0.1,slow_s=2,timeout_s=5,rotate=500"`; ConfigError when bad."""
        rates: dict[str, float] = {}
        extra: dict[str, float] = {}
        for item in filter(None, (p.strip() for p in spec.split(","))):
            name, sep, value = item.partition("=")
            name = name.strip()
            try:
                number = float(value)
            except ValueError:
                raise ConfigError(f"--faults {item!r}: write KIND=RATE, e.g. 429=0.05") from None
            if not sep:
                raise ConfigError(f"--faults {item!r}: write KIND=RATE, e.g. 429=0.05")
            if name in ("slow_s", "timeout_s", "rotate"):
                extra[name] = number
            else:
                rates[name] = number
        rotate = extra.get("rotate")
        return cls(rates, seed=seed, slow_s=extra.get("slow_s", 1.0),
                   timeout_s=extra.get("timeout_s", 10.0),
                   rotate_after=int(rotate) if rotate else None)

    def pick(self) -> str | None:
        """The fault for the next request, or None (and counts what was drawn)."""
        with self._lock:
            draw = self._rng.random()
            edge = 0.0
            for kind in FAULT_KINDS:
                edge += self.rates.get(kind, 0.0)
                if draw < edge:
                    self.counts[kind] += 1
                    return kind
            return None

    def authorised(self) -> bool:
        """Count an authorised request; True exactly when it is the one that rotates the token."""
        if self.rotate_after is None:
            return False
        with self._lock:
            self._authorised += 1
            if self._authorised % self.rotate_after == 0:
                self.rotations += 1
                return True
            return False


def rotated_token(base: str, rotations: int) -> str:
    """The access token the simulator accepts after `rotations` rotations of `base`."""
    return base if rotations == 0 else f"{base}_r{rotations}"
