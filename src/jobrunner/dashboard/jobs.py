"""The jobs table: filters (tenant, status, task, queue), newest first, a page at a time from
the indices (``store/listing.py``); a tenant's viewer is held to its own tenant whatever the
URL says."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from jobrunner.api.operations import route
from jobrunner.dashboard.access import viewer
from jobrunner.dashboard.render import html_errors, render
from jobrunner.dashboard.session import PATH
from jobrunner.domain.status import JobStatus
from jobrunner.errors import InvalidInputError
from jobrunner.store.listing import JobFilter, JobsPage
from jobrunner.submission import NAME_PATTERN

__all__ = ["TableQuery", "routes"]

TENANT_CHOICES = 500  # names offered in the tenant filter's list (any name can be typed)


class TableQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    tenant: str | None = Field(default=None, pattern=NAME_PATTERN)
    status: JobStatus | None = None
    task: str | None = Field(default=None, max_length=128, pattern=r"^[\x21-\x7e]+$")
    queue: str | None = Field(default=None, pattern=NAME_PATTERN)
    cursor: str | None = Field(default=None, max_length=32)
    limit: int = Field(default=25, ge=5, le=100)

    @field_validator("*", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    def url(self, **changes: Any) -> str:
        """This table's URL with ``changes`` (a None value drops the parameter)."""
        values = {**self.model_dump(mode="json", exclude_none=True), **changes}
        if values.get("limit") == 25:
            values.pop("limit")
        query = urlencode({k: v for k, v in values.items() if v is not None})
        return f"{PATH}/jobs" + (f"?{query}" if query else "")


def parse_query(request: Request) -> TableQuery:
    try:
        return TableQuery.model_validate(dict(request.query_params))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_url=False)
        )
        raise InvalidInputError(f"bad filter: {problems}") from exc


def _pages(query: TableQuery, page: JobsPage) -> dict[str, str | None]:
    """Links to the newest, newer and older pages (None where there is none)."""
    newer = None
    if page.first > 0 and page.total is not None:  # one index: ranks step back exactly
        back = max(page.first - query.limit, 0)
        newer = query.url(cursor=f"0.{back}" if back else None)
    return {
        "newest": query.url(cursor=None) if page.first > 0 else None,
        "newer": newer,
        "older": query.url(cursor=page.cursor) if page.cursor else None,
    }


@html_errors
async def jobs_table(request: Request) -> Response:
    who = await viewer(request)
    query = parse_query(request)
    if who.tenant is not None:
        query = query.model_copy(update={"tenant": who.tenant})
    if query.queue is not None and query.queue not in who.settings.plans:
        raise InvalidInputError(f"no queue {query.queue!r}; queues: {list(who.settings.plans)}")
    wanted = JobFilter(query.tenant, query.status, query.task, query.queue)
    async with who.api.guard("jobs"):
        page = await who.state.index.page(wanted, query.cursor, query.limit)
        tenants = (await who.state.index.tenants())[:TENANT_CHOICES] if who.is_admin else []
    return render(
        request,
        "jobs.html",
        title="Jobs",
        query=query,
        page=page,
        links=_pages(query, page),
        statuses=list(JobStatus),
        tasks=who.runner.registry.names(),
        plans=list(who.settings.plans),
        tenants=tenants,
    )


routes: list[BaseRoute] = [route(f"{PATH}/jobs", GET=jobs_table)]
