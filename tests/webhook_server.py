"""A real HTTP server on loopback that records webhook posts and answers from a script."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    path: str
    content_type: str
    body: Any


@dataclass
class WebhookServer:
    """Records each POST; answers with `script` entries (status, body, headers) in turn, then with
    `default`. While `gate` is clear, requests wait for it (to prove posting never blocks)."""

    port: int = 0
    script: list[tuple[int, Any, dict[str, str]]] = field(default_factory=list)
    default: tuple[int, Any, dict[str, str]] = (200, "ok", {})
    received: list[Received] = field(default_factory=list)
    gate: threading.Event = field(default_factory=threading.Event)
    arrived: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def wait_for(self, n: int, timeout: float = 60.0,
                 which: Callable[[Received], bool] = lambda _r: True) -> list[Received]:
        """Block until n posts that `which` accepts arrived (or timeout); returns all that arrived."""
        done = threading.Event()

        def poll() -> None:
            while not done.is_set():
                with self.lock:
                    if sum(1 for r in self.received if which(r)) >= n:
                        done.set()
                        return
                self.arrived.wait(0.05)
                self.arrived.clear()

        t = threading.Thread(target=poll, daemon=True)
        t.start()
        done.wait(timeout)
        done.set()
        with self.lock:
            return list(self.received)


@contextmanager
def webhook_server(**kw: Any) -> Iterator[WebhookServer]:
    state = WebhookServer(**kw)
    state.gate.set()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            length = int(self.headers.get("Content-Length", "0"))
            raw = self.rfile.read(length)
            try:
                body: Any = json.loads(raw)
            except ValueError:
                body = raw.decode(errors="replace")
            with state.lock:
                state.received.append(Received(self.path, self.headers.get("Content-Type", ""), body))
                status, answer, headers = state.script.pop(0) if state.script else state.default
            state.arrived.set()
            state.gate.wait(30)
            data = answer.encode() if isinstance(answer, str) else json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain" if isinstance(answer, str) else "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - keep test output quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.gate.set()
        server.shutdown()
        server.server_close()
