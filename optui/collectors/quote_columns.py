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


def _build(paths: list[list[str]], values: list[Any]) -> dict:
    root: dict = {}
    for tokens, value in zip(paths, values, strict=True):
        node: Any = root
        last = len(tokens) - 1
        for depth, token in enumerate(tokens):
            if depth == last:
                if token.startswith("#"):
                    node.append(value)
                else:
                    node[token] = value
                break
            child_is_list = tokens[depth + 1].startswith("#")
            if token.startswith("#"):
                index = int(token[1:])
                if index == len(node):
                    node.append([] if child_is_list else {})
                node = node[index]
            else:
                child = node.get(token)
                if child is None:
                    child = node[token] = [] if child_is_list else {}
                node = child
    return root


def decode_quotes(payload: dict[str, Any]) -> dict[str, dict]:
    """The quote answer an `encode_quotes` payload holds. Raises KeyError, ValueError or
    TypeError on a malformed payload."""
    out: dict[str, dict] = {}
    for group in payload["groups"]:
        paths = [p.split("/") for p in group["paths"]]
        cols = group["cols"]
        for i, key in enumerate(group["rows"]):
            out[key] = _build(paths, [col[i] for col in cols])
    out.update(payload.get("raw") or {})
    return {key: out[key] for key in payload["order"]}
