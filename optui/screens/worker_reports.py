"""Forward a screen's worker state changes to the app's one reporter (they do not bubble)."""

from __future__ import annotations

from textual.worker import Worker


class ReportsWorkers:
    """Mixin for screens that run workers: every failure reaches OptuiApp.report_worker_state."""

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        report = getattr(self.app, "report_worker_state", None)  # type: ignore[attr-defined]
        if report is not None:
            report(event)
