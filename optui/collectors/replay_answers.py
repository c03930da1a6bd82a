"""What a replayed quote call is answered with: each key's newest recorded answer.

A polled answer is kept as the Kite quote dict the recording holds; a streamed one as the tick
book's rows the recorded call was answered from, kept as they stood at that call
(optui.collectors.tick_book.TickBook.frozen) while the replay's book moves on with later ticks.
A call is answered as dicts (`quote`, what `MarketSource.quote_batch` gives) or as columns
(`table`, what the engine's leg calls take): a streamed answer straight from the kept rows
(`TickBook.quote_table`, no dict per instrument, as the live streaming source answers whole
streamed batches), a polled one through `quote_from_kite`; both give the same values field for
field (optui.collectors.quote_table), so the replay stores what the live run stored.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from optui.collectors.quote_table import FLOAT_COLUMNS, QuoteTable
from optui.collectors.source import quote_from_kite
from optui.collectors.tick_book import TickBook


class RecordedAnswers:
    """Each key's newest recorded answer (see the module); a key is held once, polled or
    streamed."""

    def __init__(self) -> None:
        self._polled: dict[str, dict] = {}
        self._booked: dict[str, tuple[TickBook, int]] = {}

    def record(self, polled: dict[str, dict], booked: dict[str, tuple[TickBook, int]]
               ) -> list[str]:
        """One recorded call's answers: `polled` (key -> Kite quote) and `booked` (key -> (kept
        book rows, instrument token)); a key in both is the book's (as live: the ticks answer
        first). Returns the keys answered, polled first."""
        answered = [k for k in polled if k not in booked]
        for key in answered:
            self._polled[key] = polled[key]
            self._booked.pop(key, None)
        for key in booked:
            self._polled.pop(key, None)
        self._booked.update(booked)
        return [*answered, *booked]

    def quote(self, key: str) -> dict | None:
        """The newest answer for `key` as a Kite quote, None when it has none."""
        polled = self._polled.get(key)
        if polled is not None:
            return polled
        booked = self._booked.get(key)
        return None if booked is None else booked[0].quote(booked[1])

    def table(self, keys: Sequence[str]) -> QuoteTable:
        """The newest answers of `keys` as a QuoteTable (a key without one: no quote)."""
        keys = list(keys)
        booked = [self._booked.get(k) for k in keys]
        first = booked[0] if booked else None
        if first is not None and all(b is not None and b[0] is first[0] for b in booked):
            return first[0].quote_table(keys, [b[1] for b in booked])  # type: ignore[index]
        table = QuoteTable.empty(keys)
        groups: dict[int, tuple[TickBook, list[int]]] = {}
        polled: list[int] = []
        for i, (key, held) in enumerate(zip(keys, booked, strict=True)):
            if key in self._polled:
                polled.append(i)
            elif held is not None:
                groups.setdefault(id(held[0]), (held[0], []))[1].append(i)
        if polled:
            sub = [keys[i] for i in polled]
            _put(table, polled, QuoteTable.from_quotes(
                sub, {k: quote_from_kite(self._polled[k]) for k in sub}))
        for kept, rows in groups.values():
            _put(table, rows, kept.quote_table([keys[i] for i in rows],
                                               [booked[i][1] for i in rows]))  # type: ignore[index]
        return table


def kept_rows(book: TickBook, stream: Sequence[str], tokens: Sequence[int]
              ) -> dict[str, tuple[TickBook, int]]:
    """The answers a streamed call took from `book` for its `stream` keys (their instrument
    `tokens`): those that ticked, each as (the book's rows as they stand now, token)."""
    kept = book.frozen(tokens)
    ticked = (kept.slots(tokens) >= 0).tolist()
    return {key: (kept, tok) for key, tok, has in zip(stream, tokens, ticked, strict=True) if has}


def _put(table: QuoteTable, rows: list[int], part: QuoteTable) -> None:
    """Write the rows of `part` (in order) into `table` at positions `rows`."""
    at = np.asarray(rows, dtype=np.intp)
    table.has[at] = part.has
    table.instrument_token[at] = part.instrument_token
    for name in FLOAT_COLUMNS:
        getattr(table, name)[at] = getattr(part, name)


__all__ = ["RecordedAnswers", "kept_rows"]
