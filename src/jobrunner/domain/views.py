"""How a job looks from outside (the HTTP API and the callbacks it POSTs): times as ISO 8601
UTC ending in ``Z`` (milliseconds), the error without internals, links to what a client does
next. Pure: records in, JSON-ready models out.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import quote

from pydantic import BaseModel, PlainSerializer

from jobrunner.domain.models import AuditEntry, JobEvent, JobRecord
from jobrunner.domain.status import JobStatus

__all__ = [
    "API_PREFIX",
    "AuditView",
    "ErrorView",
    "EventView",
    "JobLinks",
    "JobView",
    "UtcTime",
    "file_url",
    "iso_utc",
    "job_url",
    "job_view",
]

API_PREFIX = "/api/v1"


def iso_utc(value: datetime) -> str:
    """``2025-01-31T12:00:00.123Z``: UTC, to the millisecond (rounded, not truncated)."""
    rounded = value.astimezone(UTC) + timedelta(microseconds=500)
    return rounded.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


UtcTime = Annotated[datetime, PlainSerializer(iso_utc, return_type=str)]


def job_url(job_id: str, tail: str = "") -> str:
    return f"{API_PREFIX}/jobs/{job_id}{tail}"


def file_url(ref: str) -> str:
    return f"{API_PREFIX}/files/{quote(ref, safe='')}"


class ErrorView(BaseModel):
    type: str
    code: str
    message: str


class JobLinks(BaseModel):
    self: str
    result: str
    events: str
    stream: str
    ws: str


class JobView(BaseModel):
    """A job as the API shows it."""

    id: str
    task: str
    status: JobStatus
    progress: float
    message: str | None
    params: dict[str, Any]
    attempts: int
    max_tries: int
    queue: str
    plan: str
    priority: int
    correlation_id: str | None
    idempotency_key: str | None
    cancel_requested: bool
    created_at: UtcTime
    scheduled_at: UtcTime
    started_at: UtcTime | None
    finished_at: UtcTime | None
    next_attempt_at: UtcTime | None
    expires_at: UtcTime | None
    retry_of: str | None
    callback_url: str | None
    error: ErrorView | None
    links: JobLinks


def job_view(record: JobRecord) -> JobView:
    data = record.model_dump(
        exclude={"error", "tenant", "interruptions", "timeout_seconds", "worker_id", "result_ref"}
    )
    error = record.error
    return JobView(
        **data,
        error=ErrorView(type=error.type, code=error.code, message=error.message) if error else None,
        links=JobLinks(
            self=job_url(record.id),
            result=job_url(record.id, "/result"),
            events=job_url(record.id, "/events"),
            stream=job_url(record.id, "/stream"),
            ws=job_url(record.id, "/ws"),
        ),
    )


class EventView(BaseModel):
    """A live event (SSE ``data`` and WebSocket messages)."""

    job_id: str
    status: JobStatus
    progress: float
    message: str | None
    attempt: int
    at: UtcTime

    @classmethod
    def of(cls, event: JobEvent) -> EventView:
        return cls.model_validate(event.model_dump(exclude={"kind"}))


class AuditView(BaseModel):
    """One line of a job's audit trail."""

    at: UtcTime
    event: str
    status: JobStatus | None = None
    attempt: int | None = None
    progress: float | None = None
    message: str | None = None
    error: ErrorView | None = None
    http_status: int | None = None  # webhook deliveries: what the receiver answered

    @classmethod
    def of(cls, entry: AuditEntry) -> AuditView:
        data = entry.model_dump(exclude={"worker_id", "error"})
        error = entry.error
        view = ErrorView(type=error.type, code=error.code, message=error.message) if error else None
        return cls(**data, error=view)
