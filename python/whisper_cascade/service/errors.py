"""Typed HTTP errors and the handlers that give every failure one JSON shape.

``/v1/...`` (the OpenAI-compatible routes) answer ``{"error": {"message", "type", "param",
"code"}}`` as the OpenAI API does; every other route answers
``{"success": false, "error": {"type", "message"}}``.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from whisper_cascade.errors import (
    AudioError,
    ConfigError,
    InvalidArgumentError,
    ModelNotFoundError,
    WhisperCascadeError,
)
from whisper_cascade.store import StoreUnavailableError

log = logging.getLogger(__name__)


class ServiceError(Exception):
    """An error answered with ``status`` and a typed body."""

    def __init__(self, status: int, type_: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.type = type_
        self.message = message


def status_for(exc: WhisperCascadeError) -> int:
    """The HTTP status of a library error."""
    if isinstance(exc, AudioError):
        return 415
    if isinstance(exc, InvalidArgumentError | ConfigError):
        return 400
    if isinstance(exc, StoreUnavailableError):
        return 503
    if isinstance(exc, ModelNotFoundError):
        return 503  # the request was fine; the server lacks the model files
    return 500


def from_library(exc: WhisperCascadeError) -> ServiceError:
    """A :class:`ServiceError` carrying the library error's class name as its type."""
    return ServiceError(status_for(exc), type(exc).__name__, str(exc))


BROWSER_PAGES = frozenset({"/dashboard"})
"""Pages meant for a browser: their 401 also asks for HTTP Basic (the key as password)."""


def error_response(request: Request, err: ServiceError) -> JSONResponse:
    """The JSON body of ``err`` in the shape the route's family uses."""
    service = getattr(request.app.state, "service", None)
    if service is not None:
        service.metrics.errors.labels(err.type).inc()
    if request.url.path.startswith("/v1/"):
        body: dict[str, object] = {
            "error": {"message": err.message, "type": err.type, "param": None, "code": err.status}
        }
    else:
        body = {"success": False, "error": {"type": err.type, "message": err.message}}
    response = JSONResponse(body, status_code=err.status)
    if err.status == 401:
        response.headers["WWW-Authenticate"] = "Bearer"
        if request.url.path in BROWSER_PAGES:
            # A browser shows its login prompt for a Basic challenge (the key as password).
            response.headers.append("WWW-Authenticate", 'Basic realm="whisper-cascade"')
    return response


def install_error_handlers(app: FastAPI) -> None:
    """Map service, library, validation and unexpected errors to typed JSON answers."""

    async def service_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ServiceError)
        return error_response(request, exc)

    async def library_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, WhisperCascadeError)
        return error_response(request, from_library(exc))

    async def validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        parts = []
        for e in exc.errors():
            where = ".".join(str(p) for p in e.get("loc", ()) if p != "body")
            parts.append(f"{where}: {e.get('msg', 'invalid')}")
        message = "; ".join(parts) or "invalid request"
        return error_response(request, ServiceError(400, "InvalidRequestError", message))

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        kind = "NotFound" if exc.status_code == 404 else "HTTPError"
        return error_response(request, ServiceError(exc.status_code, kind, str(exc.detail)))

    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s", request.url.path)
        err = ServiceError(500, "InternalError", f"{type(exc).__name__}: {exc}")
        return error_response(request, err)

    app.add_exception_handler(ServiceError, service_error)
    app.add_exception_handler(WhisperCascadeError, library_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)
