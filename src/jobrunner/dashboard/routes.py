"""Every dashboard route, for the API app's ``ROUTE_MODULES``."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from jobrunner.dashboard import actions, job, jobs, overview, signin, tenants
from jobrunner.dashboard.access import session_of
from jobrunner.dashboard.render import html_errors, redirect, render
from jobrunner.dashboard.session import PATH

__all__ = ["routes"]


@html_errors
async def not_found(request: Request) -> Response:
    if request.path_params.get("rest") == "":
        return redirect(PATH)  # /dashboard/ is the overview too
    await session_of(request)  # the page's navigation knows who is signed in
    detail = "There is no such page in the dashboard."
    return render(request, "error.html", status=404, title="Not found", detail=detail)


routes: list[BaseRoute] = [
    *signin.routes,
    *overview.routes,
    *jobs.routes,
    *job.routes,
    *actions.routes,
    *tenants.routes,
    Mount(f"{PATH}/static", StaticFiles(packages=[("jobrunner.dashboard", "static")])),
    Route(f"{PATH}/{{rest:path}}", not_found),
]
