"""Replay controls on the dashboard: pause (space), step (.), speed (+/-), jump to a time (j).

The keys act only when the feed is a replay (optui.feed.replay.ReplayFeed); each becomes a
control request to the screen's feed loop, which applies it between cycles.
"""

from __future__ import annotations

import re
from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label

from optui.feed.replay import SPEEDS
from optui.screens.dashboard_view import DashboardView

_HHMM = re.compile(r"^\s*([01]?\d|2[0-3]):([0-5]\d)\s*$")

REPLAY_BINDINGS = [
    Binding("space", "replay_pause", "Pause", id="dashboard.replay_pause",
            tooltip="Pause or resume the replay"),
    Binding("full_stop", "replay_step", "Step", id="dashboard.replay_step",
            tooltip="Replay one cycle"),
    Binding("plus,equals_sign", "replay_speed(1)", "Faster", id="dashboard.replay_faster",
            tooltip=f"Replay faster ({SPEEDS[0]:g}x up to {SPEEDS[-1]:g}x)"),
    Binding("minus", "replay_speed(-1)", "Slower", id="dashboard.replay_slower",
            tooltip="Replay slower"),
    Binding("j", "replay_jump", "Jump", id="dashboard.replay_jump",
            tooltip="Jump to a time of the replayed day (HH:MM IST)"),
]
"""Shown in the footer only while the dashboard replays."""


def parse_hhmm(text: str) -> str | None:
    """'9:20' or '09:20' as 'HH:MM'; None when it is not a time of day."""
    match = _HHMM.match(text)
    return f"{int(match.group(1)):02d}:{match.group(2)}" if match else None


class JumpPrompt(ModalScreen[str | None]):
    """Asks for HH:MM (IST); dismisses with 'HH:MM', or None on Escape."""

    DEFAULT_CSS = """
    JumpPrompt { align: center middle; }
    JumpPrompt > Vertical { width: 44; height: auto; border: round $accent; padding: 0 1;
                            background: $panel; }
    JumpPrompt #jump-error { color: $error; height: auto; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Jump to (HH:MM IST, the replayed day):")
            yield Input(placeholder="09:20", id="jump-time")
            yield Label("", id="jump-error")

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        hhmm = parse_hhmm(event.value)
        if hhmm is None:
            self.query_one("#jump-error", Label).update(f"{event.value!r}: use HH:MM, e.g. 09:20")
            return
        self.dismiss(hhmm)

    def action_cancel(self) -> None:
        self.dismiss(None)


BEHIND_RATIO = 0.8
"""A replay whose replayed clock runs below this share of the asked speed says its real pace."""


def replay_flag(speed: float, actual: float | None, *, paused: bool, ended: bool) -> tuple[str, str]:
    """The replay's header flag in full and short wording: the asked `speed`, the state, and
    the real pace `actual` (replayed seconds per real second, see ReplayFeed.actual_speed) when
    it falls more than 20 % behind the asked speed, e.g. ('replay 10x (1.2x actual) playing',
    'REPLAY 10x (1.2x)')."""
    behind = (actual is not None and not paused and not ended
              and actual < speed * BEHIND_RATIO)
    pace = f" ({actual:.1f}x actual)" if behind else ""
    short_pace = f" ({actual:.1f}x)" if behind else ""
    state = "PAUSED (space resumes)" if paused else "ended" if ended else "playing"
    mark = " ⏸" if paused else " ended" if ended else ""
    return f"replay {speed:g}x{pace} {state}", f"REPLAY {speed:g}x{short_pace}{mark}"


class ReplayControls(DashboardView):
    """The replay keys and the replay's part of the header (speed, paused)."""

    loop: Any = None  # optui.screens.feed_loop.FeedLoop, set by the screen
    _replay_keys_shown = False
    """Whether the footer was last drawn for a replay (its keys, not `r` Collect now)."""

    def _replay_feed(self) -> Any:
        feed = self.feed
        return feed if feed is not None and feed.replay else None

    def _refresh_header(self) -> None:
        # The feed is made in a worker after the footer is first drawn: redraw the footer's
        # keys once it is known to be a replay, not only at the next key press.
        replaying = self._replay_feed() is not None
        if replaying != self._replay_keys_shown:
            self._replay_keys_shown = replaying
            self.refresh_bindings()
        super()._refresh_header()

    def _header_flags(self) -> list[tuple[str, str]]:
        flags = super()._header_flags()
        feed = self._replay_feed()
        if feed is not None:
            flags.append(replay_flag(feed.speed, feed.actual_speed(), paused=feed.paused,
                                     ended=feed.ended))
        return flags

    def _age_s(self, now: Any) -> float | None:
        if self._replay_feed() is None:
            return super()._age_s(now)
        snap = self._snapshot  # replayed seconds since the shown cycle
        return None if snap is None else max(0.0, (self._market_now(now) - snap.timestamp).total_seconds())

    def _is_stale(self, now: Any) -> bool:
        if self._replay_feed() is None:
            return super()._is_stale(now)
        return False  # a replay's cadence is the viewer's: paused is not stale

    def action_replay_pause(self) -> None:
        feed = self._replay_feed()
        if feed is None or self.loop is None:
            return
        if feed.paused:
            feed.resume()
        else:
            feed.pause()
        self.loop.reschedule()
        self._refresh_header()

    def action_replay_step(self) -> None:
        """Pause (when playing) and replay one cycle."""
        feed = self._replay_feed()
        if feed is None or self.loop is None:
            return
        if not feed.paused:
            feed.pause()
            self.loop.reschedule()
        self.loop.collect_now()
        self._refresh_header()

    def action_replay_speed(self, step: int) -> None:
        feed = self._replay_feed()
        if feed is None or self.loop is None:
            return
        from optui.feed.replay import next_speed

        feed.set_speed(next_speed(feed.speed, step))
        self.loop.reschedule()
        self._refresh_header()

    def action_replay_jump(self) -> None:
        if self._replay_feed() is None:
            return
        self.app.push_screen(JumpPrompt(), callback=self.jump_to)

    def jump_to(self, hhmm: str | None) -> None:
        """Start the replay over at `hhmm` (IST) and show that minute's cycle at once."""
        if not hhmm or self.loop is None:
            return
        feed = self._replay_feed()
        refusal = feed.jump_refusal(hhmm) if feed is not None else None
        if refusal is not None:  # before anything is said or started: the replay goes on
            self.notify(refusal, title=f"Replay: no jump to {hhmm}", severity="error", timeout=8)
            return
        self._series = None
        # Priming from the recording takes a few seconds on a full chain: say so at once.
        self.notify(f"Jumping to {hhmm} IST: reading the day's opening and the minutes before "
                    "it from the recording", title="Replay", timeout=4)
        self.loop.control(lambda f: f.jump(hhmm), cycle=True)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action.startswith("replay_"):
            return self._replay_feed() is not None
        if action == "collect_now":  # a replay collects nothing: `.` steps it
            return self._replay_feed() is None
        return True
