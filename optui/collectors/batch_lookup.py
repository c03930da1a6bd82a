"""The per-batch lookup cache a StreamingSource keeps between cycles.

Answering a quote batch whole from the tick book (`StreamingSource.quote_tables`) needs, per key,
its instrument token, the mode it is subscribed in, whether it is subscribed, its connection and
its book row. The engine asks the same batches cycle after cycle, so `BatchLookups` keeps each
batch position's lookups (a `BatchLookup`) and rebuilds one only when its keys changed or the
generation counter moved: the source bumps it (`invalidate`) whenever the subscriptions, the
connections' instruments or the instrument tokens may have changed. Book rows of tokens not yet
ticked (-1) are looked up again on each use until they tick. No I/O; the cache is read and built on
the ticker's event-loop thread, the counter bumped from any thread (a bump made while a lookup
builds is seen on the next call).
"""

from __future__ import annotations

from collections.abc import Callable, Container, Mapping, Sequence
from dataclasses import dataclass
from itertools import repeat
from typing import TYPE_CHECKING

import numpy as np

from optui.tick_packets import MODE_NAMES

if TYPE_CHECKING:
    from optui.collectors.tick_book import TickBook
    from optui.collectors.ticker_source import TickerSource

_MODE_CODE = {name: code for code, name in enumerate(MODE_NAMES)}  # MODE_NAMES.index


def mode_codes(modes: Mapping[int, str], tokens: Sequence[int]) -> np.ndarray:
    """The MODE_* code (int8) each token is subscribed in per `modes` (token -> Kite mode name;
    ltp when not subscribed)."""
    n = len(tokens)
    return np.fromiter(map(_MODE_CODE.__getitem__, map(modes.get, tokens, repeat("ltp", n))),
                       dtype=np.int8, count=n)


def fresh_shards(ticker: TickerSource | None, now_s: float, max_age_s: float) -> np.ndarray:
    """Per connection index + 1 (0: no connection; bool): whether it is up and its newest tick
    is within `max_age_s` exchange seconds of `now_s`."""
    shards = ticker.shards if ticker is not None else []
    fresh = np.zeros(len(shards) + 1, dtype=bool)
    for s in shards:
        fresh[s.index + 1] = (s.ws is not None and s.last_exchange_time is not None
                              and abs(now_s - s.last_exchange_time) <= max_age_s)
    return fresh


@dataclass(slots=True)
class BatchLookup:
    """What answering one batch whole from the book looks up per key: instrument tokens (as a
    list and int64), subscribed mode codes, whether each is subscribed, its connection index
    + 1 (0: none), and its book row (-1: no tick yet). `gen`: the generation it was built in."""

    gen: int
    keys: list[str]
    token_list: list[int]
    tokens: np.ndarray
    modes: np.ndarray
    subscribed: np.ndarray
    shard: np.ndarray
    slots: np.ndarray

    def all_live(self, fresh: np.ndarray, book: TickBook) -> bool:
        """Whether the ticks answer every key of the batch: all subscribed, on connections
        `fresh` (from `fresh_shards`), ticked in their subscribed mode."""
        if not (self.subscribed.all() and fresh[self.shard].all()):
            return False
        slots = self.slots
        if slots.size and slots.min() < 0:
            return False
        return bool((book.live_mode[slots] >= self.modes).all())


class BatchLookups:
    """Each batch position's `BatchLookup`, kept while its keys stay the same and the
    generation counter (`gen`, bumped by `invalidate`) has not moved."""

    def __init__(self) -> None:
        self._by_position: dict[int, BatchLookup] = {}
        self.gen = 0

    def invalidate(self) -> None:
        """The subscriptions, connections or instrument tokens may have changed: every kept
        lookup is rebuilt on its next use."""
        self.gen += 1

    def lookup(self, at: int, keys: list[str], key_token: Mapping[str, int],
               streamed: Container[int], shard_of: Mapping[int, int],
               codes: Callable[[Sequence[int]], np.ndarray],
               book: TickBook) -> BatchLookup | None:
        """The lookups of batch position `at`: `key_token` (key -> instrument token),
        `streamed` (tokens subscribed now), `shard_of` (token -> connection index), `codes`
        (tokens -> subscribed MODE_* codes) and `book` are the source's state. None when a key
        has no instrument token (it is polled)."""
        look = self._by_position.get(at)
        if look is not None and look.gen == self.gen and look.keys == keys:
            if look.slots.size and look.slots.min() < 0:  # a token the book had not met yet
                look.slots = book.slots(look.tokens)
            return look
        gen = self.gen  # read first: a change made while this builds is seen next time
        n = len(keys)
        token_list = list(map(key_token.get, keys, repeat(-1, n)))
        if -1 in token_list:
            return None
        tokens = np.fromiter(token_list, dtype=np.int64, count=n)
        subscribed = np.fromiter(map(streamed.__contains__, token_list), dtype=bool, count=n)
        shard = np.fromiter(map(shard_of.get, token_list, repeat(-1, n)),
                            dtype=np.int64, count=n) + 1
        look = BatchLookup(gen, keys, token_list, tokens, codes(token_list), subscribed, shard,
                           book.slots(tokens))
        self._by_position[at] = look
        return look


__all__ = ["BatchLookup", "BatchLookups", "fresh_shards", "mode_codes"]
