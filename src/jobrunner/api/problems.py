"""problem+json (RFC 9457): the one shape of every error the API answers.

``type`` is a path ``/problems/<code>`` whose last segment is a stable code (the library's
``JobRunnerError.code`` with dashes), ``status`` is always the HTTP status as an integer, and
extension members carry the data a client acts on: ``errors`` (``[{loc, msg}]``),
``job_status`` (on a 409 about a job's state), ``tasks`` (on an unknown task).
"""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

import structlog
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from jobrunner.errors import (
    IdempotencyConflictError,
    InvalidParamsError,
    JobRunnerError,
    UnknownTaskError,
)

__all__ = ["EXCEPTION_HANDLERS", "PROBLEM_JSON", "Problem", "from_error", "problem_response"]

PROBLEM_JSON = "application/problem+json"
log = structlog.get_logger("jobrunner.api")

# Library errors whose HTTP answer the contract fixes differently from their defaults.
_OVERRIDES: dict[type[JobRunnerError], tuple[int, str]] = {
    IdempotencyConflictError: (422, "idempotency_key_reuse"),
    UnknownTaskError: (422, "unknown_task"),
}
_RENAMED = {"known": "tasks", "status": "job_status"}


class Problem(Exception):
    """An HTTP error for the handlers to raise; rendered as problem+json."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        title: str | None = None,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.title = title or HTTPStatus(status).phrase
        self.headers = dict(headers or {})
        self.extra = extra

    def body(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": f"/problems/{self.code.replace('_', '-')}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if instance:
            body["instance"] = instance
        return {**body, **{k: v for k, v in self.extra.items() if k not in body}}


def problem_response(problem: Problem, instance: str | None = None) -> Response:
    return JSONResponse(
        problem.body(instance),
        status_code=problem.status,
        headers=problem.headers,
        media_type=PROBLEM_JSON,
    )


def from_error(exc: JobRunnerError) -> Problem:
    """The problem for a library error: its code and status, its details as members."""
    status, code = _OVERRIDES.get(type(exc), (exc.http_status, exc.code))
    extra = {_RENAMED.get(k, k): v for k, v in exc.details.items() if _jsonable(v)}
    if isinstance(exc, InvalidParamsError):
        extra["errors"] = [
            {"loc": f"params.{e['loc']}" if e["loc"] != "(root)" else "params", "msg": e["msg"]}
            for e in exc.details.get("errors", [])
        ]
    return Problem(status, code, exc.message, **extra)


def _jsonable(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool | list | dict)


def _instance(request: Request) -> str:
    return request.url.path


async def _on_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Problem)
    return problem_response(exc, _instance(request))


async def _on_library_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, JobRunnerError)
    problem = from_error(exc)
    if problem.status >= 500:
        log.warning("request failed", code=exc.code, error=exc.message)
    return problem_response(problem, _instance(request))


async def _on_http_exception(request: Request, exc: Exception) -> Response:
    """Starlette's own errors (404 no route, 405 wrong method) as problems too."""
    assert isinstance(exc, HTTPException)
    phrase = HTTPStatus(exc.status_code).phrase
    code = phrase.lower().replace(" ", "_").replace("-", "_")
    detail = exc.detail if exc.detail != phrase else _DEFAULT_DETAIL.get(exc.status_code, phrase)
    problem = Problem(exc.status_code, code, detail, headers=exc.headers)
    return problem_response(problem, _instance(request))


_DEFAULT_DETAIL = {
    404: "no such resource",
    405: "method not allowed on this resource (see the Allow header)",
}

EXCEPTION_HANDLERS = {
    Problem: _on_problem,
    JobRunnerError: _on_library_error,
    HTTPException: _on_http_exception,
}
