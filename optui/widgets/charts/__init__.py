"""Terminal charts of one index and expiry (textual-plotext): OI, smile, day series, flow, GEX."""
