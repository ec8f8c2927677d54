"""The API's request and response bodies for jobs (validated at the edge with pydantic)."""

from __future__ import annotations

from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from jobrunner.domain.status import JobStatus
from jobrunner.domain.views import AuditView, JobView, UtcTime

__all__ = [
    "EventList",
    "JobList",
    "JobListQuery",
    "JobResult",
    "JobSubmission",
    "StreamTokenRequest",
    "StreamTokenView",
    "TaskInfo",
    "TaskList",
    "Usage",
]

IDEMPOTENCY_KEY = r"^[\x21-\x7e]{1,200}$"


class JobSubmission(BaseModel):
    """``POST /api/v1/jobs``: a task, its params and how to run it."""

    model_config = ConfigDict(extra="forbid")

    task: str = Field(min_length=1, max_length=128, description="A task from GET /api/v1/tasks.")
    params: dict[str, Any] = Field(default_factory=dict, description="The task's params.")
    priority: int = Field(default=0, ge=0, le=9, description="Higher runs first in its queue.")
    plan: str | None = Field(
        default=None, max_length=64, description="Queue to use: the key's plan or a lower one."
    )
    idempotency_key: str | None = Field(
        default=None, pattern=IDEMPOTENCY_KEY, description="Same as the Idempotency-Key header."
    )
    defer_s: float | None = Field(default=None, ge=0, le=366 * 86400)
    run_at: AwareDatetime | None = None
    ttl_s: float | None = Field(
        default=None, gt=0, le=366 * 86400, description="Expire if not started this long after due."
    )
    max_tries: int | None = Field(default=None, ge=1, le=100)
    timeout_s: float | None = Field(default=None, gt=0, le=366 * 86400)
    callback_url: str | None = Field(
        default=None,
        max_length=2048,
        description="Where the job's final representation is POSTed when it ends (signed).",
    )

    @model_validator(mode="after")
    def _one_schedule(self) -> JobSubmission:
        if self.defer_s is not None and self.run_at is not None:
            raise ValueError("give either defer_s or run_at, not both")
        return self


class JobListQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    status: JobStatus | None = None
    task: str | None = Field(default=None, max_length=128)
    limit: int = Field(default=20, ge=1, le=100)
    offset: int = Field(default=0, ge=0, le=1_000_000)


class JobList(BaseModel):
    items: list[JobView]
    total: int
    limit: int
    offset: int


class JobResult(BaseModel):
    job_id: str
    status: JobStatus
    result: Any
    finished_at: UtcTime | None
    files: dict[str, str] = Field(
        description="Each blob ref in the result, by its field path, to its download URL."
    )


class EventList(BaseModel):
    job_id: str
    items: list[AuditView]


class TaskInfo(BaseModel):
    name: str
    description: str
    params_schema: dict[str, Any]


class TaskList(BaseModel):
    items: list[TaskInfo]


class Usage(BaseModel):
    tenant: str
    plan: str
    period: str = Field(description="The calendar month (UTC), e.g. 2025-01.")
    used: int
    quota: int | None = Field(description="Jobs allowed in the period; null: no quota.")
    resets_at: UtcTime


class StreamTokenRequest(BaseModel):
    """``POST /api/v1/jobs/{job_id}/stream-token``: how long the token lasts."""

    model_config = ConfigDict(extra="forbid")

    ttl_seconds: int = Field(
        default=3600,
        ge=10,
        le=86400,
        description="Seconds the token is good for: reconnects need it still valid; a stream "
        "already open is not cut when it expires.",
    )


class StreamTokenView(BaseModel):
    """A read-only grant to one job's live events, for a page that cannot send headers."""

    token: str = Field(description="Shown here once; stored only hashed.")
    job_id: str
    expires_at: UtcTime
    stream_url: str = Field(description="Server-Sent Events, for `new EventSource(url)`.")
    ws_url: str = Field(description="The WebSocket path, for `new WebSocket(...)` on this host.")
