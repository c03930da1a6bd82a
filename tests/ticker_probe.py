"""Run the official KiteTicker (twisted, one reactor per process) and print what it sees as JSON.

Usage: python tests/ticker_probe.py ROOT API_KEY ACCESS_TOKEN MODE TOKEN[,TOKEN...]
Prints one JSON line per event: {"ticks": [...]} (datetimes as ISO text) until a frame arrives whose
ticks are all in MODE, or {"error": [code, reason]} / {"close": [code, reason]}; then exits.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime

from kiteconnect import KiteTicker


def _plain(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def main(root: str, api_key: str, access_token: str, mode: str, tokens: str) -> None:
    wanted = [int(t) for t in tokens.split(",")]
    kws = KiteTicker(api_key, access_token, root=root, reconnect=False)

    def emit(payload: dict) -> None:
        print(json.dumps(payload), flush=True)

    def on_connect(ws: KiteTicker, response: object) -> None:
        ws.subscribe(wanted)
        ws.set_mode(mode, wanted)

    def on_ticks(ws: KiteTicker, ticks: list[dict]) -> None:
        emit({"ticks": _plain(ticks)})
        if ticks and all(t["mode"] == mode for t in ticks):
            ws.close()

    def on_error(ws: KiteTicker, code: object, reason: object) -> None:
        emit({"error": [code, str(reason)]})

    def on_close(ws: KiteTicker, code: object, reason: object) -> None:
        emit({"close": [code, str(reason)]})
        ws.stop()

    kws.on_connect = on_connect
    kws.on_ticks = on_ticks
    kws.on_error = on_error
    kws.on_close = on_close
    kws.connect()


if __name__ == "__main__":
    main(*sys.argv[1:6])
