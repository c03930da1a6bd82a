"""optui.simulator."""
