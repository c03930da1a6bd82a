"""The read-only REST and WebSocket API over the same feed and store the app shows.

`optui serve` follows a running collector (never collects); `optui collect --serve` serves the
collector's own feed. Modules: app (the ASGI application), auth (the bearer token), limits (rate
and body size), errors (JSON errors), state (what is served), serialise (JSON shapes), routes_*
(REST by area), hub and ws (WebSocket streams), server (uvicorn in a thread), serve (the CLI's
entry points). Never imports Textual.
"""
