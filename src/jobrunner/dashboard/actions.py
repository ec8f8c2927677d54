"""What the operator does from a job's page (cancel, retry: POSTs with a CSRF token, answered
with a redirect back to a page), and file downloads for whoever may see the job."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute

from jobrunner.api.files import content_disposition
from jobrunner.api.middleware import correlation_id
from jobrunner.api.operations import route
from jobrunner.dashboard.access import checked_form, viewer
from jobrunner.dashboard.render import html_errors, redirect
from jobrunner.dashboard.session import PATH
from jobrunner.domain.status import JobStatus
from jobrunner.errors import BlobNotFoundError, JobNotCancellableError, JobNotRetryableError
from jobrunner.store.blobindex import OCTET_STREAM, blob_id

__all__ = ["routes"]


def _job_url(job_id: str, notice: str) -> str:
    return f"{PATH}/jobs/{job_id}?notice={notice}"


@html_errors
async def cancel(request: Request) -> Response:
    who = await viewer(request, admin=True)
    await checked_form(request, who.session)
    record = await who.job(request.path_params["job_id"])
    try:
        after = await who.runner.cancel(record.id, by="dashboard:admin")
    except JobNotCancellableError:
        return redirect(_job_url(record.id, "not-cancellable"))
    done = "cancelled" if after.status is JobStatus.CANCELLED else "cancel-requested"
    return redirect(_job_url(record.id, done))


@html_errors
async def retry(request: Request) -> Response:
    """A new job with the same task and params (``retry_of`` set). An operator's retry is not
    counted against the tenant's monthly quota: quotas meter what tenants submit."""
    who = await viewer(request, admin=True)
    await checked_form(request, who.session)
    record = await who.job(request.path_params["job_id"])
    try:
        new = await who.runner.retry(record.id, correlation_id=correlation_id(request.scope))
    except JobNotRetryableError:
        return redirect(_job_url(record.id, "not-retryable"))
    return redirect(_job_url(new.id, "retried"))


@html_errors
async def download(request: Request) -> Response:
    """A blob of the viewer's tenant (any, for the operator), as an attachment."""
    who = await viewer(request)
    ref = request.path_params["ref"]
    if blob_id(ref) is None:
        raise BlobNotFoundError(f"no file {ref!r}", ref=ref)
    async with who.api.guard("find file"):
        owner = await who.api.blob_index.owner(ref)
    if who.tenant is not None and (owner is None or owner.tenant != who.tenant):
        raise BlobNotFoundError(f"no file {ref!r}", ref=ref)
    size = await who.runner.blobs.size(ref)  # BlobNotFoundError: 404 like any unknown file
    name = owner.name if owner else (ref.rsplit("/", 1)[-1] if ref.count("/") > 2 else "data")
    return StreamingResponse(
        who.runner.blobs.iter_bytes(ref),
        media_type=owner.content_type if owner else OCTET_STREAM,
        headers={
            "Content-Length": str(size),
            "Content-Disposition": content_disposition(name),
            "Cache-Control": "private, no-store",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "sandbox",  # never a page of this origin
        },
    )


routes: list[BaseRoute] = [
    route(f"{PATH}/jobs/{{job_id}}/cancel", POST=cancel),
    route(f"{PATH}/jobs/{{job_id}}/retry", POST=retry),
    route(f"{PATH}/files/{{ref:path}}", GET=download),
]
