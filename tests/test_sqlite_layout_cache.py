"""The SQLite store's frame layouts stay within their cache however many a day makes, and frames
of evicted layouts read and merge from the file exactly as before."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from optui.storage.points import Point
from optui.storage.sqlite_frames import LAYOUT_IDS_KEPT
from optui.storage.sqlite_store import SQLiteStore
from optui.timeutil import UTC

T0 = datetime(2026, 11, 24, 3, 45, tzinfo=UTC)  # 09:15 IST
KEPT = 16  # whole layouts kept in the test (LAYOUTS_KEPT in the product): the rule, not the size
FRAMES = KEPT * 3 + 7  # each with a layout of its own


def _strikes(i: int) -> list[int]:
    """The strikes written at frame `i`: a window of 5 that moves by one strike every frame
    (as the strikes around the money move through a day), plus one only frame 0 has."""
    return [*range(i, i + 5), *([-1] if i == 0 else [])]


def _points(i: int) -> list[Point]:
    at = T0 + timedelta(seconds=30 * i)
    return [Point("atm_options", {"index": "NIFTY", "strike": str(k)},
                  {"last_price": 100.0 + i + k / 8, "oi": 1000 + i * 10 + k, "flags": f"f{i}.{k}"}, at)
            for k in _strikes(i)]


@pytest.mark.unit
@pytest.mark.parametrize("members", [None, 8], ids=["index", "index-evicted"])
def test_the_layout_cache_stays_within_its_cap_and_evicted_layouts_read_from_the_file(
        tmp_path: Path, members: int | None) -> None:
    # `members` None: every layout's series stay in the catalogue's index (a day's worth);
    # 8: most are evicted from it too, and reads find layouts from the frames of their range.
    path = tmp_path / "optui.db"
    store = SQLiteStore(path)
    cat = store._cat
    cat.layouts_kept = KEPT
    if members is not None:
        cat.members_kept = members
    try:
        for i in range(FRAMES):
            store.write(_points(i))
        assert len(cat.layouts) <= KEPT and len(cat.layout_memo) <= LAYOUT_IDS_KEPT
        assert len(cat.members) <= (members or FRAMES)
        assert bool(cat.partial) == (members is not None)
        assert cat.last_layout == FRAMES  # every frame made a layout of its own
        before = cat.layout_reads
        # The whole day back, every value exact (frames of evicted layouts read theirs from the file).
        rows = store.query("atm_options", T0, T0 + timedelta(days=1))
        assert len(rows) == sum(len(_strikes(i)) for i in range(FRAMES))
        want = {(p.time_ns, p.tags["strike"]): p.fields for i in range(FRAMES) for p in _points(i)}
        got = {(int(r.time.timestamp() * 1e9), r.tags["strike"]): r.fields for r in rows}
        assert got == want
        assert cat.layout_reads > before and len(cat.layouts) <= KEPT
        # A series written only in the first frame (its layout long evicted): latest and a tag filter.
        first = store.latest("atm_options", {"strike": "-1"})
        assert first is not None and first.fields == {"last_price": 100.0 - 1 / 8, "oi": 999, "flags": "f0.-1"}
        assert first.time == T0
        # Aggregates over frames of evicted layouts: the sum of strike 4's OI over the frames holding it.
        agg = store.aggregate("atm_options", ["oi"], T0, T0 + timedelta(days=1), "1d",
                              {"strike": "4"}, "sum")
        assert [r.fields["oi"] for r in agg] == [sum(1000 + i * 10 + 4 for i in range(5))]
        # Merging into the first frame (its layout evicted): the new field joins, the rest stays.
        store.write([Point("atm_options", {"index": "NIFTY", "strike": "2"}, {"iv": 12.5}, T0)])
        merged = {r.tags["strike"]: r.fields for r in store.query("atm_options", T0, T0 + timedelta(seconds=1))}
        assert merged["2"] == {"last_price": 100.25, "oi": 1002, "flags": "f0.2", "iv": 12.5}
        assert merged["-1"]["oi"] == 999
        assert len(cat.layouts) <= KEPT and len(cat.members) <= (members or FRAMES + 1)
    finally:
        store.close()
    # Reopened, the same file reads the same rows, with nothing kept but what the reads used.
    again = SQLiteStore(path)
    try:
        assert len(again.query("atm_options", T0, T0 + timedelta(days=1))) == len(rows)
        from optui.storage.sqlite_frames import LAYOUTS_KEPT

        assert len(again._cat.layouts) <= LAYOUTS_KEPT
    finally:
        again.close()
