"""optui.collectors."""
