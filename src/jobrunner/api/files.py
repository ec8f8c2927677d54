"""``GET /api/v1/files/{ref}``: a blob of the caller's tenant (an upload or a job's output),
streamed in chunks with its content type, length and a download name."""

from __future__ import annotations

from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute

from jobrunner.api.auth import require_tenant
from jobrunner.api.operations import Reply, operation, route
from jobrunner.api.problems import Problem
from jobrunner.api.services import services
from jobrunner.domain.views import API_PREFIX
from jobrunner.errors import BlobNotFoundError

__all__ = ["content_disposition", "routes"]


def content_disposition(name: str) -> str:
    """``attachment`` with an ASCII fallback name and the exact one (RFC 6266 / 5987)."""
    fallback = "".join(
        c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in name
    )
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


def _not_found(ref: str) -> Problem:
    return Problem(404, "file_not_found", f"no file {ref!r}", ref=ref)


@operation(
    "Download a file",
    tag="files",
    auth="tenant",
    description="An upload or a job output of the caller's tenant; `ref` is the blob ref "
    "(`upload://...` or `blob://...`), URL-encoded. Another tenant's file is 404.",
    responses={
        200: Reply(
            "The file's bytes",
            schema={"type": "string", "format": "binary"},
            media_type="application/octet-stream",
            headers=("Content-Disposition", "Content-Length"),
        )
    },
)
async def download(request: Request) -> Response:
    principal = await require_tenant(request)
    api = services(request)
    ref = request.path_params["ref"]
    async with api.guard("find file"):
        owner = await api.blob_index.owner(ref)
    if owner is None or owner.tenant != principal.tenant:
        raise _not_found(ref)
    try:
        size = await api.runner.blobs.size(ref)
    except BlobNotFoundError as exc:
        raise _not_found(ref) from exc
    return StreamingResponse(
        api.runner.blobs.iter_bytes(ref),
        media_type=owner.content_type,
        headers={
            "Content-Length": str(size),
            "Content-Disposition": content_disposition(owner.name),
            "Cache-Control": "private, no-store",
        },
    )


routes: list[BaseRoute] = [route(f"{API_PREFIX}/files/{{ref:path}}", GET=download)]
