"""optui.widgets."""
