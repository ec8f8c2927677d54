"""The HTTP API as a Starlette app, built by a factory from settings.

``uvicorn --factory jobrunner.api:create_app`` builds Settings from the environment at start-up;
``jobrunner api`` and ``jobrunner up`` pass their own. Redis pools open and close in the
lifespan (``jobrunner up`` hands in the JobRunner its worker already shares instead).

Each module contributes ``routes``; adding a module is one line in ``ROUTE_MODULES``.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import AsyncIterator, Sequence
from types import ModuleType

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import BaseRoute

from jobrunner import dashboard
from jobrunner.api import (
    admin,
    catalog,
    docs,
    files,
    jobs,
    openapi,
    ops,
    streaming,
    uploads,
    usage,
)
from jobrunner.api.middleware import CORRELATION_HEADER, RequestContextMiddleware
from jobrunner.api.problems import EXCEPTION_HANDLERS
from jobrunner.api.services import ApiServices
from jobrunner.logs import configure_logging
from jobrunner.registry import Registry
from jobrunner.runtime import JobRunner
from jobrunner.settings import Settings
from jobrunner.tasks.catalog import build_registry

__all__ = ["ROUTE_MODULES", "create_app"]

ROUTE_MODULES: tuple[ModuleType, ...] = (
    jobs,
    streaming,
    uploads,
    files,
    catalog,
    usage,
    admin,
    ops,
    openapi,
    docs,
    dashboard,
)

_ALLOWED = ["Authorization", "Content-Type", "Idempotency-Key", "Last-Event-ID", CORRELATION_HEADER]
_EXPOSED = [
    CORRELATION_HEADER,
    "Location",
    "Idempotent-Replayed",
    "Retry-After",
    "RateLimit-Limit",
    "RateLimit-Remaining",
    "RateLimit-Reset",
    "Content-Disposition",
]


def create_app(
    settings: Settings | None = None,
    *,
    runner: JobRunner | None = None,
    registry: Registry | None = None,
    freeze_gc: bool | None = None,
) -> Starlette:
    """The API app. With ``runner`` it serves that (started) JobRunner; otherwise its lifespan
    starts one on ``settings`` (and ``registry``, by default the configured tasks).

    ``freeze_gc``: once started, put every object made so far out of the garbage collector's
    reach (``gc.freeze()``): a full collection stops every request in flight, and walking the
    start-up heap made each one last ~0.1 s. For an app that owns its process; by default when
    the app builds its own settings (``uvicorn --factory jobrunner.api:create_app``)."""
    freeze = settings is None if freeze_gc is None else freeze_gc
    if settings is None:
        settings = Settings()
        configure_logging(json=settings.log_json, level=settings.log_level)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            serving = runner
            if serving is None:
                tasks = registry or build_registry(settings)
                serving = await stack.enter_async_context(JobRunner(settings, tasks))
            app.state.services = ApiServices(settings, serving)
            stack.push_async_callback(app.state.services.gate.aclose)
            await stack.enter_async_context(app.state.services.probe)
            if freeze:
                gc.freeze()
            yield

    return Starlette(
        routes=_routes(ROUTE_MODULES),
        middleware=_middleware(settings),
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
    )


def _routes(modules: Sequence[ModuleType]) -> list[BaseRoute]:
    routes: list[BaseRoute] = []
    for module in modules:
        routes.extend(module.routes)
    return routes


def _middleware(settings: Settings) -> list[Middleware]:
    stack = [Middleware(RequestContextMiddleware), Middleware(ops.RedisOutageMiddleware)]
    if settings.cors_origins:
        stack.append(
            Middleware(
                CORSMiddleware,
                allow_origins=list(settings.cors_origins),
                allow_methods=["GET", "POST", "DELETE"],
                allow_headers=_ALLOWED,
                expose_headers=_EXPOSED,
                max_age=600,
            )
        )
    return stack
