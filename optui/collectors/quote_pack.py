"""Quote answers packed for recordings: binary columns, each a delta against the same column of
the previous answer for the same instruments.

Kite's /quote answers for one batch of instruments, asked again a few seconds later, differ in a
few digits of a few fields. `optui.collectors.quote_columns` lays an answer out column by column;
here every column of numbers becomes a vector of integers (prices in paise when that is exact)
minus the vector the previous packed answer of the same group of instruments held, zigzag-coded
and split into byte planes, so the compressor sees long runs of zeros. Packing is exact: unpacking
gives dicts equal to the packed ones (key order, ints and floats kept apart).

Payload: ``u32`` length of a JSON header, the header, then the planes of every numeric column in
header order (8 planes of n bytes for n rows). Header::

    {"keys": [...], "order": [...] | null (= keys), "raw": {key: quote},
     "groups": [{"paths": [...], "rows": [...] | null (= order),
                 "kinds": ["i" | "c" | "x" | "m" | "j", ...],   # per path
                 "delta": [0 | 1, ...], "json": {"N": [values]}, "ints": {"N": [row, ...]},
                 "steps": {"N": common factor}}]}

Kinds: ``i`` ints as they are; ``c`` floats that are exact in paise (value x 100); ``m`` a mix
of ints and such floats (``ints`` lists the rows that were ints); ``x`` other floats, by their
IEEE bits; ``j`` anything else, kept in the header as JSON. A column of integers or paise (as it is or
as a change) is divided by its values' common factor above 1 (whole lots, whole ticks). A packed answer refers to the answer
before it, so it is read in order from the start of its Zstandard frame (`PackState` per frame).
"""

from __future__ import annotations

import json
import struct
from typing import Any

import numpy as np

from optui.collectors.quote_columns import encode_quotes

_LEN = struct.Struct("<I")
_EXACT = 2.0**52 / 100.0  # |value| below this keeps value x 100 exact in a float
PLANES = 8


class PackError(ValueError):
    """A packed quote payload that does not unpack (corrupt, or its previous answer missing)."""


class PackState:
    """The columns of the answers packed (or unpacked) so far in one frame, by group and path."""

    def __init__(self) -> None:
        self.columns: dict[tuple[tuple[str, ...], str], tuple[str, np.ndarray]] = {}

    def clear(self) -> None:
        """Forget everything (a new frame begins)."""
        self.columns.clear()


def _zigzag(d: np.ndarray) -> np.ndarray:
    return ((d << np.int64(1)) ^ (d >> np.int64(63))).view(np.uint64)


def _unzigzag(z: np.ndarray) -> np.ndarray:
    return ((z >> np.uint64(1)) ^ (np.uint64(0) - (z & np.uint64(1)))).view(np.int64)


def _cost(z: np.ndarray) -> int:
    """About the bits a zigzag vector needs: its values' bit lengths, summed."""
    return int(np.frexp(z.astype(np.float64))[1].sum())


def _classify(col: list[Any]) -> tuple[str, np.ndarray | None, list[int]]:
    """(kind, integer vector or None for JSON, rows that were ints in a mix)."""
    types = {type(v) for v in col}
    if types == {int}:
        try:
            return "i", np.array(col, dtype=np.int64), []
        except OverflowError:
            return "j", None, []
    if types <= {int, float} and float in types:
        a = np.array(col, dtype=np.float64)
        with np.errstate(invalid="ignore", over="ignore"):
            scaled = np.rint(a * 100.0)
            exact = bool(np.all(np.abs(a) < _EXACT) and np.array_equal(scaled / 100.0, a)
                         and not np.any(np.signbit(a) & (a == 0.0)))
        if exact:
            ints = [i for i, v in enumerate(col) if type(v) is int] if int in types else []
            return ("m" if ints else "c"), scaled.astype(np.int64), ints
        if types == {float}:
            return "x", a.view(np.int64).copy(), []
    return "j", None, []


def pack_quotes(keys: list[str], data: dict[str, dict], state: PackState) -> bytes:
    """The packed payload of one quote call (`keys` asked, Kite's `data` answer), against and
    then into `state`."""
    cols = encode_quotes(data)
    order = cols["order"]
    groups = []
    planes: list[bytes] = []
    for g in cols["groups"]:
        rows = tuple(g["rows"])
        kinds, delta, json_cols, ints_of, steps = [], [], {}, {}, {}
        for i, (path, col) in enumerate(zip(g["paths"], g["cols"], strict=True)):
            kind, vec, ints = _classify(col)
            kinds.append(kind)
            if vec is None:
                json_cols[str(i)] = col
                delta.append(0)
                continue
            if ints:
                ints_of[str(i)] = ints
            ref = state.columns.get((rows, path))
            v = vec
            use = False
            if ref is not None and ref[0] == kind and ref[1].size == vec.size:
                with np.errstate(over="ignore"):
                    d = vec - ref[1]
                # A column that moves a little is cheaper as a change; one redrawn at random
                # (book quantities) is cheaper as it is.
                use = _cost(_zigzag(d)) <= _cost(_zigzag(vec))
                if use:
                    v = d
            # Quantities are whole lots: store them divided by the column's common factor.
            step = int(np.gcd.reduce(v)) if v.size and kind != "x" else 0
            if step > 1:
                v = v // step
                steps[str(i)] = step
            z = _zigzag(v)
            delta.append(int(use))
            state.columns[(rows, path)] = (kind, vec)
            planes.append(np.ascontiguousarray(z.view(np.uint8).reshape(-1, PLANES).T).tobytes())
        groups.append({"paths": g["paths"], "rows": None if g["rows"] == order else g["rows"],
                       "kinds": kinds, "delta": delta, "json": json_cols, "ints": ints_of,
                       "steps": steps})
    header = {"keys": list(keys), "order": None if order == list(keys) else order,
              "raw": cols["raw"], "groups": groups}
    head = json.dumps(header, separators=(",", ":"), default=_jsonable).encode()
    return _LEN.pack(len(head)) + head + b"".join(planes)


def _jsonable(value: object) -> str:
    from optui.collectors.record_format import _jsonable as recorded

    return recorded(value)


def header_of(payload: bytes) -> dict[str, Any]:
    """The JSON header of a packed payload (keys asked, groups). Raises PackError."""
    try:
        (size,) = _LEN.unpack_from(payload, 0)
        head = json.loads(payload[_LEN.size:_LEN.size + size])
    except (struct.error, ValueError) as exc:
        raise PackError(f"packed quote header does not decode: {exc}") from None
    if not isinstance(head, dict):
        raise PackError("packed quote header is not an object")
    return head


def unpack_columns(payload: bytes, state: PackState) -> dict[str, Any]:
    """The `optui.collectors.quote_columns` form (plus "keys") of a packed payload, against and
    then into `state`. Raises PackError when it does not unpack."""
    head = header_of(payload)
    (size,) = _LEN.unpack_from(payload, 0)
    pos = _LEN.size + size
    blob = memoryview(payload)
    try:
        keys = head["keys"]
        order = head["order"] if head["order"] is not None else keys
        groups = []
        for g in head["groups"]:
            rows_list = g["rows"] if g["rows"] is not None else order
            rows, n = tuple(rows_list), len(rows_list)
            cols: list[list[Any]] = []
            for i, (path, kind) in enumerate(zip(g["paths"], g["kinds"], strict=True)):
                if kind == "j":
                    cols.append(list(g["json"][str(i)]))
                    continue
                end = pos + PLANES * n
                if end > len(payload):
                    raise PackError("packed quote columns cut short")
                z = np.frombuffer(blob[pos:end], dtype=np.uint8).reshape(PLANES, n).T.copy()
                pos = end
                vec = _unzigzag(z.view(np.uint64).reshape(n))
                step = int(g.get("steps", {}).get(str(i), 1))
                if step != 1:
                    vec = vec * step
                if g["delta"][i]:
                    ref = state.columns.get((rows, path))
                    if ref is None or ref[0] != kind or ref[1].size != n:
                        raise PackError(f"packed quote column {path!r} refers to an answer "
                                        "not in this frame")
                    with np.errstate(over="ignore"):
                        vec = vec + ref[1]
                state.columns[(rows, path)] = (kind, vec)
                cols.append(_values(kind, vec, g["ints"].get(str(i), ())))
            groups.append({"paths": g["paths"], "rows": rows_list, "cols": cols})
        return {"keys": keys, "order": order, "groups": groups, "raw": head.get("raw") or {}}
    except (KeyError, TypeError, IndexError, AttributeError, ValueError) as exc:
        if isinstance(exc, PackError):
            raise
        raise PackError(f"packed quote payload does not decode: {exc!r}") from None


def _values(kind: str, vec: np.ndarray, ints: Any) -> list[Any]:
    if kind == "i":
        return vec.tolist()
    if kind == "x":
        return vec.view(np.float64).tolist()
    out = (vec / 100.0).tolist()
    for row in ints:
        out[row] = int(vec[row]) // 100
    return out
