"""A columnar encoding of Kite quote answers for recordings: exact, and a third smaller once
compressed.

Kite's /quote `data` is a dict of instrument key to a nested dict of the same shape for every
instrument of a kind (an option's quote: scalars, `ohlc`, five levels of `depth`). Values of one
field sit far apart in row order (each quote ~700 bytes of JSON) and far closer column by
column, where the compressor finds their common digits. Encoding:

    {"order": [key, ...],                      # the answer's keys in its order
     "groups": [{"paths": [path, ...],         # leaf paths of one shape, in the quotes' order
                 "rows": [key, ...],           # the instruments of that shape
                 "cols": [[value per row], ...]}],
     "raw": {key: quote}}                      # quotes the columns cannot hold exactly

A path is the leaf's keys joined by "/" with list positions written "#N" ("depth/buy/#0/price").
A quote with an empty dict or list, a key holding "/" or starting with "#", or a list of
mixed items is kept whole in "raw". Decoding gives dicts equal to the encoded ones, key order
included.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any


class _NotColumnar(Exception):
    pass


def _leaves(value: Any, prefix: str, out_paths: list[str], out_values: list[Any]) -> None:
    if isinstance(value, dict):
        if not value:
            raise _NotColumnar
        for key, item in value.items():
            if not isinstance(key, str) or "/" in key or key.startswith("#"):
                raise _NotColumnar
            _leaves(item, f"{prefix}{key}/", out_paths, out_values)
    elif isinstance(value, list):
        if not value:
            raise _NotColumnar
        for i, item in enumerate(value):
            _leaves(item, f"{prefix}#{i}/", out_paths, out_values)
    else:
        out_paths.append(prefix[:-1])
        out_values.append(value)


def encode_quotes(data: dict[str, dict]) -> dict[str, Any]:
    """The columnar form of one quote answer (see the module docstring)."""
    groups: dict[tuple[str, ...], dict[str, Any]] = {}
    raw: dict[str, Any] = {}
    for key, quote in data.items():
        paths: list[str] = []
        values: list[Any] = []
        try:
            if not isinstance(quote, dict):
                raise _NotColumnar
            _leaves(quote, "", paths, values)
        except _NotColumnar:
            raw[key] = quote
            continue
        shape = tuple(paths)
        group = groups.get(shape)
        if group is None:
            group = groups[shape] = {"paths": paths, "rows": [], "cols": [[] for _ in paths]}
        group["rows"].append(key)
        for col, value in zip(group["cols"], values, strict=True):
            col.append(value)
    return {"order": list(data), "groups": list(groups.values()), "raw": raw}


def _shape_builder(paths: list[str]) -> Callable[[Sequence[Any]], dict]:
    """A function building one quote dict from its leaf values, for one shape of leaf paths:
    the nested literal is compiled once per shape (keys appear only as repr'd string literals),
    so a row costs one expression. Raises ValueError for paths no quote could have given."""
    root: dict[str, Any] = {}
    for i, path in enumerate(paths):
        node = root
        tokens = path.split("/")
        for token in tokens[:-1]:
            child = node.setdefault(token, {})
            if not isinstance(child, dict):
                raise ValueError(f"path {path!r} runs through a leaf")
            node = child
        if tokens[-1] in node:
            raise ValueError(f"path {path!r} given twice")
        node[tokens[-1]] = i

    def emit(node: dict[str, Any]) -> str:
        parts = []
        listed = all(k.startswith("#") for k in node)
        if listed and [k for k in node] != [f"#{n}" for n in range(len(node))]:
            raise ValueError("list positions out of order")
        for key, child in node.items():
            text = f"v[{child}]" if isinstance(child, int) else emit(child)
            parts.append(text if listed else f"{key!r}:{text}")
        return ("[" if listed else "{") + ",".join(parts) + ("]" if listed else "}")

    if any(k.startswith("#") for k in root):
        raise ValueError("a quote is a dict, not a list")
    code = compile(f"lambda v: {emit(root)}", "<quote shape>", "eval")
    return eval(code, {"__builtins__": {}})  # noqa: S307 - literal built from repr'd keys only


def decode_quotes(payload: dict[str, Any]) -> dict[str, dict]:
    """The quote answer an `encode_quotes` payload holds. Raises KeyError, ValueError or
    TypeError on a malformed payload."""
    out: dict[str, dict] = {}
    for group in payload["groups"]:
        build = _shape_builder([str(p) for p in group["paths"]])
        rows = group["rows"]
        values = list(zip(*group["cols"], strict=True)) if group["cols"] else [()] * len(rows)
        if len(values) != len(rows):
            raise ValueError("columns and rows differ in length")
        for key, row in zip(rows, values, strict=True):
            out[key] = build(row)
    out.update(payload.get("raw") or {})
    return {key: out[key] for key in payload["order"]}
