"""``GET /api/v1/tasks``: what a tenant can submit, with each task's params JSON schema."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from jobrunner.api.auth import require_tenant
from jobrunner.api.models import TaskInfo, TaskList
from jobrunner.api.operations import Reply, operation, route
from jobrunner.api.replies import json_reply
from jobrunner.api.services import services
from jobrunner.domain.views import API_PREFIX

__all__ = ["routes"]


@operation(
    "List the tasks",
    tag="tasks",
    auth="tenant",
    responses={200: Reply("Every task this deployment runs", TaskList)},
)
async def list_tasks(request: Request) -> Response:
    await require_tenant(request)
    registry = services(request).registry
    items = [
        TaskInfo(name=t.name, description=t.description, params_schema=t.params_schema())
        for t in sorted(registry, key=lambda t: t.name)
    ]
    return json_reply(TaskList(items=items))


routes: list[BaseRoute] = [route(f"{API_PREFIX}/tasks", GET=list_tasks)]
