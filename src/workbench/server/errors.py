"""Watson's JSON errors, the one mapping: every failure answers `{"code": N, "error": "..."}` with status N.

`error_response` maps our errors, Starlette's and FastAPI's (a bad parameter is a 400, not a 422);
`error_handler` is the exception handler the app registers, which also names the allowed methods
of a 405; `UnexpectedErrors` answers an exception no handler mapped with a 500, keeping the connection.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.routing import BaseRoute, Match

from ..core.errors import WorkbenchError

MAX_ERROR_CHARS = 1000  # an error message is cut here, whatever it echoes

logger = logging.getLogger(__name__)


def error_response(exc: Exception) -> JSONResponse:
    """Every failure as Watson's `{"code": N, "error": "..."}` with status N."""
    headers = None
    if isinstance(exc, WorkbenchError):
        code, message = exc.code, exc.message
    elif isinstance(exc, HTTPException):
        code, message, headers = exc.status_code, str(exc.detail), exc.headers
    elif isinstance(exc, RequestValidationError):
        code, message = 400, validation_message(exc)
    elif isinstance(exc, ClientDisconnect):
        code, message = 400, "The client disconnected before the request was complete"
    else:
        code, message = 500, f"Internal error: {type(exc).__name__}"
    if len(message) > MAX_ERROR_CHARS:
        message = f"{message[:MAX_ERROR_CHARS]}... (cut from {len(message)} characters)"
    return JSONResponse({"code": code, "error": message}, status_code=code, headers=headers)


def error_handler(routes: Sequence[BaseRoute]) -> Callable[[Request, Exception], Awaitable[JSONResponse]]:
    """The app's exception handler: `error_response`, a 405 naming every method `routes` serve at its path."""

    async def handle(request: Request, exc: Exception) -> JSONResponse:
        response = error_response(exc)
        if response.status_code == 405:
            response.headers["Allow"] = ", ".join(allowed_methods(request, routes))
        return response

    return handle


def allowed_methods(request: Request, routes: Sequence[BaseRoute]) -> list[str]:
    """Every method some route serves at this path (Starlette names only the first route's)."""
    probe = {**request.scope, "method": ""}
    methods: set[str] = set()
    for route in routes:
        if route.matches(probe)[0] != Match.NONE:
            methods |= getattr(route, "methods", None) or set()
    return sorted(methods)


def validation_message(exc: RequestValidationError) -> str:
    """A readable sentence from FastAPI's validation errors (missing `version`, a bad boolean, ...)."""
    parts = []
    for error in exc.errors():
        where, name = [*error.get("loc", ()), "", ""][:2]
        if name == "version":
            parts.append("query parameter 'version' (YYYY-MM-DD, e.g. 2018-03-19) is missing or malformed")
        else:
            parts.append(f"{where} parameter {name!r}: {error.get('msg', 'invalid')}")
    return "Invalid request: " + "; ".join(parts)


class UnexpectedErrors:
    """Answers an exception no handler mapped with Watson's JSON 500 and logs it, keeping the connection.

    Starlette's own last-resort handler re-raises after answering, and uvicorn then closes the
    keep-alive connection; this middleware sits inside it, so only a half-sent answer gets that far.
    """

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = False

        async def watched(message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except Exception as exc:
            if started:  # part of an answer is out: only closing the connection can end it
                raise
            logger.exception("Unexpected error answering %s %s", scope.get("method"), scope.get("path"))
            await error_response(exc)(scope, receive, send)
