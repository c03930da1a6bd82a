"""The WebSocket hub: each cycle encoded once, handed to every client through its own bounded queue.

The hub thread (ApiState's) encodes a cycle's messages once per stream and posts them to the
server's event loop; there each client's queue takes the message without waiting. A client
whose queue is full (it fell `queue_size` updates behind: it stopped reading, or reads slower
than cycles come) is dropped at once: its sender stops and its socket is closed with 1013
"client too slow". Nothing on this path waits for a client, so a slow client never slows
collection or the other clients.

Streams and their messages (JSON text, times in IST):
- snapshots: {"type": "snapshot", as_of, source, source_badge, data_age_s, stale, indices:
  [every index with every bucket and this cycle's flow]}; with `?chain=true` each index also
  carries "chains": {bucket: rows of legs}.
- cash-flows: {"type": "cash_flows", as_of, unit, indices: {index: this cycle's flow}, positions:
  {index: largest OI changes}}.
- participants: {"type": "participants", ...the /api/analytics/participants body} when new
  end-of-day data was stored (and the newest one on connect).
- alerts: {"type": "alerts", as_of, alerts: [...]} for each cycle that raised any.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from optui.api.errors import dumps_text as dumps

if TYPE_CHECKING:
    from optui.api.state import ApiState
    from optui.feed.model import FeedCycle
    from optui.models import Snapshot

log = logging.getLogger("optui.api")

STREAMS: tuple[str, ...] = ("snapshots", "cash-flows", "participants", "alerts")
TOO_SLOW = 1013
"""Close code for a dropped client (1013: try again later)."""


@dataclass(eq=False)
class Client:
    """One WebSocket subscriber: its stream, variant (chain or not) and bounded queue."""

    stream: str
    chain: bool
    queue: asyncio.Queue[str]
    sender: asyncio.Task[None] | None = None
    dropped: bool = False
    reason: str = ""
    sent: int = field(default=0)


class Hub:
    """Fans encoded cycle messages out to WebSocket clients; see the module docstring."""

    def __init__(self, queue_size: int = 16) -> None:
        self.queue_size = max(1, queue_size)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.clients: dict[str, set[Client]] = {s: set() for s in STREAMS}
        self.last: dict[tuple[str, bool], str] = {}
        """The newest message per (stream, chain) for a client that connects between cycles."""
        self.dropped = 0
        self._want_chain = 0

    def attach_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """The server's event loop (called once it runs)."""
        self.loop = loop

    def client_count(self) -> int:
        return sum(len(c) for c in self.clients.values())

    # ---- the hub thread ------------------------------------------------------------------

    def publish(self, cycle: FeedCycle, snap: Snapshot, state: ApiState) -> None:
        """Encode one cycle's messages and post them to the loop (hub thread; never waits on
        a client)."""
        from optui.analytics.positions import top_oi_changes
        from optui.api.serialise import (
            MONEY_UNIT,
            alert_json,
            chain_json,
            flow_summary_json,
            index_detail,
            iso,
            ordered_buckets,
            ordered_indices,
            position_json,
        )

        keys = ordered_indices(snap)
        header = state.header()
        indices = [index_detail(k, snap.indices[k]) for k in keys]
        messages: list[tuple[str, bool, str]] = [
            ("snapshots", False, dumps({"type": "snapshot", **header, "indices": indices}))]
        if self._want_chain:
            with_chain = []
            for k, detail in zip(keys, indices, strict=True):
                isnap = snap.indices[k]
                chains = {b: chain_json(k, isnap, b)["rows"] for b in ordered_buckets(isnap.overview)}
                with_chain.append({**detail, "chains": chains})
            messages.append(("snapshots", True, dumps({"type": "snapshot", **header, "indices": with_chain})))
        top_n = state.settings.positions.top_n
        messages.append(("cash-flows", False, dumps({
            "type": "cash_flows", "as_of": iso(snap.timestamp), "unit": MONEY_UNIT,
            "indices": {k: flow_summary_json(snap.indices[k].overview.flow) for k in keys},
            "positions": {k: [position_json(i + 1, leg) for i, leg in
                              enumerate(top_oi_changes(snap.indices[k].legs, top_n))] for k in keys},
        })))
        if snap.alerts:
            messages.append(("alerts", False, dumps({
                "type": "alerts", "as_of": iso(snap.timestamp),
                "alerts": [alert_json(a) for a in snap.alerts]})))
        if cycle.participants_changed:
            body = participants_message(state)
            if body is not None:
                messages.append(("participants", False, body))
        for stream, chain, text in messages:
            if stream != "alerts":
                self.last[(stream, chain)] = text
        loop = self.loop
        if loop is None or loop.is_closed():
            return
        try:
            loop.call_soon_threadsafe(self._fanout, messages)
        except RuntimeError:  # the loop closed meanwhile: the server is stopping
            pass

    # ---- the event loop ------------------------------------------------------------------

    def _fanout(self, messages: list[tuple[str, bool, str]]) -> None:
        for stream, chain, text in messages:
            for client in list(self.clients[stream]):
                if client.chain != chain or client.dropped:
                    continue
                try:
                    client.queue.put_nowait(text)
                except asyncio.QueueFull:
                    self.drop(client, f"client too slow: {self.queue_size} updates behind")

    def add(self, stream: str, chain: bool = False) -> Client:
        """A new subscriber (on the loop); its queue starts with the stream's newest message."""
        client = Client(stream, chain, asyncio.Queue(self.queue_size))
        last = self.last.get((stream, chain))
        if last is not None:
            client.queue.put_nowait(last)
        self.clients[stream].add(client)
        if chain:
            self._want_chain += 1
        return client

    def remove(self, client: Client) -> None:
        if client in self.clients[client.stream]:
            self.clients[client.stream].discard(client)
            if client.chain:
                self._want_chain -= 1

    def drop(self, client: Client, reason: str) -> None:
        """Stop sending to a client that fell behind; its handler closes it with TOO_SLOW."""
        if client.dropped:
            return
        client.dropped = True
        client.reason = reason
        self.dropped += 1
        self.remove(client)
        log.warning("WebSocket client on /ws/%s dropped: %s", client.stream, reason)
        if client.sender is not None:
            client.sender.cancel()


def participants_message(state: ApiState) -> str | None:
    """The participants stream's message: the newest stored trade date, or None without one
    (or without a store). Reads the store (hub thread, or a worker thread on connect)."""
    from optui.errors import OptuiError
    from optui.storage.participants_store import stored_day

    if state.store is None:
        return None
    try:
        day = stored_day(state.store, state.calendar())
    except OptuiError as exc:
        log.warning("participants not streamed: %s", exc)
        return None
    if day is None:
        return None
    from optui.api.serialise import MONEY_UNIT, missing_note, plain

    body = plain(day.as_json())
    return dumps({"type": "participants", **body, "end_of_day": True,
                  "unit": {"positions": "contracts", "cash": MONEY_UNIT},
                  **missing_note(body["trade_date"], day.missing)})


__all__ = ["STREAMS", "TOO_SLOW", "Client", "Hub", "participants_message"]
