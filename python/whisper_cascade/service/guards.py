"""Request guards: API-key auth, upload reading with a size limit, and the ASGI middleware
that refuses oversized bodies early and counts requests and latency per route."""

from __future__ import annotations

import base64
import hmac
import json
import re
import time
from typing import Any

from fastapi import Request, UploadFile
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .engine import Service
from .errors import ServiceError

MULTIPART_SLACK = 64 * 1024
"""Bytes a multipart body may carry beyond the file limit (boundaries and the other fields)."""

_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def get_service(request: Request) -> Service:
    """The app's :class:`Service` (a FastAPI dependency)."""
    service: Service = request.app.state.service
    return service


def require_api_key(request: Request) -> None:
    """401 unless the request carries the configured key (if any): ``Authorization: Bearer
    KEY``, or HTTP Basic with KEY as the password (any user name), which is what a browser
    sends after its login prompt, so that ``/dashboard`` can be opened in one."""
    key = get_service(request).settings.api_key
    if key is None:
        return
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "basic":
        token = _basic_password(token.strip())
    elif scheme.lower() != "bearer":
        token = ""
    if not hmac.compare_digest(token.strip().encode(), key.encode()):
        raise ServiceError(
            401, "AuthenticationError", "missing or invalid API key (Authorization: Bearer KEY)"
        )


def _basic_password(credentials: str) -> str:
    try:
        decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return ""
    return decoded.partition(":")[2]


def too_large(limit: int) -> ServiceError:
    """The 413 error for an upload over ``limit`` bytes."""
    return ServiceError(
        413, "PayloadTooLarge", f"upload larger than the limit of {limit / 2**20:g} MiB"
    )


async def read_upload(file: UploadFile, limit: int) -> tuple[bytes, str]:
    """The uploaded bytes (413 over ``limit``, 400 when empty) and a safe display name."""
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise too_large(limit)
    if not data:
        raise ServiceError(400, "AudioError", "empty upload (0 bytes)")
    raw = (file.filename or "upload").rsplit("/", 1)[-1].rsplit("\\", 1)[-1]
    name = _SAFE_NAME.sub("_", raw)[:120] or "upload"
    return data, name


class _BodyTooLarge(Exception):
    pass


class RequestGuard:
    """Pure ASGI middleware: early 413 on big bodies, request counters and latency."""

    def __init__(self, app: ASGIApp, service: Service) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        limit = self.service.settings.max_upload_bytes + MULTIPART_SLACK
        status = {"code": 500, "sent": False}
        over = False

        async def send_wrapper(message: Message) -> None:
            if over:  # the body was cut off: whatever the app answers becomes our 413
                if not status["sent"]:
                    status["code"], status["sent"] = 413, True
                    await self._reject(scope, send)
                return
            if message["type"] == "http.response.start":
                status["code"] = int(message["status"])
                status["sent"] = True
            await send(message)

        received = 0

        async def receive_wrapper() -> Message:
            nonlocal received, over
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    over = True
                    raise _BodyTooLarge
            return message

        try:
            declared = _content_length(scope)
            if declared is not None and declared > limit:
                status["code"], status["sent"] = 413, True
                await self._reject(scope, send)
            else:
                await self.app(scope, receive_wrapper, send_wrapper)
        except _BodyTooLarge:
            if status["sent"]:
                raise
            status["code"], status["sent"] = 413, True
            await self._reject(scope, send)
        finally:
            route = scope.get("route")
            endpoint = getattr(route, "path", None) or "unmatched"
            m = self.service.metrics
            m.requests.labels(endpoint, str(status["code"])).inc()
            m.request_latency.labels(endpoint).observe(time.perf_counter() - started)

    async def _reject(self, scope: Scope, send: Send) -> None:
        err = too_large(self.service.settings.max_upload_bytes)
        self.service.metrics.errors.labels(err.type).inc()
        body: dict[str, Any]
        if str(scope.get("path", "")).startswith("/v1/"):
            body = {"error": {"message": err.message, "type": err.type, "param": None,
                              "code": 413}}  # fmt: skip
        else:
            body = {"success": False, "error": {"type": err.type, "message": err.message}}
        payload = json.dumps(body).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(payload)).encode()),
            (b"connection", b"close"),
        ]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": payload})


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
