"""WebSocket routes: /ws/snapshots, /ws/cash-flows, /ws/participants, /ws/alerts.

Each sends the feed's updates as JSON text messages as they happen (shapes in optui.api.hub);
what a client sends is ignored. The token check happens before the handshake (optui.api.auth):
header, `?token=`, or the subprotocols `optui, bearer.<token>` (answered with `optui`).
A client that falls behind is closed with 1013 "client too slow"; an unknown stream with 1008.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from fastapi import APIRouter, WebSocket
from starlette.concurrency import run_in_threadpool

from optui.api.hub import STREAMS, TOO_SLOW, Client, Hub, participants_message
from optui.api.state import ApiState

log = logging.getLogger("optui.api")

router = APIRouter()

CLOSE_WAIT_S = 30.0
"""How long a dropped client's close frame may wait behind what it has not read yet."""


async def _send_loop(websocket: WebSocket, client: Client) -> None:
    while True:
        text = await client.queue.get()
        await websocket.send_text(text)
        client.sent += 1


async def _receive_loop(websocket: WebSocket) -> None:
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return


@router.websocket("/ws/{stream}")
async def stream(websocket: WebSocket, stream: str, chain: bool = False) -> None:
    """Stream `stream`'s updates; `chain=true` on /ws/snapshots adds every leg."""
    state: ApiState = websocket.app.state.optui
    hub: Hub | None = state.hub
    await websocket.accept(subprotocol=websocket.scope.get("optui.subprotocol"))
    if stream not in STREAMS or hub is None:
        await websocket.close(1008, f"unknown stream {stream!r}: one of {', '.join(STREAMS)}"[:120])
        return
    client = hub.add(stream, chain and stream == "snapshots")
    if stream == "participants" and (stream, False) not in hub.last:
        text = await run_in_threadpool(participants_message, state)
        if text is not None:
            hub.last.setdefault((stream, False), text)
            with contextlib.suppress(asyncio.QueueFull):
                client.queue.put_nowait(text)
    client.sender = asyncio.create_task(_send_loop(websocket, client))
    receiver = asyncio.create_task(_receive_loop(websocket))
    try:
        await asyncio.wait({client.sender, receiver}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        hub.remove(client)
        for task in (client.sender, receiver):
            task.cancel()
            if task.done() and not task.cancelled():
                task.exception()  # retrieved: a send to a vanished client is no error here
    if client.dropped:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(websocket.close(TOO_SLOW, client.reason), CLOSE_WAIT_S)
        return
    if not receiver.cancelled() and receiver.done():
        return  # the client went away
    with contextlib.suppress(Exception):
        await websocket.close(1011, "stream ended")


__all__ = ["router"]
