"""A job as clients see it: the JSON of ``GET /api/v1/jobs/{id}``, also POSTed to its callback.

One function for both, so a webhook receiver gets exactly what polling the job would show.
Timestamps are ISO 8601 UTC ending in ``Z``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from jobrunner.domain.models import JobRecord

__all__ = ["API_PREFIX", "iso", "job_links", "job_representation"]

API_PREFIX = "/api/v1"


def iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def job_links(job_id: str) -> dict[str, str]:
    base = f"{API_PREFIX}/jobs/{job_id}"
    return {
        "self": base,
        "result": f"{base}/result",
        "events": f"{base}/events",
        "stream": f"{base}/stream",
        "ws": f"{base}/ws",
    }


def job_representation(record: JobRecord) -> dict[str, Any]:
    error = record.error
    return {
        "id": record.id,
        "task": record.task,
        "status": record.status.value,
        "progress": record.progress,
        "message": record.message,
        "attempts": record.attempts,
        "max_tries": record.max_tries,
        "queue": record.queue,
        "plan": record.plan,
        "priority": record.priority,
        "correlation_id": record.correlation_id,
        "idempotency_key": record.idempotency_key,
        "created_at": iso(record.created_at),
        "scheduled_at": iso(record.scheduled_at),
        "started_at": iso(record.started_at),
        "finished_at": iso(record.finished_at),
        "next_attempt_at": iso(record.next_attempt_at),
        "expires_at": iso(record.expires_at),
        "retry_of": record.retry_of,
        "error": None
        if error is None
        else {"type": error.type, "code": error.code, "message": error.message},
        "links": job_links(record.id),
    }
