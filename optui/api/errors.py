"""Every API error is JSON `{"error": "..."}` naming the problem; tracebacks go to the log only."""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("optui.api")

JSON = "application/json"


class ApiError(Exception):
    """An error a route raises for the client: its HTTP status and message."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def dumps_text(body: Any) -> str:
    """Compact JSON text (₹ kept as is); NaN is refused (the serialisers turn it into null)."""
    return json.dumps(body, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def dumps(body: Any) -> bytes:
    """`dumps_text` as UTF-8 bytes."""
    return dumps_text(body).encode()


class JsonResponse(Response):
    """A JSON response rendered with `dumps`."""

    media_type = JSON

    def render(self, content: Any) -> bytes:
        return dumps(content)


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> JsonResponse:
    return JsonResponse({"error": message}, status_code=status, headers=headers)


async def send_json_error(send: Any, status: int, message: str,
                          headers: dict[str, str] | None = None) -> None:
    """Answer a plain ASGI HTTP request with `{"error": message}`."""
    body = dumps({"error": message})
    raw = [(b"content-type", JSON.encode()), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = [str(p) for p in err.get("loc", ()) if p not in ("query", "path", "body")]
        name = ".".join(where) or "request"
        given = err.get("input")
        shown = f" (got {given!r})" if isinstance(given, (str, int, float)) and len(str(given)) < 80 else ""
        parts.append(f"{name}: {err.get('msg', 'invalid')}{shown}")
    return "bad parameter: " + "; ".join(parts)


def install_handlers(app: FastAPI) -> None:
    """JSON errors for route errors, unknown paths and methods, bad parameters and crashes."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> Response:
        return error_response(exc.status, exc.message, exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404:
            message = f"no such route: {request.method} {request.url.path} (routes are listed at /docs)"
        elif exc.status_code == 405:
            message = f"method {request.method} is not allowed on {request.url.path}: the API is read-only (GET)"
        else:
            message = str(exc.detail)
        return error_response(exc.status_code, message, dict(exc.headers or {}))

    @app.exception_handler(RequestValidationError)
    async def _bad_params(request: Request, exc: RequestValidationError) -> Response:
        return error_response(422, _validation_message(exc))

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> Response:
        log.error("API %s %s failed", request.method, request.url.path, exc_info=exc)
        return error_response(500, f"internal error answering {request.url.path}: "
                                   f"{type(exc).__name__} (details in the server's log)")


__all__ = ["JSON", "ApiError", "JsonResponse", "dumps", "dumps_text", "error_response", "install_handlers",
           "send_json_error"]
