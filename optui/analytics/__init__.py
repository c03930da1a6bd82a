"""optui.analytics."""
