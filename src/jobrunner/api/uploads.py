"""``POST /api/v1/uploads``: a file (raw body or one multipart part) streamed into the blob
store in chunks, recorded as the caller's, ready to name as a job's ``input_uri``."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from jobrunner.api.auth import require_tenant
from jobrunner.api.bodies import body_stream, check_declared_length, parse_model
from jobrunner.api.multipart import MultipartReader, boundary_of
from jobrunner.api.operations import Body, Reply, operation, route
from jobrunner.api.problems import Problem
from jobrunner.api.services import ApiServices, services
from jobrunner.domain.views import API_PREFIX, UtcTime, file_url
from jobrunner.store.blobindex import OCTET_STREAM, blob_id

__all__ = ["UploadView", "routes", "store_upload"]

_MEDIA = re.compile(r"^[\w.+\-]+/[\w.+\-]+$")


class UploadView(BaseModel):
    upload_id: str
    uri: str = Field(description="The upload's ref: use it as a job's input_uri.")
    size: int
    sha256: str
    content_type: str
    filename: str
    expires_at: UtcTime


def _media_type(value: str | None) -> str:
    media = (value or "").split(";")[0].strip().lower()
    return media if _MEDIA.fullmatch(media) else OCTET_STREAM


async def store_upload(
    api: ApiServices,
    tenant: str,
    chunks: AsyncIterator[bytes],
    *,
    filename: str,
    content_type: str | None,
) -> UploadView:
    """Stream ``chunks`` into the blob store (413 past the upload limit) and record its owner."""
    stored = await api.runner.blobs.put_stream(
        chunks, name=filename, scheme="upload", max_bytes=api.settings.max_upload_bytes
    )
    media = _media_type(content_type)
    try:
        async with api.guard("record upload"):
            owner = await api.blob_index.record(stored.ref, tenant=tenant, content_type=media)
    except BaseException:
        await api.runner.blobs.delete(stored.ref)
        raise
    return UploadView(
        upload_id=blob_id(stored.ref) or "",
        uri=stored.ref,
        size=stored.size,
        sha256=stored.sha256,
        content_type=media,
        filename=owner.name,
        expires_at=owner.expires_at,
    )


async def discard_upload(api: ApiServices, ref: str) -> None:
    """Remove an upload nobody will use (its job was refused, or was a replay)."""
    with contextlib.suppress(Exception):
        await api.runner.blobs.delete(ref)
        await api.blob_index.forget(ref)


def multipart_limit(api: ApiServices) -> int:
    """A multipart body: the file's limit plus room for the form's other fields."""
    return api.settings.max_upload_bytes + api.settings.max_body_bytes


class UploadQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    filename: str = Field(default="upload", min_length=1, max_length=200)


@operation(
    "Upload a file",
    tag="files",
    auth="tenant",
    description="The raw body (its Content-Type kept) or a multipart/form-data part named "
    "`file`, streamed to the blob store. Over JOBRUNNER_MAX_UPLOAD_BYTES: 413, as soon as the "
    "declared length or the bytes received pass it.",
    query=UploadQuery,
    body=Body(
        {
            "application/octet-stream": {"type": "string", "format": "binary"},
            "multipart/form-data": {
                "type": "object",
                "properties": {"file": {"type": "string", "format": "binary"}},
                "required": ["file"],
            },
        }
    ),
    responses={201: Reply("Stored", UploadView, headers=("Location",))},
)
async def upload(request: Request) -> Response:
    principal = await require_tenant(request)
    api = services(request)
    boundary = boundary_of(request.headers.get("content-type", ""))
    if boundary is None:
        query = parse_model(UploadQuery, dict(request.query_params), prefix="query")
        chunks = body_stream(request, api.settings.max_upload_bytes, "upload")
        view = await store_upload(
            api,
            principal.tenant,
            chunks,
            filename=query.filename,
            content_type=request.headers.get("content-type"),
        )
    else:
        view = await _multipart_upload(request, api, principal.tenant, boundary)
    headers = {"Location": file_url(view.uri)}
    return JSONResponse(view.model_dump(mode="json"), status_code=201, headers=headers)


async def _multipart_upload(
    request: Request, api: ApiServices, tenant: str, boundary: bytes
) -> UploadView:
    check_declared_length(request, multipart_limit(api), "upload")
    reader = MultipartReader(body_stream(request, multipart_limit(api), "upload"), boundary)
    view: UploadView | None = None
    while (part := await reader.next_part()) is not None:
        if part.name != "file" or part.filename is None or view is not None:
            if view is not None:
                await discard_upload(api, view.uri)
            raise _one_file()
        view = await store_upload(
            api,
            tenant,
            reader.chunks(),
            filename=part.filename or "upload",
            content_type=part.content_type,
        )
    if view is None:
        raise _one_file()
    return view


def _one_file() -> Problem:
    message = "send one file, in a part named 'file' (with a filename)"
    return Problem(422, "invalid_request", message, errors=[{"loc": "file", "msg": message}])


routes: list[BaseRoute] = [route(f"{API_PREFIX}/uploads", POST=upload)]
