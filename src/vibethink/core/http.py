"""The HTTP face of errors: one format for the API, an error page for browsers, a toast for HTMX."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Receive, Scope, Send

from vibethink.core.errors import PlatformError

log = logging.getLogger(__name__)

_HTTP_CODES = {
    400: "bad_request",
    401: "not_authenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
    429: "rate_limited",
}


EVENT_STREAM_HEADERS: Mapping[str, str] = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


class EventStreamResponse(StreamingResponse):
    """Server-sent events written as they come, without a second task watching for a disconnect.

    Starlette's streaming response runs a task group per request for that watch; here the events'
    own generator decides what a disconnect means (a chat turn runs to its end and is stored
    either way), so the stream is simply written, event by event.
    """

    media_type = "text/event-stream"

    def __init__(self, events: AsyncIterator[bytes], headers: Mapping[str, str] | None = None) -> None:
        super().__init__(events, headers={**EVENT_STREAM_HEADERS, **(headers or {})})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.stream_response(send)


def _wants_html(request: Request) -> bool:
    if request.url.path.startswith(("/api/", "/v1/")):
        return False
    return "text/html" in request.headers.get("accept", "")


def error_response(
    request: Request,
    status_code: int,
    body: dict[str, Any],
    headers: dict[str, str] | None = None,
) -> Response:
    error = body["error"]
    if request.headers.get("hx-request"):
        toast = f'<div class="toast toast-error" role="alert">{_escape(error["message"])}</div>'
        return HTMLResponse(toast, status_code=status_code, headers={**(headers or {}), "HX-Reswap": "none"})
    if _wants_html(request):
        templates = getattr(request.app.state, "templates", None)
        if templates is not None:
            return templates.TemplateResponse(  # type: ignore[no-any-return]
                request,
                "error.html",
                {"status_code": status_code, "error": error},
                status_code=status_code,
                headers=headers,
            )
    return JSONResponse(body, status_code=status_code, headers=headers)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _field(loc: Sequence[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header", "cookie")]
    return ".".join(parts) if parts else ".".join(str(p) for p in loc)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(PlatformError)
    async def platform_error(request: Request, exc: PlatformError) -> Response:
        return error_response(request, exc.status_code, exc.body(), exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        errors = exc.errors()
        if errors and errors[0].get("type") == "json_invalid":
            detail = errors[0].get("ctx", {}).get("error", "")
            message = "The request body is not valid JSON" + (f" ({detail})." if detail else ".")
            return error_response(request, 422, {"error": {"code": "invalid_json", "message": message}})
        first = errors[0] if errors else {"loc": (), "msg": "Invalid input."}
        field = _field(first.get("loc", ()))
        message = f"{field}: {first.get('msg', 'invalid')}" if field else str(first.get("msg"))
        details = {"errors": [{"field": _field(e.get("loc", ())), "message": e.get("msg")} for e in errors]}
        body = {"error": {"code": "invalid_input", "message": message, "field": field, "details": details}}
        return error_response(request, 422, body)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        body = {"error": {"code": code, "message": str(exc.detail)}}
        return error_response(request, exc.status_code, body, dict(exc.headers or {}))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        body = {"error": {"code": "internal_error", "message": "Something went wrong on our side."}}
        return error_response(request, 500, body)
