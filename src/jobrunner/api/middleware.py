"""The request context every response shares: a correlation id (taken from the client or made
here, echoed on every response, 404s included, and bound into every log line), RateLimit-*
headers set by authentication, one structured access-log line per request, and a
problem+json 500 for anything unexpected (logged with its traceback, never shown)."""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import structlog
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from jobrunner.api.problems import Problem, problem_response

__all__ = ["CORRELATION_HEADER", "RequestContextMiddleware", "correlation_id", "response_headers"]

CORRELATION_HEADER = "X-Correlation-Id"
_VALID_ID = re.compile(r"^[\x21-\x7e]{1,200}$")
_STATE_HEADERS = "jobrunner.response_headers"
access_log = structlog.get_logger("jobrunner.api.access")


def correlation_id(scope: Scope) -> str:
    return str(scope.get("state", {}).get("correlation_id", ""))


def response_headers(scope: Scope) -> dict[str, str]:
    """Headers a handler or dependency wants on the response, whatever it turns out to be."""
    state: dict[str, Any] = scope.setdefault("state", {})
    found: dict[str, str] = state.setdefault(_STATE_HEADERS, {})
    return found


def _incoming_id(scope: Scope) -> str:
    given = Headers(scope=scope).get(CORRELATION_HEADER)
    return given if given and _VALID_ID.fullmatch(given) else uuid.uuid4().hex


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        cid = _incoming_id(scope)
        state = scope.setdefault("state", {})
        state["correlation_id"] = cid
        started = time.perf_counter()
        status = {"code": 0}

        async def send_with_context(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                headers = MutableHeaders(scope=message)
                headers[CORRELATION_HEADER] = cid
                for name, value in response_headers(scope).items():
                    headers.setdefault(name, value)
            await send(message)

        with structlog.contextvars.bound_contextvars(correlation_id=cid):
            try:
                await self.app(scope, receive, send_with_context)
            except Exception:
                access_log.exception("unhandled error", path=scope.get("path"))
                if status["code"] == 0 and scope["type"] == "http":
                    problem = Problem(500, "internal_error", "an unexpected error; it is logged")
                    await problem_response(problem)(scope, receive, send_with_context)
            finally:
                _log_access(scope, status["code"], started)


def _log_access(scope: Scope, status: int, started: float) -> None:
    route = scope.get("route")
    state = scope.get("state", {})
    access_log.info(
        "request",
        method=scope.get("method", "WS"),
        path=scope.get("path"),
        route=getattr(route, "path", None),
        status=status or (101 if scope["type"] == "websocket" else 0),
        duration_ms=round((time.perf_counter() - started) * 1000, 2),
        tenant=state.get("tenant"),
        correlation_id=state.get("correlation_id"),
    )
