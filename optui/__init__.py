"""optui: a terminal workstation for Indian index options."""

__version__ = "0.1.0"
