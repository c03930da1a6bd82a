"""optui.screens."""
