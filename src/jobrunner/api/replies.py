"""Small pieces the job routes share: a model as a JSON reply, a job as a reply, and finding a
job of the caller's tenant (another tenant's job is 404, exactly like a job that never was)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from pydantic import BaseModel
from starlette.responses import Response

from jobrunner.api.services import ApiServices
from jobrunner.domain.models import JobRecord
from jobrunner.domain.views import job_url, job_view
from jobrunner.errors import JobNotFoundError

__all__ = ["job_reply", "json_reply", "owned_job"]


def json_reply(
    model: BaseModel, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    return Response(
        model.model_dump_json(),
        status_code=status,
        headers=dict(headers or {}),
        media_type="application/json",
    )


def job_reply(record: JobRecord, status: int = 200, *, replayed: bool = False) -> Response:
    headers = {"Location": job_url(record.id)}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return json_reply(job_view(record), status, headers)


class Owner(Protocol):
    """Who asks for a job: a tenant's API key (``Principal``) or a stream token's grant."""

    @property
    def tenant(self) -> str: ...


async def owned_job(api: ApiServices, owner: Owner, job_id: str) -> JobRecord:
    record = await api.runner.get(job_id)
    if record.tenant != owner.tenant:
        raise JobNotFoundError(job_id)
    return record
