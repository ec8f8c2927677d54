"""Values that describe jobs: what is enqueued, the durable record, audit and live events."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from jobrunner.domain.status import TERMINAL, JobStatus


def ms_to_dt(ms: float | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, tz=UTC)


class JobError(BaseModel):
    """Why an attempt or a job failed; ``code`` is stable, ``message`` is for people."""

    type: str
    code: str
    message: str
    retryable: bool = False
    attempt: int | None = None


class JobRecord(BaseModel):
    """The durable truth about one job, kept beside arq's own keys."""

    model_config = ConfigDict(frozen=True)

    id: str
    task: str
    params: dict[str, Any]
    status: JobStatus
    progress: float = 0.0
    message: str | None = None
    attempts: int = 0
    max_tries: int = 1
    interruptions: int = 0
    queue: str
    plan: str
    priority: int = 0
    tenant: str
    correlation_id: str | None = None
    idempotency_key: str | None = None
    timeout_seconds: float
    created_at: datetime
    scheduled_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    next_attempt_at: datetime | None = None
    expires_at: datetime | None = None
    cancel_requested: bool = False
    worker_id: str | None = None
    error: JobError | None = None
    result_ref: str | None = None  # set when the result is in the blob store; else see result()
    callback_url: str | None = None  # where the final representation is POSTed when it ends
    retry_of: str | None = None  # the job this one retries (same task and params)

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL


class AuditEntry(BaseModel):
    """One line of a job's append-only audit trail."""

    at: datetime
    event: str
    status: JobStatus | None = None
    attempt: int | None = None
    progress: float | None = None
    message: str | None = None
    error: JobError | None = None
    worker_id: str | None = None
    http_status: int | None = None  # webhook deliveries: what the receiver answered


class JobEvent(BaseModel):
    """What watchers of a job receive: a status change or a progress update."""

    job_id: str
    kind: str  # "status" | "progress" | "snapshot"
    status: JobStatus
    progress: float = 0.0
    message: str | None = None
    attempt: int = 0
    at: datetime = Field(default_factory=lambda: datetime.now(tz=UTC))

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL


class SkippedRecord(BaseModel):
    """A record a listing left out because it does not decode (``record_corrupt``)."""

    id: str
    code: str
    message: str


class JobPage(BaseModel):
    """One page of a listing, newest first; ``skipped``: ids on this page that do not decode."""

    items: list[JobRecord]
    total: int
    offset: int
    limit: int
    skipped: list[SkippedRecord] = Field(default_factory=list)
