"""Ids of the series and frame layouts of a SQLite store, stored the first time one is written.

A series is (measurement, tags); a layout is the ordered series and fields of a frame, stored once
and referenced by id from every frame with that shape. Both are looked up in the in-memory
`Catalogue` first: FrozenTags by identity in one probe, plain tag dicts by their items.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from optui.storage.base import FrozenTags
from optui.storage.sqlite_frames import Catalogue, Layout

Refresh = Callable[[sqlite3.Connection], None]
"""Reloads the catalogue from the file (after an insert made a new id)."""


def series_ids(conn: sqlite3.Connection, cat: Catalogue, refresh: Refresh, mid: int,
               tags_list: Sequence[Mapping[str, str]]) -> list[int]:
    """The series id of each tag set of measurement `mid`, inserting new series."""
    fast = cat.fast.setdefault(mid, {})
    by_id = cat.by_id.setdefault(mid, {})
    # FrozenTags are immutable and kept alive in `cat.kept`, so their id() cannot be reused:
    # one C-level probe per point. Plain dicts take the slower items-tuple path below.
    out: list[int | None] = list(map(by_id.get, map(id, tags_list)))
    if None not in out:
        return out  # type: ignore[return-value]
    if len(cat.kept) > 100_000:
        cat.kept.clear()
        for ids in cat.by_id.values():
            ids.clear()
    for i, tags in enumerate(tags_list):
        if out[i] is not None:
            continue
        quick = tuple(tags.items())
        sid = fast.get(quick)
        if sid is None:
            key = tuple(sorted((str(k), str(v)) for k, v in tags.items()))
            sid = cat.series[mid].get(key)
            if sid is None:
                conn.execute(
                    "INSERT OR IGNORE INTO series (measurement_id, tags) VALUES (?, ?)",
                    (mid, json.dumps(dict(key), separators=(",", ":"))),
                )
                refresh(conn)
                sid = cat.series[mid][key]
            fast[quick] = sid
        if tags.__class__ is FrozenTags:
            cat.kept.append(tags)
            by_id[id(tags)] = sid
        out[i] = sid
    return out  # type: ignore[return-value]


def layout_id(conn: sqlite3.Connection, cat: Catalogue, refresh: Refresh, mid: int,
              sids: np.ndarray, fields: list[tuple[str, str]]) -> int:
    """The id of the layout (series, fields) of a frame, stored the first time it is seen: from
    the catalogue's bounded memo, else by its digest in the file (unique, indexed)."""
    sid_bytes = np.ascontiguousarray(sids, dtype=np.int64).tobytes()
    memo_key = (mid, sid_bytes, tuple(fields))
    lid = cat.layout_memo.get(memo_key)
    if lid is not None:
        cat.layout_memo.move_to_end(memo_key)
        return lid
    fields_json = json.dumps(fields, separators=(",", ":"))
    digest = hashlib.blake2b(
        sid_bytes + fields_json.encode() + str(mid).encode(), digest_size=16
    ).hexdigest()
    row = conn.execute("SELECT id FROM layouts WHERE digest = ?", (digest,)).fetchone()
    if row is None:
        cur = conn.execute(
            "INSERT INTO layouts (measurement_id, digest, sids, fields) VALUES (?, ?, ?, ?)",
            (mid, digest, sid_bytes, fields_json),
        )
        lid = int(cur.lastrowid or 0)
        refresh(conn)  # the new layout's field kinds
        # About to be written: kept as the most recently used layout.
        cat.keep_layout(Layout(lid, mid, np.frombuffer(sid_bytes, dtype=np.int64), list(fields)))
    else:
        lid = int(row[0])
    cat.remember_id(memo_key, lid)
    return lid
