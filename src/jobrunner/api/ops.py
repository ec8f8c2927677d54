"""Operations: liveness, readiness, Prometheus metrics, and (admin) queues and workers.

``RedisOutageMiddleware`` answers ``503 /problems/redis-unavailable`` at once for API routes
while the background probe finds Redis silent, instead of letting each request wait out its
deadline.
"""

from __future__ import annotations

import hmac
from typing import Any

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from jobrunner.api.auth import bearer_token, require_admin, unauthorized
from jobrunner.api.metrics import exposition
from jobrunner.api.operations import Reply, operation, route
from jobrunner.api.problems import Problem, problem_response
from jobrunner.api.services import ApiServices, services
from jobrunner.domain.models import ms_to_dt
from jobrunner.domain.views import API_PREFIX, UtcTime
from jobrunner.store.queues import QueueStats

__all__ = ["QueueView", "RedisOutageMiddleware", "WorkerView", "routes"]

PROBLEM = {"$ref": "#/components/schemas/Problem"}


def redis_unavailable(detail: str) -> Problem:
    return Problem(503, "redis_unavailable", detail, headers={"Retry-After": "1"})


class Status(BaseModel):
    status: str


class QueueView(BaseModel):
    name: str
    plan: str
    queued: int
    running: int
    deferred: int
    workers: int


class QueueList(BaseModel):
    items: list[QueueView]


class WorkerView(BaseModel):
    id: str
    pid: int
    host: str
    queues: list[str]
    tasks: list[str] | None = None  # what it can run; None: a worker too old to say
    running: int
    concurrency: int
    started_at: UtcTime | None
    last_seen: UtcTime


class WorkerList(BaseModel):
    items: list[WorkerView]


def worker_view(entry: dict[str, Any]) -> WorkerView:
    return WorkerView(
        id=entry["id"],
        pid=entry["pid"],
        host=entry["host"],
        queues=entry["queues"],
        tasks=entry.get("tasks"),
        running=entry.get("jobs_running", 0),
        concurrency=entry.get("concurrency", 0),
        started_at=ms_to_dt(entry.get("started_at_ms")),
        last_seen=ms_to_dt(entry["last_seen_ms"]),
    )


@operation("Liveness", tag="operations", auth="none", responses={200: Reply("Alive", Status)})
async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


@operation(
    "Readiness: Redis answers within a second",
    tag="operations",
    auth="none",
    responses={
        200: Reply("Ready", Status),
        503: Reply("Redis did not answer", schema=PROBLEM, media_type="application/problem+json"),
    },
)
async def readyz(request: Request) -> Response:
    api = services(request)
    if not await api.probe.check():
        raise redis_unavailable(f"Redis did not answer within {api.probe.deadline:g}s")
    return JSONResponse({"status": "ready"})


@operation(
    "Prometheus metrics, cluster-wide",
    tag="operations",
    auth="metrics",
    description="Open unless JOBRUNNER_METRICS_TOKEN is set; then that Bearer token.",
    responses={200: Reply("Prometheus text", schema={"type": "string"}, media_type="text/plain")},
)
async def metrics(request: Request) -> Response:
    api = services(request)
    _check_metrics_token(request, api)
    body, content_type = exposition(await api.runner.metrics(), request.headers.get("accept"))
    return Response(body, headers={"Content-Type": content_type})


def _check_metrics_token(request: Request, api: ApiServices) -> None:
    wanted = api.settings.metrics_token
    if wanted is None:
        return
    given = bearer_token(request)
    if given is None:
        raise unauthorized("send the metrics token: 'Authorization: Bearer <token>'")
    if not hmac.compare_digest(given.encode(), wanted.get_secret_value().encode()):
        raise unauthorized("wrong metrics token", invalid=True)


@operation(
    "Queues: waiting, running and deferred jobs and workers per plan",
    tag="operations",
    auth="admin",
    responses={200: Reply("One entry per plan", QueueList)},
)
async def list_queues(request: Request) -> Response:
    api = await require_admin(request)
    stats: list[QueueStats] = await api.runner.queues()
    items = [QueueView.model_validate(s, from_attributes=True) for s in stats]
    return JSONResponse(QueueList(items=items).model_dump(mode="json"))


@operation(
    "Live workers",
    tag="operations",
    auth="admin",
    responses={200: Reply("Workers whose heartbeat is current", WorkerList)},
)
async def list_workers(request: Request) -> Response:
    api = await require_admin(request)
    items = [worker_view(entry) for entry in await api.runner.workers()]
    return JSONResponse(WorkerList(items=items).model_dump(mode="json"))


class RedisOutageMiddleware:
    """503 at once for API routes and /metrics while the probe finds Redis silent."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and _needs_redis(scope["path"]):
            api = getattr(scope["app"].state, "services", None)
            if isinstance(api, ApiServices) and not api.probe.available:
                problem = redis_unavailable("Redis is not answering; try again shortly")
                await problem_response(problem, scope["path"])(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _needs_redis(path: str) -> bool:
    return path.startswith(f"{API_PREFIX}/") or path == "/metrics"


routes: list[BaseRoute] = [
    route("/healthz", GET=healthz),
    route("/readyz", GET=readyz),
    route("/metrics", GET=metrics),
    route(f"{API_PREFIX}/queues", GET=list_queues),
    route(f"{API_PREFIX}/workers", GET=list_workers),
]
