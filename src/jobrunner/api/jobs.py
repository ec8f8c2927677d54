"""Job routes: list, get, result, cancel, retry, audit trail (submit is in submit.py, live
events in streaming.py). Every route sees only the caller's tenant's jobs."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from jobrunner.api.auth import require_tenant
from jobrunner.api.bodies import parse_model
from jobrunner.api.middleware import correlation_id
from jobrunner.api.models import EventList, JobList, JobListQuery, JobResult
from jobrunner.api.operations import Reply, operation, route
from jobrunner.api.problems import Problem
from jobrunner.api.replies import job_reply, json_reply, owned_job
from jobrunner.api.services import services
from jobrunner.api.submit import submit_job
from jobrunner.api.usage import counted
from jobrunner.domain.status import JobStatus
from jobrunner.domain.views import API_PREFIX, AuditView, JobView, file_url, job_view
from jobrunner.runtime import Submitted
from jobrunner.store.blobindex import blob_id

__all__ = ["blob_files", "routes"]


@operation(
    "List jobs",
    tag="jobs",
    auth="tenant",
    query=JobListQuery,
    responses={200: Reply("This tenant's jobs, newest first", JobList)},
)
async def list_jobs(request: Request) -> Response:
    principal = await require_tenant(request)
    query = parse_model(JobListQuery, dict(request.query_params), prefix="query")
    page = await services(request).runner.list(
        principal.tenant,
        status=query.status,
        task=query.task,
        offset=query.offset,
        limit=query.limit,
    )
    items = [job_view(r) for r in page.items]
    return json_reply(JobList(items=items, total=page.total, limit=page.limit, offset=page.offset))


@operation("Get a job", tag="jobs", auth="tenant", responses={200: Reply("The job", JobView)})
async def get_job(request: Request) -> Response:
    principal = await require_tenant(request)
    return job_reply(await owned_job(services(request), principal, request.path_params["job_id"]))


def blob_files(value: Any, path: str = "") -> dict[str, str]:
    """Field path -> download URL of every blob ref inside a result."""
    if isinstance(value, str):
        return {path or "result": file_url(value)} if blob_id(value) else {}
    if isinstance(value, dict):
        items = [(str(k), v) for k, v in value.items()]
    elif isinstance(value, list):
        items = [(str(i), v) for i, v in enumerate(value)]
    else:
        return {}
    found: dict[str, str] = {}
    for key, item in items:
        found.update(blob_files(item, f"{path}.{key}" if path else key))
    return found


@operation(
    "Get a job's result",
    tag="jobs",
    auth="tenant",
    responses={
        200: Reply("The result, with a download URL for each file in it", JobResult),
        409: Reply("The job has not succeeded (see job_status)"),
    },
)
async def job_result(request: Request) -> Response:
    principal = await require_tenant(request)
    api = services(request)
    record = await owned_job(api, principal, request.path_params["job_id"])
    if record.status is not JobStatus.SUCCEEDED:
        raise Problem(
            409,
            "job_not_succeeded",
            f"job {record.id} is {record.status.value}: only a succeeded job has a result",
            job_status=record.status.value,
        )
    result = await api.runner.result(record.id)
    return json_reply(
        JobResult(
            job_id=record.id,
            status=record.status,
            result=result,
            finished_at=record.finished_at,
            files=blob_files(result),
        )
    )


@operation(
    "Cancel a job",
    tag="jobs",
    auth="tenant",
    description="A waiting job is cancelled at once and never runs; a running one is asked to "
    "stop (within about a second; `cancel_requested` is true until it has).",
    responses={
        202: Reply("Cancelled, or asked to stop", JobView),
        409: Reply("The job has already finished (see job_status)"),
    },
)
async def cancel_job(request: Request) -> Response:
    principal = await require_tenant(request)
    api = services(request)
    record = await owned_job(api, principal, request.path_params["job_id"])
    cancelled = await api.runner.cancel(record.id, by=f"api:{principal.key_id}")
    return job_reply(cancelled, 202)


@operation(
    "Retry a job",
    tag="jobs",
    auth="tenant",
    description="A new job with the same task and params (and `retry_of` naming this one), "
    "for a failed, cancelled or expired job. It counts against the monthly quota.",
    responses={
        202: Reply("The new job", JobView, headers=("Location",)),
        409: Reply("The job is not failed, cancelled or expired (see job_status)"),
    },
)
async def retry_job(request: Request) -> Response:
    principal = await require_tenant(request)
    api = services(request)
    record = await owned_job(api, principal, request.path_params["job_id"])

    async def submit() -> Submitted:
        retried = await api.runner.retry(record.id, correlation_id=correlation_id(request.scope))
        return Submitted(retried, replayed=False)

    done = await counted(api, principal, submit)
    return job_reply(done.record, 202)


@operation(
    "A job's audit trail",
    tag="jobs",
    auth="tenant",
    responses={200: Reply("Every recorded step, oldest first", EventList)},
)
async def job_events(request: Request) -> Response:
    principal = await require_tenant(request)
    api = services(request)
    record = await owned_job(api, principal, request.path_params["job_id"])
    entries = await api.runner.audit(record.id)
    return json_reply(EventList(job_id=record.id, items=[AuditView.of(e) for e in entries]))


_JOB = f"{API_PREFIX}/jobs/{{job_id}}"
routes: list[BaseRoute] = [
    route(f"{API_PREFIX}/jobs", GET=list_jobs, POST=submit_job),
    route(_JOB, GET=get_job, DELETE=cancel_job),
    route(f"{_JOB}/result", GET=job_result),
    route(f"{_JOB}/retry", POST=retry_job),
    route(f"{_JOB}/events", GET=job_events),
]
