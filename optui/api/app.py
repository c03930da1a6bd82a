"""The API's ASGI application: FastAPI routes behind CORS, limits and the token check.

Layers, outermost first: CORS (only when `api.cors_origins` lists origins; closed otherwise), the
rate and body-size limits, the bearer-token check, then FastAPI (routes, /docs, /openapi.json,
JSON errors). Read-only: every route is GET (or a WebSocket).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from optui.api.auth import AuthMiddleware, TokenSource
from optui.api.errors import JsonResponse, install_handlers
from optui.api.limits import LimitsMiddleware
from optui.api.state import ApiState

DOCS_ASSETS = "/docs/assets"
"""Where /docs's Swagger UI assets are served (from the fastapi-offline package)."""

DESCRIPTION = """Read-only access to what optui shows: the same feed and store as the app.

Every route needs the API token: `Authorization: Bearer <token>` (a browser at /docs may give it
as the password of HTTP Basic). WebSockets may instead pass `?token=<token>` or the subprotocols
`optui, bearer.<token>`.

Times are ISO 8601 in IST (+05:30); money is ₹ crore in fields ending `_cr`; IV and shares in
percent (`_pct`); unknown values are null. Errors are `{"error": "..."}`.
"""


def create_fastapi(state: ApiState) -> FastAPI:
    """The FastAPI application with every route, reading `state` (no middleware)."""
    from optui import __version__
    from optui.api import routes_analytics, routes_market, routes_misc, ws

    # Swagger UI's script, stylesheet and icon come from fastapi-offline's wheel, served here
    # under DOCS_ASSETS: nothing is fetched from a CDN, and /docs works offline.
    api = FastAPIOffline(docs_url="/docs", redoc_url=None, static_url=DOCS_ASSETS, title="optui API",
                         version=__version__, description=DESCRIPTION,
                         default_response_class=JsonResponse)
    api.state.optui = state
    install_handlers(api)
    api.include_router(routes_market.router)
    api.include_router(routes_analytics.router)
    api.include_router(routes_misc.router)
    api.include_router(ws.router)
    return api


def create_app(state: ApiState, tokens: TokenSource) -> Any:
    """The ASGI application to serve: FastAPI wrapped in the token check, limits and CORS."""
    settings = state.settings.api
    app: Any = AuthMiddleware(create_fastapi(state), tokens)
    app = LimitsMiddleware(app, settings.rate_limit_per_min, settings.max_body_bytes)
    if settings.cors_origins:
        from starlette.middleware.cors import CORSMiddleware

        app = CORSMiddleware(app, allow_origins=list(settings.cors_origins), allow_methods=["GET"],
                             allow_headers=["Authorization"], allow_credentials=False)
    return app


__all__ = ["DOCS_ASSETS", "create_app", "create_fastapi"]
