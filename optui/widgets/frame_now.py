"""Writing the frame of a handler's changes before the handler returns.

Textual draws a widget's refresh after a relay of messages: the widget's own message queue goes
idle and tells the screen (an Update), the screen's queue goes idle and resumes its update timer,
and the timer, ticking on a 60 Hz grid, draws (Screen._on_timer_update). Each hop is a turn of
the event loop, and each turn hands the GIL to any other thread that wants it (the feed loop's
worker, a chain formatted ahead, the ticker): on a shared machine (load 10) a cycle's frame
waited 10-40 ms that way for ~5 ms of drawing (benchmarks/ui_tail_trace.py), and `call_after_refresh` callbacks (meant to run once the frame is out)
ran on the screen's first idle, before the widgets had reported their refreshes, so they
contended with the very frame they were meant to follow.

`draw_now(screen)` does the relay's work at once: it hands the screen every refreshed widget
(as Widget._check_refresh does) and runs the screen's update (Screen._on_timer_update) now. It
draws only what Textual would draw (the same compositor update from the same dirty regions;
the relay arriving later finds nothing left to draw) and leaves anything else to Textual: a
layout, a recompose, new styles, a batch in progress or another screen on top. It reads
Textual's widget and screen internals (checked against Textual 8.2); should they differ, it
draws nothing and Textual's own relay draws the frame.

`ScrollsDrawnNow` gives a scroll view's scroll keys the same, and with the app's animations off
sets the scroll at once: Textual otherwise hands even an unanimated scroll to its animator,
whose next 60 Hz tick sets it.
"""

from __future__ import annotations

import logging
from typing import Any

from textual.screen import Screen
from textual.scroll_view import ScrollView
from textual.widget import Widget

log = logging.getLogger(__name__)

_drawing = True
"""False once Textual's internals were found to differ: frames are left to Textual."""

counts = {"drawn": 0, "left": 0}
"""Calls that wrote the frame, and calls that left changes to Textual's relay (a layout or new
styles due, a batch, another screen on top): the benchmarks read them."""


def draw_now(screen: Screen) -> bool:
    """Write the frame of the refreshes and scrolls asked of `screen`'s widgets so far; returns
    whether it was written here (False: left to Textual's own relay, see the module docstring).
    """
    global _drawing
    if not _drawing:
        return False
    try:
        app = screen.app
        if (app._batch_count or app.is_inline or not screen.is_current
                or screen._layout_required or screen._recompose_required
                or screen._layout_widgets):
            counts["left"] += 1
            return False
        changed: list[Widget] = []
        for widget in screen.walk_children(Widget, with_self=False):
            if widget._layout_required or widget._refresh_styles_required \
                    or widget._recompose_required or not widget.is_mounted:
                counts["left"] += 1
                return False  # a layout, new styles or a mount: Textual does them in order
            if (widget._repaint_required or widget._scroll_required) and not widget._closing:
                changed.append(widget)
        if not (changed or screen._dirty_widgets or screen._repaint_required
                or screen._scroll_required):
            return False
        for widget in changed:  # as Widget._check_refresh hands them to the screen
            if widget._scroll_required:
                widget._scroll_required = False
                if widget.styles.keyline[0] != "none":
                    widget._set_dirty()
                screen._scroll_required = True
            if widget._repaint_required:
                widget._repaint_required = False
                if widget.display:
                    screen._dirty_widgets.add(widget)
        screen._on_timer_update()
        counts["drawn"] += 1
    except AttributeError as exc:  # a Textual whose internals differ: its relay draws
        _drawing = False
        screen.check_idle()  # what was handed to the screen is drawn by its relay
        log.warning("frames are drawn on Textual's schedule: its screen differs from the one "
                    "the dashboard's immediate frames were written for (%s)", exc)
        return False
    return True


def frame_pending(screen: Screen) -> bool:
    """Whether `screen` or one of its widgets still has a refresh, layout or scroll to draw
    (Textual's internals as draw_now reads them; False when they differ)."""
    try:
        if (screen._layout_required or screen._dirty_widgets or screen._repaint_required
                or screen._scroll_required):
            return True
        return any(w._repaint_required or w._layout_required or w._scroll_required
                   for w in screen.walk_children(Widget, with_self=False) if w.display)
    except AttributeError:
        return False


def after_frame(screen: Screen, callback: Any, *args: Any, tries: int = 25) -> None:
    """Call `callback(*args)` on the event loop once the frame of what was asked of `screen`
    so far is written: `call_after_refresh` may run on the screen's first idle, before its
    widgets handed it their refreshes (see the module docstring), so while a refresh is still
    pending it checks again every 10 ms, at most `tries` times, then calls anyway."""
    def check(left: int) -> None:
        if left > 0 and screen.is_current and frame_pending(screen):
            screen.set_timer(0.01, lambda: check(left - 1))
        else:
            callback(*args)

    screen.call_after_refresh(check, tries)


class ScrollsDrawnNow(ScrollView):
    """A scroll view whose scroll keys write their frame in their action (draw_now); with the
    app's animations off, a scroll is set at once rather than by the animator's next 60 Hz tick
    (which jumps to the same offset then)."""

    def _scroll_to(self, x: float | None = None, y: float | None = None, *,
                   animate: bool = True, **kwargs: Any) -> bool:
        """Textual's scroll; with the app's animations off, set at once rather than by the
        animator's next 60 Hz tick (which jumps to the same offset then), so a scroll key's
        frame is written by its action."""
        if animate and self.app.animation_level == "none":
            animate = False
        return super()._scroll_to(x, y, animate=animate, **kwargs)

    def action_scroll_up(self) -> None:
        super().action_scroll_up()
        draw_now(self.screen)

    def action_scroll_down(self) -> None:
        super().action_scroll_down()
        draw_now(self.screen)

    def action_scroll_left(self) -> None:
        super().action_scroll_left()
        draw_now(self.screen)

    def action_scroll_right(self) -> None:
        super().action_scroll_right()
        draw_now(self.screen)

    def action_page_up(self) -> None:
        super().action_page_up()
        draw_now(self.screen)

    def action_page_down(self) -> None:
        super().action_page_down()
        draw_now(self.screen)

    def action_scroll_home(self) -> None:
        super().action_scroll_home()
        draw_now(self.screen)

    def action_scroll_end(self) -> None:
        super().action_scroll_end()
        draw_now(self.screen)


__all__ = ["ScrollsDrawnNow", "after_frame", "counts", "draw_now", "frame_pending"]
