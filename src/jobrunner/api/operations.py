"""What a route tells the OpenAPI document about itself, declared beside its handler:

    @operation("Get a job", tag="jobs", auth="tenant", responses={200: Reply("The job", JobOut)})
    async def get_job(request: Request) -> Response: ...

``openapi.py`` walks the app's routes and reads these; the standard errors of each kind of
route (401/403/429/503, 422 for a body or query, 404 for a path parameter) are added there.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from jobrunner.registry import Registry

__all__ = [
    "Auth",
    "Body",
    "Operation",
    "Reply",
    "handlers_of",
    "operation",
    "operation_of",
    "route",
]

Auth = Literal["tenant", "admin", "metrics", "none"]
Schema = dict[str, Any]
F = TypeVar("F", bound=Callable[..., Any])
Endpoint = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True)
class Reply:
    """One documented response: a model, a schema, or nothing, in ``media_type``."""

    description: str
    model: type[BaseModel] | None = None
    schema: Schema | None = None
    media_type: str = "application/json"
    headers: tuple[str, ...] = ()


@dataclass(frozen=True)
class Body:
    """A request body: per media type, a model, a schema, or a function of the registry and
    the document's components that builds one (the job submission, one variant per task)."""

    content: Mapping[str, type[BaseModel] | Schema | Callable[[Registry, Any], Schema]]
    required: bool = True


@dataclass(frozen=True)
class Operation:
    summary: str
    tag: str
    auth: Auth
    responses: Mapping[int, Reply]
    description: str = ""
    body: Body | None = None
    query: type[BaseModel] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)  # request header -> description


def operation(
    summary: str,
    *,
    tag: str,
    auth: Auth,
    responses: Mapping[int, Reply],
    description: str = "",
    body: Body | None = None,
    query: type[BaseModel] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Callable[[F], F]:
    """Attach an Operation to a handler (it changes nothing about how the handler runs)."""
    described = Operation(
        summary, tag, auth, responses, description, body, query, dict(headers or {})
    )

    def attach(fn: F) -> F:
        fn.__jobrunner_operation__ = described  # type: ignore[attr-defined]
        return fn

    return attach


def operation_of(endpoint: Any) -> Operation | None:
    found = getattr(endpoint, "__jobrunner_operation__", None)
    return found if isinstance(found, Operation) else None


def route(path: str, **handlers: Endpoint) -> Route:
    """One route for a path with a handler per method (``route(p, GET=a, POST=b)``), so that
    a wrong method is 405 with an ``Allow`` naming every method the path has."""
    by_method = {method.upper(): fn for method, fn in handlers.items()}
    if "GET" in by_method:
        by_method.setdefault("HEAD", by_method["GET"])

    async def dispatch(request: Request) -> Response:
        return await by_method[request.method](request)

    dispatch.__jobrunner_handlers__ = by_method  # type: ignore[attr-defined]
    return Route(path, dispatch, methods=list(by_method))


def handlers_of(endpoint: Any, methods: Any) -> dict[str, Any]:
    """Method -> handler of a route's endpoint (one made by ``route`` or a plain one)."""
    found = getattr(endpoint, "__jobrunner_handlers__", None)
    if isinstance(found, dict):
        return dict(found)
    return {m: endpoint for m in methods or ()}
