"""Waiting for a dashboard in a Textual pilot: its feed loop is one long-lived worker, so
`app.workers.wait_for_complete()` would never return; `settle` waits until the loop has nothing
left to do and every message it posted was handled."""

from __future__ import annotations

import asyncio
from typing import Any

from textual.worker import WorkerState

from optui.screens.feed_loop import FeedLoop


def _loops(app: Any) -> list[FeedLoop]:
    return [s.loop for s in app.screen_stack if isinstance(getattr(s, "loop", None), FeedLoop)]


# The chains a key away are formatted ahead on every snapshot, speculatively: what is shown
# does not wait for them, and a collecting dashboard starts one each cycle.
IGNORED_GROUPS = ("feed", "dashboard-views")


def _others_running(app: Any) -> list[Any]:
    return [w for w in app.workers if w.group not in IGNORED_GROUPS
            and w.state in (WorkerState.PENDING, WorkerState.RUNNING)]


async def views_formatted(app: Any, pilot: Any) -> None:
    """Until the chains a key away, formatted ahead for the shown snapshot, are in the screen."""
    views = [w for w in app.workers if w.group == "dashboard-views"]
    if views:
        await app.workers.wait_for_complete(views)
    await pilot.pause()


async def settle(app: Any, pilot: Any, timeout_s: float = 60.0) -> None:
    """Until every dashboard's feed loop is idle, other workers are done, and that holds over
    two rounds of message handling. Raises TimeoutError after `timeout_s`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    quiet = 0
    while quiet < 2:
        if loop.time() > deadline:
            raise TimeoutError("the dashboard's feed loop never went idle")
        others = _others_running(app)
        if others:
            await app.workers.wait_for_complete(others)
        await pilot.pause()
        if all(lp.idle for lp in _loops(app)) and not _others_running(app):
            quiet += 1
        else:
            quiet = 0
            await asyncio.sleep(0.01)
